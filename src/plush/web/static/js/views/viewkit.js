// Small helpers shared by the application, world and resource views: DOM building (text only: data never
// goes through innerHTML), state bars, host-set folding (ClusterShell style: node[1-3,7]), capped host
// lists. (What a run did to its hosts and work queues is the store's: store.replaced, store.work, ...)

export const PHASES = ["idle", "running", "done", "failed"];

/** An element: h("div", {class: "x", title: "y", onclick: fn}, child, "text", ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "style") Object.assign(el.style, value); // CSSOM: allowed under a CSP without inline styles
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Zero counts for each phase (and skipped). */
export function emptyCounts() {
  return { idle: 0, running: 0, done: 0, failed: 0, skipped: 0 };
}

/** A horizontal bar of counts: one segment per state, widths proportional; update it with setBar. */
export function stateBar(extraClass) {
  const bar = h("div", { class: `pl-bar ${extraClass || ""}` });
  bar._segments = {};
  for (const state of [...PHASES, "skipped", "waiting"]) {
    const seg = h("span", { class: `pl-seg pl-${state}` });
    bar._segments[state] = seg;
    bar.append(seg);
  }
  return bar;
}

export function setBar(bar, counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  for (const [state, seg] of Object.entries(bar._segments)) {
    const n = counts[state] || 0;
    seg.style.width = total ? `${(100 * n) / total}%` : "0";
    seg.title = n ? `${n} ${state}` : "";
  }
  bar.classList.toggle("pl-empty", total === 0);
}

/** Counts as short text ("3 running · 2 done"), zeros left out. */
export function countsText(counts, order) {
  const parts = [];
  for (const state of order || [...PHASES, "waiting", "skipped"]) {
    if (counts[state]) parts.push(`${counts[state]} ${state}`);
  }
  return parts.join(" · ") || "no hosts";
}

const SPLIT = /^(.*?)(\d+)(\D*)$/;

/** Host names folded into ranges: ["n1","n2","n3","n7","web"] -> "n[1-3,7],web". */
export function foldHosts(names) {
  const groups = new Map();
  const plain = [];
  for (const name of names) {
    const m = SPLIT.exec(name);
    if (!m) {
      plain.push(name);
      continue;
    }
    const key = `${m[1]}\u0000${m[3]}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(m[2]);
  }
  const out = [];
  for (const [key, digits] of groups) {
    const [prefix, suffix] = key.split("\u0000");
    if (digits.length === 1) {
      out.push(prefix + digits[0] + suffix);
      continue;
    }
    const sorted = [...new Set(digits)].sort((a, b) => Number(a) - Number(b) || a.length - b.length);
    const ranges = [];
    let start = sorted[0];
    let prev = sorted[0];
    const same = (a, b) => a.length === b.length || (a[0] !== "0" && b[0] !== "0");
    for (const d of sorted.slice(1).concat([null])) {
      if (d !== null && Number(d) === Number(prev) + 1 && same(d, prev)) {
        prev = d;
        continue;
      }
      ranges.push(start === prev ? start : `${start}-${prev}`);
      start = prev = d;
    }
    out.push(`${prefix}[${ranges.join(",")}]${suffix}`);
  }
  return out.concat(plain).join(",");
}

/** Natural order of host names (node2 before node10). */
export const byName = new Intl.Collator(undefined, { numeric: true }).compare;

/** A list of host names, at most `cap` shown, then "and N more"; each with its phase's dot. */
export function hostList(names, phaseOf, cap = 60) {
  const sorted = [...names].sort(byName);
  const list = h("ul", { class: "pl-hostlist" });
  for (const name of sorted.slice(0, cap)) {
    const phase = phaseOf ? phaseOf(name) : null;
    list.append(
      h("li", {}, phase ? h("span", { class: `pl-dot pl-${phase}`, title: phase }) : null, h("a", { href: `#/hosts/${encodeURIComponent(name)}`, text: name })),
    );
  }
  if (sorted.length > cap) list.append(h("li", { class: "pl-more", text: `and ${sorted.length - cap} more` }));
  return list;
}

/** The message of an error the api() helper threw (the API's own words), or its text. */
export function errorText(error) {
  return (error && (error.message || error.code)) || String(error);
}
