// The task list: every task of the project across its sessions, filtered, newest first,
// kept live by the project's event stream (/dashboard/api/events) without reloading.

import { call, follow, query } from "./api.js";
import { confirmDialog, h, replace, toast } from "./dom.js";
import { money, STATUSES } from "./format.js";
import { badge, empty, problemText, progressBar, setProgress, time } from "./widgets.js";

const WINDOWS = { "": "Any time", "15m": "Last 15 minutes", "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days" };
const WINDOW_SECONDS = { "15m": 900, "1h": 3600, "24h": 86400, "7d": 604800 };
let agentNames = null;

function filtersOf(params) {
  return {
    status: (params.get("status") || "").split(",").filter((s) => STATUSES.includes(s)),
    agent: params.get("agent") || "",
    userId: params.get("userId") || "",
    sessionId: params.get("sessionId") || "",
    priority: params.get("priority") || "",
    window: params.get("window") || "",
  };
}

function apiFilters(filters) {
  const seconds = WINDOW_SECONDS[filters.window];
  return {
    status: filters.status,
    agent: filters.agent,
    userId: filters.userId,
    sessionId: filters.sessionId,
    priority: filters.priority,
    since: seconds ? new Date(Date.now() - seconds * 1000).toISOString() : "",
  };
}

function hashOf(filters) {
  return `#/tasks${query(filters)}`;
}

export async function render(main, route) {
  const filters = filtersOf(route.params);
  const rows = new Map(); // task id -> its row
  let cursor = null;
  let shown = 0;
  let closed = false;

  const body = h("tbody", { id: "task-rows" });
  const table = h(
    "table",
    { class: "tasks" },
    h("thead", {}, h("tr", {},
      h("th", {}, "Status"), h("th", {}, "Task"), h("th", { class: "wide-only" }, "Agent"),
      h("th", { class: "wide-only" }, "User"), h("th", {}, "Progress"),
      h("th", { class: "wide-only num" }, "Cost"), h("th", { class: "wide-only" }, "Created"))),
    body,
  );
  const list = h("div", { class: "table-wrap" }, table);
  const more = h("button", { type: "button", class: "quiet", hidden: true }, "Show more");
  const summary = h("p", { class: "muted summary", id: "task-summary" });
  const bulk = h("button", { type: "button", class: "danger-outline", id: "bulk-cancel" }, "Cancel matching…");

  replace(
    main,
    h("div", { class: "view-head" }, h("h1", {}, "Tasks"), h("span", { class: "live", title: "Updates as tasks change" }, "live")),
    filterBar(filters),
    h("div", { class: "toolbar" }, summary, bulk),
    list,
    more,
  );

  function rowOf(task) {
    const link = `#/task/${encodeURIComponent(task.sessionId)}/${encodeURIComponent(task.taskId)}`;
    const detail = task.status === "queued" && task.queuePosition !== null ? `#${task.queuePosition + 1} in queue` : task.message || "";
    return h(
      "tr",
      { "data-task": task.taskId, "data-status": task.status, class: "task-row" },
      h("td", {}, badge(task.status)),
      h("td", { class: "task-id" }, h("a", { href: link }, task.taskId),
        h("div", { class: "narrow-only muted" }, `${task.agent} · ${task.userId}`)),
      h("td", { class: "wide-only" }, task.agent),
      h("td", { class: "wide-only" }, h("a", { href: hashOf({ ...filters, userId: task.userId }), title: `Only ${task.userId}'s tasks` }, task.userId)),
      h("td", { class: "progress-cell" }, progressBar(task.progress, task.status), h("div", { class: "message muted" }, detail)),
      h("td", { class: "wide-only num" }, money(task.cost)),
      h("td", { class: "wide-only" }, time(task.createdAt)),
    );
  }

  async function load({ append = false } = {}) {
    const limit = append ? 50 : Math.max(50, Math.min(shown, 500));
    const page = await call(`/tasks${query({ ...apiFilters(filters), limit, cursor: append ? cursor : null })}`);
    if (closed) return;
    if (!append) {
      body.replaceChildren();
      rows.clear();
    }
    for (const task of page.data) {
      const row = rowOf(task);
      rows.set(task.taskId, row);
      body.append(row);
    }
    cursor = page.nextCursor;
    shown = rows.size;
    more.hidden = !cursor;
    summary.textContent = shown ? `${shown}${cursor ? "+" : ""} task${shown === 1 ? "" : "s"}` : "";
    if (!shown) {
      const filtered = Object.values(filters).some((v) => (Array.isArray(v) ? v.length : v));
      list.replaceChildren(filtered
        ? empty("No tasks match these filters", "Change them, or ", h("a", { href: "#/tasks" }, "show every task"), ".")
        : empty("No tasks yet", "Submit one and watch it here: ",
            h("code", {}, `theazo submit echo --input '{"hello": "world"}'`),
            " (with THEAZO_API_KEY set to this project's key), or with the SDK: session.tasks.submit(agent=…, input=…)."));
    } else if (!list.contains(table)) {
      list.replaceChildren(table);
    }
  }

  more.addEventListener("click", () => load({ append: true }).catch((e) => toast(problemText(e), "error")));
  bulk.addEventListener("click", () => bulkCancel(filters).then(() => load()).catch((e) => toast(problemText(e), "error")));

  // Live: progress moves rows in place; a status change (or a new task) reads the list again,
  // once for a burst of changes.
  let reload = null;
  function reloadSoon() {
    if (reload) return;
    reload = setTimeout(() => {
      reload = null;
      load().catch(() => {});
    }, 400);
  }
  const stop = follow({
    resync: reloadSoon,
    task: (message) => {
      const change = JSON.parse(message.data);
      const row = rows.get(change.taskId);
      if (change.kind === "progress" && row) {
        setProgress(row.querySelector(".progress"), change.progress);
        row.querySelector(".message").textContent = change.message || "";
      } else if (change.kind === "status") {
        reloadSoon();
      }
    },
  });

  await load();
  return () => {
    closed = true;
    stop();
    clearTimeout(reload);
  };
}

