/** Every method of the client, over HTTP, against a real server. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  NotFoundError,
  Session,
  TaskPage,
  TaskPagePromise,
  Theazo,
  isTerminal,
  type Fetch,
  type Task,
} from 'theazo';
import { WebhookReceiver } from './support/receiver.js';
import { TheazoServer } from './support/server.js';
import { eventually } from './support/waiting.js';

// A short server cap on one long poll, so that waits and runs must loop past it.
const MAX_WAIT = ['--max-wait', '1s'];

let server: TheazoServer;
let receiver: WebhookReceiver;
let theazo: Theazo;

before(async () => {
  [server, receiver] = await Promise.all([
    TheazoServer.start([...MAX_WAIT, '--allow-private-webhooks']),
    WebhookReceiver.start(),
  ]);
  theazo = new Theazo({ apiKey: server.apiKey, baseURL: server.baseURL });
});

after(async () => {
  await Promise.all([server?.stop(), receiver?.stop()]);
});

/** A session of its own for each test, so tests never see each other's tasks. */
function newSession(): Promise<Session> {
  return theazo.sessions.forUser(`user_${randomUUID()}`);
}

/** A client whose fetch counts the requests it sends, by path. */
function countingClient(): { client: Theazo; requests: string[] } {
  const requests: string[] = [];
  const fetch: Fetch = (input, init) => {
    requests.push(`${init.method} ${new URL(input).pathname}${new URL(input).search}`);
    return globalThis.fetch(input, init);
  };
  return { client: new Theazo({ apiKey: server.apiKey, baseURL: server.baseURL, fetch }), requests };
}

async function running(session: Session, taskId: string): Promise<Task> {
  return eventually(
    async () => {
      const task = await session.tasks.get(taskId);
      return task.status === 'running' ? task : null;
    },
    { what: `${taskId} running` },
  );
}

describe('sessions', () => {
  test('forUser is get-or-create, get finds it, refresh and updateLimits change it', async () => {
    const userId = `user_${randomUUID()}`;
    const session = await theazo.sessions.forUser(userId);
    assert.match(session.sessionId, /^sess_/);
    assert.equal(session.userId, userId);
    assert.equal(typeof session.createdAt, 'string');
    assert.equal((await theazo.sessions.forUser(userId)).sessionId, session.sessionId);
    assert.equal((await theazo.sessions.get(session.sessionId)).userId, userId);
    assert.deepEqual(session.cost, { amount: 0, currency: 'usd' });

    const updated = await session.updateLimits({ maxRunning: 3, budget: 500 });
    assert.equal(updated, session);
    assert.deepEqual(session.limits, { maxRunning: 3, maxQueued: session.limits.maxQueued, budget: 500 });
    await session.updateLimits({ budget: null });
    assert.equal(session.limits.budget, null);
    assert.equal(session.limits.maxRunning, 3, 'a limit left out stays as it is');

    await session.run({ agent: 'reporter', input: { steps: 1, charge: 7 } });
    assert.equal(session.usage.tasks, 0, 'the usage is as last fetched');
    await session.refresh();
    assert.equal(session.usage.tasks, 1);
    assert.ok(session.cost.amount >= 7);
    assert.deepEqual(JSON.parse(JSON.stringify(session)), session.info);
  });

  test('an unknown field in updateLimits is refused before any request', async () => {
    const session = await newSession();
    await assert.rejects(session.updateLimits({ maxRuning: 2 } as never), /unknown field: maxRuning/);
  });
});

