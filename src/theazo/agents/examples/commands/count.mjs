#!/usr/bin/env node
// A command agent in Node: counts to the input's "n" (default 3), reporting progress and a
// charge per step on descriptor 3 (see docs/agents.md, "Agents in any language").
//   {"n": 5}              counts to 5; the output is {"counted": 5, "by": "node"}
//   {"fail": "error"}     ends with an error line (code "count_refused")
//   {"fail": "exit"}      exits with status 3 without an output line
//   {"sleep": SECONDS}    sleeps first (to be cancelled)
import { readFileSync, writeSync } from "node:fs";

const channel = Number(process.env.THEAZO_CHANNEL_FD ?? 3);
const send = (message) => writeSync(channel, JSON.stringify(message) + "\n");

const input = JSON.parse(readFileSync(0, "utf8")) ?? {}; // one JSON object, then EOF
const n = Number.isInteger(input.n) ? input.n : 3;

if (input.sleep) {
  send({ progress: { message: "sleeping" } });
  await new Promise((resolve) => setTimeout(resolve, input.sleep * 1000));
}
if (input.fail === "error") {
  send({ error: { code: "count_refused", message: "asked to refuse" } });
  process.exit(0);
}
for (let i = 1; i <= n; i++) {
  console.log(`counting ${i} of ${n}`); // stdout and stderr are the task's log
  send({ progress: { current: i, total: n, message: `counted ${i}` } });
  send({ charge: "0.5", description: "one step" });
}
console.error("done counting");
if (input.fail === "exit") process.exit(3);
send({ output: { counted: n, by: "node" } });
