// Small pieces every view uses: a time that reads relative and shows the exact one on hover,
// a status badge, a progress bar, a state shown when there is nothing to show.

import { h } from "./dom.js";
import { ago, exact, percent } from "./format.js";

export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: exact(iso), "data-relative": "" }, ago(iso));
}

// Relative times move on by themselves.
setInterval(() => {
  for (const el of document.querySelectorAll("time[data-relative]")) {
    el.textContent = ago(el.getAttribute("datetime"));
  }
}, 5000);

export function badge(status) {
  return h("span", { class: `badge badge-${status}`, "data-status": status }, status);
}

// Widths are set through the CSSOM, not a style attribute: the page's Content-Security-Policy
// allows no inline style.
export function progressBar(progress, status) {
  if (status === "completed" && (progress === null || progress === undefined)) progress = 1;
  const known = progress !== null && progress !== undefined;
  const value = known ? Math.max(0, Math.min(1, progress)) : 0;
  const fill = h("div", { class: "progress-fill" });
  fill.style.width = `${(value * 100).toFixed(1)}%`;
  return h(
    "div",
    {
      class: `progress progress-${status}${known ? "" : " progress-unknown"}`,
      role: "progressbar",
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": known ? Math.round(value * 100) : null,
      "data-progress": known ? value : null,
      title: known ? percent(value) : "no progress reported",
    },
    fill,
  );
}

export function setProgress(bar, progress) {
  if (!bar || progress === null || progress === undefined) return;
  const value = Math.max(0, Math.min(1, progress));
  bar.classList.remove("progress-unknown");
  bar.dataset.progress = String(value);
  bar.setAttribute("aria-valuenow", String(Math.round(value * 100)));
  bar.title = percent(value);
  bar.firstElementChild.style.width = `${(value * 100).toFixed(1)}%`;
}

export function empty(title, ...body) {
  return h("div", { class: "empty" }, h("h2", {}, title), h("p", {}, ...body));
}

export function code(text) {
  return h("code", {}, text);
}

export function problemText(error) {
  return error?.problem?.detail || error?.message || String(error);
}
