/**
 * What belongs to the project rather than to one session: the agents it can run, and the
 * secret that signs its webhooks.
 *
 * @module
 */
import type { Transport } from '../core/transport.js';
import type { Agent, RequestOptions, WebhookSecret } from '../types.js';

/** The agents the deployment can run. */
export class Agents {
  readonly #transport: Transport;

  /** @internal Reached as `theazo.agents`. */
  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** The agents, by name: each one's name, description and input schema (or `null`). */
  async list(options?: RequestOptions): Promise<Agent[]> {
    const answer = await this.#transport.call<{ data: Agent[] }>(
      { method: 'GET', path: ['agents'] },
      options,
    );
    return answer.data.data;
  }
}

/** The project's webhook signing secret (Standard Webhooks `whsec_…`). */
export class Webhooks {
  readonly #transport: Transport;

  /** @internal Reached as `theazo.webhooks`. */
  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** The secret that signs the project's webhooks (made on first use), and any still signing. */
  async secret(options?: RequestOptions): Promise<WebhookSecret> {
    return (await this.#transport.call<WebhookSecret>({ method: 'GET', path: ['webhook-secret'] }, options))
      .data;
  }

  /**
   * Make a new secret; the old one keeps signing too until its window ends (it is then under
   * `previous`). Never retried: a retry after a lost answer would rotate twice.
   */
  async rotate(options?: RequestOptions): Promise<WebhookSecret> {
    const spec = { method: 'POST', path: ['webhook-secret', 'rotate'], retry: false } as const;
    return (await this.#transport.call<WebhookSecret>(spec, options)).data;
  }
}