describe('submit, get, wait, run', () => {
  test('submit with every option; get shows them', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({
      agent: 'echo',
      input: { hello: 'world' },
      priority: 'low',
      webhook: receiver.url('/hook'),
      webhookEvents: ['completed', 'started'],
      timeout: '90s',
      metadata: { customer: 'acme' },
      retries: 2,
    });
    assert.match(task.taskId, /^task_/);
    assert.equal(task.sessionId, session.sessionId);
    assert.equal(task.status, 'queued');
    const got = await session.tasks.get(task.taskId);
    assert.equal(got.priority, 'low');
    assert.deepEqual(got.input, { hello: 'world' });
    assert.equal(got.webhook, receiver.url('/hook'));
    assert.deepEqual([...got.webhookEvents].sort(), ['completed', 'started']);
    assert.equal(got.timeout, 90);
    assert.deepEqual(got.metadata, { customer: 'acme' });
    assert.equal(got.retries, 2);
  });

  test('a timeout in milliseconds is the task limit the server keeps', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'echo', input: null, timeout: 1500 });
    assert.equal(task.timeout, 1.5);
  });

  test('wait answers the completed task, with its output and cost', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'reporter', input: { steps: 2, charge: 3 } });
    const done = await session.tasks.wait(task.taskId, { timeout: '30s' });
    assert.equal(done.status, 'completed');
    assert.ok(isTerminal(done));
    assert.equal(done.progress, 1);
    assert.equal(done.message, 'step 2 of 2');
    assert.equal((done.output as { task_id: string }).task_id, task.taskId);
    assert.ok(done.cost.amount >= 6);
    assert.ok(done.completedAt);
  });

  test('wait on a running task times out and answers it running, looping past the server cap', async () => {
    const { client, requests } = countingClient();
    const session = await client.sessions.forUser(`user_${randomUUID()}`);
    const task = await session.tasks.submit({ agent: 'sleeper', input: { seconds: 30 } });
    await running(session, task.taskId);
    const result = await session.tasks.wait(task.taskId, { timeout: '2500ms' });
    assert.equal(result.status, 'running');
    const waits = requests.filter((r) => r.includes('/wait?'));
    assert.ok(
      waits.length >= 3,
      `the server holds 1 s at most, so 2.5 s took several waits: ${waits.join(', ')}`,
    );
    assert.ok(waits.every((w) => /timeout=\d+(\.\d+)?s$/.test(w)));
    await session.tasks.cancel(task.taskId);
  });

  test('wait without a timeout lasts until the task ends, past the server cap', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'sleeper', input: { seconds: 1.5 } });
    const done = await session.tasks.wait(task.taskId);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.output, { slept: 1.5 });
  });

  test('wait takes a number of milliseconds', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'sleeper', input: { seconds: 30 } });
    const result = await session.tasks.wait(task.taskId, { timeout: 200 });
    assert.ok(!isTerminal(result));
    await session.tasks.cancel(task.taskId);
  });

  test('a bad duration is refused before any request', async () => {
    const { client, requests } = countingClient();
    const session = await client.sessions.forUser('user_durations');
    const sent = requests.length;
    await assert.rejects(session.tasks.wait('task_x', { timeout: '5 minutes' as never }), TypeError);
    await assert.rejects(session.tasks.wait('task_x', { timeout: -1 }), TypeError);
    await assert.rejects(
      session.tasks.submit({ agent: 'echo', input: 1, timeout: '30' as never }),
      TypeError,
    );
    await assert.rejects(
      session.tasks.submit({ agent: 'echo', priorty: 'high' } as never),
      /unknown field: priorty/,
    );
    assert.equal(requests.length, sent);
  });

  test('run submits and waits: a short task in one round trip', async () => {
    const { client, requests } = countingClient();
    const session = await client.sessions.forUser(`user_${randomUUID()}`);
    const sent = requests.length;
    const task = await session.run({ agent: 'echo', input: { hello: 'run' } });
    assert.equal(task.status, 'completed');
    assert.deepEqual(task.output, { hello: 'run' });
    assert.equal(requests.length - sent, 1, requests.slice(sent).join(', '));
  });

  test('run loops past the server cap, and honours waitTimeout', async () => {
    const session = await newSession();
    const done = await session.run({ agent: 'sleeper', input: { seconds: 1.5 }, priority: 'high' });
    assert.equal(done.status, 'completed');
    const cut = await session.run({ agent: 'sleeper', input: { seconds: 30 }, waitTimeout: '1200ms' });
    assert.ok(!isTerminal(cut));
    await session.tasks.cancel(cut.taskId);
  });

  test('submitBatch submits all at once, in order', async () => {
    const session = await newSession();
    const tasks = await session.tasks.submitBatch([
      { agent: 'echo', input: 1 },
      { agent: 'echo', input: 2, priority: 'high', idempotencyKey: 'batch-item-2' },
      { agent: 'noop' },
    ]);
    assert.deepEqual(
      tasks.map((t) => [t.agent, t.input, t.priority]),
      [
        ['echo', 1, 'normal'],
        ['echo', 2, 'high'],
        ['noop', null, 'normal'],
      ],
    );
    const again = await session.tasks.submit({ agent: 'echo', input: 2, idempotencyKey: 'batch-item-2' });
    assert.equal(again.taskId, tasks[1]?.taskId, 'an item key works as a submit key');
  });
});

describe('cancel', () => {
  test('a running task: answered cancelled, and get shows it', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'sleeper', input: { seconds: 30 } });
    await running(session, task.taskId);
    const cancelled = await session.tasks.cancel(task.taskId);
    assert.equal(cancelled.status, 'cancelled');
    assert.ok(cancelled.completedAt);
    assert.equal((await session.tasks.get(task.taskId)).status, 'cancelled');
    assert.equal(
      (await session.tasks.cancel(task.taskId)).status,
      'cancelled',
      'a second cancel changes nothing',
    );
  });

  test('a queued task never starts', async () => {
    const session = await newSession();
    await session.updateLimits({ maxRunning: 0 });
    const task = await session.tasks.submit({ agent: 'echo', input: 1 });
    assert.equal((await session.tasks.cancel(task.taskId)).status, 'cancelled');
    assert.equal((await session.tasks.get(task.taskId)).attempt, 0);
  });
});

