// The application view (#/application): the loaded spec's block tree and DAG, each block lit by the states
// of its hosts (a bar of counts per state, never one node per host), barriers with their Release button,
// work queues (workflow blocks) with done/left, and the controls: load a spec (a path on the controller's
// machine or the text of an editor), run, stop, abort.
//
// Invariants: the DAG (appdag.js) is built once per tree and then only updated, at most once per animation
// frame (the store's subscribe); a block's hosts are drawn only when it is selected, capped; every name from
// the controller goes in as text.

import { api } from "../api.js";
import { Dag } from "./appdag.js";
import { byName, errorText, foldHosts, followMatching, h, hostList } from "./viewkit.js";

const HOST_CAP = 40;
const SPEC_EXAMPLE = `<plush>
  <project name="hello">
    <component name="workers"><rspec><num_hosts>2</num_hosts></rspec></component>
    <application_block name="hello">
      <execution>
        <component_block name="workers">
          <component name="workers"/>
          <process_block name="greet">
            <process name="greet"><path>echo</path><cmdline><arg>hello</arg></cmdline></process>
          </process_block>
        </component_block>
      </execution>
    </application_block>
  </project>
</plush>`;

export function mount(el, store) {
  const view = new ApplicationView(el, store);
  return { unmount: () => view.close() };
}

class ApplicationView {
  constructor(el, store) {
    this.el = el;
    this.store = store;
    this.dagView = new Dag(store, (path) => this.select(path));
    this.selected = null;
    this.busy = false;
    this.build();
    this.matching = followMatching(store, () => this.draw());
    this.draw();
  }

  close() {
    this.matching.close();
    this.el.replaceChildren();
  }

  // --- the frame ------------------------------------------------------------------------------------------

  build() {
    this.title = h("h2", { class: "pl-app-title" });
    this.specPath = h("div", { class: "pl-muted pl-app-spec" });
    this.badge = h("span", { class: "pl-badge", "data-testid": "run-state" });
    this.runButton = h("button", { class: "pl-btn pl-primary", "data-testid": "run", onclick: () => this.act("run") }, "Run");
    this.stopButton = h("button", { class: "pl-btn", "data-testid": "stop", onclick: () => this.act("stop") }, "Stop");
    this.abortButton = h("button", { class: "pl-btn pl-danger", "data-testid": "abort", onclick: () => this.act("abort") }, "Abort");
    this.loadToggle = h("button", { class: "pl-btn", "data-testid": "load-toggle", onclick: () => this.toggleLoad() }, "Load spec…");
    this.notice = h("div", { class: "pl-notice", hidden: true, role: "status" });
    this.loadPanel = this.buildLoadPanel();
    this.dag = this.dagView.el;
    this.barrierBox = h("div", { "data-testid": "barriers" });
    this.workBox = h("div", { "data-testid": "work-queues" });
    this.detail = h("div", { class: "pl-detail", "data-testid": "block-detail" });
    this.el.replaceChildren(
      h(
        "div",
        { class: "pl-appview" },
        h(
          "div",
          { class: "pl-toolbar" },
          h("div", { class: "pl-app-head" }, this.title, this.specPath),
          h("div", { class: "pl-spacer" }),
          this.badge,
          this.runButton,
          this.stopButton,
          this.abortButton,
          this.loadToggle,
        ),
        this.notice,
        this.loadPanel,
        h(
          "div",
          { class: "pl-app-body" },
          this.dag,
          h(
            "aside",
            { class: "pl-side" },
            h("section", {}, h("h3", { text: "Barriers" }), this.barrierBox),
            h("section", {}, h("h3", { text: "Work queues" }), this.workBox),
            h("section", {}, this.detail),
          ),
        ),
      ),
    );
  }

