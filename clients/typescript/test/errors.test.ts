/** Each error class, from a real error answer (of the server, or of a real proxy in front of it). */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  BudgetExhaustedError,
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
  ServerError,
  Theazo,
  TheazoError,
  UnprocessableEntityError,
  type Session,
} from 'theazo';
import { FaultProxy } from './support/proxy.js';
import { TheazoServer, freePort } from './support/server.js';
import { eventually } from './support/waiting.js';

let server: TheazoServer;
let theazo: Theazo;

before(async () => {
  server = await TheazoServer.start();
  theazo = new Theazo({ apiKey: server.apiKey, baseURL: server.baseURL, maxRetries: 0 });
});

after(async () => {
  await server?.stop();
});

function newSession(client: Theazo = theazo): Promise<Session> {
  return client.sessions.forUser(`user_${randomUUID()}`);
}

/** Assert `call` rejects with an `cls` error of this status and code; answer it. */
async function rejectsWith<E extends APIError>(
  call: Promise<unknown>,
  cls: new (...args: never[]) => E,
  status: number,
  code: string,
): Promise<E> {
  const error = await call.then(
    () => assert.fail(`expected a ${cls.name}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof cls, `${String(error)} is a ${cls.name}`);
  assert.ok(error instanceof APIError && error instanceof TheazoError && error instanceof Error);
  assert.equal(error.name, cls.name);
  assert.equal(error.status, status);
  assert.equal(error.code, code);
  assert.equal(error.problem.code, code, 'the whole problem is kept');
  assert.equal(error.problem.status, status);
  assert.ok(error.detail.length > 0);
  assert.equal(error.message, `${status} ${code}: ${error.detail}`);
  return error;
}

describe('from the server', () => {
  test('400 BadRequestError: an input nested too deep to parse', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 2000; i++) deep = [deep];
    const session = await newSession();
    await rejectsWith(
      session.tasks.submit({ agent: 'echo', input: deep }),
      BadRequestError,
      400,
      'malformed_json',
    );
  });

  test('401 AuthenticationError: an unknown key', async () => {
    const stranger = new Theazo({ apiKey: `th_test_${'x'.repeat(43)}`, baseURL: server.baseURL });
    const error = await rejectsWith(
      stranger.sessions.forUser('user_1'),
      AuthenticationError,
      401,
      'unauthorized',
    );
    assert.match(error.headers.get('www-authenticate') ?? '', /^Bearer/);
  });

  test('402 BudgetExhaustedError: a submit once the budget is spent', async () => {
    const session = await newSession();
    await session.updateLimits({ budget: 0 });
    await rejectsWith(
      session.tasks.submit({ agent: 'echo', input: 1 }),
      BudgetExhaustedError,
      402,
      'budget_exhausted',
    );
  });

  test('404 NotFoundError: an unknown task, an unknown session', async () => {
    const session = await newSession();
    await rejectsWith(session.tasks.get('task_nope'), NotFoundError, 404, 'task_not_found');
    await rejectsWith(
      session.tasks.wait('task_nope', { timeout: '1s' }),
      NotFoundError,
      404,
      'task_not_found',
    );
    await rejectsWith(theazo.sessions.get('sess_nope'), NotFoundError, 404, 'session_not_found');
  });

  test('409 ConflictError: cancelling a completed task, redelivering without a webhook', async () => {
    const session = await newSession();
    const task = await session.run({ agent: 'echo', input: 1 });
    assert.equal(task.status, 'completed');
    await rejectsWith(session.tasks.cancel(task.taskId), ConflictError, 409, 'task_not_cancellable');
    await rejectsWith(session.tasks.redeliver(task.taskId), ConflictError, 409, 'no_webhook');
  });

  test('413 PayloadTooLargeError: an input over 1 MiB', async () => {
    const session = await newSession();
    const input = 'x'.repeat(1024 * 1024 + 1);
    const error = await session.tasks.submit({ agent: 'echo', input }).catch((e: unknown) => e);
    assert.ok(error instanceof PayloadTooLargeError, String(error));
    assert.equal(error.status, 413);
    assert.equal(error.code, 'payload_too_large');
  });

  test('422 UnprocessableEntityError names the field: an unknown agent, alone or in a batch', async () => {
    const session = await newSession();
    const error = await rejectsWith(
      session.tasks.submit({ agent: 'nobody', input: 1 }),
      UnprocessableEntityError,
      422,
      'unknown_agent',
    );
    assert.equal(error.field, 'agent');
    const inBatch = await rejectsWith(
      session.tasks.submitBatch([
        { agent: 'echo', input: 1 },
        { agent: 'nobody', input: 2 },
      ]),
      UnprocessableEntityError,
      422,
      'unknown_agent',
    );
    assert.equal(inBatch.field, 'tasks[1].agent');
    assert.equal((await session.tasks.list()).length, 0, 'a batch is all or nothing');
  });

  test('429 RateLimitError: the session queue is full; retryAfter from the header', async () => {
    const session = await newSession();
    await session.updateLimits({ maxRunning: 0, maxQueued: 1 });
    await session.tasks.submit({ agent: 'echo', input: 1 });
    const error = await rejectsWith(
      session.tasks.submit({ agent: 'echo', input: 2 }),
      RateLimitError,
      429,
      'session_queue_full',
    );
    assert.equal(error.retryAfter, 1);
  });
});

describe('from a proxy in front of the server', () => {
  let proxy: FaultProxy;

  before(async () => {
    proxy = await FaultProxy.start(server.baseURL);
  });

  after(async () => {
    await proxy?.stop();
  });

  function viaProxy(options: { timeout?: number } = {}): Theazo {
    return new Theazo({ apiKey: server.apiKey, baseURL: proxy.baseURL, maxRetries: 0, ...options });
  }

  test('5xx ServerError: a 503 problem, and a proxy HTML page', async () => {
    const problem = {
      type: 'https://theazo.dev/problems/store_unavailable',
      title: 'Service Unavailable',
      status: 503,
      detail: 'the database is unreachable',
      code: 'store_unavailable',
    };
    proxy.rule = () => ({
      kind: 'answer',
      status: 503,
      headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
      body: JSON.stringify(problem),
    });
    await rejectsWith(viaProxy().sessions.forUser('user_1'), ServerError, 503, 'store_unavailable');

    proxy.rule = () => ({ kind: 'answer', status: 502, body: '<html><body>Bad Gateway</body></html>' });
    const error = await viaProxy()
      .sessions.forUser('user_1')
      .catch((e: unknown) => e);
    assert.ok(error instanceof ServerError);
    assert.equal(error.status, 502);
    assert.equal(error.code, 'http_error');
    assert.equal(error.detail, '<html><body>Bad Gateway</body></html>');
    assert.deepEqual(error.problem, {});
    proxy.rule = () => ({ kind: 'forward' });
  });

  test('APIUserAbortError: the signal aborts a wait while the server holds it', async () => {
    const session = await newSession(viaProxy());
    const task = await session.tasks.submit({ agent: 'sleeper', input: { seconds: 30 } });
    const controller = new AbortController();
    const waiting = session.tasks.wait(task.taskId, { signal: controller.signal });
    await eventually(() => proxy.seen.some((r) => r.url.includes(`/${task.taskId}/wait`)), {
      what: 'the wait sent',
    });
    controller.abort(new Error('the user left'));
    const error = await waiting.catch((e: unknown) => e);
    assert.ok(error instanceof APIUserAbortError, String(error));
    assert.equal((error.cause as Error).message, 'the user left');
    await session.tasks.cancel(task.taskId);
  });

  test('APITimeoutError: no answer within the timeout', async () => {
    proxy.rule = () => ({ kind: 'hang' });
    const error = await viaProxy({ timeout: 300 })
      .sessions.forUser('user_1')
      .catch((e: unknown) => e);
    assert.ok(error instanceof APITimeoutError && error instanceof APIConnectionError, String(error));
    assert.match(error.request, /^POST http:\/\/127\.0\.0\.1:\d+\/v1\/sessions$/);
    proxy.rule = () => ({ kind: 'forward' });
  });

  test('a call’s own timeout overrides the client’s', async () => {
    proxy.rule = () => ({ kind: 'hang' });
    const error = await viaProxy({ timeout: 60_000 })
      .sessions.forUser('user_1', { timeout: '200ms' })
      .catch((e: unknown) => e);
    assert.ok(error instanceof APITimeoutError, String(error));
    proxy.rule = () => ({ kind: 'forward' });
  });
});

describe('without an answer', () => {
  test('APIConnectionError: nothing listens', async () => {
    const port = await freePort();
    const client = new Theazo({ apiKey: server.apiKey, baseURL: `http://127.0.0.1:${port}`, maxRetries: 0 });
    const error = await client.sessions.forUser('user_1').catch((e: unknown) => e);
    assert.ok(error instanceof APIConnectionError && !(error instanceof APITimeoutError), String(error));
    assert.match(error.message, /^no answer to POST http:\/\/127\.0\.0\.1:\d+\/v1\/sessions: /);
  });

  test('APIUserAbortError: an aborted signal sends nothing', async () => {
    const session = await newSession();
    const error = await session.tasks
      .submit({ agent: 'echo', input: 1 }, { signal: AbortSignal.abort() })
      .catch((e: unknown) => e);
    assert.ok(error instanceof APIUserAbortError, String(error));
    assert.equal((await session.tasks.list()).length, 0);
  });

  test('TheazoError: no key at all', () => {
    const saved = process.env.THEAZO_API_KEY;
    delete process.env.THEAZO_API_KEY;
    try {
      assert.throws(() => new Theazo({ baseURL: server.baseURL }), TheazoError);
      assert.throws(() => new Theazo({ apiKey: 'k', baseURL: 'ftp://x' }), /must start with http/);
    } finally {
      if (saved !== undefined) process.env.THEAZO_API_KEY = saved;
    }
  });
});