describe('list', () => {
  test('a page is an array of tasks, newest first, filtered by status', async () => {
    const session = await newSession();
    await session.updateLimits({ maxRunning: 0 });
    const queued = await session.tasks.submitBatch([
      { agent: 'echo', input: 1 },
      { agent: 'echo', input: 2 },
    ]);
    const cancelled = await session.tasks.submit({ agent: 'echo', input: 3 });
    await session.tasks.cancel(cancelled.taskId);

    const all = await session.tasks.list();
    assert.ok(all instanceof TaskPage && Array.isArray(all));
    assert.deepEqual(
      all.map((t) => t.taskId),
      [cancelled.taskId, queued[1]?.taskId, queued[0]?.taskId],
    );
    assert.equal(all.nextCursor, null);
    assert.equal(all.hasMore, false);
    assert.equal(await all.getNextPage(), null);
    assert.ok(!(all.map((t) => t) instanceof TaskPage), 'map answers a plain array');
    assert.deepEqual(JSON.parse(JSON.stringify(all)), all.data);

    assert.deepEqual(
      (await session.tasks.list({ status: 'cancelled' })).map((t) => t.taskId),
      [cancelled.taskId],
    );
    assert.equal((await session.tasks.list({ status: ['queued', 'cancelled'] })).length, 3);
    assert.equal((await session.tasks.list({ status: 'running' })).length, 0);
  });

  test('for await goes over every page: 250 tasks', async () => {
    const session = await newSession();
    await session.updateLimits({ maxRunning: 0 }); // they stay queued: nothing for the workers to do
    const submitted = await session.tasks.submitBatch(
      Array.from({ length: 250 }, (_, i) => ({ agent: 'noop', input: i, priority: 'low' as const })),
    );
    const { client, requests } = countingClient();
    const tasks = (await client.sessions.get(session.sessionId)).tasks;
    const sent = requests.length;
    const listing = tasks.list({ limit: 100 });
    assert.ok(listing instanceof TaskPagePromise);
    const seen: Task[] = [];
    for await (const task of listing) seen.push(task);
    assert.equal(seen.length, 250);
    assert.deepEqual(
      seen.map((t) => t.input),
      Array.from({ length: 250 }, (_, i) => 249 - i),
      'newest first, none twice, none missed',
    );
    assert.equal(new Set(seen.map((t) => t.taskId)).size, 250);
    assert.deepEqual(new Set(seen.map((t) => t.taskId)), new Set(submitted.map((t) => t.taskId)));
    assert.equal(requests.length - sent, 3, 'three pages of at most 100');

    const first = await tasks.list();
    assert.equal(first.length, 50, 'the server pages 50 by default');
    assert.ok(first.hasMore && first.nextCursor);
    const second = await first.getNextPage();
    assert.equal(second?.[0]?.input, 199);
    const third = await tasks.list({ cursor: first.nextCursor, limit: 10 });
    assert.deepEqual(
      third.map((t) => t.input),
      second?.slice(0, 10).map((t) => t.input),
    );
    const pages: number[] = [];
    for await (const page of tasks.list({ limit: 120 }).iterPages()) pages.push(page.length);
    assert.deepEqual(pages, [120, 120, 10]);
  });
});

describe('the project', () => {
  test('agents.list names what the server serves', async () => {
    const agents = await theazo.agents.list();
    const names = agents.map((a) => a.name);
    assert.ok(names.includes('researcher') && names.includes('sleeper'));
    assert.equal(typeof agents[0]?.description, 'string');
    assert.ok(
      agents.some((a) => a.inputSchema !== null),
      'an agent with an input model publishes its schema',
    );
  });

  test('webhooks: the secret signs, rotate makes a new one and keeps the old signing', async () => {
    const secret = await theazo.webhooks.secret();
    assert.match(secret.secret, /^whsec_/);
    const rotated = await theazo.webhooks.rotate();
    assert.notEqual(rotated.secret, secret.secret);
    assert.ok(rotated.previous.some((p) => p.secret === secret.secret));
  });

  test('deliveries and redeliver: a finished task webhook, sent again', async () => {
    const session = await newSession();
    const path = `/hook/${randomUUID()}`;
    const task = await session.run({ agent: 'echo', input: 'hi', webhook: receiver.url(path) });
    const delivered = await eventually(
      async () => {
        const [delivery] = await session.tasks.deliveries(task.taskId);
        return delivery?.status === 'delivered' ? delivery : null;
      },
      { what: 'the webhook delivered' },
    );
    assert.equal(delivered.history[0]?.httpStatus, 200);
    const again = await session.tasks.redeliver(task.taskId);
    assert.equal(again.deliveryId, delivered.deliveryId);
    await eventually(() => receiver.received.filter((r) => r.path === path).length >= 2, {
      what: 'the webhook sent twice',
    });
  });

  test('a task of another session is not found', async () => {
    const [one, other] = await Promise.all([newSession(), newSession()]);
    const task = await one.tasks.submit({ agent: 'echo', input: 1 });
    await assert.rejects(other.tasks.get(task.taskId), NotFoundError);
  });
});