  buildLoadPanel() {
    this.pathInput = h("input", {
      class: "pl-input",
      type: "text",
      "data-testid": "spec-path",
      placeholder: "/path/to/application.xml on the controller's machine",
      spellcheck: "false",
    });
    this.textArea = h("textarea", { class: "pl-editor", "data-testid": "spec-text", rows: 14, spellcheck: "false" });
    this.textArea.value = SPEC_EXAMPLE;
    this.format = h("select", { class: "pl-input pl-format", "data-testid": "spec-format" }, h("option", { value: "xml", text: "XML" }), h("option", { value: "yaml", text: "YAML" }));
    this.errors = h("div", { class: "pl-spec-errors", "data-testid": "spec-errors", hidden: true });
    const form = h(
      "form",
      { class: "pl-load-path", onsubmit: (e) => (e.preventDefault(), this.load({ path: this.pathInput.value.trim() }, null)) },
      h("label", { text: "Spec file on the controller" }),
      h("div", { class: "pl-row" }, this.pathInput, h("button", { class: "pl-btn pl-primary", type: "submit", "data-testid": "load-path" }, "Load")),
    );
    const editor = h(
      "div",
      { class: "pl-load-text" },
      h("label", { text: "Or write one (files it names relatively are not found: load those by path)" }),
      this.textArea,
      h(
        "div",
        { class: "pl-row" },
        this.format,
        h("button", { class: "pl-btn pl-primary", "data-testid": "load-text", onclick: () => this.load({ text: this.textArea.value, format: this.format.value }, this.textArea) }, "Load text"),
      ),
    );
    return h("div", { class: "pl-loadpanel", hidden: true, "data-testid": "load-panel" }, form, editor, this.errors);
  }

  toggleLoad(open) {
    this.loadPanel.hidden = open === undefined ? !this.loadPanel.hidden : !open;
  }

  say(text, kind) {
    this.notice.textContent = text;
    this.notice.className = `pl-notice ${kind === "error" ? "pl-notice-error" : ""}`;
    this.notice.hidden = !text;
  }

  // --- actions --------------------------------------------------------------------------------------------

  async load(body, editor) {
    this.errors.hidden = true;
    if (body.path === "") return this.showErrors("give the path of a spec file", null);
    try {
      const answer = await api("PUT", "/v1/application", body);
      this.toggleLoad(false);
      this.say(`loaded ${answer.application}${answer.spec ? ` from ${answer.spec}` : ""}`);
      this.selected = null;
      await Promise.all([this.store.refresh("tree"), this.matching.load()]);
    } catch (error) {
      this.showErrors(errorText(error), editor);
    }
  }

  showErrors(message, editor) {
    const list = h("ul", {});
    for (const line of message.split("\n").filter(Boolean)) {
      const m = /^(.*?):(\d+)(?::(\d+))?: (.*)$/.exec(line);
      if (!m) {
        list.append(h("li", {}, h("span", { text: line })));
        continue;
      }
      const [, file, row, col, what] = m;
      const where = h("span", { class: "pl-where", text: `line ${row}${col ? `:${col}` : ""}`, title: file });
      const item = h("li", {}, where, h("span", { text: what }));
      if (editor) {
        where.classList.add("pl-link");
        where.addEventListener("click", () => selectLine(editor, Number(row)));
      }
      list.append(item);
    }
    this.errors.replaceChildren(h("div", { class: "pl-errors-head", text: "The spec was refused:" }), list);
    this.errors.hidden = false;
  }

  async act(what) {
    const paths = { run: ["/v1/runs", {}], stop: ["/v1/runs/current/stop", { reason: "stopped from the web UI" }], abort: ["/v1/runs/current/abort", { reason: "aborted from the web UI" }] };
    const [path, body] = paths[what];
    this.busy = true;
    this.draw();
    try {
      const answer = await api("POST", path, body);
      if (what === "run") this.say(`run ${answer.run} started${answer.notices && answer.notices.length ? `: ${answer.notices.join("; ")}` : ""}`);
      else this.say(`${what === "stop" ? "stop" : "abort"} requested`);
    } catch (error) {
      this.say(errorText(error), "error");
    } finally {
      this.busy = false;
      await Promise.all([this.store.refresh("run"), this.matching.load()]);
      this.draw();
    }
  }

  async release(name) {
    try {
      await api("POST", `/v1/barriers/${encodeURIComponent(name)}/release`);
      this.say(`barrier ${name} released`);
    } catch (error) {
      this.say(errorText(error), "error");
    }
    await this.store.refresh("barriers");
  }

