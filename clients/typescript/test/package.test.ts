/**
 * The package as a user gets it: `npm pack` makes a tarball whose exports check clean (publint,
 * arethetypeswrong), and a new Node project that installs it, offline, runs the product page's
 * snippets unchanged but for the key and base URL, from TypeScript (ESM) and from CommonJS.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PACKAGE_ROOT } from './support/paths.js';
import { WebhookReceiver } from './support/receiver.js';
import { TheazoServer } from './support/server.js';
import { SNIPPETS_SOURCE, assertSnippetsRan, runNode } from './support/snippets.js';

const BIN = join(PACKAGE_ROOT, 'node_modules', '.bin');
const TSC = join(PACKAGE_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

let server: TheazoServer;
let receiver: WebhookReceiver;
let workdir: string;
let tarball: string;
let project: string;

function run(command: string, args: readonly string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

before(async () => {
  [server, receiver] = await Promise.all([
    TheazoServer.start(['--allow-private-webhooks']),
    WebhookReceiver.start(),
  ]);
  workdir = mkdtempSync(join(tmpdir(), 'theazo-ts-package-'));
  // `npm test` has just built dist/; the scripts would build it again.
  const packed = JSON.parse(
    run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', workdir], PACKAGE_ROOT),
  ) as Array<{ filename: string }>;
  tarball = join(workdir, packed[0]?.filename ?? '');
  project = join(workdir, 'app');
  run('mkdir', [project], workdir);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module' }),
  );
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], project);
});

after(async () => {
  await Promise.all([server?.stop(), receiver?.stop()]);
  if (workdir) rmSync(workdir, { recursive: true, force: true });
});

test('the tarball holds the build, its declarations and no runtime dependency', () => {
  const listing = run('tar', ['-tzf', tarball], workdir).split('\n');
  for (const file of [
    'dist/esm/index.js',
    'dist/esm/index.d.ts',
    'dist/cjs/index.js',
    'dist/cjs/index.d.ts',
    'dist/esm/agent.js',
    'dist/cjs/agent.js',
  ]) {
    assert.ok(listing.includes(`package/${file}`), file);
  }
  assert.ok(!listing.some((file) => file.startsWith('package/test/') || file.startsWith('package/build/')));
  const manifest = JSON.parse(readFileSync(join(project, 'node_modules', 'theazo', 'package.json'), 'utf8'));
  assert.equal(manifest.dependencies, undefined);
  assert.deepEqual(
    JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')).packages[''].dependencies,
    {
      theazo: `file:${tarball.replace(workdir, '..')}`,
    },
  );
});

test('publint and arethetypeswrong find nothing wrong with the tarball', () => {
  run(join(BIN, 'publint'), ['run', '--strict', tarball], workdir);
  run(join(BIN, 'attw'), ['--format', 'table-flipped', '--no-color', tarball], workdir);
});

test('a new TypeScript project runs the product page snippets to a completed task', async () => {
  copyFileSync(SNIPPETS_SOURCE, join(project, 'product-page.ts'));
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        // A real project installs @types/node; this one is offline, so it borrows ours.
        typeRoots: [join(PACKAGE_ROOT, 'node_modules', '@types')],
        types: ['node'],
      },
      files: ['product-page.ts'],
    }),
  );
  run(process.execPath, [TSC, '-p', project], project);
  const result = await runNode(['product-page.js'], {
    cwd: project,
    env: { ...server.env(), THEAZO_SNIPPET_WEBHOOK: receiver.url('/webhooks/task-complete') },
  });
  assertSnippetsRan(result);
});

test('require() works from CommonJS, with the same classes', async () => {
  writeFileSync(
    join(project, 'check.cjs'),
    `const { Theazo, NotFoundError } = require('theazo')
async function main() {
  const theazo = new Theazo()
  const session = await theazo.sessions.forUser('user_cjs')
  const task = await session.run({ agent: 'echo', input: { from: 'cjs' } })
  console.log(task.status, JSON.stringify(task.output))
  await session.tasks.get('task_nope').catch((e) => console.log(e instanceof NotFoundError, e.code))
}
main().catch((e) => { console.error(e); process.exit(1) })
`,
  );
  const result = await runNode(['check.cjs'], { cwd: project, env: server.env() });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'completed {"from":"cjs"}\ntrue task_not_found\n');
});

test('theazo/agent is there for import and require', async () => {
  writeFileSync(
    join(project, 'agent-check.mjs'),
    `import { runAgent, AgentError, CHANNEL_FD } from 'theazo/agent'
import { createRequire } from 'node:module'
const cjs = createRequire(import.meta.url)('theazo/agent')
console.log(typeof runAgent, typeof AgentError, CHANNEL_FD, typeof cjs.runAgent)
`,
  );
  const result = await runNode(['agent-check.mjs'], { cwd: project, env: server.env() });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'function function 3 function\n');
});
