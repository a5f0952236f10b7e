#!/usr/bin/env node
// count.mjs again, written with the helper for Node agents (theazo/agent in the TypeScript
// package): the helper reads the input, writes the JSON lines on descriptor 3 and turns a
// return into the output line and a throw into the error line. It is imported by relative
// path from its single-file copy, theazo-agent.mjs, which agents.toml shows the sandbox next
// to this file (`files = ["theazo-agent.mjs"]`). Same inputs and outputs as count.mjs.
import { AgentError, runAgent } from "./theazo-agent.mjs";

await runAgent(async (input, ctx) => {
  const n = Number.isInteger(input?.n) ? input.n : 3;
  if (input?.sleep) {
    ctx.progress("sleeping");
    await new Promise((resolve) => setTimeout(resolve, input.sleep * 1000));
  }
  if (input?.fail === "error") throw new AgentError("count_refused", "asked to refuse");
  for (let i = 1; i <= n; i++) {
    console.log(`counting ${i} of ${n}`); // stdout and stderr are the task's log
    ctx.progress(i, n, `counted ${i}`);
    ctx.charge("0.5", "one step");
  }
  console.error("done counting");
  if (input?.fail === "exit") process.exit(3);
  return { counted: n, by: "node" };
});
