// The resource view (#/resources): the pool and the matching. Counts first (pool, live, matched, spares,
// failed, replaced), then the hosts per component of the current (or last) run, the spares, the failed
// hosts with their reasons and the replacements (host.rematched: who took whose place).
//
// Sources: store.hosts (every host of the pool and the mesh, its lifecycle state and phase), store.app
// (GET /v1/application: the run's matching: component -> hosts, and the components' min/max), and what the
// current run did to its hosts: store.failures, store.replaced, store.dropped, store.restarts (the snapshot
// of GET /v1/application/states and the events after it: a page opened mid-run shows them too). Invariants:
// lists are capped; names go in as text; the DOM is rebuilt only when what it shows changed, at most once per
// animation frame.

import { PHASES, byName, countsText, emptyCounts, foldHosts, followMatching, h, hostList, setBar, stateBar } from "./viewkit.js";

/** Lifecycle states of a host whose agent is connected (docs/howitworks.md, the host lifecycle). */
const LIVE = new Set(["joined", "preparing", "installing", "ready", "running", "resetting", "done", "stopping"]);
const DEAD = new Set(["failed", "replaced", "gone"]);
const CAP = 50;

export function mount(el, store) {
  const view = new ResourceView(el, store);
  return { unmount: () => view.close() };
}

class ResourceView {
  constructor(el, store) {
    this.el = el;
    this.store = store;
    this.open = new Set(); // components whose host list is unfolded
    this.body = h("div", { class: "pl-res-body" });
    el.replaceChildren(h("div", { class: "pl-resview" }, h("div", { class: "pl-toolbar" }, h("h2", { text: "Resources" }), h("div", { class: "pl-spacer" }), (this.caption = h("span", { class: "pl-muted" }))), this.body));
    this.matching = followMatching(store, () => this.draw());
    this.draw();
  }

  close() {
    this.matching.close();
    this.el.replaceChildren();
  }

  /** What the view shows, computed from the store and the run: plain data (compared to skip redraws). */
  model() {
    const hosts = [...this.store.hosts.values()];
    const app = this.store.app && this.store.app.loaded ? this.store.app : null;
    const run = app && app.run ? app.run : null;
    const components = new Map();
    for (const [name, c] of Object.entries((app && app.components) || {})) components.set(name, { name, min: c.min, max: c.max, hosts: new Set() });
    const add = (component, name) => {
      if (!components.has(component)) components.set(component, { name: component, min: null, max: null, hosts: new Set() });
      components.get(component).hosts.add(name);
    };
    for (const [component, names] of Object.entries((run && run.hosts) || {})) for (const name of names) add(component, name);
    const replacedNames = new Set(this.store.replaced.map((r) => r.host));
    // a host the store has in a component and the run's matching has not yet (it joins as the events come)
    for (const host of hosts) {
      if (host.component && !replacedNames.has(host.name) && !DEAD.has(host.state)) add(host.component, host.name);
    }
    for (const component of components.values()) for (const name of replacedNames) component.hosts.delete(name);
    const matched = new Set([...components.values()].flatMap((c) => [...c.hosts]));
    const failed = hosts.filter((host) => host.state === "failed" || (host.phase === "failed" && !replacedNames.has(host.name)) || this.store.failures.has(host.name));
    const failedNames = new Set(failed.map((host) => host.name));
    const spares = hosts.filter((host) => !matched.has(host.name) && !failedNames.has(host.name) && !DEAD.has(host.state));
    const live = hosts.filter((host) => LIVE.has(host.state));
    const states = new Map();
    for (const host of hosts) states.set(host.state || "unknown", (states.get(host.state || "unknown") || 0) + 1);
    const groups = new Map();
    for (const host of hosts) groups.set(host.group || "—", (groups.get(host.group || "—") || 0) + 1);
    return { hosts, run, components: [...components.values()], matched, failed, spares, live, states, groups };
  }

