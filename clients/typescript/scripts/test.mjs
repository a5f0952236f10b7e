// Runs the compiled tests (build/test/*.test.js) with Node's test runner. Each file is its own
// process with its own real server; two run at a time, which is what the development machines'
// two cores allow. Extra arguments go to the runner (e.g. --test-name-pattern).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const folder = join(root, 'build', 'test');
const only = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const flags = process.argv.slice(2).filter((arg) => arg.startsWith('-'));
const files = readdirSync(folder)
  .filter((name) => name.endsWith('.test.js'))
  .filter((name) => only.length === 0 || only.some((wanted) => name.startsWith(wanted)))
  .map((name) => join(folder, name));
if (files.length === 0) {
  console.error(`no test file in ${folder} matches ${only.join(' ')}`);
  process.exit(1);
}
const run = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=180000', ...flags, ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(run.status ?? 1);
