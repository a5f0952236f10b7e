#!/usr/bin/env node
// A command agent in Node calling a model with the built-in fetch, as any Node agent would:
// OPENAI_BASE_URL and the (dummy) OPENAI_API_KEY are the gateway's, nothing else is needed.
//   {"model": "fake-gpt", "text": "hi", "stream": false}
// outputs {"status": HTTP status, "text": the answer's text (a stream: its raw events)}.
import { readFileSync, writeSync } from "node:fs";

const channel = Number(process.env.THEAZO_CHANNEL_FD ?? 3);
const send = (message) => writeSync(channel, JSON.stringify(message) + "\n");
const input = JSON.parse(readFileSync(0, "utf8")) ?? {};

const response = await fetch(`${process.env.OPENAI_BASE_URL}/chat/completions`, {
  method: "POST",
  headers: {
    "content-type": "application/json",
    authorization: `Bearer ${process.env.OPENAI_API_KEY}`,
  },
  body: JSON.stringify({
    model: input.model,
    messages: [{ role: "user", content: input.text }],
    stream: Boolean(input.stream),
  }),
});
const text = input.stream
  ? await response.text()
  : (await response.json()).choices[0].message.content;
send({ output: { status: response.status, text } });
