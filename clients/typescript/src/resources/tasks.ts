/**
 * The tasks of one session: submit, get, list, wait, cancel, and their webhook deliveries.
 *
 * @module
 */
import { holdSeconds, toMilliseconds, wireDuration } from '../core/durations.js';
import { definedOnly } from '../core/fields.js';
import { randomId } from '../core/runtime.js';
import type { CallSpec, Transport } from '../core/transport.js';
import { EventStream, openStream, type StreamOptions, type TaskStreamEvent } from '../events.js';
import { TaskPage, TaskPagePromise } from '../pagination.js';
import {
  isTerminal,
  type Delivery,
  type ListParams,
  type LogPage,
  type LogParams,
  type RequestOptions,
  type RunParams,
  type SubmitParams,
  type Task,
  type WaitOptions,
} from '../types.js';

/**
 * The longest the SDK asks the server to hold one long poll: the server's default cap. A
 * server with a lower `--max-wait` answers sooner, and the SDK asks again.
 */
export const WAIT_HOLD_CAP_MS = 60_000;

const SUBMIT_FIELDS = [
  'agent',
  'input',
  'priority',
  'webhook',
  'webhookEvents',
  'timeout',
  'metadata',
  'retries',
  'idempotencyKey',
] as const;

/** The tasks of one session. */
export class Tasks {
  /** The session these tasks belong to. */
  readonly sessionId: string;
  readonly #transport: Transport;

  /** @internal Reached as `session.tasks`. */
  constructor(transport: Transport, sessionId: string) {
    this.#transport = transport;
    this.sessionId = sessionId;
  }

