// The dashboard's page: who is signed in, which view the address names (#/tasks,
// #/task/SESSION/TASK, #/sessions, #/deployment), and the sign-in form.

import { call, onSignedOut, remember, ApiError } from "./api.js";
import { h, replace, toast } from "./dom.js";
import { problemText } from "./widgets.js";
import * as tasks from "./tasks.js";
import * as task from "./task.js";
import * as sessions from "./sessions.js";
import * as deployment from "./deployment.js";

const main = document.getElementById("main");
const bar = document.getElementById("bar");
let me = null;
let leave = null; // the current view's clean-up: its streams and timers

function route() {
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || "tasks", parts: parts.slice(1), params: new URLSearchParams(search) };
}

async function show() {
  if (leave) leave();
  leave = null;
  if (!me) return signInForm();
  const current = route();
  const views = { tasks, task, sessions, deployment };
  const view = views[current.name] || tasks;
  document.title = `${{ tasks: "Tasks", task: "Task", sessions: "Sessions", deployment: "Deployment" }[current.name] || "Tasks"} · Theazo`;
  for (const link of document.querySelectorAll("[data-nav]")) {
    const on = link.dataset.nav === current.name || (current.name === "task" && link.dataset.nav === "tasks");
    link.classList.toggle("active", on);
    if (on) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  replace(main);
  try {
    leave = await view.render(main, current);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    replace(main, h("div", { class: "empty" }, h("h2", {}, "Something went wrong"), h("p", {}, problemText(error))));
  }
}

function signInForm() {
  bar.hidden = true;
  const input = h("input", {
    id: "api-key", name: "apiKey", type: "password", required: true, autocomplete: "off",
    spellcheck: "false", placeholder: "th_live_…", "aria-describedby": "sign-in-help",
  });
  const message = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "sign-in card", id: "sign-in" },
    h("h1", {}, "Theazo"),
    h("label", { for: "api-key" }, "Project API key"),
    input,
    h("p", { id: "sign-in-help", class: "muted" },
      "The key theazo serve printed on its first start, or one from theazo keys create. It is checked once and not kept: the browser holds a sign-in cookie instead."),
    message,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    try {
      me = await call("/sign-in", { method: "POST", body: { apiKey: input.value } });
      input.value = "";
      signedIn();
    } catch (error) {
      message.textContent = error.status === 401 ? "That key is not known here." : problemText(error);
    }
  });
  replace(main, form);
  input.focus();
}

function signedIn() {
  remember(me);
  bar.hidden = false;
  const who = document.getElementById("who");
  who.textContent = me.projectId;
  who.title = `Signed in to project ${me.projectId}`;
  show();
}

onSignedOut(() => {
  if (!me) return;
  me = null;
  remember(null);
  toast("Signed out: sign in again to go on.");
  show();
});

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await call("/sign-out", { method: "POST" });
  } finally {
    me = null;
    remember(null);
    show();
  }
});

window.addEventListener("hashchange", show);

try {
  me = await call("/me");
  signedIn();
} catch {
  me = null;
  show();
}
