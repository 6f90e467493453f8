// The run view (#/runs) and a run's page (#/runs/<run>).
//
// #/runs: the runs of the runs directory (GET /v1/runs), newest first, in a virtualised table; each row's
// status (outcome, start, duration, failures: GET /v1/runs/{run}) is fetched when the row comes into view,
// a few at a time, and kept. #/runs/<run>: its status; its failure report (GET /v1/runs/{run}/report) with
// the root cause first, then every failure by time, as `plush report` words them; its timeline
// (window.PlushTimeline.render over GET /v1/runs/{run}/timeline, when js/timeline.js is loaded); its logs and
// outputs (GET /v1/runs/{run}/files: a filterable table, one opened into a viewer); a link to its report.html
// (GET /v1/runs/{run}/report.html, opened in a new page).
//
// Invariants: data reach the DOM as text (h()); a run's page follows the run while it is in progress (its
// status and report are fetched again when run.finished arrives); leaving the page aborts its streams.

import { api } from "../api.js";
import { createTable } from "../vtable.js";
import { hostFilter } from "../hostsets.js";
import { createLogViewer, logName } from "../logview.js";
import { badge, formatBytes, formatDuration, formatTime, h, listAndPages, messageOf } from "../widgets.js";

export function mount(el, store) {
  return listAndPages(el, store, "runs-view", runList, runPage);
}

// --- the list -----------------------------------------------------------------------------------------------

// run id -> its status (or {error}), for every list this page shows
const statuses = new Map();
const OUTCOME = { ok: "done", completed: "done", failed: "failed", dead: "failed", stopped: "waiting", running: "running" };

function runList(root, store) {
  const counts = h("span", { class: "counts muted" });
  const refresh = h("button", { class: "btn", type: "button" }, "Refresh");
  const tableBox = h("div", { class: "table-box runs-table" });
  root.append(h("div", { class: "toolbar" }, h("h1", {}, "Runs"), counts, h("span", { class: "grow" }), refresh), tableBox);
  const wanted = new Set();
  let active = 0;
  let closed = false;

  const status = (run) => statuses.get(run.run);
  const columns = [
    {
      id: "run",
      title: "Run",
      width: "minmax(190px, 1fr)",
      value: (run) => run.run,
      render: (cell, run) => cell.append(h("a", { href: `#/runs/${encodeURIComponent(run.run)}`, class: "mono" }, run.run)),
    },
    {
      id: "state",
      title: "State",
      width: "110px",
      value: (run) => run.state,
      render: (cell, run) => cell.append(badge(OUTCOME[run.state] || "idle", run.state)),
    },
    { id: "started", title: "Started", width: "170px", value: (run) => status(run)?.started_at ?? null, text: (run) => (status(run) ? formatTime(status(run).started_at) : "…") },
    { id: "duration", title: "Duration", width: "110px", align: "right", value: (run) => status(run)?.duration ?? null, text: (run) => (status(run) ? formatDuration(status(run).duration) : "…") },
    { id: "hosts", title: "Hosts", width: "70px", align: "right", value: (run) => status(run)?.hosts?.length ?? null, text: (run) => (status(run)?.hosts ? String(status(run).hosts.length) : "") },
    {
      id: "ok",
      title: "Result",
      width: "150px",
      value: (run) => (status(run) ? (status(run).ok ? 0 : 1 + (status(run).failures || 0)) : null),
      text: (run) => {
        const s = status(run);
        if (!s) return "…";
        if (s.error) return s.error;
        if (s.ok) return "ok";
        return s.failures ? `${s.failures} failure${s.failures === 1 ? "" : "s"}` : s.outcome;
      },
      className: (run) => (status(run) && !status(run).ok && !status(run).error ? "bad" : ""),
    },
    { id: "reason", title: "Reason", width: "minmax(200px, 2fr)", text: (run) => run.reason || "" },
  ];

  function fetchSome() {
    while (active < 3 && wanted.size && !closed) {
      const run = wanted.values().next().value;
      wanted.delete(run);
      if (statuses.has(run)) continue;
      active += 1;
      api("GET", `/v1/runs/${encodeURIComponent(run)}`)
        .then((s) => statuses.set(run, s))
        .catch((error) => statuses.set(run, { error: messageOf(error) }))
        .finally(() => {
          active -= 1;
          table.redraw();
          fetchSome();
        });
    }
  }

  const table = createTable(tableBox, {
    columns,
    key: (run) => run.run,
    rowHeight: 30,
    fitRows: 20,
    selectable: false,
    onActivate: (row) => {
      location.hash = `#/runs/${encodeURIComponent(row.run)}`;
    },
    sort: { id: "run", dir: -1 },
    emptyText: "No run yet: the runs of the runs directory appear here.",
    onRender: (rows) => {
      for (const run of rows) if (!statuses.has(run.run) || run.state === "running") wanted.add(run.run);
      fetchSome();
    },
  });

  async function load() {
    try {
      const runs = await api("GET", "/v1/runs");
      for (const run of runs) if (run.state === "running") statuses.delete(run.run);
      counts.textContent = `${runs.length} run${runs.length === 1 ? "" : "s"}`;
      table.setRows(runs);
    } catch (error) {
      counts.textContent = `The runs cannot be listed: ${messageOf(error)}`;
    }
  }
  refresh.addEventListener("click", load);
  const offs = store.on ? ["run.started", "run.finished"].map((name) => store.on(name, load)) : [];
  load();
  return {
    unmount() {
      closed = true;
      offs.forEach((off) => off());
      table.destroy();
    },
  };
}

