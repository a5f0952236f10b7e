/**
 * The event-stream format (HTML Living Standard, "server-sent events"): a body read as lines,
 * and lines made into events.
 *
 * @module
 */

/** One event as the stream sent it: its `id:` (if any), `event:` name and `data:`. */
export interface RawEvent {
  id: string | null;
  event: string;
  data: string;
}

/** Reads the fields of an event stream one line at a time. */
export class SSEParser {
  /** The server's `retry:`: how many milliseconds to wait before reconnecting. */
  retryMs: number | null = null;
  #data: string[] = [];
  #event = '';
  #id: string | null = null;

  /** The event this line completes (a blank line ends one), else `null`. */
  feed(line: string): RawEvent | null {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return null; // a comment: the server's keep-alive
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') this.#data.push(value);
    else if (name === 'event') this.#event = value;
    else if (name === 'id' && !value.includes('\0')) this.#id = value;
    else if (name === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return null;
  }

  #dispatch(): RawEvent | null {
    const data = this.#data;
    const event = this.#event || 'message';
    this.#data = [];
    this.#event = '';
    if (data.length === 0) return null;
    const id = this.#id;
    this.#id = null;
    return { id, event, data: data.join('\n') };
  }
}

/**
 * The lines of a body, as they arrive (a line ends at CR LF, LF or CR). `onChunk` is called for
 * every chunk read, so that a caller can tell a live connection from a dead one.
 */
export async function* lines(body: ReadableStream<Uint8Array>, onChunk: () => void): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      onChunk();
      buffer += decoder.decode(value, { stream: true });
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const char = buffer[i];
        if (char !== '\n' && char !== '\r') continue;
        if (char === '\r' && i === buffer.length - 1) break; // is an LF next? wait for it
        yield buffer.slice(start, i);
        if (char === '\r' && buffer[i + 1] === '\n') i++;
        start = i + 1;
      }
      buffer = buffer.slice(start);
    }
    buffer += decoder.decode();
    if (buffer.endsWith('\r')) buffer = buffer.slice(0, -1);
    if (buffer !== '') yield buffer;
  } finally {
    // Stopped early (the caller left the loop) or not: the connection is not read any more.
    await reader.cancel().catch(() => undefined);
  }
}
