/**
 * `theazo/agent`, the helper for command agents: agents that use it, run as Theazo runs them
 * (the input on stdin, JSON lines read from descriptor 3), write what the protocol of
 * docs/agents.md asks. The copy next to the Python examples is this build, as it is.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from './support/paths.js';

const HELPER = pathToFileURL(join(PACKAGE_ROOT, 'dist', 'esm', 'agent.js')).href;
let workdir: string;

before(() => {
  workdir = mkdtempSync(join(tmpdir(), 'theazo-ts-agent-'));
});

after(() => {
  if (workdir) rmSync(workdir, { recursive: true, force: true });
});

interface AgentRun {
  code: number | null;
  lines: unknown[];
  stdout: string;
}

/** Run `body` (the module's code after the helper's import) on `input`, with a descriptor 3. */
async function runAgentScript(name: string, body: string, input: string): Promise<AgentRun> {
  const script = join(workdir, `${name}.mjs`);
  writeFileSync(script, `import { runAgent, AgentError } from ${JSON.stringify(HELPER)};\n${body}\n`);
  const child = spawn(process.execPath, [script], {
    stdio: ['pipe', 'pipe', 'inherit', 'pipe'],
    env: { ...process.env, THEAZO_TASK_ID: 'task_test' },
  });
  const read = (stream: Readable): Promise<string> =>
    new Promise((resolve) => {
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => resolve(text));
    });
  const [channel, stdout] = [read(child.stdio[3] as Readable), read(child.stdout as Readable)];
  child.stdin?.end(input);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const lines = (await channel)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as unknown);
  return { code, lines, stdout: await stdout };
}

test('progress, charges and the returned output become the protocol lines', async () => {
  const run = await runAgentScript(
    'count',
    `await runAgent(async (input, ctx) => {
  ctx.progress('starting');
  for (let i = 1; i <= input.n; i++) {
    console.log('step', i);
    ctx.progress(i, input.n, 'step ' + i);
    ctx.charge('0.5', 'one step');
  }
  ctx.charge(2);
  return { counted: input.n, task: ctx.taskId };
});`,
    '{"n": 2}\n',
  );
  assert.equal(run.code, 0);
  assert.equal(run.stdout, 'step 1\nstep 2\n');
  assert.deepEqual(run.lines, [
    { progress: { message: 'starting' } },
    { progress: { current: 1, total: 2, message: 'step 1' } },
    { charge: '0.5', description: 'one step' },
    { progress: { current: 2, total: 2, message: 'step 2' } },
    { charge: '0.5', description: 'one step' },
    { charge: 2 },
    { output: { counted: 2, task: 'task_test' } },
  ]);
});

test('an AgentError is the error line with its code; any other throw is agent_error', async () => {
  const refused = await runAgentScript(
    'refuse',
    `await runAgent(() => { throw new AgentError('count_refused', 'asked to refuse'); });`,
    '{}',
  );
  assert.equal(refused.code, 1);
  assert.deepEqual(refused.lines, [{ error: { code: 'count_refused', message: 'asked to refuse' } }]);
  const crashed = await runAgentScript(
    'crash',
    `await runAgent(async (input) => input.missing.field);`,
    '{}',
  );
  assert.equal(crashed.code, 1);
  const [line] = crashed.lines as Array<{ error: { code: string; message: string } }>;
  assert.equal(line?.error.code, 'agent_error');
  assert.match(line?.error.message ?? '', /Cannot read properties of undefined/);
});

test('no input is null, no output is null, and an output that is not JSON fails', async () => {
  const empty = await runAgentScript(
    'empty',
    `await runAgent((input) => { if (input !== null) throw new Error('not null'); });`,
    '',
  );
  assert.deepEqual(empty.lines, [{ output: null }]);
  const bigint = await runAgentScript('bigint', `await runAgent(() => ({ n: 1n }));`, 'null');
  assert.equal(bigint.code, 1);
  const [line] = bigint.lines as Array<{ error: { code: string; message: string } }>;
  assert.equal(line?.error.code, 'invalid_output');
  assert.match(line?.error.message ?? '', /^the output is not JSON: /);
});

test('the copy next to the Node examples is this build', async () => {
  const script = pathToFileURL(join(PACKAGE_ROOT, 'scripts', 'copy-agent.mjs')).href;
  const { VENDORED, vendoredAgent } = (await import(script)) as {
    VENDORED: string;
    vendoredAgent: () => string;
  };
  assert.equal(
    readFileSync(VENDORED, 'utf8'),
    vendoredAgent(),
    `${VENDORED} is not the build of src/agent.ts: run \`npm run vendor:agent\` in clients/typescript`,
  );
});