// --- one run ------------------------------------------------------------------------------------------------

function when(at, start) {
  if (at === null || at === undefined) return "";
  if (start === null || start === undefined) return formatTime(at);
  return `+${(at - start).toFixed(3)}s`;
}

function intRanges(numbers) {
  const runs = [];
  for (const n of numbers) {
    if (runs.length && n === runs[runs.length - 1][1] + 1) runs[runs.length - 1][1] = n;
    else runs.push([n, n]);
  }
  return runs.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(",");
}

/** One failure entry, worded as `plush report` words it. */
function entryView(entry, start, root) {
  let at = when(entry.first_at, start);
  if (entry.last_at > entry.first_at) at += `..${when(entry.last_at, start)}`;
  const head = h(
    "div",
    { class: "entry-head" },
    h("span", { class: "when mono muted" }, `[${at}]`),
    " ",
    h("strong", {}, entry.status),
    " on ",
    h("span", { class: "mono" }, entry.hosts || "(no host)"),
    entry.host_count > 1 ? h("span", { class: "muted" }, ` (${entry.host_count} hosts)`) : null,
    entry.count > 1 ? h("span", { class: "muted" }, ` (${entry.count} times)`) : null,
    entry.block ? [" in ", h("span", { class: "mono" }, entry.block + (entry.instances && entry.instances.length ? ` #${intRanges(entry.instances)}` : ""))] : null,
    entry.recovered ? badge("done", "recovered") : null,
  );
  const facts = [];
  if (entry.rule) facts.push(`rule: ${entry.rule}`);
  facts.push(`Plush ${entry.did}`);
  return h(
    "div",
    { class: `entry ${root ? "root-cause" : ""} kind-${entry.kind}` },
    head,
    h("div", { class: "entry-facts" }, facts.join("; ")),
    entry.items && entry.items.length ? h("div", { class: "entry-facts" }, `items: ${entry.items.join(", ")}`) : null,
    entry.reason && !String(entry.status).includes(entry.reason) ? h("div", { class: "entry-facts" }, `reason: ${entry.reason}`) : null,
    entry.stderr_tail && entry.stderr_tail.length
      ? [
          h("div", { class: "entry-facts muted" }, `stderr of ${entry.stderr_host} (last ${entry.stderr_tail.length} line${entry.stderr_tail.length === 1 ? "" : "s"}):`),
          h("pre", { class: "out err" }, entry.stderr_tail.join("\n")),
        ]
      : null,
    entry.hint ? h("div", { class: "entry-hint" }, `next: ${entry.hint}`) : null,
  );
}

