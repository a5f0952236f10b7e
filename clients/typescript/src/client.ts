/**
 * `Theazo`, the client, and what hangs off it: sessions, their tasks, the agents, the webhook
 * secret. Every request goes through one {@link Transport}.
 *
 * @module
 */
import { toMilliseconds, type Duration } from './core/durations.js';
import { readEnv, isBrowser } from './core/runtime.js';
import { Transport, type Fetch } from './core/transport.js';
import { TheazoError } from './errors.js';
import { Sessions } from './resources/sessions.js';
import { Agents, Webhooks } from './resources/project.js';
import { VERSION } from './version.js';

export const API_KEY_ENV = 'THEAZO_API_KEY';
export const BASE_URL_ENV = 'THEAZO_BASE_URL';
/** Where `theazo serve` listens when given no options. */
export const DEFAULT_BASE_URL = 'http://127.0.0.1:8321';
/** Every call but a long poll answers far within this; a long poll's outlasts its hold. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Connection errors, time-outs, 408, 429 and 5xx are retried this often by default. */
export const DEFAULT_MAX_RETRIES = 2;

/** What `new Theazo()` takes; each has a default. */
export interface ClientOptions {
  /** A `th_live_…` or `th_test_…` key; defaults to `THEAZO_API_KEY` where `process.env` exists. */
  apiKey?: string | undefined;
  /** Where the server is; defaults to `THEAZO_BASE_URL`, else `http://127.0.0.1:8321`. */
  baseURL?: string | undefined;
  /** Time allowed for each request (`'30s'`, or milliseconds); long polls extend theirs. */
  timeout?: Duration | undefined;
  /** How often a failed request is retried (connection errors, 408, 429, 5xx); default 2. */
  maxRetries?: number | undefined;
  /** The `fetch` to send with; defaults to the platform's `globalThis.fetch`. */
  fetch?: Fetch | undefined;
  /** Headers sent with every request. */
  defaultHeaders?: Readonly<Record<string, string>> | undefined;
  /**
   * Allow the client in a web page. Off by default: a page hands its code, and so the API key,
   * to whoever opens it. Only turn it on for a key that may be public, such as a page on your
   * own machine in development.
   */
  dangerouslyAllowBrowser?: boolean | undefined;
}

/**
 * The client of a Theazo server.
 *
 * ```ts
 * const theazo = new Theazo({ apiKey: 'th_live_...' }) // or THEAZO_API_KEY / THEAZO_BASE_URL
 * const session = await theazo.sessions.forUser('user_123')
 * const task = await session.run({ agent: 'researcher', input: { query: '...' } })
 * ```
 *
 * @throws TheazoError - no API key was given or found in `THEAZO_API_KEY`, the base URL is not
 *   http(s), or this is a web page and `dangerouslyAllowBrowser` is not set.
 */
export class Theazo {
  /** The sessions of the project: one per end user of the application. */
  readonly sessions: Sessions;
  /** The agents the deployment can run. */
  readonly agents: Agents;
  /** The project's webhook signing secret. */
  readonly webhooks: Webhooks;
  /** Where the API is, without a trailing slash. */
  readonly baseURL: string;

  constructor(options: ClientOptions = {}) {
    if (isBrowser() && !options.dangerouslyAllowBrowser) {
      throw new TheazoError(
        'Theazo is running in a web page, which would hand the API key to every visitor. ' +
          'Call Theazo from your back end; pass dangerouslyAllowBrowser: true only for a key ' +
          'that may be public.',
      );
    }
    const apiKey = options.apiKey || readEnv(API_KEY_ENV);
    if (!apiKey) {
      throw new TheazoError(
        `no API key: pass new Theazo({ apiKey: 'th_live_…' }) or set ${API_KEY_ENV} ` +
          '(`theazo keys create` makes one)',
      );
    }
    this.baseURL = resolveBaseURL(options.baseURL);
    const fetch = options.fetch ?? platformFetch();
    const headers: Record<string, string> = {
      ...options.defaultHeaders,
      Authorization: `Bearer ${apiKey}`,
      Accept: 'application/json',
    };
    if (!isBrowser()) headers['User-Agent'] = `theazo-typescript/${VERSION}`;
    const transport = new Transport({
      baseURL: this.baseURL,
      timeoutMs: toMilliseconds(options.timeout ?? DEFAULT_TIMEOUT_MS, 'timeout'),
      maxRetries: retries(options.maxRetries),
      fetch,
      headers,
    });
    this.sessions = new Sessions(transport);
    this.agents = new Agents(transport);
    this.webhooks = new Webhooks(transport);
  }

  /** How the client shows in logs: never with its key. */
  toJSON(): { baseURL: string } {
    return { baseURL: this.baseURL };
  }
}

function resolveBaseURL(given: string | undefined): string {
  const url = (given || readEnv(BASE_URL_ENV) || DEFAULT_BASE_URL).replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(url)) {
    throw new TheazoError(`base URL ${JSON.stringify(url)} must start with http:// or https://`);
  }
  return url;
}

function retries(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_RETRIES;
  if (!Number.isInteger(value) || value < 0) {
    throw new TheazoError(`maxRetries must be a whole number, 0 or more, not ${value}`);
  }
  return value;
}

function platformFetch(): Fetch {
  if (typeof globalThis.fetch !== 'function') {
    throw new TheazoError('this runtime has no fetch: pass new Theazo({ fetch })');
  }
  // Called unbound, some platforms' fetch throws "Illegal invocation".
  return (input, init) => globalThis.fetch(input, init);
}
