// The application view's DAG: one card per component block, its blocks by level (the tree's `order`, left to
// right), each block a box with a bar of its hosts' states; a workflow's task inside its box.
//
// Invariants: the DOM is built once per tree (build) and then only updated (draw: bar widths, count texts,
// data-state); a block's state per host comes from store.hosts (blocks: path -> started|completed|failed|
// skipped) over the hosts of its component in the run (store.app's matching, and the store's components);
// a component block's own state is its blocks' (the controller sends no event for it). No one node per host.

import { countsText, emptyCounts, h, setBar, stateBar } from "./viewkit.js";

const BLOCK_PHASE = { started: "running", completed: "done", failed: "failed", skipped: "skipped" };

export class Dag {
  constructor(store, onSelect) {
    this.store = store;
    this.onSelect = onSelect;
    this.el = h("div", { class: "pl-dag", "data-testid": "dag" });
    this.tree = undefined; // the tree the DOM was built for
    this.blocks = new Map(); // path -> {block, bar, counts, box} (+ hosts, component for a component block)
    this.phases = new Map(); // path -> host name -> phase, as last drawn
  }

  draw(tree, selected) {
    if (tree !== this.tree) this.build(tree);
    if (tree) this.drawCounts(tree, selected);
  }

  build(tree) {
    this.tree = tree;
    this.blocks.clear();
    if (!tree) {
      this.el.replaceChildren(h("div", { class: "pl-empty-state", text: "No application is loaded. Use “Load spec…” above." }));
      return;
    }
    const byPath = new Map(tree.blocks.map((b) => [b.path, b]));
    const children = new Map();
    for (const b of tree.blocks) {
      if (!children.has(b.parent)) children.set(b.parent, []);
      children.get(b.parent).push(b);
    }
    const cards = [];
    for (const cb of tree.blocks.filter((b) => b.kind === "component")) {
      const component = tree.components.find((c) => c.name === cb.component) || { name: cb.component, min: "?", max: "?" };
      const levels = (tree.order && tree.order[cb.path]) || (children.get(cb.path) || []).map((b) => [b.path]);
      const bar = stateBar("pl-bar-lg");
      const counts = h("span", { class: "pl-counts" });
      const hosts = h("span", { class: "pl-muted" });
      const head = h(
        "div",
        { class: "pl-card-head pl-block-select", onclick: () => this.onSelect(cb.path) },
        h("span", { class: "pl-card-title", text: cb.name }),
        h("span", { class: "pl-tag", text: `component ${component.name}` }),
        hosts,
        h("div", { class: "pl-spacer" }),
        counts,
      );
      this.blocks.set(cb.path, { block: cb, bar, counts, hosts, component, box: head });
      const row = h("div", { class: "pl-levels" });
      levels.forEach((level, index) => {
        if (index) row.append(h("div", { class: "pl-arrow", "aria-hidden": "true", text: "→" }));
        row.append(h("div", { class: "pl-level" }, level.map((path) => this.blockBox(byPath.get(path) || { path, name: path, kind: "?" }, children, levels[index - 1]))));
      });
      cards.push(h("div", { class: "pl-card", "data-block": cb.path }, head, bar, row));
    }
    this.el.replaceChildren(...cards);
  }

