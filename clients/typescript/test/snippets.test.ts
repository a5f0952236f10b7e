/**
 * The product page's five snippets (and its webhook one), as written, against a real server;
 * and the README shows exactly the page's snippets.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Theazo } from 'theazo';
import { PACKAGE_ROOT, REPO_ROOT } from './support/paths.js';
import { WebhookReceiver } from './support/receiver.js';
import { TheazoServer } from './support/server.js';
import { assertSnippetsRan, pageSnippets, runNode } from './support/snippets.js';
import { eventually } from './support/waiting.js';

const SEED_PAGE = join(REPO_ROOT, '..', 'shared', 'seed', 'tasks-page.txt');

let server: TheazoServer;
let receiver: WebhookReceiver;

before(async () => {
  [server, receiver] = await Promise.all([
    TheazoServer.start(['--allow-private-webhooks']),
    WebhookReceiver.start(),
  ]);
});

after(async () => {
  await Promise.all([server?.stop(), receiver?.stop()]);
});

test('the snippets are the README TypeScript section, word for word', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.split('## Using it from TypeScript')[1]?.split('\n## ')[0];
  assert.ok(section, 'the README has a "Using it from TypeScript" section');
  const snippets = pageSnippets();
  assert.deepEqual(
    [...snippets.keys()],
    ['submit-task.ts', 'poll-task.ts', 'wait-task.ts', 'webhook', 'list-tasks', 'cancel-task'],
  );
  for (const [name, text] of snippets)
    assert.ok(section.includes(text), `README lacks the ${name} snippet:\n${text}`);
});

test(
  'the snippets are the product page, word for word',
  { skip: !existsSync(SEED_PAGE) && 'the product page (../shared) is not beside this clone' },
  () => {
    const page = readFileSync(SEED_PAGE, 'utf8');
    for (const [name, text] of pageSnippets())
      assert.ok(page.includes(text), `the page has no such ${name} snippet:\n${text}`);
  },
);

test('the snippets run to a completed task, and the webhook arrives', async () => {
  const run = await runNode([join(PACKAGE_ROOT, 'build', 'test', 'snippets', 'product-page.js')], {
    cwd: PACKAGE_ROOT,
    env: { ...server.env(), THEAZO_SNIPPET_WEBHOOK: receiver.url('/webhooks/task-complete') },
  });
  assertSnippetsRan(run);
  const taskId = /^webhook task: (\S+)$/m.exec(run.stdout)?.[1];
  const hook = await eventually(
    () => receiver.received.find((r) => (r.body as { taskId?: string }).taskId === taskId),
    {
      what: 'the webhook of the data_processor task',
    },
  );
  assert.equal(hook.path, '/webhooks/task-complete');
  assert.equal((hook.body as { status: string }).status, 'completed');
  assert.match(String(hook.headers['webhook-signature']), /^v1,/);
});

test('the first snippet with the key and base URL given in code', async () => {
  const theazo = new Theazo({ apiKey: server.apiKey, baseURL: server.baseURL });
  const session = await theazo.sessions.forUser('user_123');
  const task = await session.tasks.submit({ agent: 'researcher', input: { query: 'q' }, priority: 'high' });
  assert.equal(task.status, 'queued');
  assert.equal(task.priority, 'high');
});
