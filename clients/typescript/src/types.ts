/**
 * The objects the server sends, as they are on the wire (camelCase JSON). Each is an alias of
 * a type generated from the server's `/openapi.json` (`src/generated/openapi.ts`); only what
 * generation cannot say is written by hand, and a type test checks the hand-written unions
 * against the generated ones.
 *
 * @module
 */
import type { components } from './generated/openapi.js';
import type { Duration } from './core/durations.js';

type Schemas = components['schemas'];

/** Where a task is: `queued → running → completed | failed | cancelled`, or `queued → cancelled`. */
export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** A status a task never leaves. */
export type TerminalStatus = 'completed' | 'failed' | 'cancelled';

/** Which tasks start first: `high` before `normal` before `low`. */
export type Priority = 'high' | 'normal' | 'low';

/** Which events of a task go to its webhook: `completed` is every terminal state. */
export type WebhookEvent = 'completed' | 'started' | 'progress';

/**
 * One run of an agent on one input, as the server last reported it.
 *
 * `progress` and `message` are the last the agent reported; `output` is set once `completed`,
 * `error` once `failed`; `cost.amount` is in minor units (cents). Timestamps are RFC 3339
 * strings; `timeout` is the task's wall-clock limit in seconds, as the server reports it.
 */
export type Task = Schemas['TaskOut'];

/** Why a task failed: a stable `code` (`'agent_error'`, `'timeout'`...) and a message. */
export type TaskError = Schemas['ErrorOut'];

/** An amount of money: `amount` in the currency's minor unit (cents for `'usd'`). */
export type Cost = Schemas['CostOut'];

/** A session's limits; `budget` in minor units, `null` for none. */
export type Limits = Schemas['LimitsOut'];

/** What a session has used: tasks ever submitted, queued and running now, total cost, and the
 * model tokens of its tasks' calls through the model gateway. */
export type Usage = Schemas['UsageOut'];

/** Model tokens: `input` (cached ones included), `output`, and `cached`, the part of `input`
 * read from the provider's prompt cache. */
export type Tokens = Schemas['TokensOut'];

/** The model tokens a task's calls through the model gateway used, in all and by model. */
export type TaskUsage = Schemas['TaskUsageOut'];

/** A session as the server sends it. */
export type SessionInfo = Schemas['SessionOut'];

/** An agent the deployment can run, with its input's JSON Schema if it declares one. */
export type Agent = Schemas['AgentOut'];

/** One webhook message of a task and where it stands, with every attempt. */
export type Delivery = Schemas['DeliveryOut'];

/** One attempt to deliver a webhook. */
export type DeliveryAttempt = Schemas['DeliveryAttemptOut'];

/** The project's webhook signing secret (Standard Webhooks `whsec_…`). */
export type WebhookSecret = Schemas['WebhookSecretOut'];

/** A webhook secret rotated out that still signs until `expiresAt`. */
export type PreviousSecret = Schemas['PreviousSecretOut'];

/** One line the agent wrote: its `seq` (its id in the task's event stream), stream, text, time. */
export type LogLine = Schemas['LogLineOut'];

/** A page of a task's log, oldest first; `nextCursor` is `null` when no more lines are stored yet. */
export type LogPage = Schemas['LogPage'];

/** A stream token: reads one session's event streams and logs, for a browser, until `expiresAt`. */
export type StreamToken = Schemas['StreamTokenOut'];

/** The statuses a task never leaves. */
export const TERMINAL_STATUSES: readonly TerminalStatus[] = Object.freeze([
  'completed',
  'failed',
  'cancelled',
]);

/** True once the task is completed, failed or cancelled: it will never change again. */
export function isTerminal(task: Pick<Task, 'status'>): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(task.status);
}

/** What `session.tasks.submit()` takes. */
export interface SubmitParams {
  /** The agent's name (`theazo.agents.list()` says which the deployment serves). */
  agent: string;
  /** Any JSON value; the agent receives it as is (`null` when left out). */
  input?: unknown;
  /** `'high'`, `'normal'` (the server's default) or `'low'`. */
  priority?: Priority | undefined;
  /** A URL the server POSTs the result to when the task ends (signed, retried). */
  webhook?: string | undefined;
  /** Which events go to the webhook: `['completed']` (every terminal state) by default. */
  webhookEvents?: readonly WebhookEvent[] | undefined;
  /** The task's wall-clock limit: `'10m'`, or milliseconds. The server's default is 1 h. */
  timeout?: Duration | undefined;
  /** String-to-string annotations kept with the task. */
  metadata?: Readonly<Record<string, string>> | undefined;
  /** Automatic re-runs after the task's worker was lost (server default 0). */
  retries?: number | undefined;
  /**
   * A repeated submit with the same key in this session returns the first task instead of a
   * new one. When not given, the SDK makes one per call and reuses it across its retries.
   */
  idempotencyKey?: string | undefined;
}

/** What `session.tasks.list()` takes. */
export interface ListParams {
  /** Only tasks in this status, or in any of these statuses. */
  status?: TaskStatus | readonly TaskStatus[] | undefined;
  /** At most this many tasks per page (server default 50, maximum 500). */
  limit?: number | undefined;
  /** `nextCursor` of the previous page. */
  cursor?: string | undefined;
}

/** The limits `session.updateLimits()` changes; those left out stay as they are. */
export interface LimitsUpdate {
  /** How many of the session's tasks may run at once. */
  maxRunning?: number | undefined;
  /** How many of its tasks may wait at once. */
  maxQueued?: number | undefined;
  /** Total spend allowed, in minor units (cents); `null` removes the budget. */
  budget?: number | null | undefined;
}

/** Options every call takes. */
export interface RequestOptions {
  /** Abort the call (its requests, its retries' pauses, a wait's loop). */
  signal?: AbortSignal | undefined;
  /** Time allowed for each request of the call, overriding the client's `timeout`. */
  timeout?: Duration | undefined;
  /** Retries of this call, overriding the client's `maxRetries`. */
  maxRetries?: number | undefined;
  /** Extra headers for this call. */
  headers?: Readonly<Record<string, string>> | undefined;
}

/** What `session.tasks.wait()` takes. */
export interface WaitOptions extends Omit<RequestOptions, 'timeout'> {
  /**
   * How long to wait in all: `'5m'`, or milliseconds. Left out (or `null`), the wait lasts
   * until the task ends, however long. The SDK loops over the server's capped long polls.
   */
  timeout?: Duration | null | undefined;
}

/** What `session.tasks.logs()` takes. */
export interface LogParams {
  /** Lines after this `seq` (or a page's `nextCursor`). */
  after?: number | string | undefined;
  /** At most this many lines (server default 100, maximum 1,000). */
  limit?: number | undefined;
}

/** What `session.streamToken()` takes. */
export interface StreamTokenParams {
  /** How long the token opens streams: `'15m'` (the server's default) up to `'24h'`. */
  ttl?: Duration | undefined;
}

/** What `session.run()` takes: a submit, and how long to wait for it. */
export interface RunParams extends SubmitParams {
  /** How long to wait, from the submit (left out or `null`: until the task ends). */
  waitTimeout?: Duration | null | undefined;
}
