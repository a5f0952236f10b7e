/**
 * Event streams: `session.tasks.stream(id)` and `session.events()` are {@link EventStream}s,
 * async iterables of typed events that reconnect by themselves after a dropped connection,
 * resuming after the last event received (`Last-Event-ID`): nothing is lost, nothing comes
 * twice.
 *
 * ```ts
 * for await (const event of session.tasks.stream(task.taskId)) {
 *   if (event.event === 'progress') bar.update(event.progress, event.message)
 *   if (event.event === 'log') console.log(event.text)
 *   if (event.event === 'end') console.log(event.task.output)
 * }
 * ```
 *
 * @module
 */
import { toMilliseconds, type Duration } from './core/durations.js';
import { SSEParser, lines, type RawEvent } from './core/sse.js';
import { errorFromAnswer, userAbort, type CallSpec, type Transport } from './core/transport.js';
import { APIConnectionError, TheazoError } from './errors.js';
import type { Cost, Task } from './types.js';

/** Three of the server's 15 s keep-alives without a byte: the connection is dead. */
export const STREAM_IDLE_TIMEOUT_MS = 45_000;
/** Attempts in a row that bring nothing before the stream gives up. */
export const STREAM_MAX_RETRIES = 10;
/** The longest pause between two attempts. */
const STREAM_RETRY_CAP_MS = 5_000;
/** The largest delay `setTimeout` takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The pause before reconnecting when the server said no `retry:`. */
const DEFAULT_RETRY_MS = 1_000;

/** What every event has: its id in its stream (resume after it), and its JSON `data` as sent. */
export interface StreamEventBase {
  /** The event's id in its stream (a task's, or a session's): `{ after: id }` resumes after it. */
  id: number;
  /** The task it is about. */
  taskId: string;
  /** Its `data:` as the server sent it (the typed fields read the same). */
  data: Record<string, unknown>;
}

/** The task changed status; first in a task's stream (id 0), the task as it is now. */
export interface StatusEvent extends StreamEventBase {
  event: 'status';
  /** The whole task, as it was at this event. */
  task: Task;
}

/** The agent reported progress (`progress` is `null` when it reported only a message). */
export interface ProgressEvent extends StreamEventBase {
  event: 'progress';
  progress: number | null;
  message: string | null;
}

/** The agent wrote a line to its stdout or stderr. */
export interface LogEvent extends StreamEventBase {
  event: 'log';
  stream: 'stdout' | 'stderr';
  /** The line, without its newline. */
  text: string;
  /** When the server read it (RFC 3339). */
  at: string;
}

/** The agent charged an amount (minor units, maybe fractional); `cost` is the task's after it. */
export interface ChargeEvent extends StreamEventBase {
  event: 'charge';
  amount: number;
  description: string | null;
  cost: Cost;
}

/** The task ended: the last event of its stream. */
export interface EndEvent extends StreamEventBase {
  event: 'end';
  /** The task in its terminal state. */
  task: Task;
}

/** What `session.tasks.stream()` yields. */
export type TaskStreamEvent = StatusEvent | ProgressEvent | LogEvent | ChargeEvent | EndEvent;
/** What `session.events()` yields: the status and progress of every task of the session. */
export type SessionStreamEvent = StatusEvent | ProgressEvent;

/** What `stream()` and `events()` take. */
export interface StreamOptions {
  /** Start after this event id (an `event.id` seen before) instead of from the start. */
  after?: number | undefined;
  /** Stop after this long, without an error (`'10m'`, or milliseconds; left out: no limit). */
  timeout?: Duration | undefined;
  /** Stop the stream: the loop ends with `APIUserAbortError`. */
  signal?: AbortSignal | undefined;
  /** Attempts in a row that may fail (no answer, 429, 5xx) before the error is thrown. */
  maxRetries?: number | undefined;
}

/** The typed event of a raw one; `null` for a name this SDK does not know (a newer server's). */
export function toEvent(raw: RawEvent): TaskStreamEvent | null {
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(raw.data) as Record<string, unknown>;
  } catch {
    throw new TheazoError(`the server sent a ${raw.event} event that is not JSON: ${raw.data.slice(0, 200)}`);
  }
  const id = raw.id !== null && /^\d+$/.test(raw.id) ? Number(raw.id) : 0;
  switch (raw.event) {
    case 'status':
    case 'end': {
      const task = payload as unknown as Task;
      return { event: raw.event, id, taskId: task.taskId, task, data: payload };
    }
    case 'progress':
    case 'log':
    case 'charge':
      return { ...payload, event: raw.event, id, data: payload } as TaskStreamEvent;
    default:
      return null;
  }
}

interface StreamConfig {
  transport: Transport;
  /** The stream's request, resumed after `after` (null: from the start). */
  spec: (after: number | null) => CallSpec;
  connectTimeoutMs: number;
}

/**
 * A live stream of events, as an async iterable, read once; leave the loop (or call `close()`)
 * to stop it. `lastEventId` is the id to resume from later (`{ after: stream.lastEventId }`).
 */
export class EventStream<E extends TaskStreamEvent> implements AsyncIterable<E> {
  /** The id of the last event received; the stream resumes after it when it reconnects. */
  lastEventId: number | null;
  readonly #config: StreamConfig;
  readonly #controller = new AbortController();
  readonly #signal: AbortSignal | undefined;
  readonly #deadline: number | null;
  readonly #maxRetries: number;
  #retryMs: number | null = null;
  #failures = 0;
  #closed = false;

