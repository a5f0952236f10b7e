/**
 * Real Theazo servers for the tests, started as a user starts one: `python -m theazo serve` on a
 * free port, a fresh SQLite file, the example and test agents, and an API key of its own.
 *
 * The Python comes from `THEAZO_TEST_PYTHON` (the pytest test that runs these tests sets it to
 * its own interpreter), else the repository's `.venv`, else `python3`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { PACKAGE_ROOT, REPO_ROOT } from './paths.js';
import { eventually } from './waiting.js';

export const TEST_AGENTS = 'theazo.agents.examples,tests.agents';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;

export function pythonInterpreter(): string {
  const given = process.env.THEAZO_TEST_PYTHON;
  if (given) return given;
  const venv = join(REPO_ROOT, '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

export function newApiKey(): string {
  return `th_test_${randomBytes(32).toString('base64url')}`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export class TheazoServer {
  readonly baseURL: string;
  readonly #process: ChildProcess;
  readonly #logPath: string;
  readonly #workdir: string;
  #exited: Promise<number | null>;

  private constructor(
    readonly apiKey: string,
    readonly port: number,
    workdir: string,
    child: ChildProcess,
    logPath: string,
  ) {
    this.baseURL = `http://127.0.0.1:${port}`;
    this.#workdir = workdir;
    this.#process = child;
    this.#logPath = logPath;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    // A test process that dies must not leave its server behind.
    process.once('exit', () => child.kill('SIGKILL'));
  }

  /** Start a server with extra `theazo serve` options; resolves once /healthz answers. */
  static async start(args: readonly string[] = []): Promise<TheazoServer> {
    const workdir = mkdtempSync(join(tmpdir(), 'theazo-ts-'));
    const port = await freePort();
    const apiKey = newApiKey();
    const command = [
      '-m', 'theazo', 'serve',
      '--port', String(port),
      '--database', `sqlite:///${join(workdir, 'theazo.db')}`,
      '--agents', TEST_AGENTS,
      '--api-key', apiKey,
      '--sandbox-root', join(workdir, 'sandboxes'),
      '--shutdown-grace', '2s',
      '--log-level', 'warning',
      ...args,
    ]; // prettier-ignore
    const env: Record<string, string | undefined> = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('THEAZO_')),
    );
    env.PYTHONPATH = [REPO_ROOT, process.env.PYTHONPATH].filter(Boolean).join(delimiter);
    const logPath = join(workdir, 'serve.log');
    const log = openSync(logPath, 'a');
    const child = spawn(pythonInterpreter(), command, { cwd: REPO_ROOT, env, stdio: ['ignore', log, log] });
    closeSync(log);
    const server = new TheazoServer(apiKey, port, workdir, child, logPath);
    try {
      await server.#waitUntilReady();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  async #waitUntilReady(): Promise<void> {
    let exited = false;
    void this.#exited.then(() => (exited = true));
    await eventually(
      async () => {
        if (exited) throw new Error(`theazo serve exited at start:\n${this.log()}`);
        try {
          return (await fetch(`${this.baseURL}/healthz`)).status === 200;
        } catch {
          return false;
        }
      },
      {
        timeoutMs: START_TIMEOUT_MS,
        intervalMs: 50,
        what: `theazo serve on port ${this.port}:\n${this.log()}`,
      },
    );
  }

  log(): string {
    return existsSync(this.#logPath) ? readFileSync(this.#logPath, 'utf8') : '';
  }

  /** The environment a user's program gets: the key and the base URL. */
  env(): Record<string, string> {
    return { THEAZO_API_KEY: this.apiKey, THEAZO_BASE_URL: this.baseURL };
  }

  async stop(): Promise<void> {
    if (this.#process.exitCode === null && this.#process.signalCode === null) {
      this.#process.kill('SIGTERM');
      const timer = setTimeout(() => this.#process.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await this.#exited;
      clearTimeout(timer);
    }
    rmSync(this.#workdir, { recursive: true, force: true });
  }
}

export { PACKAGE_ROOT, REPO_ROOT };
