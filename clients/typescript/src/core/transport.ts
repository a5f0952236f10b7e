/**
 * Every request of the SDK goes through `Transport.call`: the URL, the headers, a time-out per
 * attempt, the caller's `AbortSignal`, retries with back-off, and turning an answer into data or
 * into the typed error of its problem.
 *
 * @module
 */
import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  APIUserAbortError,
  RateLimitError,
  TheazoError,
  errorClass,
  type Problem,
} from '../errors.js';
import type { RequestOptions } from '../types.js';
import { toMilliseconds } from './durations.js';
import { isRetryableStatus, parseRetryAfter, retryDelayMs, sleep } from './retries.js';

/** Enough of a proxy's error page to recognise it. */
const MAX_ERROR_BODY_CHARS = 500;
/** A held request's answer may come this much after its hold on a slow network. */
export const HOLD_READ_MARGIN_MS = 10_000;
/** The largest delay `setTimeout` takes; a longer time-out is the same as none. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The `fetch` the SDK calls: the platform's, or the caller's (a proxy agent, a test double). */
export type Fetch = (input: string, init: RequestInit) => Promise<Response>;

export interface TransportConfig {
  baseURL: string;
  timeoutMs: number;
  maxRetries: number;
  fetch: Fetch;
  headers: Record<string, string>;
}

/** One call of the API: a request, sent again as retries allow. */
export interface CallSpec {
  method: 'GET' | 'POST' | 'PATCH';
  /** The path after `/v1/`, one segment each; each is URL-encoded. */
  path: readonly string[];
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** The server may hold this request this long: its time-out outlasts the hold. */
  holdMs?: number;
  /** False for the calls that must not be sent twice (a webhook secret rotation). */
  retry?: boolean;
}

/** A successful answer. */
export interface Answer<T> {
  status: number;
  headers: Headers;
  data: T;
}

interface Received {
  response: Response;
  text: string;
}

export class Transport {
  constructor(readonly config: TransportConfig) {}

  /** Send `spec`, retrying connection errors, time-outs, 408, 429 and 5xx; parse the answer. */
  async call<T>(spec: CallSpec, options: RequestOptions = {}): Promise<Answer<T>> {
    const url = this.url(spec);
    const init = this.init(spec, options);
    const what = `${spec.method} ${url}`;
    const timeoutMs = this.timeoutMs(spec, options);
    const maxRetries = spec.retry === false ? 0 : (options.maxRetries ?? this.config.maxRetries);
    const signal = options.signal;
    for (let retry = 0; ; retry++) {
      throwIfAborted(signal);
      let received: Received;
      try {
        received = await this.attempt(url, init, timeoutMs, what, signal);
      } catch (error) {
        if (error instanceof APIConnectionError && retry < maxRetries) {
          await pause(retryDelayMs(retry, null), signal);
          continue;
        }
        throw error;
      }
      const { response, text } = received;
      if (response.ok) {
        return { status: response.status, headers: response.headers, data: parseJson<T>(text, response) };
      }
      if (isRetryableStatus(response.status) && retry < maxRetries) {
        const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
        await pause(retryDelayMs(retry, retryAfter), signal);
        continue;
      }
      throw errorFromAnswer(response, text);
    }
  }

  /**
   * Open a stream: one request, answered once its headers arrive (within `timeoutMs`); the
   * caller reads the body. No retries: a stream resumes from its own last event instead.
   */
  async open(spec: CallSpec, timeoutMs: number, signal: AbortSignal): Promise<Response> {
    const url = this.url(spec);
    const what = `${spec.method} ${url}`;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(
      () => {
        timedOut = true;
        controller.abort();
      },
      Math.min(timeoutMs, MAX_TIMER_MS),
    );
    let opened = false;
    try {
      const response = await this.config.fetch(url, { ...this.init(spec, {}), signal: controller.signal });
      opened = true; // the body goes on after the headers: only the caller's signal stops it now
      return response;
    } catch (error) {
      if (timedOut)
        throw new APITimeoutError(`no answer within ${timeoutMs} ms to ${what}`, {
          request: what,
          cause: error,
        });
      throw new APIConnectionError(`no answer to ${what}: ${describe(error)}`, {
        request: what,
        cause: error,
      });
    } finally {
      clearTimeout(timer);
      if (!opened) signal.removeEventListener('abort', onAbort);
    }
  }

