// Small helpers shared by the application, world and resource views: state bars, host-set folding and
// natural order (those of js/hostsets.js), capped host lists, following the run's matching; h() and errorText() are js/widgets.js's. (What a run did to its hosts and work
// queues is the store's: store.replaced, store.work, ...)

import { fold, naturalCompare } from "../hostsets.js";
import { h } from "../widgets.js";

export { h, messageOf as errorText } from "../widgets.js";

export const PHASES = ["idle", "running", "done", "failed"];

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

/** Host names folded into host sets, by Plush's rules (js/hostsets.js): ["n1","n2","n3","n7","web"] ->
 * "n[1-3,7],web"; names it cannot fold are listed as they are. */
export function foldHosts(names) {
  try {
    return fold(names);
  } catch (error) {
    return [...names].join(",");
  }
}

/** Natural order of host names (node2 before node10), as Plush sorts them. */
export const byName = naturalCompare;

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


/** Events after which the run's matching (GET /v1/application) is read again. */
const MATCHING_CHANGES = ["run.started", "run.finished", "host.rematched"];

/** Keep a view drawn from the store and the run's matching (component -> hosts, in GET /v1/application, which
 * the store reads on demand): `draw` on every store change; the matching read now and again when a run starts
 * or ends or a host is rematched, then `draw` at the next animation frame (once however many reads end in it).
 * Returns `load` (read the matching again, then draw) and `close` (stop following). */
export function followMatching(store, draw) {
  let frame = null;
  const schedule = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = null;
      draw();
    });
  };
  const load = async () => {
    await store.refresh("app");
    schedule();
  };
  const offs = [store.subscribe(() => draw()), ...MATCHING_CHANGES.map((name) => store.on(name, () => load()))];
  load();
  return {
    load,
    close() {
      for (const off of offs) off();
      if (frame) cancelAnimationFrame(frame);
      frame = null;
    },
  };
}
