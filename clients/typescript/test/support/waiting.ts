/** Waiting in tests: on a condition, with a deadline, never a bare sleep. */
import { setTimeout as delay } from 'node:timers/promises';

export async function eventually<T>(
  check: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  { timeoutMs = 10_000, intervalMs = 20, what = 'a condition' } = {},
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(intervalMs);
  }
}
