// Small DOM helpers of the views: h() builds elements (text always through text nodes, never innerHTML),
// badges coloured by state, the formats of sizes, times and durations, a view of a list and its items' pages.
//
// Invariant: nothing here parses HTML; data given to h() as a child becomes a text node.

/** h("div", {class: "x", onclick: fn, dataset: {k: v}, text: "t", style: {color: "red"}}, "text", child, [more])
 * -> the element (``style`` through the CSSOM: allowed under a CSP without inline styles). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name === "style" && typeof value === "object") Object.assign(element.style, value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else if (child instanceof Node) element.append(child);
    else element.append(document.createTextNode(String(child)));
  }
}

// the colour class of a host state, a block state, a run outcome
const TONES = {
  idle: "idle",
  pooled: "idle",
  connecting: "waiting",
  joining: "waiting",
  ready: "idle",
  running: "running",
  started: "running",
  done: "done",
  completed: "done",
  ok: "done",
  failed: "failed",
  dead: "failed",
  gone: "failed",
  lost: "failed",
  timeout: "waiting",
  unreachable: "failed",
  stopped: "waiting",
  skipped: "idle",
  replaced: "waiting",
  waiting: "waiting",
  late: "waiting",
};

export function tone(state) {
  return TONES[state] || "idle";
}

/** A pill with the state's colour. */
export function badge(state, text) {
  return h("span", { class: `badge tone-${tone(state)}` }, text ?? state ?? "?");
}

export function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  if (size < 1024 ** 3) return `${(size / 1024 / 1024).toFixed(1)} MiB`;
  return `${(size / 1024 ** 3).toFixed(2)} GiB`;
}

const two = (n) => String(n).padStart(2, "0");

/** Seconds since the epoch -> "2026-12-02 14:03:05" (local time). */
export function formatTime(at) {
  if (at === null || at === undefined) return "";
  const d = new Date(at * 1000);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** Seconds -> "0.42 s", "12.3 s", "4 min 05 s", "2 h 03 min". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${two(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${two(Math.floor((s % 3600) / 60))} min`;
}

/** The route's parts after "#/": "#/hosts/local-3" -> ["hosts", "local-3"] (decoded). */
export function routeParts() {
  return location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .filter(Boolean)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    });
}

/** The message of an error to show a user: the API's words when it answered, else the error's. */
export function messageOf(error) {
  return (error && (error.message || error.code)) || String(error);
}

/** A view that is a list with a page per item (#/hosts and #/hosts/<host>, #/runs and #/runs/<run>): mounts
 * list(root, store) or page(root, store, id) as the route says, the one shown unmounted on a change. */
export function listAndPages(el, store, className, list, page) {
  let current = null;
  let shown = null;
  const root = h("div", { class: className });
  el.append(root);
  function show() {
    const [, id] = routeParts();
    if (current && (id || "") === shown) return;
    if (current) current.unmount();
    root.replaceChildren();
    shown = id || "";
    current = id ? page(root, store, id) : list(root, store);
  }
  window.addEventListener("hashchange", show);
  show();
  return {
    unmount() {
      window.removeEventListener("hashchange", show);
      if (current) current.unmount();
      root.remove();
    },
  };
}
