/**
 * When to retry a call and how long to pause first.
 *
 * @module
 */

/** Statuses that say nothing was done and asking again may work: time-out, limits, server. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** A `Retry-After` pause longer than this is not honoured; the back-off is used instead. */
export const MAX_RETRY_AFTER_MS = 60_000;
const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;

/** Seconds from a `Retry-After` header (seconds or an HTTP date); `null` if unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const moment = Date.parse(trimmed);
  return Number.isNaN(moment) ? null : Math.max((moment - now) / 1000, 0);
}

/**
 * The pause before retry number `retry` (0 for the first): the server's `Retry-After` when
 * it gave a sensible one, else exponential back-off with jitter (0.5 s, 1 s, 2 s... up to 8 s,
 * each up to a quarter shorter, so clients that failed together do not retry together).
 */
export function retryDelayMs(retry: number, retryAfterSeconds: number | null): number {
  if (retryAfterSeconds !== null) {
    const ms = retryAfterSeconds * 1000;
    if (ms >= 0 && ms <= MAX_RETRY_AFTER_MS) return ms;
  }
  const backoff = Math.min(INITIAL_BACKOFF_MS * 2 ** retry, MAX_BACKOFF_MS);
  return backoff * (1 - Math.random() * 0.25);
}

/** Resolve after `ms`, or reject as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