  draw() {
    const m = this.model();
    const key = JSON.stringify([
      m.hosts.map((host) => [host.name, host.state, host.phase, host.component]),
      m.components.map((c) => [c.name, c.min, c.max, [...c.hosts]]),
      m.run && m.run.id,
      [...this.open],
      this.store.replaced,
      [...this.store.failures],
      [...this.store.dropped],
      [...this.store.restarts],
    ]);
    if (key === this.key) return;
    this.key = key;
    const phaseOf = (name) => (this.store.hosts.get(name) || {}).phase || "idle";
    this.caption.textContent = m.run ? `run ${m.run.id}${m.run.finished ? " (finished)" : ""}` : "no run yet: the pool only";

    const tiles = h(
      "div",
      { class: "pl-tiles", "data-testid": "resource-tiles" },
      tile("Pool", m.hosts.length, "", "pool"),
      tile("Live", m.live.length, "pl-t-running", "live"),
      tile("Matched", m.matched.size, "pl-t-done", "matched"),
      tile("Spares", m.spares.length, "pl-t-idle", "spares"),
      tile("Failed", m.failed.length, "pl-t-failed", "failed"),
      tile("Replaced", this.store.replaced.length, "pl-t-waiting", "replaced"),
    );
    const poolLine = h(
      "div",
      { class: "pl-small pl-pool-line" },
      h("span", { class: "pl-muted", text: "states: " }),
      [...m.states].sort((a, b) => b[1] - a[1]).map(([state, n]) => h("span", { class: "pl-chip", text: `${n} ${state}` })),
      h("span", { class: "pl-muted", text: "  groups: " }),
      [...m.groups].sort((a, b) => byName(a[0], b[0])).map(([group, n]) => h("span", { class: "pl-chip", text: `${group} ${n}` })),
    );

    const rows = m.components.map((c) => {
      const counts = emptyCounts();
      for (const name of c.hosts) counts[PHASES.includes(phaseOf(name)) ? phaseOf(name) : "idle"] += 1;
      const bar = stateBar();
      setBar(bar, counts);
      const names = [...c.hosts].sort(byName);
      const wanted = c.min === null ? "" : c.min === c.max ? `${c.min}` : `${c.min}–${c.max}`;
      const unfolded = this.open.has(c.name);
      const row = h(
        "tr",
        { class: "pl-comp-row", "data-component": c.name, onclick: () => this.toggle(c.name) },
        h("td", {}, h("span", { class: "pl-caret", text: unfolded ? "▾" : "▸" }), h("b", { text: c.name })),
        h("td", { class: "pl-num", text: wanted }),
        h("td", { class: "pl-num", "data-testid": "matched-count", text: String(names.length) }),
        h("td", { class: "pl-bar-cell" }, bar, h("div", { class: "pl-small pl-muted", text: countsText(counts) })),
        h("td", { class: "pl-mono pl-small pl-fold", text: names.length ? foldHosts(names) : "not matched yet" }),
      );
      const more = unfolded ? h("tr", { class: "pl-comp-hosts" }, h("td", { colspan: "5" }, hostList(names, phaseOf, 200))) : null;
      return [row, more];
    });
    const table = h(
      "table",
      { class: "pl-table", "data-testid": "components" },
      h("thead", {}, h("tr", {}, ["Component", "Wanted", "Matched", "States", "Hosts"].map((t) => h("th", { text: t })))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "5", class: "pl-muted", text: "No application loaded: no components to match." }))),
    );

    const spares = section("Spares", m.spares.length, "pooled, not matched to a component", m.spares.length ? hostList(m.spares.map((host) => host.name), phaseOf, CAP) : empty("No spare hosts."), "spares");
    const failedList = h("ul", { class: "pl-reasons" });
    const replacedBy = new Map(this.store.replaced.map((r) => [r.host, r.replacement]));
    const failedText = (host) => {
      const reason = this.store.failures.get(host.name) || host.state;
      return replacedBy.has(host.name) ? `${reason} · replaced by ${replacedBy.get(host.name)}` : reason;
    };
    for (const host of [...m.failed].sort((a, b) => byName(a.name, b.name)).slice(0, CAP)) {
      failedList.append(h("li", {}, h("span", { class: "pl-dot pl-failed" }), h("a", { href: `#/hosts/${encodeURIComponent(host.name)}`, text: host.name }), h("span", { class: "pl-muted", text: failedText(host) })));
    }
    if (m.failed.length > CAP) failedList.append(h("li", { class: "pl-more", text: `and ${m.failed.length - CAP} more` }));
    const failed = section("Failed", m.failed.length, "", m.failed.length ? failedList : empty("No host failed."), "failed");
    const replacements = h("table", { class: "pl-table pl-compact" }, h("thead", {}, h("tr", {}, ["Failed host", "", "Replaced by", "Component", "Reason"].map((t) => h("th", { text: t })))));
    const body = h("tbody", {});
    for (const r of this.store.replaced.slice(-CAP)) {
      body.append(h("tr", {}, h("td", { class: "pl-mono", text: r.host }), h("td", { class: "pl-muted", text: "→" }), h("td", { class: "pl-mono", text: r.replacement }), h("td", { text: r.component }), h("td", { class: "pl-muted", text: r.reason })));
    }
    replacements.append(body);
    const replaced = section("Replaced", this.store.replaced.length, "a spare took a failed host's place", this.store.replaced.length ? replacements : empty("No host was replaced in this run."), "replaced");
    const extra = [];
    if (this.store.dropped.size) extra.push(h("div", { class: "pl-small pl-muted", text: `dropped (no spare left): ${foldHosts([...this.store.dropped.keys()])}` }));
    if (this.store.restarts.size) extra.push(h("div", { class: "pl-small pl-muted", text: `restarted in place: ${foldHosts([...this.store.restarts.keys()])}` }));

    this.body.replaceChildren(tiles, poolLine, h("h3", { text: "Matching" }), table, h("div", { class: "pl-res-cols" }, spares, failed, h("div", {}, replaced, ...extra)));
  }

  toggle(name) {
    if (this.open.has(name)) this.open.delete(name);
    else this.open.add(name);
    this.draw();
  }
}

function tile(label, n, cls, id) {
  return h("div", { class: `pl-tile ${cls}`, "data-testid": `tile-${id}` }, h("div", { class: "pl-tile-n", text: String(n) }), h("div", { class: "pl-tile-label", text: label }));
}

function section(title, n, note, content, id) {
  return h("section", { class: "pl-res-section", "data-testid": `section-${id}` }, h("h3", {}, `${title} `, h("span", { class: "pl-muted", text: `${n}${note ? ` · ${note}` : ""}` })), content);
}

function empty(text) {
  return h("p", { class: "pl-muted", text });
}
