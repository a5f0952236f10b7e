/**
 * What the SDK needs to know of the JavaScript runtime it runs in, without depending on Node's
 * types: environment variables where `process.env` exists, whether this is a browser, random ids.
 *
 * @module
 */

interface MaybeProcess {
  process?: { env?: Record<string, string | undefined> };
  window?: { document?: unknown };
}

/** An environment variable, where the runtime has `process.env` (Node, Bun, Deno's compat). */
export function readEnv(name: string): string | undefined {
  const value = (globalThis as MaybeProcess).process?.env?.[name];
  return value === undefined || value === '' ? undefined : value.trim();
}

/** True in a web page (a window with a document), where a secret key would be exposed. */
export function isBrowser(): boolean {
  const { window } = globalThis as MaybeProcess;
  return typeof window === 'object' && window !== null && typeof window.document === 'object';
}

/** A random UUID (v4), for idempotency keys; `crypto.randomUUID` where the runtime has it. */
export function randomId(): string {
  const webCrypto = globalThis.crypto;
  if (typeof webCrypto?.randomUUID === 'function') return webCrypto.randomUUID();
  // Pages served over plain http have getRandomValues but not randomUUID.
  const bytes = webCrypto.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
