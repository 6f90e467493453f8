// The page's one store: the snapshots of the API plus the events after them, redrawn at most once per frame.
//
// store.hosts: Map name -> {name, address, group, component, properties, state, phase, blocks: Map path -> state}
//   (state: the API's node state; phase: idle|running|done|failed, the rule of plush.controller.runstates);
// store.tree (GET /v1/application/tree, null without an application), store.run (GET /v1/runs/current),
// store.barriers (GET /v1/barriers), store.app (GET /v1/application), store.connected, store.seq;
// what the run did to its hosts and work queues (GET /v1/application/states, then the events, by the rules of
// plush.controller.runledger): store.replaced [{host, replacement, component, reason}], store.failures and
// store.dropped (Map host -> reason), store.restarts (Map host -> count), store.work (Map block path ->
// {done, failed, inFlight: Map item's JSON -> host}).
// A host's `component` is the one a run holds it in now (GET /v1/hosts) or, when none holds it, the one it served
// in the last run (store.lastRun: Map host -> component, from GET /v1/application's run.hosts, the snapshot's
// replacements and the run's events; emptied when a new run starts): a finished run's hosts keep their component,
// and a host the run did not use has none.
// store.subscribe(fn) -> unsubscribe: fn(store) at most once per animation frame after changes;
// store.on(name, fn) -> off: raw events ({seq, name, at, host, block, instance, data}; name "*": every one);
// store.start(): loads the snapshots, then opens /v1/events resumed after the snapshot's event id;
// store.refresh(part): re-fetches one of hosts|tree|run|barriers|states|app.
// store.stats: what the page's speed is measured by (bench/web_ui.py, tests/web/test_web_timing.py): ready (ms
//   from the navigation to the first draw of the loaded snapshots), draws, lags (seconds from an event's
//   making in the controller, its `at`, to the end of the draw that showed it: the oldest event of each draw),
//   inPage (the part of each lag spent in the page: from that event's arrival to the end of the draw); the
//   page's own work: drawMs (all draws), drawMaxMs (the longest), eventMs (taking events in), events; worst:
//   the draw of the longest lag ({lag, inPage, event: the name of its oldest event, at}).
//
// A page opened mid-run shows the truth: GET /v1/application/states is read first (each host's phase and
// blocks, the run's failures, replacements and work queues as of event SEQ), the stream resumes after SEQ
// (nothing missed, nothing twice). States read again later (an application loaded) are taken only if they are
// at least as new as the stream (SEQ >= store.seq; the stream then skips the events up to SEQ), else dropped:
// the stream is newer. Process output is not streamed here (a run's logs are files of the runs API).

import { api, ApiError, signedOut } from "./api.js";

// Every event of the catalogue but process.output (plush.controller.catalogue; tests/web checks the list).
export const EVENT_NAMES = [
  "run.started", "run.finished", "run.storage_failed",
  "host.joined", "host.left", "host.prepared", "host.installed", "host.install_failed", "host.finished",
  "host.sample", "host.over_limits", "host.failed", "host.restarted", "host.rematched", "host.dropped",
  "host.disconnected", "host.reconnected",
  "agent.log", "file.sent",
  "barrier.start_released", "barrier.arrived", "barrier.released", "barrier.late", "barrier.admitted",
  "barrier.waiting",
  "block.started", "block.completed", "block.failed", "block.skipped", "block.restarted",
  "process.started", "process.liveness_failed", "process.exited",
  "output.collected", "output.write_failed",
  "work.taken", "work.done", "work.failed",
  "app.loaded", "app.restarted", "app.aborted", "app.stopped", "pool.refreshed",
];
const KINDS = "run,host,agent,file,barrier,block,process.started,process.liveness_failed,process.exited," +
  "output,work,app,pool";
// host events after which the hosts' API states are read again (at most every HOSTS_EVERY ms)
const HOSTS_EVERY = 1000;
const RECONNECT_MAX = 10000;
// the draws' lags kept in store.stats (the latest)
const LAGS_KEPT = 10000;

const BLOCK_STATES = {
  "block.started": "started", "block.completed": "completed", "block.failed": "failed", "block.skipped": "skipped",
};

function phaseOf(host, over) {
  // plush.controller.runstates.phase_of (over: run.finished came)
  if (host.state === "failed" || host.state === "replaced" || host.ok === false) return "failed";
  for (const state of host.blocks.values()) if (state === "failed") return "failed";
  if (host.ok === true) return "done";
  return host.blocks.size && !over ? "running" : "idle";
}

