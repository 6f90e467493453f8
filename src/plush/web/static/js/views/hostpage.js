// A host's page (#/hosts/<host>, mounted by ./hosts.js): the host's properties, state and blocks (live from
// the store), "Mark failed" (POST /v1/hosts/{name}/fail, after an inline confirmation; the API's refusal shown
// in its own words), and the logs of every process instance of the current or last run (or another run
// chosen), streamed into a capped viewer (../logview.js); the list follows new runs (run.started, run.finished).
//
// Invariants: names, properties and logs reach the DOM as text (h(), textContent); leaving the page aborts
// the log being streamed.

import { api } from "../api.js";
import { createLogViewer, processLogs } from "../logview.js";
import { badge, formatBytes, h, messageOf } from "../widgets.js";

/** Draw the page of host `name` into `root`; answers {unmount()}. */
export function hostPage(root, store, name) {
  const title = h("h1", {}, name);
  const stateBadge = h("span");
  const failButton = h("button", { class: "btn danger", type: "button" }, "Mark failed");
  const confirmBox = h("div", { class: "confirm", hidden: true });
  const notice = h("div", { class: "notice", hidden: true });
  const facts = h("dl", { class: "facts" });
  const blocks = h("div", { class: "blocks" });
  const runPick = h("select", { class: "pick", "aria-label": "run", hidden: true });
  const runLabel = h("span", { class: "muted", hidden: true }, "of run");
  const logsBox = h("div", { class: "logs" });
  const viewerBox = h("div");
  root.append(
    h("nav", { class: "crumbs" }, h("a", { href: "#/hosts" }, "Hosts"), " › ", name),
    h("div", { class: "page-head" }, title, stateBadge, h("span", { class: "grow" }), failButton),
    confirmBox,
    notice,
    h("div", { class: "columns" }, h("section", { class: "panel" }, h("h2", {}, "Properties"), facts), h("section", { class: "panel" }, h("h2", {}, "Blocks"), blocks)),
    h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Logs"), runLabel, runPick), logsBox, viewerBox),
  );
  const viewer = createLogViewer(viewerBox);

  function say(text, bad) {
    notice.hidden = false;
    notice.className = `notice ${bad ? "error" : "ok"}`;
    notice.textContent = text;
  }

  function draw() {
    const host = store.hosts.get(name);
    stateBadge.replaceChildren(host ? badge(host.phase || host.state, host.state) : badge("idle", "not in the pool"));
    if (!host) {
      facts.replaceChildren(h("dd", { class: "muted" }, `No host named ${name} in the pool.`));
      blocks.replaceChildren();
      return;
    }
    const rows = [
      ["name", host.name],
      ["address", host.address || "—"],
      ["group", host.group || "—"],
      ["component", host.component || "—"],
      ["state", host.state],
      ["phase", host.phase || "—"],
      ["provider", host.provider || "—"],
      ["agent pid", host.agent_pid ?? "—"],
      ...Object.entries(host.properties || {}).sort().map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    ];
    facts.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, v)]));
    const entries = host.blocks ? [...host.blocks.entries()] : [];
    blocks.replaceChildren(
      entries.length
        ? h("table", { class: "mini" }, h("tbody", {}, entries.map(([path, state]) => h("tr", {}, h("td", { class: "mono" }, path), h("td", {}, badge(state))))))
        : h("div", { class: "muted" }, "No block has run on this host in this run."),
    );
  }

  failButton.addEventListener("click", () => {
    confirmBox.hidden = false;
    const yes = h("button", { class: "btn danger", type: "button" }, `Mark ${name} failed`);
    const no = h("button", { class: "btn", type: "button" }, "Cancel");
    confirmBox.replaceChildren(
      h("span", {}, `Mark ${name} failed? The run in progress loses it; its failure policy decides what follows (replace, restart, abort).`),
      yes,
      no,
    );
    no.addEventListener("click", () => {
      confirmBox.hidden = true;
    });
    yes.addEventListener("click", async () => {
      confirmBox.hidden = true;
      try {
        await api("POST", `/v1/hosts/${encodeURIComponent(name)}/fail`);
        say(`${name} marked failed.`, false);
        if (store.refresh) store.refresh("hosts");
      } catch (error) {
        say(`Could not mark ${name} failed: ${messageOf(error)}`, true);
      }
    });
  });

  let runs = [];
  let chosenRun = null;
  async function loadRuns() {
    try {
      runs = (await api("GET", "/v1/runs")).map((r) => r.run).reverse();
    } catch (error) {
      logsBox.replaceChildren(h("div", { class: "muted" }, `The runs cannot be listed: ${messageOf(error)}`));
      return;
    }
    const current = (store.run && (store.run.run || (store.run.last && store.run.last.run))) || runs[0] || null;
    if (current && !runs.includes(current)) runs.unshift(current);
    runPick.replaceChildren(...runs.map((r) => h("option", { value: r }, r)));
    runLabel.hidden = runPick.hidden = !runs.length;
    if (!chosenRun || !runs.includes(chosenRun)) chosenRun = current;
    if (chosenRun) runPick.value = chosenRun;
    await loadLogs();
  }

  async function loadLogs() {
    viewer.close();
    if (!chosenRun) {
      logsBox.replaceChildren(h("div", { class: "muted" }, "No run yet: the logs of the processes of a run appear here."));
      return;
    }
    const run = chosenRun;
    let files;
    try {
      files = (await api("GET", `/v1/runs/${encodeURIComponent(run)}/files`)).filter((f) => f.host === name);
    } catch (error) {
      logsBox.replaceChildren(h("div", { class: "muted" }, `The files of run ${run} cannot be listed: ${messageOf(error)}`));
      return;
    }
    if (run !== chosenRun) return;
    const { instances, other } = processLogs(files);
    const open = (file) => () => viewer.open({ run, ...file });
    const fileButton = (file, label) =>
      file ? h("button", { class: "btn small btn-link", type: "button", onclick: open(file), dataset: { path: file.path } }, `${label} · ${formatBytes(file.size)}`) : h("span", { class: "muted" }, "—");
    logsBox.replaceChildren(
      instances.length || other.length
        ? h(
            "table",
            { class: "mini logs-table" },
            h("thead", {}, h("tr", {}, h("th", {}, "process"), h("th", {}, "instance"), h("th", {}, "stdout"), h("th", {}, "stderr"))),
            h(
              "tbody",
              {},
              instances.map((i) => h("tr", {}, h("td", { class: "mono" }, i.process), h("td", {}, `#${i.instance}`), h("td", {}, fileButton(i.stdout, "stdout")), h("td", {}, fileButton(i.stderr, "stderr")))),
              other.map((f) => h("tr", {}, h("td", { class: "mono", colspan: "2" }, f.path.split("/").slice(2).join("/")), h("td", { colspan: "2" }, fileButton(f, f.kind)))),
            ),
          )
        : h("div", { class: "muted" }, `${name} has no logs in run ${run}.`),
    );
  }

  runPick.addEventListener("change", () => {
    chosenRun = runPick.value;
    loadLogs();
  });
  const offFinished = store.on ? store.on("run.finished", () => loadRuns()) : () => {};
  const offStarted = store.on
    ? store.on("run.started", (event) => {
        chosenRun = (event.data && event.data.run) || null;
        loadRuns();
      })
    : () => {};

  draw();
  loadRuns();
  const off = store.subscribe(draw);
  return {
    unmount() {
      off();
      offFinished();
      offStarted();
      viewer.close();
    },
  };
}
