/**
 * Durations as the product page writes them: `'1500ms'`, `'30s'`, `'5m'`, `'1h'`, or a number
 * of milliseconds (the JavaScript convention, as `setTimeout` takes).
 *
 * @module
 */

/** `'1500ms'`, `'30s'`, `'5m'`, `'1h'` (decimals allowed: `'2.5s'`). */
export type DurationString = `${number}${'ms' | 's' | 'm' | 'h'}`;

/** A duration: a {@link DurationString} or a number of milliseconds. */
export type Duration = DurationString | number;

const PATTERN = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)\s*$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/**
 * The duration in milliseconds.
 *
 * @throws TypeError - not a duration: a string without its unit (`'30'`), a negative number...
 */
export function toMilliseconds(value: Duration, what = 'a duration'): number {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else {
    const match = typeof value === 'string' ? PATTERN.exec(value) : null;
    if (match === null) {
      throw new TypeError(
        `${what}: ${JSON.stringify(value)} is not a duration: use e.g. '1500ms', '30s', '5m', ` +
          "'1h', or a number of milliseconds",
      );
    }
    ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  }
  if (!Number.isFinite(ms) || ms < 0) {
    throw new TypeError(`${what}: a duration is a finite number of milliseconds, not negative`);
  }
  return ms;
}

/** A duration as the server reads it, to the microsecond: `1500` → `'1500ms'`. */
export function wireDuration(value: Duration, what: string): string {
  const ms = toMilliseconds(value, what);
  return `${trimmed(ms, 3)}ms`;
}

/** Seconds for a `wait` hold or a `Prefer: wait`, to the millisecond: `12500` → `'12.5'`. */
export function holdSeconds(ms: number): string {
  return trimmed(Math.max(ms, 0) / 1000, 3);
}

function trimmed(value: number, decimals: number): string {
  const text = value.toFixed(decimals);
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}
