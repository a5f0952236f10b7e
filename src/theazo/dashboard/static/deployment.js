// The deployment at a glance: this project's queue by priority, its oldest waiting task and
// recent failure rate; the nodes with their slots; the agents with their input schemas.

import { call, follow } from "./api.js";
import { h, replace } from "./dom.js";
import { duration, pretty } from "./format.js";
import { empty, time } from "./widgets.js";

export async function render(main) {
  const view = h("div");
  replace(main, h("div", { class: "view-head" }, h("h1", {}, "Deployment")), view);
  let closed = false;

  async function load() {
    const overview = await call("/overview");
    if (!closed) draw(view, overview);
  }
  let soon = null;
  const reloadSoon = () => {
    if (!soon) soon = setTimeout(() => { soon = null; load().catch(() => {}); }, 1000);
  };
  const stop = follow({
    resync: reloadSoon,
    task: (m) => {
      if (JSON.parse(m.data).kind === "status") reloadSoon();
    },
  });
  const timer = setInterval(() => load().catch(() => {}), 10000); // ages and heartbeats move on
  await load();
  return () => {
    closed = true;
    stop();
    clearInterval(timer);
    clearTimeout(soon);
  };
}

function draw(view, o) {
  const queued = o.queue.reduce((n, p) => n + p.queued, 0);
  const running = o.queue.reduce((n, p) => n + p.running, 0);
  const recent = o.recent;
  const rate = recent.failureRate === null ? "—" : `${(recent.failureRate * 100).toFixed(1)}%`;
  replace(view,
    h("div", { class: "tiles" },
      tile("Queued", String(queued), "tasks waiting", "queued-total"),
      tile("Running", String(running), "tasks running now", "running-total"),
      tile("Oldest waiting", o.oldestQueuedSeconds === null ? "—" : duration(o.oldestQueuedSeconds),
        o.oldestQueuedAt ? h("span", {}, "since ", time(o.oldestQueuedAt)) : "nothing waits", "oldest-wait"),
      tile("Failure rate", rate, `${recent.failed} failed, ${recent.completed} completed, ${recent.cancelled} cancelled in the last ${duration(recent.windowSeconds)}`, "failure-rate")),
    h("section", { class: "card" }, h("h2", {}, "Queue by priority"),
      h("table", { class: "compact" }, h("thead", {}, h("tr", {}, h("th", {}, "Priority"), h("th", { class: "num" }, "Queued"), h("th", { class: "num" }, "Running"))),
        h("tbody", {}, o.queue.map((p) => h("tr", { "data-priority": p.priority }, h("td", {}, p.priority), h("td", { class: "num" }, String(p.queued)), h("td", { class: "num" }, String(p.running))))))),
    h("section", { class: "card" }, h("h2", {}, "Nodes"),
      h("p", { class: "muted" }, "Every node of the deployment that runs tasks, for all its projects."),
      o.nodes.length ? h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Node"), h("th", {}, "Slots"), h("th", { class: "wide-only" }, "Started"), h("th", {}, "Last heard"))),
        h("tbody", {}, o.nodes.map((n) => h("tr", {},
          h("td", {}, n.host, h("div", { class: "muted small" }, n.workerId)),
          h("td", {}, slots(n)),
          h("td", { class: "wide-only" }, time(n.startedAt)),
          h("td", {}, time(n.heartbeatAt)))))))
        : empty("No node runs tasks", "Start one with ", h("code", {}, "theazo serve"), " or ", h("code", {}, "theazo worker"), ".")),
    h("section", { class: "card" }, h("h2", {}, "Agents"),
      o.agents.length ? h("ul", { class: "agents" }, o.agents.map((a) => h("li", {},
        h("strong", {}, a.name), h("p", {}, a.description || h("span", { class: "muted" }, "No description.")),
        a.inputSchema ? h("details", {}, h("summary", {}, "Input schema"), h("pre", { class: "json" }, pretty(a.inputSchema))) : h("p", { class: "muted small" }, "Any JSON input."))))
        : empty("No agents", "Serve some with ", h("code", {}, "theazo serve --agents myapp.agents"), ".")),
  );
}

function tile(label, value, note, id) {
  return h("div", { class: "tile", id }, h("div", { class: "tile-label" }, label), h("div", { class: "tile-value" }, value), h("div", { class: "tile-note muted" }, note));
}

function slots(node) {
  if (node.slots === null) return `${node.running} running`;
  const used = h("div", { class: "progress progress-running" }, h("div", { class: "progress-fill" }));
  used.firstElementChild.style.width = `${node.slots ? (100 * node.running) / node.slots : 0}%`;
  return h("div", { class: "slots" }, used, h("span", { class: "small" }, `${node.running} used, ${node.free} free of ${node.slots}`));
}
