import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** clients/typescript: the tests run from build/test/support, three folders below it. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The repository, whose Python project the tests start as the server. */
export const REPO_ROOT = join(PACKAGE_ROOT, '..', '..');
