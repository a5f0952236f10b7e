/**
 * Retries, through a real proxy that loses answers or answers errors in front of a real
 * server: a retried submit never makes two tasks, and Retry-After is honoured.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, test } from 'node:test';
import { RateLimitError, ServerError, Theazo, UnprocessableEntityError, APIConnectionError } from 'theazo';
import { FaultProxy, type Seen } from './support/proxy.js';
import { TheazoServer } from './support/server.js';
import { eventually } from './support/waiting.js';

let server: TheazoServer;
let proxy: FaultProxy;
let direct: Theazo;

before(async () => {
  server = await TheazoServer.start();
  proxy = await FaultProxy.start(server.baseURL);
  direct = new Theazo({ apiKey: server.apiKey, baseURL: server.baseURL });
});

beforeEach(() => {
  proxy.rule = () => ({ kind: 'forward' });
  proxy.seen.length = 0;
});

after(async () => {
  await proxy?.stop();
  await server?.stop();
});

function viaProxy(maxRetries?: number): Theazo {
  return new Theazo({ apiKey: server.apiKey, baseURL: proxy.baseURL, maxRetries });
}

const isSubmit = (r: Seen): boolean => r.method === 'POST' && /\/tasks$/.test(r.url);
const isBatch = (r: Seen): boolean => r.method === 'POST' && r.url.endsWith('/tasks/batch');
const unavailable = {
  kind: 'answer',
  status: 503,
  headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
  body: JSON.stringify({
    status: 503,
    code: 'store_unavailable',
    title: 'Service Unavailable',
    detail: 'down',
  }),
} as const;

test('a submit whose answer is lost is retried with the same Idempotency-Key: one task', async () => {
  const userId = `user_${randomUUID()}`;
  let dropped = false;
  proxy.rule = (r) =>
    isSubmit(r) && !dropped ? ((dropped = true), { kind: 'drop-answer' }) : { kind: 'forward' };
  const session = await viaProxy().sessions.forUser(userId);
  const task = await session.tasks.submit({ agent: 'echo', input: { once: true } });

  const submits = proxy.seen.filter(isSubmit);
  assert.equal(submits.length, 2, 'the lost answer made the SDK send it again');
  assert.equal(submits[0]?.answered, 202, 'the server had made the task the first time');
  const keys = submits.map((r) => r.headers['idempotency-key']);
  assert.ok(keys[0], 'the SDK sent a key it made');
  assert.equal(keys[1], keys[0]);
  const listed = await (await direct.sessions.forUser(userId)).tasks.list();
  assert.deepEqual(
    listed.map((t) => t.taskId),
    [task.taskId],
  );
});

test('without retries, the lost answer is an APIConnectionError, and the task was made', async () => {
  const userId = `user_${randomUUID()}`;
  proxy.rule = (r) => (isSubmit(r) ? { kind: 'drop-answer' } : { kind: 'forward' });
  const session = await viaProxy(0).sessions.forUser(userId);
  await assert.rejects(session.tasks.submit({ agent: 'echo', input: 1 }), APIConnectionError);
  assert.equal((await (await direct.sessions.forUser(userId)).tasks.list()).length, 1);
});

test('a batch whose answer is lost is retried: each task made once', async () => {
  const userId = `user_${randomUUID()}`;
  let dropped = false;
  proxy.rule = (r) =>
    isBatch(r) && !dropped ? ((dropped = true), { kind: 'drop-answer' }) : { kind: 'forward' };
  const session = await viaProxy().sessions.forUser(userId);
  const tasks = await session.tasks.submitBatch([1, 2, 3].map((input) => ({ agent: 'echo', input })));
  assert.equal(proxy.seen.filter(isBatch).length, 2);
  const listed = await (await direct.sessions.forUser(userId)).tasks.list();
  assert.deepEqual(new Set(listed.map((t) => t.taskId)), new Set(tasks.map((t) => t.taskId)));
  assert.equal(listed.length, 3);
});

test('a 503 with Retry-After is retried after the pause it asks for', async () => {
  let answered = false;
  proxy.rule = () => (answered ? { kind: 'forward' } : ((answered = true), unavailable));
  const session = await viaProxy().sessions.forUser(`user_${randomUUID()}`);
  assert.match(session.sessionId, /^sess_/);
  const [first, second] = proxy.seen;
  assert.equal(proxy.seen.length, 2);
  assert.ok(
    second && first && second.at - first.at >= 950,
    `Retry-After: 1 was honoured (${second!.at - first!.at} ms)`,
  );
});

test('a 429 is retried: the submit goes through once the queue has room', async () => {
  const session = await viaProxy().sessions.forUser(`user_${randomUUID()}`);
  await session.updateLimits({ maxRunning: 0, maxQueued: 1 });
  const first = await session.tasks.submit({ agent: 'echo', input: 1 });
  const second = session.tasks.submit({ agent: 'echo', input: 2 });
  await eventually(() => proxy.seen.some((r) => isSubmit(r) && r.answered === 429), { what: 'a 429' });
  await direct.sessions.get(session.sessionId).then((s) => s.tasks.cancel(first.taskId));
  const task = await second;
  assert.equal(task.status, 'queued');
  const keys = new Set(
    proxy.seen
      .filter((r) => isSubmit(r) && r.body.includes('"input":2'))
      .map((r) => r.headers['idempotency-key']),
  );
  assert.equal(keys.size, 1);
});

test('retries run out: the last error is thrown, after maxRetries + 1 requests', async () => {
  proxy.rule = () => ({ ...unavailable, headers: { ...unavailable.headers, 'retry-after': '0' } });
  const error = await viaProxy()
    .sessions.forUser('user_1')
    .catch((e: unknown) => e);
  assert.ok(error instanceof ServerError);
  assert.equal(error.code, 'store_unavailable');
  assert.equal(proxy.seen.length, 3, 'the default is 2 retries');

  proxy.seen.length = 0;
  await assert.rejects(viaProxy(0).sessions.forUser('user_1'), ServerError);
  assert.equal(proxy.seen.length, 1);

  proxy.seen.length = 0;
  await assert.rejects(viaProxy(5).sessions.forUser('user_1', { maxRetries: 1 }), ServerError);
  assert.equal(proxy.seen.length, 2, 'a call’s maxRetries overrides the client’s');
});

test('what the caller got wrong is not retried; a rotation is never sent twice', async () => {
  const session = await viaProxy().sessions.forUser(`user_${randomUUID()}`);
  proxy.seen.length = 0;
  await assert.rejects(session.tasks.submit({ agent: 'nobody', input: 1 }), UnprocessableEntityError);
  assert.equal(proxy.seen.length, 1);

  proxy.seen.length = 0;
  proxy.rule = () => unavailable;
  await assert.rejects(viaProxy().webhooks.rotate(), ServerError);
  assert.equal(proxy.seen.length, 1);
});

test('a RateLimitError once retries run out carries retryAfter', async () => {
  const session = await viaProxy(1).sessions.forUser(`user_${randomUUID()}`);
  await session.updateLimits({ maxRunning: 0, maxQueued: 0 });
  const error = await session.tasks.submit({ agent: 'echo', input: 1 }).catch((e: unknown) => e);
  assert.ok(error instanceof RateLimitError);
  assert.equal(error.retryAfter, 1);
  assert.equal(proxy.seen.filter(isSubmit).length, 2);
});
