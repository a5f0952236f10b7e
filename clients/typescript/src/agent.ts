/**
 * Writing a Theazo command agent in Node: `runAgent` speaks the protocol of docs/agents.md
 * ("Agents in any language") for you. It reads the task's input from stdin, gives your
 * function a context whose `progress` and `charge` write JSON lines on descriptor 3, and
 * writes your function's result as the `output` line, or what it throws as the `error` line.
 * What the function prints (console.log, console.error) is the task's log.
 *
 * ```js
 * #!/usr/bin/env node
 * import { runAgent, AgentError } from 'theazo/agent';
 *
 * await runAgent(async (input, ctx) => {
 *   if (!Number.isInteger(input.n)) throw new AgentError('bad_n', 'n must be an integer');
 *   for (let i = 1; i <= input.n; i++) {
 *     ctx.progress(i, input.n, `counted ${i}`);
 *     ctx.charge('0.5', 'one step');
 *   }
 *   return { counted: input.n };
 * });
 * ```
 *
 * This module has no dependency and imports nothing, so it may be used as a single file:
 * a copy of its build ships next to the examples (`theazo-agent.mjs`), shown to a sandbox with
 * the agents file's `files` key.
 *
 * @module
 */

/** The two functions of `node:fs` used here, declared so that the package needs no @types/node. */
interface FileSystem {
  readFileSync(fd: number, encoding: 'utf8'): string;
  writeSync(fd: number, text: string): number;
}

interface NodeProcess {
  readonly env: Readonly<Record<string, string | undefined>>;
  exitCode?: number | string | undefined;
  getBuiltinModule(id: 'node:fs'): FileSystem;
}

declare const process: NodeProcess;

/** Where the reports go when `THEAZO_CHANNEL_FD` does not say: the protocol's descriptor. */
export const CHANNEL_FD = 3;

/** Throw it from an agent to fail the task with a code of your own (snake_case), not `agent_error`. */
export class AgentError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'AgentError';
    this.code = code;
  }
}

/** An amount in the currency's minor units (cents for usd), possibly fractional: `12`, `"0.5"`. */
export type Amount = number | string;

/** What an agent function is given besides its input. */
export interface AgentContext {
  /** The task's id (`task_…`), or `""` when run outside Theazo. */
  readonly taskId: string;
  /** Progress as `current` of `total` (0 ≤ current ≤ total, total > 0), with a message. */
  progress(current: number, total: number, message?: string): void;
  /** Only a message (`"thinking"`), the progress staying as it was. */
  progress(message: string): void;
  /** Add `amount` minor units to the task's cost, like `ctx.charge` in a Python agent. */
  charge(amount: Amount, description?: string): void;
}

/** An agent: the task's input (any JSON) and a context, to the task's output (any JSON). */
export type AgentFunction<Input = any, Output = unknown> = (
  input: Input,
  ctx: AgentContext,
) => Output | Promise<Output>;

/** Where `runAgent` reads and writes; the defaults are the protocol's (for tests). */
export interface RunAgentOptions {
  /** The task's input as JSON text; by default all of stdin. */
  readonly input?: string;
  /** The descriptor the reports are written to; by default `THEAZO_CHANNEL_FD`, else 3. */
  readonly channelFd?: number;
}

/**
 * Run `agent` as the task: read the input, call it, write its output (or its error) on the
 * channel. Resolves once the last line is written, having set the process's exit code (0 when
 * the agent returned, 1 when it threw); rejects only when the channel cannot be written (the
 * script was run by hand, without a descriptor 3).
 */
export async function runAgent<Input = any, Output = unknown>(
  agent: AgentFunction<Input, Output>,
  options: RunAgentOptions = {},
): Promise<void> {
  const fs = process.getBuiltinModule('node:fs');
  const fd = options.channelFd ?? channelFromEnvironment();
  const write = (line: string): void => {
    try {
      // Synchronous: a line still in a buffer when the process exits would be lost.
      fs.writeSync(fd, `${line}\n`);
    } catch (error) {
      throw new Error(
        `cannot write to descriptor ${fd} (${messageOf(error)}): a command agent runs under Theazo, ` +
          'e.g. `theazo run NAME --command-agent NAME=PATH`',
      );
    }
  };
  const send = (message: Record<string, unknown>): void => write(JSON.stringify(message));
  let output: unknown;
  try {
    const text = options.input ?? fs.readFileSync(0, 'utf8');
    const input = (text.trim() === '' ? null : JSON.parse(text)) as Input;
    output = await agent(input, context(send));
  } catch (error) {
    send({ error: describe(error) });
    process.exitCode = 1;
    return;
  }
  let line: string;
  try {
    line = JSON.stringify({ output: output ?? null });
  } catch (error) {
    send({ error: { code: 'invalid_output', message: `the output is not JSON: ${messageOf(error)}` } });
    process.exitCode = 1;
    return;
  }
  write(line);
  process.exitCode = 0;
}

function context(send: (message: Record<string, unknown>) => void): AgentContext {
  return {
    taskId: process.env['THEAZO_TASK_ID'] ?? '',
    progress(first: number | string, total?: number, message?: string): void {
      if (typeof first === 'string') {
        send({ progress: { message: first } });
        return;
      }
      send({
        progress: message === undefined ? { current: first, total } : { current: first, total, message },
      });
    },
    charge(amount: Amount, description?: string): void {
      send(description === undefined ? { charge: amount } : { charge: amount, description });
    },
  };
}

function channelFromEnvironment(): number {
  const declared = Number(process.env['THEAZO_CHANNEL_FD']);
  return Number.isInteger(declared) && declared >= 0 ? declared : CHANNEL_FD;
}

function describe(error: unknown): { code: string; message: string } {
  if (error instanceof AgentError) return { code: error.code, message: error.message };
  return { code: 'agent_error', message: messageOf(error) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