const UNFINISHED = {
  running: "The run has not finished: its controller is still running it.",
  dead: "The run did not finish: its controller is gone; the journal ends where it stopped.",
  unfinished: "The run has not finished (the journal has no end).",
};

function reportView(report) {
  const parts = [];
  if (report.root_cause) parts.push(h("h3", {}, "Root cause"), entryView(report.root_cause, report.started_at, true));
  if (!report.finished) parts.push(h("p", { class: "muted" }, UNFINISHED[report.outcome] || UNFINISHED.unfinished));
  if (!report.entries.length) {
    parts.push(h("p", { class: "no-failures" }, report.finished ? "No failures." : "Nothing has failed so far."));
  } else {
    const recovered = report.entries.filter((e) => e.recovered).length;
    parts.push(
      h("h3", {}, `Failures${report.finished ? "" : " so far"} (${report.entries.length}${recovered ? `, ${recovered} recovered` : ""}), by time`),
      h(
        "ol",
        { class: "entries" },
        report.entries.map((entry) =>
          h("li", {}, JSON.stringify(entry) === JSON.stringify(report.root_cause) ? h("div", { class: "entry" }, entryView(entry, report.started_at, false).firstChild, h("div", { class: "entry-facts muted" }, "the root cause (above)")) : entryView(entry, report.started_at, false)),
        ),
      ),
    );
  }
  return parts;
}

