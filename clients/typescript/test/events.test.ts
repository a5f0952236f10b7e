/**
 * Event streams and logs against a real server: a task's stream from its first event to its
 * end, resumed after a dropped connection without losing or repeating an event; a session's
 * stream; logs; stream tokens.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  APIUserAbortError,
  NotFoundError,
  Theazo,
  UnprocessableEntityError,
  type Session,
  type SessionStreamEvent,
  type TaskStreamEvent,
} from 'theazo';
import { FaultProxy } from './support/proxy.js';
import { TheazoServer } from './support/server.js';
import { eventually } from './support/waiting.js';

let server: TheazoServer;
let proxy: FaultProxy;
let theazo: Theazo;

before(async () => {
  server = await TheazoServer.start();
  proxy = await FaultProxy.start(server.baseURL);
  theazo = new Theazo({ apiKey: server.apiKey, baseURL: server.baseURL });
});

beforeEach(() => {
  proxy.rule = () => ({ kind: 'forward' });
  proxy.seen.length = 0;
});

after(async () => {
  await proxy?.stop();
  await server?.stop();
});

function newSession(client: Theazo = theazo): Promise<Session> {
  return client.sessions.forUser(`user_${randomUUID()}`);
}

async function collect<E>(stream: AsyncIterable<E>): Promise<E[]> {
  const events: E[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

const TICKS = { steps: 4, every: 0.05, stderr: true };

describe('a task stream', () => {
  test('from the task as it is (id 0) to its end: progress, logs, charges, in order', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'ticker', input: TICKS });
    const events = await collect(session.tasks.stream(task.taskId));

    const first = events[0];
    assert.equal(first?.event, 'status');
    assert.equal(first.id, 0);
    assert.equal(first.task.taskId, task.taskId);
    const last = events.at(-1);
    assert.equal(last?.event, 'end');
    assert.equal(last.task.status, 'completed');
    assert.deepEqual(last.task.output, { steps: 4 });
    const ids = events.slice(1).map((e) => e.id);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      'in order',
    );
    assert.equal(new Set(ids).size, ids.length, 'nothing twice');
    assert.ok(events.every((e) => e.taskId === task.taskId));

    const progress = events.filter((e) => e.event === 'progress');
    assert.deepEqual(
      progress.map((e) => [e.progress, e.message]),
      [1, 2, 3, 4].map((step) => [step / 4, `step ${step} of 4`]),
    );
    const logs = events.filter((e) => e.event === 'log');
    assert.deepEqual(
      logs.filter((e) => e.stream === 'stdout').map((e) => e.text),
      ['tick 1', 'tick 2', 'tick 3', 'tick 4'],
    );
    assert.ok(logs.some((e) => e.stream === 'stderr' && e.text === 'warn 1'));
    assert.ok(logs.every((e) => typeof e.at === 'string'));
    assert.ok(events.every((e) => e.data.taskId === e.taskId));
    assert.deepEqual(logs[0]?.data, {
      taskId: task.taskId,
      stream: logs[0]?.stream,
      text: logs[0]?.text,
      at: logs[0]?.at,
    });
  });

  test('charges carry the amount and the cost after it', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'reporter', input: { steps: 2, charge: 5 } });
    const charges = (await collect(session.tasks.stream(task.taskId))).filter((e) => e.event === 'charge');
    assert.deepEqual(
      charges.map((e) => e.amount),
      [5, 5],
    );
    assert.ok((charges[1]?.cost.amount ?? 0) >= 10);
  });

  test('dropped after two events, it reconnects with Last-Event-ID: nothing lost, nothing twice', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'ticker', input: TICKS });
    await session.tasks.wait(task.taskId, { timeout: '30s' });
    const whole = await collect(session.tasks.stream(task.taskId));
    // Resumed after an id, a stream has every event after it (a fresh one sums up the status
    // changes before its event 0): the drops must give the first two, then what follows them.
    const expected = [
      ...whole.slice(0, 2),
      ...(await collect(session.tasks.stream(task.taskId, { after: whole[1]?.id }))),
    ];

    let cut = 0;
    proxy.rule = (r) =>
      r.url.endsWith('/events') && cut++ < 3 ? { kind: 'cut-stream', afterEvents: 2 } : { kind: 'forward' };
    const viaProxy = new Theazo({ apiKey: server.apiKey, baseURL: proxy.baseURL });
    const stream = (await viaProxy.sessions.get(session.sessionId)).tasks.stream(task.taskId);
    const resumed = await collect(stream);

    assert.deepEqual(
      resumed.map((e) => [e.id, e.event]),
      expected.map((e) => [e.id, e.event]),
    );
    const requests = proxy.seen.filter((r) => r.url.endsWith('/events'));
    assert.equal(requests.length, 4, 'three dropped connections, then one to the end');
    assert.equal(requests[0]?.headers['last-event-id'], undefined);
    assert.equal(requests[1]?.headers['last-event-id'], String(whole[1]?.id));
    assert.equal(stream.lastEventId, whole.at(-1)?.id);
    assert.equal(resumed.at(-1)?.event, 'end');
  });

  test('after: only the events after that id; after the end, nothing', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'ticker', input: TICKS });
    const whole = await collect(session.tasks.stream(task.taskId));
    const middle = whole[3]?.id ?? 0;
    const rest = await collect(session.tasks.stream(task.taskId, { after: middle }));
    assert.deepEqual(
      rest.map((e) => e.id),
      whole.filter((e) => e.id > middle).map((e) => e.id),
    );
    assert.deepEqual(await collect(session.tasks.stream(task.taskId, { after: whole.at(-1)?.id })), []);
  });

  test('a timeout ends the stream without an error; close() and a signal stop it', async () => {
    const session = await newSession();
    const task = await session.tasks.submit({ agent: 'sleeper', input: { seconds: 30 } });
    const events = await collect(session.tasks.stream(task.taskId, { timeout: '700ms' }));
    assert.ok(events.length >= 1 && events.every((e) => e.event !== 'end'));

    const stream = session.tasks.stream(task.taskId);
    for await (const event of stream) {
      assert.equal(event.event, 'status');
      stream.close();
    }

    const controller = new AbortController();
    const seen: TaskStreamEvent[] = [];
    const reading = (async () => {
      for await (const event of session.tasks.stream(task.taskId, { signal: controller.signal })) {
        seen.push(event);
        controller.abort();
      }
    })();
    await assert.rejects(reading, APIUserAbortError);
    assert.equal(seen.length, 1);
    await session.tasks.cancel(task.taskId);
  });

  test('an unknown task and a bad cursor are errors of their kind', async () => {
    const session = await newSession();
    await assert.rejects(collect(session.tasks.stream('task_nope')), NotFoundError);
    const done = await session.run({ agent: 'echo', input: 1 });
    await assert.rejects(
      collect(session.tasks.stream(done.taskId, { after: 999 })),
      UnprocessableEntityError,
    );
  });
});

describe('a session stream', () => {
  test('the status and progress of every task of the session, each with its task', async () => {
    const session = await newSession();
    const [one, two] = await session.tasks.submitBatch([
      { agent: 'ticker', input: { steps: 2, every: 0.05 } },
      { agent: 'echo', input: 'two' },
    ]);
    const ended = new Set<string>();
    const events: SessionStreamEvent[] = [];
    for await (const event of session.events({ timeout: '30s' })) {
      events.push(event);
      if (event.event === 'status' && ['completed', 'failed', 'cancelled'].includes(event.task.status))
        ended.add(event.taskId);
      if (ended.size === 2) break;
    }
    assert.deepEqual(ended, new Set([one?.taskId, two?.taskId]));
    assert.ok(events.every((e) => e.event === 'status' || e.event === 'progress'));
    assert.ok(events.some((e) => e.event === 'progress' && e.taskId === one?.taskId));
    const ids = events.map((e) => e.id);
    assert.deepEqual(
      ids,
      Array.from({ length: ids.length }, (_, i) => i + 1),
      'numbered from 1, consecutive',
    );
  });

  test('it outlives a dropped connection and resumes from the last id', async () => {
    const session = await newSession();
    await session.run({ agent: 'ticker', input: { steps: 3, every: 0.01 } });
    const whole = await collect(session.events({ timeout: '1500ms' }));
    let cut = false;
    proxy.rule = (r) =>
      r.url.endsWith('/events')
        ? { kind: 'cut-stream', afterEvents: cut ? Infinity : ((cut = true), 2) }
        : { kind: 'forward' };
    const viaProxy = new Theazo({ apiKey: server.apiKey, baseURL: proxy.baseURL });
    const resumed = await collect(
      (await viaProxy.sessions.get(session.sessionId)).events({ timeout: '2500ms' }),
    );
    assert.deepEqual(
      resumed.map((e) => e.id),
      whole.map((e) => e.id),
    );
    const streams = proxy.seen.filter((r) => r.url.endsWith('/events'));
    assert.equal(streams.length, 2);
    assert.equal(streams[1]?.headers['last-event-id'], String(whole[1]?.id));
  });
});

describe('logs and stream tokens', () => {
  test('logs: a page of what the agent wrote, and the lines after a seq', async () => {
    const session = await newSession();
    const task = await session.run({ agent: 'ticker', input: { steps: 3, every: 0.01 } });
    const page = await eventually(
      async () => {
        const logs = await session.tasks.logs(task.taskId);
        return logs.data.length === 3 ? logs : null;
      },
      { what: 'three log lines' },
    );
    assert.deepEqual(
      page.data.map((l) => [l.stream, l.text]),
      [
        ['stdout', 'tick 1'],
        ['stdout', 'tick 2'],
        ['stdout', 'tick 3'],
      ],
    );
    const rest = await session.tasks.logs(task.taskId, { after: page.data[0]?.seq, limit: 1 });
    assert.deepEqual(
      rest.data.map((l) => l.text),
      ['tick 2'],
    );
  });

  test('a stream token opens the session streams, as a browser EventSource sends it', async () => {
    const session = await newSession();
    const token = await session.streamToken({ ttl: '5m' });
    assert.equal(token.sessionId, session.sessionId);
    assert.ok(token.token.length > 20);
    assert.ok(Date.parse(token.expiresAt) > Date.now());
    const task = await session.run({ agent: 'echo', input: 1 });
    const url = `${server.baseURL}/v1/sessions/${session.sessionId}/tasks/${task.taskId}/events?token=${encodeURIComponent(token.token)}`;
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.match(await response.text(), /^event: end$/m);
    assert.equal(
      (
        await fetch(
          `${server.baseURL}/v1/sessions/${session.sessionId}/tasks/${task.taskId}?token=${token.token}`,
        )
      ).status,
      401,
    );
  });
});