  // --- drawing --------------------------------------------------------------------------------------------

  draw() {
    const { store } = this;
    const tree = store.tree;
    this.drawControls(tree, store.run);
    this.dagView.draw(tree, this.selected);
    this.drawBarriers(tree, store.barriers || []);
    this.drawWork(tree);
    this.drawDetail();
  }

  drawControls(tree, run) {
    const running = Boolean(run && run.running);
    this.title.textContent = tree ? tree.name : "No application loaded";
    const app = this.store.app;
    const spec = app && app.loaded && app.spec ? app.spec : tree ? tree.application : "";
    this.specPath.textContent = tree ? spec : "Load a spec: a file on the controller's machine, or write one.";
    this.specPath.title = this.specPath.textContent;
    let text = "no run yet";
    let cls = "pl-idle";
    if (running) [text, cls] = [`running ${run.run}`, "pl-running"];
    else if (run && run.last) {
      const last = run.last;
      if (last.ok) [text, cls] = [`last run ok (${last.run})`, "pl-done"];
      else if (last.stopped) [text, cls] = [`last run stopped${last.reason ? `: ${last.reason}` : ""}`, "pl-idle"];
      else [text, cls] = [`last run failed${last.reason ? `: ${last.reason}` : ""}`, "pl-failed"];
    } else if (run && run.run) text = `last run ${run.run}`;
    this.badge.textContent = text;
    this.badge.className = `pl-badge ${cls}`;
    this.badge.title = text;
    this.runButton.disabled = this.busy || running || !tree;
    this.stopButton.disabled = this.busy || !running;
    this.abortButton.disabled = this.busy || !running;
    if (!tree && this.dagView.tree === null && this.loadPanel.hidden && !this.openedOnce) {
      this.openedOnce = true;
      this.toggleLoad(true);
    }
  }

  select(path) {
    this.selected = this.selected === path ? null : path;
    this.draw();
  }

  drawDetail() {
    const entry = this.selected && this.dagView.blocks.get(this.selected);
    const run = this.store.app && this.store.app.run;
    const key = entry ? `${this.selected}|${this.store.seq}|${run && run.id}|${this.store.hosts.size}` : "";
    if (key === this.detailKey) return;
    this.detailKey = key;
    if (!entry) {
      this.detail.replaceChildren(h("p", { class: "pl-muted", text: "Select a block to see its hosts." }));
      return;
    }
    const { block } = entry;
    const hosts = this.dagView.phases.get(block.path) || new Map();
    const groups = new Map();
    for (const [name, phase] of hosts) {
      if (!groups.has(phase)) groups.set(phase, []);
      groups.get(phase).push(name);
    }
    const parts = [h("h3", {}, h("span", { text: block.name }), h("span", { class: "pl-tag", text: block.kind })), h("div", { class: "pl-muted pl-small pl-mono", text: block.path })];
    if (block.processes && block.processes.length) parts.push(h("div", { class: "pl-small", text: `processes: ${block.processes.join(", ")}` }));
    if (!hosts.size) parts.push(h("p", { class: "pl-muted", text: "No hosts: the application has not run yet." }));
    for (const phase of ["failed", "running", "waiting", "done", "skipped", "idle"]) {
      const names = groups.get(phase);
      if (!names) continue;
      names.sort(byName);
      parts.push(
        h(
          "div",
          { class: "pl-group", "data-phase": phase },
          h("div", { class: "pl-group-head" }, h("span", { class: `pl-dot pl-${phase}` }), h("b", { text: `${names.length} ${phase}` }), h("span", { class: "pl-muted pl-mono pl-fold", text: foldHosts(names) })),
          hostList(names, () => phase, HOST_CAP),
        ),
      );
    }
    this.detail.replaceChildren(...parts);
  }