  url(spec: Pick<CallSpec, 'path' | 'query'>): string {
    if (spec.path.some((segment) => segment === '')) {
      throw new TypeError(`an identifier in '${spec.path.join('/')}' is empty`);
    }
    let url = `${this.config.baseURL}/v1/${spec.path.map(encodeURIComponent).join('/')}`;
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined) query.set(name, String(value));
    }
    const search = query.toString();
    if (search !== '') url += `?${search}`;
    return url;
  }

  init(spec: Pick<CallSpec, 'method' | 'body' | 'headers'>, options: RequestOptions): RequestInit {
    const headers: Record<string, string> = { ...this.config.headers, ...spec.headers, ...options.headers };
    const init: RequestInit = { method: spec.method, headers };
    if (spec.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(spec.body);
    }
    return init;
  }

  timeoutMs(spec: Pick<CallSpec, 'holdMs'>, options: RequestOptions): number {
    const base =
      options.timeout === undefined ? this.config.timeoutMs : toMilliseconds(options.timeout, 'timeout');
    return spec.holdMs === undefined ? base : Math.max(base, spec.holdMs + HOLD_READ_MARGIN_MS);
  }

  /**
   * One request, its body read within the time-out. The caller's signal and the time-out each
   * abort it; which one did decides the error.
   */
  private async attempt(
    url: string,
    init: RequestInit,
    timeoutMs: number,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<Received> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer =
      timeoutMs < MAX_TIMER_MS
        ? setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, timeoutMs)
        : undefined;
    try {
      const response = await this.config.fetch(url, { ...init, signal: controller.signal });
      return { response, text: await response.text() };
    } catch (error) {
      if (signal?.aborted) throw userAbort(signal);
      if (timedOut) {
        throw new APITimeoutError(`no answer within ${timeoutMs} ms to ${what}`, {
          request: what,
          cause: error,
        });
      }
      throw new APIConnectionError(`no answer to ${what}: ${describe(error)}`, {
        request: what,
        cause: error,
      });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

function parseJson<T>(text: string, response: Response): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new TheazoError(`the server's answer (${response.status}) is not JSON: ${cut(text)}`);
  }
}

/** The error for an error answer, from its problem+json (or whatever body it has). */
export function errorFromAnswer(response: Response, text: string): APIError {
  const status = response.status;
  const reason = response.statusText || 'HTTP error';
  const problem = jsonObject(text);
  let code = 'http_error';
  let title = reason;
  let detail = cut(text.trim()) || reason;
  let field: string | null = null;
  if (problem !== null) {
    code = stringOr(problem.code, 'http_error');
    title = stringOr(problem.title, reason);
    detail = stringOr(problem.detail, title);
    field = typeof problem.field === 'string' ? problem.field : null;
  }
  const options = { title, field, problem: problem ?? {}, headers: response.headers };
  const cls = errorClass(status);
  if (cls === RateLimitError) {
    const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
    return new RateLimitError(status, code, detail, { ...options, retryAfter });
  }
  return new cls(status, code, detail, options);
}

function jsonObject(text: string): Problem | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Problem) : null;
  } catch {
    return null;
  }
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' && value !== ''
    ? value
    : typeof value === 'number'
      ? String(value)
      : fallback;
}

function cut(text: string): string {
  return text.length > MAX_ERROR_BODY_CHARS ? `${text.slice(0, MAX_ERROR_BODY_CHARS)}…` : text;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? ` (${cause.message})` : '';
    return `${error.message}${detail}`;
  }
  return String(error);
}

/** The error of a call whose signal aborted it. */
export function userAbort(signal: AbortSignal): APIUserAbortError {
  return new APIUserAbortError('the call was aborted', { cause: signal.reason });
}

/** Throw the abort error if `signal` has already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw userAbort(signal);
}

/** A pause between attempts, ended by the caller's signal. */
export async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, signal);
  } catch {
    throw userAbort(signal as AbortSignal);
  }
}
