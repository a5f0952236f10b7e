// Sessions: each end user's session, with its limits, what it uses now, what it spent and the
// model tokens of all its tasks; its limits are edited in place.

import { call, query } from "./api.js";
import { h, replace, toast } from "./dom.js";
import { count, minorUnits, money } from "./format.js";
import { empty, problemText, time } from "./widgets.js";

export async function render(main) {
  const body = h("tbody");
  const more = h("button", { type: "button", class: "quiet", hidden: true }, "Show more");
  const list = h("div", { class: "table-wrap" }, h("table", { class: "sessions" },
    h("thead", {}, h("tr", {}, h("th", {}, "User"), h("th", { class: "wide-only" }, "Created"), h("th", { class: "num" }, "Tasks"),
      h("th", { class: "num" }, "Running"), h("th", { class: "num" }, "Queued"), h("th", { class: "num" }, "Spent"), h("th", { class: "num" }, "Model tokens"), h("th", {}, ""))),
    body));
  replace(main, h("div", { class: "view-head" }, h("h1", {}, "Sessions")),
    h("p", { class: "muted" }, "One per end user of your application. Limits left unset follow the server's defaults."),
    list, more);
  let after = null;

  async function load() {
    const page = await call(`/sessions${query({ after })}`);
    for (const session of page.data) body.append(...rows(session));
    after = page.nextAfter;
    more.hidden = !after;
    if (!body.childElementCount) {
      replace(list, empty("No sessions yet", "A session is made the first time your application asks for a user's: ",
        h("code", {}, `theazo.sessions.for_user("user_123")`), "."));
    }
  }
  more.addEventListener("click", () => load().catch((e) => toast(problemText(e), "error")));
  await load();
  return () => {};
}

function rows(session) {
  const limits = session.limits;
  const row = h("tr", { "data-session": session.sessionId });
  const editor = h("tr", { class: "editor", hidden: true });
  const fill = (current) => {
    // data-label: at phone width each row is a card, each cell with its label.
    replace(row,
      h("td", { class: "who-cell" }, h("a", { href: `#/tasks?userId=${encodeURIComponent(current.userId)}` }, current.userId), h("div", { class: "muted small" }, current.sessionId)),
      h("td", { class: "wide-only" }, time(current.createdAt)),
      h("td", { class: "num", "data-label": "Tasks" }, String(current.usage.tasks)),
      h("td", { class: "num", "data-label": "Running" }, `${current.usage.running} / ${current.limits.maxRunning}`),
      h("td", { class: "num", "data-label": "Queued" }, `${current.usage.queued} / ${current.limits.maxQueued}`),
      h("td", { class: "num", "data-label": "Spent" }, money(current.usage.cost), h("div", { class: "muted small" }, current.limits.budget === null ? "no budget" : `of ${minorUnits(current.limits.budget, current.usage.cost.currency)}`)),
      tokenCell(current.usage.tokens),
      h("td", { class: "edit-cell" }, h("button", { type: "button", class: "quiet", onclick: () => { editor.hidden = !editor.hidden; } }, "Edit limits")));
  };
  fill(session);
  const field = (name, label, value, help) => h("label", { class: "field" }, label,
    h("input", { name, type: "number", min: 0, step: 1, value: value === null ? "" : value, inputmode: "numeric" }), h("span", { class: "muted small" }, help));
  const form = h("form", { class: "limits-form" },
    field("maxRunning", "Max running", limits.maxRunning, "tasks at once"),
    field("maxQueued", "Max queued", limits.maxQueued, "waiting at most"),
    field("budget", "Budget", limits.budget, "minor units (cents); empty: none"),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", class: "quiet", onclick: () => { editor.hidden = true; } }, "Close")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const number = (name) => (data.get(name) === "" ? null : Number(data.get(name)));
    const body = { limits: { budget: number("budget") } };
    if (number("maxRunning") !== null) body.limits.maxRunning = number("maxRunning");
    if (number("maxQueued") !== null) body.limits.maxQueued = number("maxQueued");
    try {
      const updated = await call(`/sessions/${encodeURIComponent(session.sessionId)}`, { method: "PATCH", body });
      fill(updated);
      editor.hidden = true;
      toast(`Limits of ${updated.userId} saved.`, "success");
    } catch (error) {
      toast(problemText(error), "error");
    }
  });
  editor.append(h("td", { colspan: 8 }, form));
  return [row, editor];
}

// All its tasks' model tokens: in and out, and the cached part of the input.
function tokenCell(tokens) {
  return h("td", { class: "num tokens-cell", "data-label": "Model tokens" },
    h("span", { "data-tokens": "total" }, count(tokens.input + tokens.output)),
    h("div", { class: "muted small" },
      h("span", { "data-tokens": "input" }, count(tokens.input)), " in (",
      h("span", { "data-tokens": "cached" }, count(tokens.cached)), " cached) · ",
      h("span", { "data-tokens": "output" }, count(tokens.output)), " out"));
}

