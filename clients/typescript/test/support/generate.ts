/**
 * `npm run generate`: start a real server, read its /openapi.json, and write the wire types
 * (src/generated/openapi.ts) again. Run it after changing the API; test/openapi.test.ts fails
 * until then.
 */
import { writeFileSync } from 'node:fs';
import { GENERATED_TYPES, fetchSchema, generateTypes } from './openapi.js';
import { TheazoServer } from './server.js';

const server = await TheazoServer.start();
try {
  writeFileSync(GENERATED_TYPES, await generateTypes(await fetchSchema(server.baseURL)));
  console.log(`wrote ${GENERATED_TYPES}`);
} finally {
  await server.stop();
}
