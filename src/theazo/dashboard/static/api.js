// Talking to the dashboard's JSON (/dashboard/api): the sign-in cookie goes by itself
// (HttpOnly: this page never sees it); every change carries the CSRF token, which lives in
// this module's memory only, never in localStorage or sessionStorage.

let csrfToken = null;
const signedOutListeners = [];

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function onSignedOut(listener) {
  signedOutListeners.push(listener);
}

export function remember(me) {
  csrfToken = me ? me.csrfToken : null;
}

export async function call(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken || "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/dashboard/api${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && path !== "/sign-in") {
      csrfToken = null;
      for (const listener of signedOutListeners) listener();
    }
    throw new ApiError(response.status, data);
  }
  return data;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) continue;
    search.set(name, Array.isArray(value) ? value.join(",") : value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// The project's live changes (/dashboard/api/events). EventSource reconnects by itself after
// a dropped connection; an answer that is not a stream (the sign-in expired: 401) closes it
// for good, so then the sign-in is checked (a 401 signs the page out) and the stream opened
// again. Every (re)connection starts with "resync": read what may have been missed.
export function follow(handlers) {
  let source = null;
  let stopped = false;
  let retry = null;
  const open = () => {
    source = new EventSource("/dashboard/api/events");
    for (const [name, handler] of Object.entries(handlers)) source.addEventListener(name, handler);
    source.addEventListener("error", () => {
      if (stopped || source.readyState !== EventSource.CLOSED) return;
      retry = setTimeout(() => call("/me").then(() => !stopped && open()).catch(() => {}), 2000);
    });
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(retry);
    source.close();
  };
}