  /**
   * Submit a task: it is queued at once and runs when the scheduler starts it. The submit
   * carries an `Idempotency-Key` (`params.idempotencyKey`, or one the SDK makes), the same on
   * each retry, so a retried submit never makes two tasks.
   *
   * @returns The task, `queued`.
   * @throws UnprocessableEntityError - a field is wrong, e.g. an unknown agent (`field` says).
   * @throws RateLimitError - the session's queue is full.
   * @throws BudgetExhaustedError - the session's budget is spent.
   */
  async submit(params: SubmitParams, options?: RequestOptions): Promise<Task> {
    return (await this.#transport.call<Task>(this.#submitSpec(params), options)).data;
  }

  /**
   * Submit up to 1,000 tasks at once, all or nothing. Each item without an `idempotencyKey`
   * gets one, so a retried batch never makes a task twice.
   *
   * @returns The tasks, in the order given.
   */
  async submitBatch(tasks: readonly SubmitParams[], options?: RequestOptions): Promise<Task[]> {
    const body = {
      tasks: tasks.map((params) => ({
        ...submitBody(params),
        idempotencyKey: params.idempotencyKey ?? randomId(),
      })),
    };
    const spec = { method: 'POST', path: ['sessions', this.sessionId, 'tasks', 'batch'], body } as const;
    return (await this.#transport.call<{ data: Task[] }>(spec, options)).data.data;
  }

  /**
   * The task as it is now.
   *
   * @throws NotFoundError - no such task in this session.
   */
  async get(taskId: string, options?: RequestOptions): Promise<Task> {
    const spec = { method: 'GET', path: ['sessions', this.sessionId, 'tasks', taskId] } as const;
    return (await this.#transport.call<Task>(spec, options)).data;
  }

  /**
   * The session's tasks, newest first. Awaited, the answer is one page: an array of tasks
   * with `nextCursor`. With `for await`, it is every task of every page.
   */
  list(params: ListParams = {}, options: RequestOptions = {}): TaskPagePromise {
    const { status, limit } = definedOnly(params, ['status', 'limit', 'cursor']);
    const statuses = status === undefined || typeof status === 'string' ? status : status.join(',');
    const load = async (cursor: string | undefined, opts: RequestOptions): Promise<TaskPage> => {
      const spec = {
        method: 'GET',
        path: ['sessions', this.sessionId, 'tasks'],
        query: { status: statuses, limit, cursor },
      } as const;
      const { data } = await this.#transport.call<{ data: Task[]; nextCursor: string | null }>(spec, opts);
      return new TaskPage(data.data, data.nextCursor, load, opts);
    };
    return new TaskPagePromise(load, params.cursor, options);
  }

  /**
   * Wait until the task ends or `options.timeout` passes (`'5m'`, or milliseconds; left out,
   * until it ends). The server holds each request; the SDK asks again past the server's cap.
   *
   * @returns The task: terminal, unless the timeout passed first.
   * @throws TypeError - `timeout` is not a duration (before any request).
   */
  async wait(taskId: string, options: WaitOptions = {}): Promise<Task> {
    const { timeout, ...requestOptions } = options;
    const deadline = timeout == null ? null : now() + toMilliseconds(timeout, 'timeout');
    return this.#poll(taskId, deadline, requestOptions);
  }

  /**
   * Cancel a queued or running task; answers once it is recorded `cancelled` (a running task's
   * sandbox is killed; it is billed to that moment).
   *
   * @returns The task, `cancelled` (also if it already was).
   * @throws ConflictError - the task already completed or failed.
   */
  async cancel(taskId: string, options?: RequestOptions): Promise<Task> {
    const spec = { method: 'POST', path: ['sessions', this.sessionId, 'tasks', taskId, 'cancel'] } as const;
    return (await this.#transport.call<Task>(spec, options)).data;
  }

  /** The task's webhook deliveries, oldest first, each with every attempt. */
  async deliveries(taskId: string, options?: RequestOptions): Promise<Delivery[]> {
    const spec = {
      method: 'GET',
      path: ['sessions', this.sessionId, 'tasks', taskId, 'deliveries'],
    } as const;
    return (await this.#transport.call<{ data: Delivery[] }>(spec, options)).data.data;
  }

  /**
   * Send a finished task's final webhook again, now (same `webhook-id`).
   *
   * @returns The delivery, `pending` again.
   * @throws ConflictError - the task has not finished, or has no webhook.
   */
  async redeliver(taskId: string, options?: RequestOptions): Promise<Delivery> {
    const path = ['sessions', this.sessionId, 'tasks', taskId, 'deliveries', 'redeliver'];
    return (await this.#transport.call<Delivery>({ method: 'POST', path }, options)).data;
  }

  /**
   * Follow a task live: its status, progress, log lines and charges, until it ends. The first
   * event is the task as it is now (`status`, id 0), then its reports from its start, then
   * whatever happens, and last `end`. The stream reconnects by itself after a dropped
   * connection, from the last event received.
   *
   * @throws NotFoundError - no such task in this session (when iterated).
   */
  stream(taskId: string, options: StreamOptions = {}): EventStream<TaskStreamEvent> {
    const path = ['sessions', this.sessionId, 'tasks', taskId, 'events'];
    return openStream<TaskStreamEvent>(this.#transport, path, options);
  }

  /**
   * A page of what the task's agent wrote to stdout and stderr, oldest first: lines after
   * `after` (a line's `seq`, or the previous page's `nextCursor`).
   */
  async logs(taskId: string, params: LogParams = {}, options?: RequestOptions): Promise<LogPage> {
    const { after, limit } = definedOnly(params, ['after', 'limit']);
    const spec = {
      method: 'GET',
      path: ['sessions', this.sessionId, 'tasks', taskId, 'logs'],
      query: { after, limit },
    } as const;
    return (await this.#transport.call<LogPage>(spec, options)).data;
  }

  /** @internal `session.run()`: a submit held until the task ends, then waits as `wait` does. */
  async _run(params: RunParams, options: RequestOptions = {}): Promise<Task> {
    const { waitTimeout, ...submit } = params;
    const waitMs = waitTimeout == null ? null : toMilliseconds(waitTimeout, 'waitTimeout');
    const deadline = waitMs === null ? null : now() + waitMs;
    const hold = waitMs === null ? WAIT_HOLD_CAP_MS : Math.min(waitMs, WAIT_HOLD_CAP_MS);
    const spec = this.#submitSpec(submit);
    spec.headers = { ...spec.headers, Prefer: `wait=${holdSeconds(hold)}` };
    spec.holdMs = hold;
    const task = (await this.#transport.call<Task>(spec, options)).data;
    if (isTerminal(task) || (deadline !== null && now() >= deadline)) return task;
    return this.#poll(task.taskId, deadline, options);
  }

  #submitSpec(params: SubmitParams): CallSpec {
    return {
      method: 'POST',
      path: ['sessions', this.sessionId, 'tasks'],
      body: submitBody(params),
      headers: { 'Idempotency-Key': params.idempotencyKey ?? randomId() },
    };
  }

  async #poll(taskId: string, deadline: number | null, options: RequestOptions): Promise<Task> {
    for (;;) {
      const hold =
        deadline === null ? WAIT_HOLD_CAP_MS : Math.min(WAIT_HOLD_CAP_MS, Math.max(deadline - now(), 0));
      const spec = {
        method: 'GET',
        path: ['sessions', this.sessionId, 'tasks', taskId, 'wait'],
        query: { timeout: `${holdSeconds(hold)}s` },
        holdMs: hold,
      } as const;
      const task = (await this.#transport.call<Task>(spec, options)).data;
      if (isTerminal(task) || (deadline !== null && now() >= deadline)) return task;
    }
  }
}

/** The JSON of one submit: the fields given, durations as the server reads them. */
function submitBody(params: SubmitParams): Record<string, unknown> {
  const { idempotencyKey: _key, ...body } = definedOnly(params, SUBMIT_FIELDS);
  const wire: Record<string, unknown> = { ...body, input: body.input ?? null };
  if (body.timeout !== undefined) wire.timeout = wireDuration(body.timeout, 'timeout');
  return wire;
}

function now(): number {
  return performance.now();
}