class Store {
  constructor() {
    this.hosts = new Map();
    this.tree = null;
    this.run = null;
    this.barriers = [];
    this.app = null;
    this.lastRun = new Map();
    this._runId = null; // the run of run.started's event (an older run's matching read late is not taken)
    this._ledger({ replaced: [], failures: {}, dropped: {}, restarts: {}, work: {} });
    this.connected = false;
    this.seq = 0;
    this.error = null;
    this._subscribers = new Set();
    this._listeners = new Map();
    this._frame = 0;
    this._source = null;
    this._started = false;
    this._retry = 500;
    this._hostsTimer = 0;
    this._hostsAt = 0;
    this._over = false; // the run of the hosts' phases has ended (run.finished)
    this._loaded = false; // the snapshots of start() are in
    this._oldest = 0; // the `at` of the oldest event not drawn yet
    this._received = 0; // when the page received it
    this._pending = new Map(); // part -> "running" | "again" (_later)
    this.stats = { ready: null, draws: 0, lags: [], inPage: [], drawMs: 0, drawMaxMs: 0, eventMs: 0, events: 0 };
  }

  subscribe(fn) {
    this._subscribers.add(fn);
    return () => this._subscribers.delete(fn);
  }

  on(name, fn) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(fn);
    return () => this._listeners.get(name).delete(fn);
  }

  // Ask for a redraw: the subscribers are called once in the next animation frame.
  changed() {
    if (this._frame) return;
    const draw = () => {
      this._frame = 0;
      const began = performance.now();
      for (const fn of [...this._subscribers]) {
        try {
          fn(this);
        } catch (err) {
          console.error("a view failed to draw", err);
        }
      }
      const took = performance.now() - began;
      this.stats.drawMs += took;
      this.stats.drawMaxMs = Math.max(this.stats.drawMaxMs, took);
      this._drawn();
    };
    // a hidden tab gets no animation frame: a timer keeps the store's subscribers current anyway
    this._frame = document.hidden ? setTimeout(draw, 250) : requestAnimationFrame(draw);
  }

  _drawn() {
    const stats = this.stats;
    stats.draws += 1;
    if (this._oldest) {
      const now = Date.now() / 1000;
      if (!stats.worst || now - this._oldest > stats.worst.lag) {
        stats.worst = { lag: now - this._oldest, inPage: now - this._received, event: this._oldestName,
          at: this._oldest };
      }
      for (const [list, since] of [[stats.lags, this._oldest], [stats.inPage, this._received]]) {
        list.push(now - since);
        if (list.length > LAGS_KEPT) list.splice(0, list.length - LAGS_KEPT);
      }
      this._oldest = 0;
    }
    if (stats.ready === null && this._loaded) stats.ready = performance.now();
  }

  async start() {
    if (this._started) return;
    this._started = true;
    await Promise.all([this.refresh("states"), this.refresh("hosts"), this.refresh("app"), this.refresh("tree"),
      this.refresh("run"), this.refresh("barriers")]);
    this._loaded = true;
    this.changed();
    this._open();
  }

  async refresh(part) {
    try {
      if (part === "hosts") this._setHosts(await api("GET", "/v1/hosts"));
      else if (part === "states") this._setStates(await api("GET", "/v1/application/states"));
      else if (part === "run") this.run = await api("GET", "/v1/runs/current");
      else if (part === "barriers") this.barriers = await api("GET", "/v1/barriers");
      else if (part === "app") this._setApp(await api("GET", "/v1/application"));
      else if (part === "tree") {
        try {
          this.tree = await api("GET", "/v1/application/tree");
        } catch (err) {
          if (!(err instanceof ApiError) || err.status === 0 || err.status === 401) throw err;
          this.tree = null; // no application loaded
        }
      } else throw new Error(`store.refresh: no part ${part}`);
      this.error = null;
    } catch (err) {
      this.error = err.message;
      if (part !== "tree") console.warn(`store.refresh(${part}):`, err.message);
    }
    this.changed();
  }

  _host(name) {
    let host = this.hosts.get(name);
    if (!host) {
      host = { name, address: null, group: null, component: null, properties: {}, state: "pooled",
        phase: "idle", blocks: new Map(), ok: null };
      this.hosts.set(name, host);
    }
    return host;
  }

  _setHosts(list) {
    const seen = new Set();
    for (const node of list) {
      const host = this._host(node.name);
      seen.add(node.name);
      host.address = node.address;
      host.group = node.group;
      if (node.component) this.lastRun.set(node.name, node.component);
      host.component = node.component || this.lastRun.get(node.name) || null;
      host.properties = node.properties || {};
      host.state = node.state;
      host.provider = node.provider;
      host.agent_pid = node.agent_pid;
      if (host.state === "failed" || host.state === "replaced") host.phase = "failed";
    }
    for (const name of [...this.hosts.keys()]) if (!seen.has(name)) this.hosts.delete(name);
  }

  _setApp(app) {
    this.app = app;
    const run = app && app.run;
    if (!run || !run.hosts || (this._runId !== null && run.id !== this._runId)) return;
    for (const [component, names] of Object.entries(run.hosts)) for (const name of names) this._served(name, component);
  }

  // `name` served `component` in the run in progress (or the last one)
  _served(name, component) {
    if (!component) return;
    this.lastRun.set(name, component);
    const host = this.hosts.get(name);
    if (host && !host.component) host.component = component;
  }

  _setStates(states) {
    if (states.event < this.seq) return; // the stream went further while these were read: they are older
    this.seq = states.event; // the stream skips the events they hold
    for (const [name, each] of Object.entries(states.hosts)) {
      const host = this._host(name);
      host.blocks = new Map(Object.entries(each.blocks));
      host.ok = each.ok;
      host.phase = each.phase;
    }
    this._over = states.finished;
    this._ledger(states);
  }

  _ledger(states) {
    this.replaced = (states.replaced || []).map((r) => ({ ...r }));
    for (const r of this.replaced) this._served(r.host, r.component);
    this.failures = new Map(Object.entries(states.failures || {}));
    this.dropped = new Map(Object.entries(states.dropped || {}));
    this.restarts = new Map(Object.entries(states.restarts || {}));
    this.work = new Map();
    for (const [path, q] of Object.entries(states.work || {})) {
      this.work.set(path, { done: q.done, failed: q.failed, inFlight: new Map(q.in_flight.map((f) => [JSON.stringify(f.item), f.host])) });
    }
  }

  // plush.controller.runledger's rules, for the events after the snapshot
  _ledgerApply(event) {
    const name = event.name;
    const data = event.data || {};
    if (name === "run.started") this._ledger({});
    else if (name === "app.restarted") this.work = new Map();
    else if (!event.host) return;
    else if (name === "host.failed") {
      this.failures.set(event.host, String(data.reason ?? ""));
      for (const q of this.work.values()) for (const [item, host] of [...q.inFlight]) if (host === event.host) q.inFlight.delete(item);
    } else if (name === "host.rematched") {
      this.replaced.push({ host: event.host, replacement: String(data.replacement ?? ""), component: String(data.component ?? ""), reason: String(data.reason ?? "") });
    } else if (name === "host.dropped") this.dropped.set(event.host, String(data.reason ?? ""));
    else if (name === "host.restarted") {
      // back in place: no longer failed (nor dropped)
      this.restarts.set(event.host, (this.restarts.get(event.host) || 0) + 1);
      this.failures.delete(event.host);
      this.dropped.delete(event.host);
    }
    else if ((name === "work.taken" || name === "work.done" || name === "work.failed") && event.block) {
      let q = this.work.get(event.block);
      if (!q) this.work.set(event.block, (q = { done: 0, failed: 0, inFlight: new Map() }));
      const item = JSON.stringify(data.item === undefined ? null : data.item);
      if (name === "work.taken") q.inFlight.set(item, event.host);
      else if (data.accepted !== false) {
        q.inFlight.delete(item);
        if (name === "work.done") q.done += 1;
        else q.failed += 1;
      }
    }
  }

  // Re-fetch a part because of an event: at most one request of it in flight, and one more after it when events
  // asked again meanwhile (500 barrier.arrived events make two GET /v1/barriers, not 500).
  _later(part) {
    const pending = this._pending.get(part);
    if (pending) {
      this._pending.set(part, "again");
      return;
    }
    this._pending.set(part, "running");
    this.refresh(part).finally(() => {
      const again = this._pending.get(part) === "again";
      this._pending.delete(part);
      if (again) this._later(part);
    });
  }

  _hostsLater() {
    if (this._hostsTimer) return;
    const wait = Math.max(0, this._hostsAt + HOSTS_EVERY - Date.now());
    this._hostsTimer = setTimeout(() => {
      this._hostsTimer = 0;
      this._hostsAt = Date.now();
      this.refresh("hosts");
    }, wait);
  }

  _open() {
    const url = `/v1/events?kind=${KINDS}` + (this.seq ? `&last_event_id=${this.seq}` : "");
    const source = new EventSource(url, { withCredentials: true });
    this._source = source;
    let reopened = false;
    source.onopen = () => {
      this._retry = 500;
      if (!this.connected) {
        this.connected = true;
        this._emit({ name: "connection.open" });
        if (reopened) this._later("run"), this._later("barriers"), this._hostsLater();
        this.changed();
      }
    };
    source.onerror = () => {
      reopened = true;
      if (this.connected) {
        this.connected = false;
        this._emit({ name: "connection.lost" });
        this.changed();
      }
      if (source.readyState === EventSource.CLOSED) {
        // the browser gave up (the server answered an error: maybe the cookie is no longer good)
        this._source = null;
        api("GET", "/v1/runs/current").then(() => {}, () => {}); // a 401 sends the page to /login
        setTimeout(() => this._open(), this._retry);
        this._retry = Math.min(this._retry * 2, RECONNECT_MAX);
      }
    };
    for (const name of EVENT_NAMES) source.addEventListener(name, (message) => this._message(message));
  }

  _message(message) {
    const began = performance.now();
    this._take(message);
    this.stats.eventMs += performance.now() - began;
    this.stats.events += 1;
  }

  _take(message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (err) {
      return;
    }
    if (typeof event.seq === "number" && message.lastEventId === String(event.seq)) {
      // a journaled event (it carries its id): once only, after the snapshot
      if (event.seq <= this.seq) return;
      this.seq = event.seq;
    }
    if (!this._oldest && typeof event.at === "number") {
      this._oldest = event.at;
      this._received = Date.now() / 1000;
      this._oldestName = event.name;
    }
    this._apply(event);
    this._emit(event);
    this.changed();
  }

  _emit(event) {
    for (const key of [event.name, "*"]) {
      const fns = this._listeners.get(key);
      if (!fns) continue;
      for (const fn of [...fns]) {
        try {
          fn(event);
        } catch (err) {
          console.error(`a listener of ${key} failed`, err);
        }
      }
    }
  }

  _apply(event) {
    this._ledgerApply(event);
    const name = event.name;
    const data = event.data || {};
    const host = event.host ? this._host(event.host) : null;
    if (name === "app.loaded") {
      // whoever loaded it (the API, another page, the terminal): the application, its tree, the run's states
      this._later("app");
      this._later("tree");
      this._later("states");
      return;
    }
    if (name === "run.started") {
      this._over = false;
      this._runId = data.run ?? null;
      this.lastRun = new Map(); // the new run matches its hosts again
      for (const each of this.hosts.values()) {
        each.component = null;
        each.blocks = new Map();
        each.ok = null;
        each.phase = "idle";
      }
      this._later("run");
      this._later("barriers");
      this._hostsLater();
      return;
    }
    if (name === "run.finished") {
      this._over = true;
      for (const each of this.hosts.values()) each.phase = phaseOf(each, true);
    }
    if (name === "run.finished" || name === "app.aborted" || name === "app.stopped") {
      this._later("app"); // the run's final matching: its hosts keep their component once it is over
      this._later("run");
      this._later("barriers");
      this._hostsLater();
    } else if (name.startsWith("barrier.")) {
      this._later("barriers");
    }
    if (name === "app.restarted") {
      for (const each of this.hosts.values()) {
        if (each.state === "failed" || each.state === "replaced") continue;
        each.blocks = new Map();
        each.ok = null;
        each.phase = "idle";
      }
      return;
    }
    if (!host) return;
    if (name in BLOCK_STATES && event.block) {
      host.blocks.set(event.block, BLOCK_STATES[name]);
    } else if (name === "block.restarted" && event.block) {
      host.blocks.delete(event.block);
    } else if (name === "process.started" && host.phase === "idle") {
      host.phase = "running";
      return;
    } else if (name === "host.finished") {
      host.ok = data.ok !== false;
      host.state = "done";
    } else if (name === "host.failed" || name === "host.install_failed") {
      host.state = "failed";
      if (data.component) host.component = data.component;
      this._served(event.host, data.component);
    } else if (name === "host.restarted") {
      host.blocks = new Map();
      host.ok = null;
      host.state = "recovering";
    } else if (name === "host.rematched") {
      host.state = "replaced";
      if (data.replacement) {
        const spare = this._host(data.replacement);
        spare.component = data.component || spare.component;
        this._served(data.replacement, data.component);
        spare.blocks = new Map();
        spare.ok = null;
        spare.phase = "idle";
      }
      this._hostsLater();
    } else if (name === "host.joined") {
      if (host.state === "pooled" || host.state === "gone" || host.state === "connecting") host.state = "joined";
      if (data.component) host.component = data.component;
      this._served(event.host, data.component);
      this._hostsLater();
    } else if (name === "host.left" || name === "host.dropped") {
      this._hostsLater();
    } else if (name === "host.disconnected") {
      host.state = "lost";
      this._hostsLater();
    } else if (name === "host.reconnected" || name === "host.installed" || name === "host.prepared") {
      this._hostsLater();
    }
    host.phase = phaseOf(host, this._over);
  }
}

export const store = new Store();
