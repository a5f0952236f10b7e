/**
 * The TypeScript client of Theazo: run AI agents as asynchronous, sandboxed tasks.
 *
 * ```ts
 * import { Theazo } from 'theazo'
 *
 * const theazo = new Theazo({ apiKey: 'th_live_...' })
 * const session = await theazo.sessions.forUser('user_123')
 * const task = await session.tasks.submit({ agent: 'researcher', input: { query: '...' } })
 * const result = await session.tasks.wait(task.taskId, { timeout: '5m' })
 * ```
 *
 * @module
 */
export {
  Theazo,
  API_KEY_ENV,
  BASE_URL_ENV,
  DEFAULT_BASE_URL,
  DEFAULT_MAX_RETRIES,
  DEFAULT_TIMEOUT_MS,
  type ClientOptions,
} from './client.js';
export type { Fetch } from './core/transport.js';
export type { Duration, DurationString } from './core/durations.js';
export {
  APIConnectionError,
  APIError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  BudgetExhaustedError,
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
  ServerError,
  TheazoError,
  UnprocessableEntityError,
  type Problem,
} from './errors.js';
export {
  EventStream,
  STREAM_IDLE_TIMEOUT_MS,
  STREAM_MAX_RETRIES,
  type ChargeEvent,
  type EndEvent,
  type LogEvent,
  type ProgressEvent,
  type SessionStreamEvent,
  type StatusEvent,
  type StreamEventBase,
  type StreamOptions,
  type TaskStreamEvent,
} from './events.js';
export { TaskPage, TaskPagePromise } from './pagination.js';
export { Agents, Webhooks } from './resources/project.js';
export { Session, Sessions } from './resources/sessions.js';
export { Tasks, WAIT_HOLD_CAP_MS } from './resources/tasks.js';
export {
  TERMINAL_STATUSES,
  isTerminal,
  type Agent,
  type Cost,
  type Delivery,
  type DeliveryAttempt,
  type Limits,
  type LimitsUpdate,
  type ListParams,
  type LogLine,
  type LogPage,
  type LogParams,
  type PreviousSecret,
  type Priority,
  type RequestOptions,
  type RunParams,
  type SessionInfo,
  type StreamToken,
  type StreamTokenParams,
  type SubmitParams,
  type Task,
  type TaskError,
  type TaskStatus,
  type TaskUsage,
  type TerminalStatus,
  type Tokens,
  type Usage,
  type WaitOptions,
  type WebhookEvent,
  type WebhookSecret,
} from './types.js';
export { VERSION } from './version.js';
/** The wire types generated from the server's /openapi.json: `wire.paths`, `wire.components`. */
export type * as wire from './generated/openapi.js';
