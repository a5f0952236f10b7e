// theazo/agent, the helper for command agents in Node, as one file with no dependency:
// built from clients/typescript/src/agent.ts by `npm run vendor:agent`; do not edit.
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
/** Where the reports go when `THEAZO_CHANNEL_FD` does not say: the protocol's descriptor. */
export const CHANNEL_FD = 3;
/** Throw it from an agent to fail the task with a code of your own (snake_case), not `agent_error`. */
export class AgentError extends Error {
    code;
    constructor(code, message) {
        super(message);
        this.name = 'AgentError';
        this.code = code;
    }
}
/**
 * Run `agent` as the task: read the input, call it, write its output (or its error) on the
 * channel. Resolves once the last line is written, having set the process's exit code (0 when
 * the agent returned, 1 when it threw); rejects only when the channel cannot be written (the
 * script was run by hand, without a descriptor 3).
 */
export async function runAgent(agent, options = {}) {
    const fs = process.getBuiltinModule('node:fs');
    const fd = options.channelFd ?? channelFromEnvironment();
    const write = (line) => {
        try {
            // Synchronous: a line still in a buffer when the process exits would be lost.
            fs.writeSync(fd, `${line}\n`);
        }
        catch (error) {
            throw new Error(`cannot write to descriptor ${fd} (${messageOf(error)}): a command agent runs under Theazo, ` +
                'e.g. `theazo run NAME --command-agent NAME=PATH`');
        }
    };
    const send = (message) => write(JSON.stringify(message));
    let output;
    try {
        const text = options.input ?? fs.readFileSync(0, 'utf8');
        const input = (text.trim() === '' ? null : JSON.parse(text));
        output = await agent(input, context(send));
    }
    catch (error) {
        send({ error: describe(error) });
        process.exitCode = 1;
        return;
    }
    let line;
    try {
        line = JSON.stringify({ output: output ?? null });
    }
    catch (error) {
        send({ error: { code: 'invalid_output', message: `the output is not JSON: ${messageOf(error)}` } });
        process.exitCode = 1;
        return;
    }
    write(line);
    process.exitCode = 0;
}
function context(send) {
    return {
        taskId: process.env['THEAZO_TASK_ID'] ?? '',
        progress(first, total, message) {
            if (typeof first === 'string') {
                send({ progress: { message: first } });
                return;
            }
            send({
                progress: message === undefined ? { current: first, total } : { current: first, total, message },
            });
        },
        charge(amount, description) {
            send(description === undefined ? { charge: amount } : { charge: amount, description });
        },
    };
}
function channelFromEnvironment() {
    const declared = Number(process.env['THEAZO_CHANNEL_FD']);
    return Number.isInteger(declared) && declared >= 0 ? declared : CHANNEL_FD;
}
function describe(error) {
    if (error instanceof AgentError)
        return { code: error.code, message: error.message };
    return { code: 'agent_error', message: messageOf(error) };
}
function messageOf(error) {
    return error instanceof Error ? error.message : String(error);
}
