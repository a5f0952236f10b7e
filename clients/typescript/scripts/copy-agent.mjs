// Copies the built helper for command agents (dist/esm/agent.js, from src/agent.ts) next to the
// Node examples as theazo-agent.mjs, a single file a sandbox can be shown (docs/agents.md,
// "A helper for Node agents"). `npm run vendor:agent` builds and copies; a test checks the copy.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const VENDORED = join(
  root,
  '..',
  '..',
  'src',
  'theazo',
  'agents',
  'examples',
  'commands',
  'theazo-agent.mjs',
);

/** What theazo-agent.mjs must hold: the ES module build, without its source map's comment. */
export function vendoredAgent() {
  const built = readFileSync(join(root, 'dist', 'esm', 'agent.js'), 'utf8');
  const code = built.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
  return (
    '// theazo/agent, the helper for command agents in Node, as one file with no dependency:\n' +
    '// built from clients/typescript/src/agent.ts by `npm run vendor:agent`; do not edit.\n' +
    code
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(VENDORED, vendoredAgent());
  console.log(`wrote ${VENDORED}`);
}
