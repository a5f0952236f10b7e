/** The committed wire types are what the running server's /openapi.json generates. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { GENERATED_TYPES, fetchSchema, generateTypes } from './support/openapi.js';
import { TheazoServer } from './support/server.js';

let server: TheazoServer;

before(async () => {
  server = await TheazoServer.start();
});

after(async () => {
  await server?.stop();
});

test('src/generated/openapi.ts matches the server (else run `npm run generate`)', async () => {
  const generated = await generateTypes(await fetchSchema(server.baseURL));
  const committed = readFileSync(GENERATED_TYPES, 'utf8');
  if (generated !== committed) {
    const want = generated.split('\n');
    const have = committed.split('\n');
    const line = want.findIndex((text, i) => text !== have[i]);
    assert.fail(
      `the wire types drifted from the server's /openapi.json at line ${line + 1}:\n` +
        `  committed: ${have[line]}\n  server:    ${want[line]}\n` +
        'run `npm run generate` in clients/typescript and commit src/generated/openapi.ts',
    );
  }
});

test('the agent enum of one deployment is left out: agent is any string', async () => {
  const generated = await generateTypes(await fetchSchema(server.baseURL));
  assert.doesNotMatch(generated, /"sleeper"/);
});
