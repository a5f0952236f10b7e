// How values read on the page: times relative with the exact one on hover, money, statuses.

const UNITS = [
  ["day", 86400],
  ["h", 3600],
  ["min", 60],
  ["s", 1],
];

export function ago(iso, now = Date.now()) {
  if (!iso) return "—";
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  const future = seconds < 0;
  const size = Math.abs(seconds);
  if (size < 5) return future ? "in a moment" : "just now";
  if (size >= 7 * 86400) return exact(iso, { short: true });
  for (const [unit, length] of UNITS) {
    if (size >= length) {
      const n = Math.floor(size / length);
      const label = unit === "day" ? (n === 1 ? "day" : "days") : unit;
      return future ? `in ${n} ${label}` : `${n} ${label} ago`;
    }
  }
  return "just now";
}

export function exact(iso, { short = false } = {}) {
  if (!iso) return "";
  const date = new Date(iso);
  return short
    ? date.toLocaleDateString(undefined, { month: "short", day: "numeric" })
    : date.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
      });
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} days ${Math.round((seconds % 86400) / 3600)} h`;
}

export function between(startIso, endIso) {
  if (!startIso) return null;
  const end = endIso ? Date.parse(endIso) : Date.now();
  return Math.max((end - Date.parse(startIso)) / 1000, 0);
}

// Minor units (cents) of a currency, as people read them.
export function money(cost) {
  if (!cost) return "—";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: cost.currency.toUpperCase() })
      .format(cost.amount / 100);
  } catch {
    return `${cost.amount} ${cost.currency}`;
  }
}

export function minorUnits(amount, currency = "usd") {
  return amount === null || amount === undefined ? "no budget" : money({ amount, currency });
}

// A count (of tokens) with the reader's digit grouping.
export function count(n) {
  return n === null || n === undefined ? "—" : new Intl.NumberFormat().format(n);
}

export function percent(progress) {
  return progress === null || progress === undefined ? "" : `${Math.round(progress * 100)}%`;
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

export const STATUSES = ["queued", "running", "completed", "failed", "cancelled"];
export const ACTIVE = new Set(["queued", "running"]);