  /** @internal Made by `session.tasks.stream()` and `session.events()`. */
  constructor(config: StreamConfig, options: StreamOptions, timeoutMs: number | null) {
    this.#config = config;
    this.lastEventId = options.after ?? null;
    this.#signal = options.signal;
    this.#deadline = timeoutMs === null ? null : performance.now() + timeoutMs;
    this.#maxRetries = options.maxRetries ?? STREAM_MAX_RETRIES;
  }

  /** Stop the stream: a loop over it ends, and the connection closes. */
  close(): void {
    this.#closed = true;
    this.#controller.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<E, void, undefined> {
    const stop = (): void => this.#controller.abort(this.#signal?.reason);
    this.#signal?.addEventListener('abort', stop, { once: true });
    const timer =
      this.#deadline === null
        ? undefined
        : setTimeout(() => this.close(), Math.min(this.#remaining(), MAX_TIMER_MS));
    try {
      while (!this.#stopped()) {
        const ended = yield* this.#connection();
        if (this.#stopped() || ended) return;
        await this.#pause();
      }
    } finally {
      clearTimeout(timer);
      this.#signal?.removeEventListener('abort', stop);
      this.close(); // a stream is read once; `{ after: stream.lastEventId }` opens it again
    }
  }

  /** One connection: its events, until it closes or fails. Answers whether the stream is over. */
  async *#connection(): AsyncGenerator<E, boolean, undefined> {
    const { transport, spec } = this.#config;
    // Its own controller, so that a silent connection can be dropped without stopping the stream.
    const connection = new AbortController();
    const stop = (): void => connection.abort();
    this.#controller.signal.addEventListener('abort', stop, { once: true });
    const idle = new IdleTimer(STREAM_IDLE_TIMEOUT_MS, stop);
    try {
      const response = await transport.open(
        spec(this.lastEventId),
        this.#config.connectTimeoutMs,
        connection.signal,
      );
      if (response.status === 204) return true; // the task ended before the id we resume from
      if (!response.ok) {
        const error = errorFromAnswer(response, await response.text().catch(() => ''));
        if (response.status !== 429 && response.status < 500) throw error;
        this.#failed(error);
        return false;
      }
      const parser = new SSEParser();
      idle.reset();
      for await (const line of lines(response.body ?? new ReadableStream(), () => idle.reset())) {
        const raw = parser.feed(line);
        this.#retryMs = parser.retryMs ?? this.#retryMs;
        if (raw === null) continue;
        const event = toEvent(raw);
        if (raw.id !== null && /^\d+$/.test(raw.id)) this.lastEventId = Number(raw.id);
        this.#failures = 0;
        if (event === null) continue;
        yield event as E;
        if (event.event === 'end' || this.#controller.signal.aborted) return true;
      }
      return false; // the server closed the stream (it stopped): go on from the last id
    } catch (error) {
      if (error instanceof TheazoError && !(error instanceof APIConnectionError)) throw error;
      this.#failed(error);
      return false;
    } finally {
      idle.stop();
      this.#controller.signal.removeEventListener('abort', stop);
      connection.abort();
    }
  }

  /** A connection failed (no answer, dropped, silent, 429, 5xx): count it, or give up. */
  #failed(error: unknown): void {
    if (this.#controller.signal.aborted) return; // closed, timed out or aborted: the loop ends
    this.#failures += 1;
    if (this.#failures > this.#maxRetries) {
      if (error instanceof TheazoError) throw error;
      throw new APIConnectionError(
        `the event stream failed ${this.#failures} times in a row: ${String(error)}`,
        {
          request: 'event stream',
          cause: error,
        },
      );
    }
  }

  /** Before the next connection: the server's `retry:`, growing with each failure in a row. */
  async #pause(): Promise<void> {
    const base = this.#retryMs ?? DEFAULT_RETRY_MS;
    let wait: number;
    if (this.#failures <= 1) wait = this.#failures === 1 ? base : Math.min(base, 100);
    else wait = Math.min(base * 2 ** (this.#failures - 1), STREAM_RETRY_CAP_MS) * (0.8 + Math.random() * 0.4);
    wait = Math.min(wait, this.#remaining());
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait);
      const signal = this.#controller.signal;
      signal.addEventListener('abort', done, { once: true });
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }

  /** Over without an error: closed, or past its timeout. A user's abort is an error instead. */
  #stopped(): boolean {
    if (this.#signal?.aborted) throw userAbort(this.#signal);
    return this.#closed || (this.#deadline !== null && performance.now() >= this.#deadline);
  }

  #remaining(): number {
    return this.#deadline === null
      ? Number.POSITIVE_INFINITY
      : Math.max(this.#deadline - performance.now(), 0);
  }
}

class IdleTimer {
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly ms: number,
    readonly onIdle: () => void,
  ) {
    this.reset();
  }

  reset(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.onIdle, this.ms);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}

/** @internal The stream at `path` (`…/tasks/{id}/events` or `…/events`). */
export function openStream<E extends TaskStreamEvent>(
  transport: Transport,
  path: readonly string[],
  options: StreamOptions,
): EventStream<E> {
  const timeoutMs = options.timeout === undefined ? null : toMilliseconds(options.timeout, 'timeout');
  const spec = (after: number | null): CallSpec => ({
    method: 'GET',
    path,
    headers: {
      Accept: 'text/event-stream',
      'Cache-Control': 'no-cache',
      ...(after === null ? {} : { 'Last-Event-ID': String(after) }),
    },
  });
  return new EventStream<E>(
    { transport, spec, connectTimeoutMs: transport.config.timeoutMs },
    options,
    timeoutMs,
  );
}
