/**
 * The errors of the SDK. Catch `TheazoError` for all of them:
 *
 * ```text
 * TheazoError                        anything the SDK throws on purpose
 * ├── APIError                       the server answered with an error (problem+json)
 * │   ├── BadRequestError            400  malformed JSON
 * │   ├── AuthenticationError        401  missing or unknown API key
 * │   ├── BudgetExhaustedError       402  the session's budget is spent
 * │   ├── NotFoundError              404  unknown session or task (or another project's)
 * │   ├── ConflictError              409  the task's state does not allow this
 * │   ├── PayloadTooLargeError       413  body or input too large
 * │   ├── UnprocessableEntityError   422  a field is wrong; `field` names it
 * │   ├── RateLimitError             429  a session limit is reached; see `retryAfter`
 * │   └── ServerError                5xx  (503 `store_unavailable`: the database is unreachable)
 * ├── APIConnectionError             no answer: refused, reset, DNS, TLS...
 * │   └── APITimeoutError            no answer in time
 * └── APIUserAbortError              the call's `AbortSignal` fired
 * ```
 *
 * Any other error status throws `APIError` itself. Switch on `code`, which is stable, never on
 * the human-readable `detail`.
 *
 * @module
 */

/** The body of an error answer: an RFC 9457 problem, with Theazo's stable `code`. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  field?: string | null;
  errors?: Array<Record<string, string>> | null;
  [key: string]: unknown;
}

/** Base class of every error the SDK throws on purpose. */
export class TheazoError extends Error {
  override name = 'TheazoError';
}

/** The server answered with an error status. */
export class APIError extends TheazoError {
  override name = 'APIError';
  /** The HTTP status, e.g. `422`. */
  readonly status: number;
  /**
   * The problem's stable, machine-readable code, e.g. `'unknown_agent'`; `'http_error'` when
   * the body was not a problem (a proxy's HTML page, say).
   */
  readonly code: string;
  /** The problem's title, e.g. `'Unprocessable Entity'`. */
  readonly title: string;
  /** What went wrong, for humans. */
  readonly detail: string;
  /** The request field at fault, if the server named one (`'agent'`, `'tasks[3].priority'`). */
  readonly field: string | null;
  /** The whole problem document as received (empty if the body was not JSON). */
  readonly problem: Problem;
  /** The answer's headers. */
  readonly headers: Headers;

  constructor(
    status: number,
    code: string,
    detail: string,
    options: { title?: string; field?: string | null; problem?: Problem; headers?: Headers } = {},
  ) {
    super(`${status} ${code}: ${detail}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.title = options.title ?? '';
    this.field = options.field ?? null;
    this.problem = options.problem ?? {};
    this.headers = options.headers ?? new Headers();
  }
}

/** 400: the request could not be read (malformed JSON, or an input nested too deep to parse). */
export class BadRequestError extends APIError {
  override name = 'BadRequestError';
}

/** 401: no API key was sent, or the server does not know it. */
export class AuthenticationError extends APIError {
  override name = 'AuthenticationError';
}

/** 402: the session's budget is spent; raise it with `session.updateLimits({ budget })`. */
export class BudgetExhaustedError extends APIError {
  override name = 'BudgetExhaustedError';
}

/** 404: no such session or task in the caller's project. */
export class NotFoundError extends APIError {
  override name = 'NotFoundError';
}

/** 409: the task's state does not allow this, e.g. cancelling a completed task. */
export class ConflictError extends APIError {
  override name = 'ConflictError';
}

/** 413: the request body, or the task's input, is too large. */
export class PayloadTooLargeError extends APIError {
  override name = 'PayloadTooLargeError';
}

/** 422: a field is wrong (unknown agent, bad priority, bad duration...); see `field`. */
export class UnprocessableEntityError extends APIError {
  override name = 'UnprocessableEntityError';
}

/** 429: a session limit is reached (`session_queue_full`). */
export class RateLimitError extends APIError {
  override name = 'RateLimitError';
  /** Seconds the server suggests waiting before trying again (`Retry-After`), if it said. */
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: string,
    detail: string,
    options: ConstructorParameters<typeof APIError>[3] & { retryAfter?: number | null } = {},
  ) {
    super(status, code, detail, options);
    this.retryAfter = options.retryAfter ?? null;
  }
}

/** 5xx: the server failed; the SDK already retried it `maxRetries` times. */
export class ServerError extends APIError {
  override name = 'ServerError';
}

/** No answer came: the connection was refused or reset, a name did not resolve, TLS failed. */
export class APIConnectionError extends TheazoError {
  override name = 'APIConnectionError';
  /** `'POST http://…/v1/sessions/…/tasks'`: the request that got no answer. */
  readonly request: string;

  constructor(message: string, options: { request: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.request = options.request;
  }
}

/** No answer came within the call's `timeout`. */
export class APITimeoutError extends APIConnectionError {
  override name = 'APITimeoutError';
}

/** The call's `AbortSignal` fired; `cause` is the signal's reason. */
export class APIUserAbortError extends TheazoError {
  override name = 'APIUserAbortError';
}

const BY_STATUS: Record<number, typeof APIError> = {
  400: BadRequestError,
  401: AuthenticationError,
  402: BudgetExhaustedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  422: UnprocessableEntityError,
  429: RateLimitError,
};

/** The error class for an error status: a subclass if one fits, else `APIError`. */
export function errorClass(status: number): typeof APIError {
  if (status >= 500) return ServerError;
  return BY_STATUS[status] ?? APIError;
}