function runPage(root, store, run) {
  const outcome = h("span");
  const facts = h("dl", { class: "facts wide" });
  const reportBox = h("div", { class: "report" }, h("span", { class: "muted" }, "loading…"));
  const timelineBox = h("div", { class: "timeline-box" });
  const filesFilter = h("input", { type: "search", class: "filter", placeholder: "Filter files: host set or words", "aria-label": "filter files" });
  const filesBox = h("div", { class: "table-box files-table" });
  const viewerBox = h("div");
  const htmlNote = h("p", { class: "muted html-note" });
  root.append(
    h("nav", { class: "crumbs" }, h("a", { href: "#/runs" }, "Runs"), " › ", run),
    h("div", { class: "page-head" }, h("h1", { class: "mono" }, run), outcome),
    h("section", { class: "panel" }, facts),
    h("section", { class: "panel" }, h("h2", {}, "Failure report"), reportBox),
    h("section", { class: "panel" }, h("h2", {}, "Timeline"), timelineBox),
    h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Logs and outputs"), filesFilter), filesBox, viewerBox, htmlNote),
  );
  const viewer = createLogViewer(viewerBox);
  let closed = false;

  const files = createTable(filesBox, {
    columns: [
      { id: "host", title: "Host", width: "minmax(120px, 1fr)", value: (f) => f.host, render: (cell, f) => cell.append(h("a", { href: `#/hosts/${encodeURIComponent(f.host)}` }, f.host)) },
      { id: "process", title: "File", width: "minmax(220px, 3fr)", value: (f) => f.path, text: (f) => f.path.split("/").slice(3).join("/") },
      { id: "kind", title: "Kind", width: "80px", text: (f) => (f.kind === "log" ? logName(f.path).stream || "log" : f.kind) },
      { id: "size", title: "Size", width: "100px", align: "right", value: (f) => f.size, text: (f) => formatBytes(f.size) },
      { id: "open", title: "", width: "80px", render: (cell, f) => cell.append(h("button", { class: "btn small btn-link", type: "button", onclick: () => viewer.open({ run, ...f }), dataset: { path: f.path } }, "open")) },
    ],
    key: (f) => f.path,
    rowHeight: 28,
    fitRows: 10,
    selectable: false,
    onActivate: (f) => viewer.open({ run, ...f }),
    sort: { id: "host", dir: 1 },
    emptyText: "No logs or outputs in this run.",
    noMatch: "No file matches the filter.",
  });
  filesFilter.addEventListener("input", () => {
    const { test, error } = hostFilter(filesFilter.value);
    filesFilter.classList.toggle("bad", Boolean(error));
    const words = filesFilter.value;
    files.setFilter(words.trim() ? (f) => test({ name: f.host, address: f.path, state: f.kind }) : null);
  });

  async function loadStatus() {
    try {
      const s = await api("GET", `/v1/runs/${encodeURIComponent(run)}`);
      if (closed) return;
      outcome.replaceChildren(badge(OUTCOME[s.outcome] || "idle", s.outcome));
      const rows = [
        ["outcome", s.ok ? "ok" : s.outcome],
        ["started", formatTime(s.started_at) || "—"],
        ["finished", formatTime(s.finished_at) || (s.finished ? "—" : "not yet")],
        ["duration", formatDuration(s.duration) || "—"],
        ["hosts", s.hosts && s.hosts.length ? `${s.hosts.length}` : "0"],
        ["failures", String(s.failures)],
        ["reason", s.reason || "—"],
        ["results", s.results],
      ];
      facts.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: k === "results" ? "mono" : "" }, v)]));
      htmlNote.replaceChildren(
        ...(s.outcome === "running"
          ? [`This run's report.html (its failure report and timeline in one page) is written in ${s.results} when it ends.`]
          : [h("a", { class: "report-link", href: `/v1/runs/${encodeURIComponent(run)}/report.html`, target: "_blank", rel: "noopener" }, "Open report.html"), ` — this run's failure report and timeline in one page, also in ${s.results}.`]),
      );
    } catch (error) {
      if (closed) return;
      outcome.replaceChildren(badge("failed", "not found"));
      facts.replaceChildren(h("dd", { class: "error" }, messageOf(error)));
    }
  }

  async function loadReport() {
    try {
      const report = await api("GET", `/v1/runs/${encodeURIComponent(run)}/report`);
      if (!closed) reportBox.replaceChildren(...reportView(report));
    } catch (error) {
      if (!closed) reportBox.replaceChildren(h("span", { class: "error" }, `No report: ${messageOf(error)}`));
    }
  }

  async function loadTimeline() {
    const timeline = window.PlushTimeline;
    if (!timeline || typeof timeline.render !== "function") {
      timelineBox.replaceChildren(h("p", { class: "muted timeline-missing" }, "timeline not available"));
      return;
    }
    try {
      const data = await api("GET", `/v1/runs/${encodeURIComponent(run)}/timeline`);
      if (closed) return;
      if (timelineBox.timeline) timelineBox.timeline.destroy();
      timelineBox.replaceChildren();
      timelineBox.timeline = timeline.render(timelineBox, data); // its handle: rows(), xOf(t), yOf(hosts), ...
    } catch (error) {
      if (!closed) timelineBox.replaceChildren(h("p", { class: "muted timeline-missing" }, `timeline not available: ${messageOf(error)}`));
    }
  }

  async function loadFiles() {
    try {
      const list = await api("GET", `/v1/runs/${encodeURIComponent(run)}/files`);
      if (!closed) files.setRows(list);
    } catch (error) {
      if (!closed) files.setRows([]);
    }
  }

  function loadAll() {
    loadStatus();
    loadReport();
    loadTimeline();
    loadFiles();
  }
  const off = store.on
    ? store.on("run.finished", (event) => {
        if (!event.data || !event.data.run || event.data.run === run) loadAll();
      })
    : () => {};
  loadAll();
  return {
    unmount() {
      closed = true;
      off();
      if (timelineBox.timeline) timelineBox.timeline.destroy();
      viewer.close();
      files.destroy();
    },
  };
}
