/**
 * A small real HTTP proxy in front of a server, for the faults a network or a server can show:
 * an answer lost after the server acted on the request, a canned error answer, no answer at all.
 * Each request is recorded, with its headers, so tests can see what the SDK sent.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** When the proxy received it (`performance.now()`). */
  at: number;
  /** The status the server answered, once forwarded. */
  answered?: number;
}

/** What the proxy does with one request. */
export type Fault =
  | { kind: 'forward' }
  /** Forward it, let the server answer, then drop the connection before the answer reaches the client. */
  | { kind: 'drop-answer' }
  /** Answer this instead of forwarding. */
  | { kind: 'answer'; status: number; headers?: Record<string, string>; body?: string }
  /** Never answer. */
  | { kind: 'hang' }
  /** Pass an event stream through as it comes, and drop the connection after this many events
   * (`Infinity`: never). */
  | { kind: 'cut-stream'; afterEvents: number };

export type Rule = (request: Seen, index: number) => Fault;

export class FaultProxy {
  readonly seen: Seen[] = [];
  #server: Server;
  #rule: Rule;

  private constructor(
    readonly target: string,
    rule: Rule,
  ) {
    this.#rule = rule;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  static async start(target: string, rule: Rule = () => ({ kind: 'forward' })): Promise<FaultProxy> {
    const proxy = new FaultProxy(target, rule);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get baseURL(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Change what the proxy does from now on. */
  set rule(rule: Rule) {
    this.#rule = rule;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const seen: Seen = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      body: Buffer.concat(chunks).toString(),
      at: performance.now(),
    };
    this.seen.push(seen);
    const fault = this.#rule(seen, this.seen.length - 1);
    if (fault.kind === 'hang') return;
    if (fault.kind === 'answer') {
      res.writeHead(fault.status, fault.headers ?? {});
      res.end(fault.body ?? '');
      return;
    }
    if (fault.kind === 'cut-stream') {
      this.#stream(seen, req, res, fault.afterEvents);
      return;
    }
    const answer = await this.#forward(seen);
    seen.answered = answer.status;
    if (fault.kind === 'drop-answer') {
      req.socket.destroy();
      return;
    }
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  }

  #stream(seen: Seen, req: IncomingMessage, res: ServerResponse, afterEvents: number): void {
    const url = new URL(seen.url, this.target);
    const headers = { ...seen.headers, host: url.host };
    const outgoing = httpRequest(url, { method: seen.method, headers }, (answer) => {
      seen.answered = answer.statusCode ?? 502;
      res.writeHead(seen.answered, answer.headers);
      // Written one frame (up to a blank line) at a time, so the cut falls right after an event.
      let events = 0;
      let pending = '';
      answer.setEncoding('utf8');
      answer.on('data', (chunk: string) => {
        pending += chunk;
        let end: number;
        while (events < afterEvents && (end = pending.indexOf('\n\n')) !== -1) {
          const frame = pending.slice(0, end + 2);
          pending = pending.slice(end + 2);
          res.write(frame);
          if (/^id: /m.test(frame)) events += 1;
        }
        if (events >= afterEvents) {
          answer.destroy();
          req.socket.end(); // what was written arrives, then the connection closes mid-stream
        }
      });
      answer.on('end', () => res.end());
    });
    outgoing.on('error', () => req.socket.destroy());
    outgoing.end(seen.body);
  }

  #forward(
    seen: Seen,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const url = new URL(seen.url, this.target);
      const headers = { ...seen.headers, host: url.host };
      const outgoing = httpRequest(url, { method: seen.method, headers }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const forwarded: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(answer.headers)) {
            if (value !== undefined && name !== 'transfer-encoding' && name !== 'connection')
              forwarded[name] = value;
          }
          resolve({ status: answer.statusCode ?? 502, headers: forwarded, body: Buffer.concat(chunks) });
        });
        answer.on('error', reject);
      });
      outgoing.on('error', reject);
      outgoing.end(seen.body);
    });
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
