// One task: what it was asked and what it answered, its cost and model tokens (by model, as
// the model gateway metered them), place in the queue, timeline and attempts, its log as the
// agent writes it, its webhook deliveries, and a cancel button.
// Live through the public task stream (/v1/…/events), read with a short-lived stream token
// the dashboard mints for this session: the page never holds the API key.

import { call } from "./api.js";
import { confirmDialog, h, replace, toast } from "./dom.js";
import { ACTIVE, between, count, duration, money, percent, pretty } from "./format.js";
import { badge, empty, problemText, progressBar, setProgress, time } from "./widgets.js";

const MAX_LOG_LINES = 5000; // kept on the page; older lines scroll away

export async function render(main, route) {
  const [sessionId, taskId] = route.parts;
  const base = `/sessions/${encodeURIComponent(sessionId)}/tasks/${encodeURIComponent(taskId)}`;
  let detail;
  try {
    detail = await call(base);
  } catch (error) {
    if (error.status !== 404) throw error;
    replace(main, empty("No such task", "It does not exist, or belongs to another project. ", h("a", { href: "#/tasks" }, "Back to the tasks"), "."));
    return () => {};
  }
  let closed = false;
  const log = h("pre", { class: "log", id: "task-log", "aria-live": "off", tabindex: 0 });
  const logEmpty = h("p", { class: "muted", id: "log-empty" }, "Nothing written yet: what the agent prints to stdout and stderr shows here as it prints it.");
  const head = h("div");
  const facts = h("div", { class: "facts" });
  const timeline = h("div");
  const tokens = h("div", { id: "task-tokens" });
  const io = h("div", { class: "io" });
  const deliveries = h("div");

  replace(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "#/tasks" }, "← Tasks")),
    head,
    facts,
    h("section", { class: "card" }, h("h2", {}, "Timeline"), timeline),
    h("section", { class: "card" }, h("h2", {}, "Model tokens"), tokens),
    io,
    h("section", { class: "card" }, h("h2", {}, "Log"), logEmpty, log),
    h("section", { class: "card" }, h("h2", {}, "Webhook deliveries"), deliveries),
  );

  function draw() {
    const task = detail.task;
    document.title = `${task.taskId} · ${task.status} · Theazo`;
    const cancel = ACTIVE.has(task.status)
      ? h("button", { type: "button", class: "danger", id: "cancel-task", onclick: cancelTask }, "Cancel task")
      : null;
    replace(head, h("div", { class: "view-head task-head" },
      h("h1", { class: "task-title" }, task.taskId), badge(task.status), h("span", { class: "spacer" }), cancel));
    const position = task.status === "queued" ? (task.queuePosition === null ? "—" : `${task.queuePosition + 1}${task.queuePosition >= 999 ? "+" : ""}`) : "—";
    replace(facts,
      fact("Progress", h("div", { class: "progress-fact" }, progressBar(task.progress, task.status),
        h("span", { class: "percent", id: "task-percent" }, percent(task.progress))),
        h("div", { class: "message", id: "task-message" }, task.message || "")),
      fact("Agent", task.agent),
      fact("User", h("a", { href: `#/tasks?userId=${encodeURIComponent(task.userId)}` }, task.userId), h("div", { class: "muted small" }, task.sessionId)),
      fact("Priority", task.priority),
      fact("Queue position", position),
      fact("Cost", h("span", { id: "task-cost" }, money(task.cost))),
      fact("Model tokens", h("span", { id: "task-tokens-total" }, count(task.usage.tokens.input + task.usage.tokens.output)),
        h("div", { class: "muted small" }, `${count(task.usage.tokens.input)} in · ${count(task.usage.tokens.output)} out`)),
      fact("Attempt", `${task.attempt} of ${task.retries + 1}`),
      fact("Time-out", duration(task.timeout)),
    );
    drawTimeline();
    drawTokens();
    replace(io,
      h("section", { class: "card" }, h("h2", {}, "Input"), h("pre", { class: "json" }, pretty(task.input))),
      task.error
        ? h("section", { class: "card error-card" }, h("h2", {}, "Error"), h("p", {}, h("code", {}, task.error.code)), h("pre", { class: "json" }, task.error.message))
        : h("section", { class: "card" }, h("h2", {}, "Output"),
            task.status === "completed" ? h("pre", { class: "json", id: "task-output" }, pretty(task.output)) : h("p", { class: "muted" }, ACTIVE.has(task.status) ? "Not finished yet." : "None: the task did not complete.")),
    );
    drawDeliveries();
  }

  function drawTimeline() {
    const task = detail.task;
    const steps = [
      ["Created", task.createdAt, null],
      ["Started", task.startedAt, task.startedAt ? `waited ${duration(between(task.createdAt, task.startedAt))}` : null],
      [task.completedAt ? `Ended: ${task.status}` : "Ended", task.completedAt, task.completedAt && task.startedAt ? `ran ${duration(between(task.startedAt, task.completedAt))}` : null],
    ];
    const attempts = detail.attempts.length
      ? h("table", { class: "attempts" },
          h("thead", {}, h("tr", {}, h("th", {}, "Attempt"), h("th", {}, "Started"), h("th", {}, "Ran"), h("th", {}, "How it ended"))),
          h("tbody", {}, detail.attempts.map((a) => h("tr", {},
            h("td", {}, `#${a.number}`), h("td", {}, time(a.startedAt)), h("td", {}, duration(between(a.startedAt, a.endedAt))),
            h("td", {}, a.outcome === "requeued" ? "retried (back in the queue)" : badge(a.outcome))))))
      : h("p", { class: "muted" }, task.status === "queued" ? "Not started yet." : "It never ran.");
    replace(timeline,
      h("ol", { class: "steps" }, steps.map(([label, at, note]) =>
        h("li", { class: at ? "done" : "pending" }, h("strong", {}, label), " ", time(at), note ? h("span", { class: "muted" }, ` · ${note}`) : null))),
      attempts);
  }

  // What its model calls through the gateway used, by model (the dated name the provider
  // answered with), and in all; cached tokens are a part of the input ones.
  function drawTokens() {
    const usage = detail.task.usage;
    const models = Object.entries(usage.byModel);
    if (!models.length) {
      replace(tokens, h("p", { class: "muted", id: "no-model-calls" }, "No model calls: the calls an agent makes through the deployment's model gateway show here, by model."));
      return;
    }
    const cells = (t) => [
      h("td", { class: "num", "data-tokens": "input" }, count(t.input)),
      h("td", { class: "num", "data-tokens": "cached" }, count(t.cached)),
      h("td", { class: "num", "data-tokens": "output" }, count(t.output)),
    ];
    replace(tokens, h("div", { class: "table-wrap" }, h("table", { class: "tokens" },
      h("thead", {}, h("tr", {}, h("th", {}, "Model"), h("th", { class: "num" }, "Input"), h("th", { class: "num" }, "of it cached"), h("th", { class: "num" }, "Output"))),
      h("tbody", {}, models.map(([model, t]) => h("tr", { "data-model": model }, h("td", {}, h("code", {}, model)), cells(t)))),
      h("tfoot", {}, h("tr", { class: "total", "data-model": "" }, h("th", {}, "Total"), cells(usage.tokens))))));
  }

  function drawDeliveries() {
    const task = detail.task;
    if (!task.webhook) {
      replace(deliveries, h("p", { class: "muted" }, "This task asked for no webhook (submit with webhook: URL to get one)."));
      return;
    }
    const redeliver = h("button", { type: "button", class: "quiet", disabled: !task.completedAt, onclick: redeliverNow,
      title: task.completedAt ? "Send the final webhook again" : "Once the task ends" }, "Redeliver");
    const rows = detail.deliveries.map((d) => h("tr", {},
      h("td", {}, d.event), h("td", {}, badge(d.status === "delivered" ? "completed" : d.status === "failed" ? "failed" : "queued"), " ", d.status),
      h("td", { class: "num" }, String(d.attempts)),
      h("td", {}, d.history.length ? lastAttempt(d.history[d.history.length - 1]) : "—"),
      h("td", {}, d.deliveredAt ? time(d.deliveredAt) : d.nextAttemptAt ? h("span", {}, "next ", time(d.nextAttemptAt)) : "—")));
    replace(deliveries,
      h("p", { class: "muted" }, "To ", h("code", {}, task.webhook)),
      rows.length
        ? h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Event"), h("th", {}, "Status"), h("th", { class: "num" }, "Attempts"), h("th", {}, "Last answer"), h("th", {}, "When"))), h("tbody", {}, rows)))
        : h("p", { class: "muted" }, "None yet."),
      redeliver);
  }

  async function refresh() {
    try {
      detail = await call(base);
      if (!closed) draw();
    } catch (error) {
      toast(problemText(error), "error");
    }
  }

  async function cancelTask() {
    const yes = await confirmDialog("Cancel this task?", `${detail.task.taskId} will stop${detail.task.status === "running" ? ", billed to now" : ""}. This cannot be undone.`, "Cancel task");
    if (!yes) return;
    try {
      detail.task = await call(`${base}/cancel`, { method: "POST" });
      toast("Cancelled.", "success");
      await refresh();
    } catch (error) {
      toast(problemText(error), "error");
      await refresh();
    }
  }

  async function redeliverNow() {
    try {
      await call(`${base}/redeliver`, { method: "POST" });
      toast("The final webhook is on its way again.", "success");
      await refresh();
    } catch (error) {
      toast(problemText(error), "error");
    }
  }

  function addLog(line) {
    logEmpty.hidden = true;
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.append(h("span", { class: `line line-${line.stream}`, title: line.at }, line.text, "\n"));
    while (log.childElementCount > MAX_LOG_LINES) log.firstElementChild.remove();
    if (stick) log.scrollTop = log.scrollHeight;
  }

  // The task's stream: the task as it is now, then every event from its first (so the log
  // so far), then what happens, until it ends. A dropped connection resumes after the last
  // id; an expired token is replaced.
  let stream = null;
  let lastId = null;
  let ended = false;
  let tokensDue = null;
  async function follow() {
    if (closed || ended) return;
    const { token } = await call(`/sessions/${encodeURIComponent(sessionId)}/stream-token`);
    const after = lastId === null ? "" : `&after=${encodeURIComponent(lastId)}`;
    stream = new EventSource(`/v1${base}/events?token=${encodeURIComponent(token)}${after}`);
    const seen = (message) => {
      if (message.lastEventId) lastId = message.lastEventId;
    };
    stream.addEventListener("status", (message) => {
      seen(message);
      const task = JSON.parse(message.data);
      if (task.status !== detail.task.status || task.attempt !== detail.task.attempt) refresh();
    });
    stream.addEventListener("progress", (message) => {
      seen(message);
      const change = JSON.parse(message.data);
      setProgress(facts.querySelector(".progress"), change.progress);
      const pct = document.getElementById("task-percent");
      if (pct) pct.textContent = percent(change.progress);
      const text = document.getElementById("task-message");
      if (text) text.textContent = change.message || "";
    });
    stream.addEventListener("charge", (message) => {
      seen(message);
      const charge = JSON.parse(message.data);
      const cost = document.getElementById("task-cost");
      if (cost) cost.textContent = money(charge.cost);
      // A model call's charge is saved with its tokens: read the task again (once a burst).
      if (!tokensDue) tokensDue = setTimeout(() => { tokensDue = null; refresh(); }, 1000);
    });
    stream.addEventListener("log", (message) => {
      seen(message);
      addLog(JSON.parse(message.data));
    });
    stream.addEventListener("end", (message) => {
      seen(message);
      ended = true;
      stream.close();
      refresh();
    });
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED && !ended && !closed) {
        setTimeout(() => follow().catch(() => {}), 1000); // a new token, from the last id
      }
    });
  }

  // A queued task's place moves as others start, which its stream does not announce.
  const timer = setInterval(() => {
    if (detail.task.status === "queued") refresh();
  }, 5000);

  draw();
  await follow();
  return () => {
    closed = true;
    clearInterval(timer);
    clearTimeout(tokensDue);
    if (stream) stream.close();
  };
}

function fact(label, ...value) {
  return h("div", { class: "fact" }, h("div", { class: "fact-label" }, label), h("div", { class: "fact-value" }, ...value));
}

function lastAttempt(attempt) {
  if (attempt.httpStatus !== null) return `HTTP ${attempt.httpStatus}${attempt.error ? ` · ${attempt.error}` : ""} (${attempt.durationMs} ms)`;
  return attempt.error || "no answer";
}
