/**
 * Sessions, one per end user of the application: the boundary of their tasks, their limits and
 * their spend.
 *
 * @module
 */
import type { Transport } from '../core/transport.js';
import type {
  Cost,
  Limits,
  LimitsUpdate,
  RequestOptions,
  RunParams,
  SessionInfo,
  StreamToken,
  StreamTokenParams,
  Task,
  Usage,
} from '../types.js';
import { wireDuration } from '../core/durations.js';
import { definedOnly } from '../core/fields.js';
import { EventStream, openStream, type SessionStreamEvent, type StreamOptions } from '../events.js';
import { Tasks } from './tasks.js';

/** The sessions of the project: one per end user of the application. */
export class Sessions {
  readonly #transport: Transport;

  /** @internal Reached as `theazo.sessions`. */
  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** The session of an end user, created on first use (`userId` is the application's own id). */
  async forUser(userId: string, options?: RequestOptions): Promise<Session> {
    const spec = { method: 'POST', path: ['sessions'], body: { userId } } as const;
    const answer = await this.#transport.call<SessionInfo>(spec, options);
    return new Session(this.#transport, answer.data);
  }

  /**
   * A session by its id (`'sess_…'`).
   *
   * @throws NotFoundError - no such session in this project.
   */
  async get(sessionId: string, options?: RequestOptions): Promise<Session> {
    const answer = await this.#transport.call<SessionInfo>(
      { method: 'GET', path: ['sessions', sessionId] },
      options,
    );
    return new Session(this.#transport, answer.data);
  }
}

/** One end user's session: its tasks, limits and usage, as last fetched. */
export class Session {
  /** The session's tasks. */
  readonly tasks: Tasks;
  readonly #transport: Transport;
  #info: SessionInfo;

  /** @internal Made by `theazo.sessions.forUser()` and `theazo.sessions.get()`. */
  constructor(transport: Transport, info: SessionInfo) {
    this.#transport = transport;
    this.#info = info;
    this.tasks = new Tasks(transport, info.sessionId);
  }

  /** The session as the server last reported it. */
  get info(): SessionInfo {
    return this.#info;
  }

  /** `'sess_…'`. */
  get sessionId(): string {
    return this.#info.sessionId;
  }

  /** The application's identifier of the end user. */
  get userId(): string {
    return this.#info.userId;
  }

  /** When the session was created (RFC 3339). */
  get createdAt(): string {
    return this.#info.createdAt;
  }

  /** Its limits when last fetched (`refresh()` fetches again). */
  get limits(): Limits {
    return this.#info.limits;
  }

  /** What it had used when last fetched (`refresh()` fetches again). */
  get usage(): Usage {
    return this.#info.usage;
  }

  /** Its total spend when last fetched; the same as `usage.cost`. */
  get cost(): Cost {
    return this.#info.usage.cost;
  }

  /** Fetch the session's limits and usage again; answers this session, updated. */
  async refresh(options?: RequestOptions): Promise<this> {
    const answer = await this.#transport.call<SessionInfo>(
      { method: 'GET', path: ['sessions', this.sessionId] },
      options,
    );
    this.#info = answer.data;
    return this;
  }

  /**
   * Change some of the session's limits; those left out stay as they are, and `budget: null`
   * removes the budget. Answers this session, updated.
   */
  async updateLimits(limits: LimitsUpdate, options?: RequestOptions): Promise<this> {
    const body = { limits: definedOnly(limits, ['maxRunning', 'maxQueued', 'budget']) };
    const spec = { method: 'PATCH', path: ['sessions', this.sessionId], body } as const;
    this.#info = (await this.#transport.call<SessionInfo>(spec, options)).data;
    return this;
  }

  /**
   * Submit a task and wait until it ends (or `waitTimeout` passes). A short task costs one
   * round trip: the submit asks the server to hold its answer until the task has ended.
   */
  run(params: RunParams, options?: RequestOptions): Promise<Task> {
    return this.tasks._run(params, options);
  }

  /**
   * Follow the status and progress of every task of the session, live, until the loop stops
   * (or `timeout` passes). It reconnects by itself after a dropped connection, from the last
   * event received; without `after`, it starts from the session's first event.
   */
  events(options: StreamOptions = {}): EventStream<SessionStreamEvent> {
    return openStream<SessionStreamEvent>(this.#transport, ['sessions', this.sessionId, 'events'], options);
  }

  /**
   * A short-lived token that reads this session's event streams and logs, and nothing else,
   * for a browser (`EventSource` sends it as `?token=`, since it cannot send a key). Mint it in
   * your back end, which holds the API key, for the user whose page it serves.
   */
  async streamToken(params: StreamTokenParams = {}, options?: RequestOptions): Promise<StreamToken> {
    const { ttl } = definedOnly(params, ['ttl']);
    const body = ttl === undefined ? {} : { ttl: wireDuration(ttl, 'ttl') };
    const spec = { method: 'POST', path: ['sessions', this.sessionId, 'tokens'], body } as const;
    return (await this.#transport.call<StreamToken>(spec, options)).data;
  }

  /** How the session shows in logs. */
  toJSON(): SessionInfo {
    return this.#info;
  }
}
