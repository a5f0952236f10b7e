/** The product page's snippets, as test/snippets/product-page.ts holds them, and what running them shows. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './paths.js';

export const SNIPPETS_SOURCE = join(PACKAGE_ROOT, 'test', 'snippets', 'product-page.ts');

/** What the page writes where the runnable file reads the environment or uses a real id. */
const PLACEHOLDERS: ReadonlyArray<[RegExp, string]> = [
  [/apiKey: process\.env\.THEAZO_API_KEY/g, "apiKey: 'th_live_...'"],
  [/\b(get|wait|cancel)\(taskId\b/g, "$1('task_abc123'"],
  [
    /webhook: process\.env\.THEAZO_SNIPPET_WEBHOOK,/g,
    "webhook: 'https://your-api.com/webhooks/task-complete',",
  ],
];

/** Each snippet, by name, with the page's placeholders put back: the text the page shows. */
export function pageSnippets(): Map<string, string> {
  const source = readFileSync(SNIPPETS_SOURCE, 'utf8');
  const snippets = new Map<string, string>();
  for (const match of source.matchAll(/^\/\/ --- (\S+)\n([\s\S]*?)^\/\/ --- end$/gm)) {
    let text = match[2] ?? '';
    for (const [pattern, replacement] of PLACEHOLDERS) text = text.replace(pattern, replacement);
    snippets.set(match[1] ?? '', text.trimEnd());
  }
  return snippets;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a Node program as a user would, with `env` added to the environment. */
export function runNode(
  args: readonly string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** What running the page's snippets against a real server must print. */
export function assertSnippetsRan(run: Run): void {
  assert.equal(run.code, 0, `the snippets failed:\n${run.stdout}\n${run.stderr}`);
  const lines = run.stdout.split('\n');
  assert.match(lines[0] ?? '', /^task_[0-9A-Za-z]+$/, run.stdout); // console.log(task.taskId)
  assert.equal(lines[1], 'queued', run.stdout); // console.log(task.status)
  assert.ok(lines.includes('wait: completed'), run.stdout);
  assert.ok(
    lines.some((line) => /^webhook task: task_/.test(line)),
    run.stdout,
  );
  assert.ok(
    lines.some((line) => /^listed: \d+ all, \d+ running, 0 failed$/.test(line)),
    run.stdout,
  );
  assert.equal(lines.at(-2), 'cancelled', run.stdout); // the last console.log, then the final newline
}
