// The app shell: a hash router mounting one view at a time into <main id=view>, and the status strip.
// Routes: #/world #/application #/resources #/hosts #/hosts/<host> #/runs #/runs/<run>; each view is
// js/views/<name>.js exporting mount(el, store, params) -> {unmount()}.

import { api } from "./api.js";
import { store } from "./store.js";

const VIEWS = ["world", "application", "resources", "hosts", "runs"];
const DEFAULT = "application";
const view = document.getElementById("view");
let current = null;
let mounting = 0;

// "#/hosts/local-1" -> {name: "hosts", params: {id: "local-1"}}
export function parseRoute(hash) {
  const parts = (hash || "").replace(/^#\/?/, "").split("/");
  const name = VIEWS.includes(parts[0]) ? parts[0] : DEFAULT;
  const rest = parts.slice(1).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch (err) {
      return p;
    }
  });
  return { name, params: { id: rest[0] || null, rest } };
}

function say(text) {
  const notice = document.getElementById("notice");
  notice.textContent = text || "";
  notice.hidden = !text;
}

async function route() {
  const { name, params } = parseRoute(window.location.hash);
  const ticket = ++mounting;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.view === name);
  }
  if (current) {
    try {
      current.unmount();
    } catch (err) {
      console.error("a view failed to unmount", err);
    }
    current = null;
  }
  view.replaceChildren();
  let module;
  try {
    module = await import(`./views/${name}.js`);
  } catch (err) {
    if (ticket === mounting) say(`The ${name} view could not be loaded: ${err.message}`);
    return;
  }
  if (ticket !== mounting) return; // another route was asked for meanwhile
  say("");
  const el = document.createElement("section");
  el.className = `view view-${name}`;
  view.appendChild(el);
  try {
    current = module.mount(el, store, params) || null;
  } catch (err) {
    console.error(err);
    say(`The ${name} view failed: ${err.message}`);
  }
}

function count(map, key) {
  const out = new Map();
  for (const value of map.values()) out.set(value[key], (out.get(value[key]) || 0) + 1);
  return out;
}

// "idle", "running RUN", "last run ok|stopped", "last run failed: REASON"
export function runState(run) {
  if (run && run.running) return `running ${run.run || ""}`.trim();
  const last = run && run.last;
  if (!last) return "idle";
  if (last.ok) return "last run ok";
  if (last.stopped) return "last run stopped";
  return `last run failed${last.reason ? ": " + last.reason : ""}`;
}

function drawStatus(s) {
  const connection = document.getElementById("status-connection");
  connection.textContent = s.connected ? "connected" : "disconnected";
  connection.className = `pill ${s.connected ? "pill-on" : "pill-off"}`;
  const app = s.app && s.app.loaded ? s.app.name : "no application";
  document.getElementById("status-app").textContent = app;
  // data (names, reasons) only ever as text
  const strip = document.getElementById("status-run");
  strip.textContent = runState(s.run);
  strip.title = strip.textContent;
  const phases = count(s.hosts, "phase");
  const parts = [`${s.hosts.size} hosts`];
  for (const phase of ["running", "done", "failed"]) if (phases.get(phase)) parts.push(`${phases.get(phase)} ${phase}`);
  document.getElementById("status-hosts").textContent = parts.join(" · ");
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await api("POST", "/logout");
  } finally {
    window.location.assign("/login");
  }
});

store.subscribe(drawStatus);
window.addEventListener("hashchange", route);
route();
store.start();
