/** What needs no server: durations, Retry-After, back-off, configuration, the browser guard. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Theazo, TheazoError, VERSION } from 'theazo';
import { holdSeconds, toMilliseconds, wireDuration } from '../src/core/durations.js';
import { parseRetryAfter, retryDelayMs } from '../src/core/retries.js';
import { randomId } from '../src/core/runtime.js';
import { SSEParser, lines } from '../src/core/sse.js';
import { toEvent } from '../src/events.js';
import { PACKAGE_ROOT } from './support/paths.js';

const KEY = `th_test_${'k'.repeat(43)}`;

describe('durations', () => {
  test("the page's forms and milliseconds", () => {
    assert.equal(toMilliseconds('1500ms'), 1500);
    assert.equal(toMilliseconds('30s'), 30_000);
    assert.equal(toMilliseconds('5m'), 300_000);
    assert.equal(toMilliseconds('1h'), 3_600_000);
    assert.equal(toMilliseconds('2.5s'), 2500);
    assert.equal(toMilliseconds(' .5s ' as never), 500);
    assert.equal(toMilliseconds(1500), 1500);
    assert.equal(toMilliseconds(0), 0);
  });

  test('anything else is a TypeError that says what a duration is', () => {
    for (const bad of [
      '30',
      '5 minutes',
      '1d',
      '',
      '-1s',
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      null,
      {},
    ]) {
      assert.throws(() => toMilliseconds(bad as never), /duration/, String(bad));
    }
  });

  test('as the server reads them', () => {
    assert.equal(wireDuration(1500, 'timeout'), '1500ms');
    assert.equal(wireDuration(0.25, 'timeout'), '0.25ms');
    assert.equal(wireDuration('5m', 'timeout'), '300000ms');
    assert.equal(holdSeconds(12_500), '12.5');
    assert.equal(holdSeconds(60_000), '60');
    assert.equal(holdSeconds(1), '0.001');
    assert.equal(holdSeconds(-5), '0');
  });
});

describe('retries', () => {
  test('Retry-After in seconds or as an HTTP date', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    assert.equal(parseRetryAfter('1', now), 1);
    assert.equal(parseRetryAfter(' 2.5 ', now), 2.5);
    assert.equal(parseRetryAfter('Tue, 01 Dec 2026 10:00:10 GMT', now), 10);
    assert.equal(parseRetryAfter('Tue, 01 Dec 2026 09:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), null);
    assert.equal(parseRetryAfter(null, now), null);
  });

  test('the pause: Retry-After when sensible, else exponential back-off with jitter', () => {
    assert.equal(retryDelayMs(0, 1), 1000);
    assert.equal(retryDelayMs(4, 0), 0);
    for (let i = 0; i < 50; i++) {
      const first = retryDelayMs(0, null);
      assert.ok(first > 375 && first <= 500, String(first));
      const fourth = retryDelayMs(3, 3600); // an hour is not honoured
      assert.ok(fourth > 3000 && fourth <= 4000, String(fourth));
      assert.ok(retryDelayMs(20, null) <= 8000);
    }
  });

  test('idempotency keys are random UUIDs', () => {
    const keys = new Set(Array.from({ length: 100 }, randomId));
    assert.equal(keys.size, 100);
    for (const key of keys)
      assert.match(key, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('configuration', () => {
  function withEnv(env: Record<string, string | undefined>, body: () => void): void {
    const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
    const set = (values: Record<string, string | undefined>): void => {
      for (const [name, value] of Object.entries(values)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    };
    set(env);
    try {
      body();
    } finally {
      set(saved);
    }
  }

  test('THEAZO_API_KEY and THEAZO_BASE_URL are the defaults; what is given wins', () => {
    withEnv({ THEAZO_API_KEY: KEY, THEAZO_BASE_URL: 'http://example.test:9/' }, () => {
      assert.equal(new Theazo().baseURL, 'http://example.test:9');
      assert.equal(new Theazo({ baseURL: 'https://theazo.internal' }).baseURL, 'https://theazo.internal');
    });
    withEnv({ THEAZO_API_KEY: undefined, THEAZO_BASE_URL: undefined }, () => {
      assert.throws(() => new Theazo(), /no API key/);
      assert.equal(new Theazo({ apiKey: KEY }).baseURL, 'http://127.0.0.1:8321');
    });
  });

  test('bad options are refused at once', () => {
    assert.throws(() => new Theazo({ apiKey: KEY, maxRetries: -1 }), TheazoError);
    assert.throws(() => new Theazo({ apiKey: KEY, timeout: '30' as never }), TypeError);
    assert.throws(() => new Theazo({ apiKey: KEY, baseURL: 'localhost:8321' }), /must start with http/);
  });

  test('the key never shows in logs', () => {
    const theazo = new Theazo({ apiKey: KEY });
    assert.ok(!JSON.stringify(theazo).includes(KEY));
    assert.ok(!String(Object.values(theazo)).includes(KEY));
  });

  test('in a web page, only with dangerouslyAllowBrowser', () => {
    const global = globalThis as { window?: unknown };
    global.window = { document: {} };
    try {
      assert.throws(() => new Theazo({ apiKey: KEY }), /web page/);
      assert.ok(new Theazo({ apiKey: KEY, dangerouslyAllowBrowser: true }));
    } finally {
      delete global.window;
    }
  });

  test('the build imports nothing but its own modules: no Node built-in, no package', () => {
    const imports = new Set<string>();
    for (const format of ['esm', 'cjs']) {
      const folder = join(PACKAGE_ROOT, 'dist', format);
      for (const file of readdirSync(folder, { recursive: true, encoding: 'utf8' })) {
        if (!file.endsWith('.js')) continue;
        const code = readFileSync(join(folder, file), 'utf8');
        for (const match of code.matchAll(
          /^(?:import|export) [^;]*? from '([^']+)'|\brequire\("([^"]+)"\)/gm,
        )) {
          imports.add(match[1] ?? match[2] ?? '');
        }
      }
    }
    assert.ok(imports.size > 10);
    assert.deepEqual(
      [...imports].filter((name) => !name.startsWith('.')),
      [],
    );
  });

  test('VERSION is the package version', () => {
    const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(VERSION, manifest.version);
  });
});

describe('server-sent events', () => {
  function body(...chunks: string[]): ReadableStream<Uint8Array> {
    const encoder = new TextEncoder();
    return new ReadableStream({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
        controller.close();
      },
    });
  }

  async function all(stream: ReadableStream<Uint8Array>): Promise<string[]> {
    const found: string[] = [];
    for await (const line of lines(stream, () => undefined)) found.push(line);
    return found;
  }

  test('lines end at LF, CR LF or CR, also when a chunk splits them', async () => {
    assert.deepEqual(await all(body('a\nb\r\nc\rd')), ['a', 'b', 'c', 'd']);
    assert.deepEqual(await all(body('a\r', '\nb\r', 'c\n\n')), ['a', 'b', 'c', '']);
    assert.deepEqual(await all(body('é'.slice(0, 1), 'x\n')), ['éx']);
    const bytes = new TextEncoder().encode('é\n');
    const split = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 1)); // half a character
        controller.enqueue(bytes.slice(1));
        controller.close();
      },
    });
    assert.deepEqual(await all(split), ['é']);
  });

  test('fields make events; comments, retry and unknown fields do not', () => {
    const parser = new SSEParser();
    const fed = [
      'retry: 1000',
      '',
      ': keep-alive',
      '',
      'id: 7',
      'event: progress',
      'data: {"a":',
      'data: 1}',
      'x: y',
      '',
    ].map((line) => parser.feed(line));
    assert.deepEqual(fed.filter(Boolean), [{ id: '7', event: 'progress', data: '{"a":\n1}' }]);
    assert.equal(parser.retryMs, 1000);
    assert.deepEqual(['data:x', ''].map((line) => parser.feed(line))[1], {
      id: null,
      event: 'message',
      data: 'x',
    });
  });

  test('typed events: status and end carry the task, others their fields, unknown names none', () => {
    const task = { taskId: 'task_1', status: 'completed' };
    assert.deepEqual(toEvent({ id: '0', event: 'status', data: JSON.stringify(task) }), {
      event: 'status',
      id: 0,
      taskId: 'task_1',
      task,
      data: task,
    });
    assert.deepEqual(toEvent({ id: '9', event: 'end', data: JSON.stringify(task) })?.event, 'end');
    assert.deepEqual(
      toEvent({ id: '3', event: 'progress', data: '{"taskId":"task_1","progress":0.5,"message":"half"}' }),
      {
        event: 'progress',
        id: 3,
        taskId: 'task_1',
        progress: 0.5,
        message: 'half',
        data: { taskId: 'task_1', progress: 0.5, message: 'half' },
      },
    );
    assert.equal(toEvent({ id: '4', event: 'snapshot', data: '{}' }), null);
    assert.throws(() => toEvent({ id: '5', event: 'log', data: 'not json' }), /a log event that is not JSON/);
  });
});
