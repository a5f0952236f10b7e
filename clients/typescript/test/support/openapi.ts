/**
 * The wire types, generated from a running server's `/openapi.json` with openapi-typescript.
 *
 * What one deployment serves is not part of the API: the schema lists the served agents' names
 * as an enum of the submit body's `agent`, and that enum is dropped, so `agent` is a string.
 */
import { join } from 'node:path';
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript';
import { PACKAGE_ROOT } from './paths.js';

export const GENERATED_TYPES = join(PACKAGE_ROOT, 'src', 'generated', 'openapi.ts');

const HEADER = `/**
 * The wire types of the Theazo API, generated from the server's /openapi.json by
 * openapi-typescript. Do not edit: \`npm run generate\` writes this file again, and a test fails
 * when it no longer matches what the server serves.
 *
 * @module
 */

`;

interface Schema {
  properties?: Record<string, { enum?: unknown }>;
}

/** The schema without what depends on the deployment rather than on the API. */
export function withoutDeploymentDetails(document: OpenAPI3): OpenAPI3 {
  const copy = structuredClone(document);
  const submit = copy.components?.schemas?.SubmitBody as Schema | undefined;
  if (submit?.properties?.agent) delete submit.properties.agent.enum;
  return copy;
}

export async function fetchSchema(baseURL: string): Promise<OpenAPI3> {
  const response = await fetch(`${baseURL}/openapi.json`);
  if (!response.ok) throw new Error(`GET ${baseURL}/openapi.json: ${response.status}`);
  return (await response.json()) as OpenAPI3;
}

/** The TypeScript of the schema, as committed in src/generated/openapi.ts. */
export async function generateTypes(document: OpenAPI3): Promise<string> {
  const ast = await openapiTS(withoutDeploymentDetails(document), { defaultNonNullable: false });
  return HEADER + astToString(ast);
}