function filterBar(filters) {
  const go = (changes) => {
    location.hash = hashOf({ ...filters, ...changes });
  };
  const chips = STATUSES.map((status) => {
    const on = filters.status.includes(status);
    return h("button", {
      type: "button",
      class: `chip chip-${status}${on ? " on" : ""}`,
      "aria-pressed": on ? "true" : "false",
      onclick: () => go({ status: on ? filters.status.filter((s) => s !== status) : [...filters.status, status] }),
    }, status);
  });
  const agent = h("select", { name: "agent", "aria-label": "Agent", onchange: (e) => go({ agent: e.target.value }) },
    h("option", { value: "" }, "Every agent"));
  const fillAgents = (names) => {
    for (const name of names) agent.append(h("option", { value: name, selected: name === filters.agent }, name));
    if (filters.agent && !names.includes(filters.agent)) agent.append(h("option", { value: filters.agent, selected: true }, filters.agent));
  };
  if (agentNames) fillAgents(agentNames);
  else call("/overview").then((o) => fillAgents((agentNames = o.agents.map((a) => a.name)))).catch(() => fillAgents([]));

  const text = (name, label, value) => {
    const input = h("input", { name, type: "search", placeholder: label, "aria-label": label, value, size: 14 });
    input.addEventListener("change", () => go({ [name]: input.value.trim() }));
    return input;
  };
  const priority = h("select", { name: "priority", "aria-label": "Priority", onchange: (e) => go({ priority: e.target.value }) },
    ...[["", "Any priority"], ["high", "High"], ["normal", "Normal"], ["low", "Low"]].map(([v, l]) => h("option", { value: v, selected: v === filters.priority }, l)));
  const windowSelect = h("select", { name: "window", "aria-label": "Created", onchange: (e) => go({ window: e.target.value }) },
    ...Object.entries(WINDOWS).map(([v, l]) => h("option", { value: v, selected: v === filters.window }, l)));
  const active = Object.values(filters).some((v) => (Array.isArray(v) ? v.length : v));
  return h("div", { class: "filters", role: "group", "aria-label": "Filters" },
    h("div", { class: "chips" }, chips),
    h("div", { class: "fields" }, agent, text("userId", "User id", filters.userId), text("sessionId", "Session id", filters.sessionId), priority, windowSelect,
      active ? h("a", { href: "#/tasks", class: "clear" }, "Clear filters") : null));
}

async function bulkCancel(filters) {
  const params = apiFilters(filters); // one "since" for the count and the cancel
  const selection = await call(`/tasks/selection${query(params)}`);
  if (!selection.count) {
    toast("No queued or running task matches these filters: nothing to cancel.");
    return;
  }
  const count = `${selection.count}${selection.capped ? " (the first of more)" : ""}`;
  const yes = await confirmDialog(
    `Cancel ${count} task${selection.count === 1 ? "" : "s"}?`,
    `Every queued or running task these filters select, up to the newest one counted, will be cancelled. Running ones are stopped and billed to now. This cannot be undone.`,
    `Cancel ${selection.count} task${selection.count === 1 ? "" : "s"}`,
  );
  if (!yes) return;
  const done = await call("/tasks/cancel", { method: "POST", body: { ...withoutEmpty(params), through: selection.through } });
  const ended = done.alreadyEnded ? `; ${done.alreadyEnded} had ended already` : "";
  toast(`Cancelled ${done.cancelled.length} task${done.cancelled.length === 1 ? "" : "s"}${ended}.`, "success");
}

function withoutEmpty(params) {
  const out = {};
  for (const [name, value] of Object.entries(params)) {
    if (Array.isArray(value) ? value.length : value) out[name] = value;
  }
  return out;
}