  blockBox(block, children, previous, task = false) {
    const bar = stateBar();
    const counts = h("div", { class: "pl-counts" });
    const box = h(
      "div",
      { class: `pl-block pl-kind-${block.kind}`, "data-block": block.path, tabindex: "0", onclick: (e) => (e.stopPropagation(), this.onSelect(block.path)) },
      h("div", { class: "pl-block-head" }, h("span", { class: "pl-block-name", text: block.name }), h("span", { class: "pl-tag", text: block.kind })),
    );
    box.addEventListener("keydown", (e) => e.key === "Enter" && this.onSelect(block.path));
    const after = (block.predecessors || []).filter((p) => !(previous || []).some((path) => path.endsWith(`/${p}`)));
    if (after.length) box.append(h("div", { class: "pl-muted pl-small", text: `after ${after.join(", ")}` }));
    if (block.kind === "process" && block.processes && block.processes.length > 1) box.append(h("div", { class: "pl-muted pl-small", text: `${block.processes.length} processes` }));
    // a workflow's task runs once per item: its progress is the queue's (no block events per host)
    if (task) box.append(h("div", { class: "pl-muted pl-small", text: "runs once per item of the queue" }));
    else box.append(bar, counts);
    const entry = task ? { block, box } : { block, bar, counts, box };
    if (block.kind === "workflow") {
      entry.queue = h("div", { class: "pl-small pl-queue" });
      box.append(entry.queue);
    }
    const inner = children.get(block.path) || [];
    if (inner.length) box.append(h("div", { class: "pl-inner" }, inner.map((b) => this.blockBox(b, children, null, block.kind === "workflow"))));
    this.blocks.set(block.path, entry);
    return box;
  }

  /** Host names of a component in the current (or last) run: the run's matching, and the hosts the store has
   *  in that component (a replaced host leaves it: its replacement is in the matching). */
  membersOf(component) {
    const run = this.store.app && this.store.app.run;
    const names = new Set((run && run.hosts && run.hosts[component]) || []);
    for (const host of this.store.hosts.values()) {
      if (host.component === component && host.state !== "replaced" && host.state !== "gone") names.add(host.name);
    }
    return names;
  }

  /** Per block path: host name -> its phase there, for every block of the tree. */
  hostPhases(tree) {
    const out = new Map();
    const byParent = new Map();
    for (const b of tree.blocks) {
      if (!byParent.has(b.parent)) byParent.set(b.parent, []);
      byParent.get(b.parent).push(b);
    }
    for (const cb of tree.blocks.filter((b) => b.kind === "component")) {
      const names = this.membersOf(cb.component);
      const descendants = [];
      const walk = (path) => (byParent.get(path) || []).forEach((b) => (descendants.push(b), walk(b.path)));
      walk(cb.path);
      for (const b of [cb, ...descendants]) out.set(b.path, new Map());
      const direct = byParent.get(cb.path) || [];
      for (const name of names) {
        const host = this.store.hosts.get(name);
        const states = (host && host.blocks) || new Map();
        for (const b of descendants) {
          let phase = BLOCK_PHASE[states.get(b.path)] || "idle";
          if (phase === "running" && b.kind === "barrier") phase = "waiting";
          out.get(b.path).set(name, phase);
        }
        let own = BLOCK_PHASE[states.get(cb.path)];
        if (!own) {
          const mine = direct.map((b) => out.get(b.path).get(name));
          if (mine.includes("failed") || (host && host.phase === "failed")) own = "failed";
          else if (mine.length && mine.every((p) => p === "done" || p === "skipped")) own = "done";
          else if (mine.some((p) => p !== "idle")) own = "running";
          else own = "idle";
        }
        out.get(cb.path).set(name, own);
      }
    }
    return out;
  }

  drawCounts(tree, selected) {
    this.phases = this.hostPhases(tree);
    for (const [path, entry] of this.blocks) {
      const hosts = this.phases.get(path) || new Map();
      const counts = emptyCounts();
      counts.waiting = 0;
      for (const phase of hosts.values()) counts[phase] += 1;
      if (entry.bar) setBar(entry.bar, counts);
      if (entry.counts) entry.counts.textContent = countsText(counts);
      const state = counts.failed ? "failed" : counts.running || counts.waiting ? "running" : hosts.size && counts.done + counts.skipped === hosts.size ? "done" : "idle";
      entry.box.dataset.state = state;
      entry.box.classList.toggle("pl-selected", path === selected);
      if (entry.hosts) {
        const c = entry.component;
        const wanted = c.min === c.max ? `${c.min}` : `${c.min}–${c.max}`;
        entry.hosts.textContent = hosts.size ? `${hosts.size} hosts` : `wants ${wanted} hosts`;
      }
    }
  }
}