  drawBarriers(tree, barriers) {
    const running = Boolean(this.store.run && this.store.run.running);
    const rules = new Map(((tree && tree.barriers) || []).map((b) => [b.name, b]));
    const key = JSON.stringify([barriers, running, [...rules.keys()]]);
    if (key === this.barrierKey) return;
    this.barrierKey = key;
    const seen = new Set(barriers.map((b) => b.name));
    const rows = [];
    for (const b of barriers) {
      const rule = rules.get(b.name);
      const status = b.released ? `released${b.reason ? ` (${b.reason})` : ""}` : b.waiting ? `${b.waiting} waiting` : "open";
      const pct = b.expected ? Math.min(100, (100 * b.arrived) / b.expected) : 0;
      rows.push(
        h(
          "div",
          { class: `pl-barrier ${b.released ? "pl-released" : ""}`, "data-barrier": b.name },
          h(
            "div",
            { class: "pl-barrier-head" },
            h("b", { text: b.name }),
            h("span", { class: "pl-tag", text: b.kind || "barrier" }),
            h("div", { class: "pl-spacer" }),
            h(
              "button",
              { class: "pl-btn pl-small-btn", "data-testid": `release-${b.name}`, disabled: b.released || !running || b.kind === "semaphore", onclick: () => this.release(b.name) },
              "Release",
            ),
          ),
          h("div", { class: "pl-meter" }, h("span", { style: { width: `${pct}%` } })),
          h(
            "div",
            { class: "pl-small pl-barrier-stats" },
            h("span", { "data-testid": "arrived", text: `${b.arrived}/${b.expected} arrived` }),
            b.late ? h("span", { class: "pl-late", text: `${b.late} late` }) : null,
            b.failed ? h("span", { class: "pl-fail", text: `${b.failed} failed` }) : null,
            b.admitted ? h("span", { text: `${b.admitted} admitted` }) : null,
            h("span", { class: "pl-muted", "data-testid": "barrier-status", text: status }),
          ),
          rule ? h("div", { class: "pl-muted pl-small", text: `rule: ${rule.rule}` }) : null,
        ),
      );
    }
    for (const [name, rule] of rules) {
      if (seen.has(name)) continue;
      rows.push(h("div", { class: "pl-barrier", "data-barrier": name }, h("div", { class: "pl-barrier-head" }, h("b", { text: name }), h("span", { class: "pl-tag", text: rule.kind })), h("div", { class: "pl-muted pl-small", text: `rule: ${rule.rule} · not reached yet` })));
    }
    this.barrierBox.replaceChildren(...(rows.length ? rows : [h("p", { class: "pl-muted", text: "This application has no barriers." })]));
  }

  drawWork(tree) {
    const flows = ((tree && tree.blocks) || []).filter((b) => b.kind === "workflow");
    const work = this.store.work;
    const key = JSON.stringify(flows.map((b) => b.path).concat([...work].map(([p, q]) => [p, q.done, q.inFlight.size, q.failed])));
    if (key === this.workKey) return;
    this.workKey = key;
    if (!flows.length) {
      this.workBox.replaceChildren(h("p", { class: "pl-muted", text: "No workflow blocks: no work queues." }));
      return;
    }
    const rows = flows.map((b) => {
      const q = work.get(b.path) || { done: 0, inFlight: new Map(), failed: 0 };
      const total = (b.data_files || []).length;
      const done = q.done;
      const text = `${done}/${total} done · ${Math.max(0, total - done)} left${q.inFlight.size ? ` · ${q.inFlight.size} in progress` : ""}${q.failed ? ` · ${q.failed} failed attempts` : ""}`;
      const entry = this.dagView.blocks.get(b.path);
      if (entry && entry.queue) entry.queue.textContent = text;
      return h(
        "div",
        { class: "pl-queue-row", "data-queue": b.path },
        h("div", { class: "pl-barrier-head" }, h("b", { text: b.name }), h("span", { class: "pl-muted pl-small pl-mono", text: b.path })),
        h("div", { class: "pl-meter pl-meter-done" }, h("span", { style: { width: `${total ? (100 * done) / total : 0}%` } })),
        h("div", { class: "pl-small", "data-testid": "queue-text", text }),
      );
    });
    this.workBox.replaceChildren(...rows);
  }
}

function selectLine(textarea, line) {
  const lines = textarea.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
  const lineHeight = textarea.scrollHeight / Math.max(1, lines.length);
  textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
}
