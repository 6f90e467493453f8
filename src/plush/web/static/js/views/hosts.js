// The host view (#/hosts) and a host's page (#/hosts/<host>).
//
// #/hosts: every host of store.hosts in a virtualised table (js/vtable.js): sortable, filtered by the filter
// box (host sets, words, state:X, component:X: hostFilter in js/hostsets.js) and by state and component;
// multi-select; a command box runs a shell command on the selection (POST /v1/exec, shell true) and shows the
// answer folded by host set (js/execfold.js), failures, timeouts and unreachable hosts marked.
// #/hosts/<host>: a host's page (./hostpage.js).
//
// Invariants: host names, outputs and logs reach the DOM as text (h(), textContent); the table is redrawn at
// most once per animation frame whatever the rate of store changes; the filter, the selection and the last
// command's output survive leaving the view and coming back (module state, per page).

import { api } from "../api.js";
import { createTable } from "../vtable.js";
import { fold, foldCount, hostFilter } from "../hostsets.js";
import { foldExec, tally } from "../execfold.js";
import { badge, formatDuration, h, listAndPages, messageOf } from "../widgets.js";
import { hostPage } from "./hostpage.js";

// what the list keeps while the page lives
const kept = { filter: "", state: "", component: "", selection: [], command: "", timeout: "60", output: null };

export function mount(el, store) {
  return listAndPages(el, store, "hosts-view", hostList, hostPage);
}

// --- the list -----------------------------------------------------------------------------------------------

function blockCounts(host) {
  const counts = {};
  for (const state of host.blocks ? host.blocks.values() : []) counts[state] = (counts[state] || 0) + 1;
  return counts;
}

const COLUMNS = [
  {
    id: "name",
    title: "Host",
    width: "minmax(140px, 1.3fr)",
    value: (host) => host.name,
    render: (cell, host) => cell.append(h("a", { href: `#/hosts/${encodeURIComponent(host.name)}`, class: "host-link" }, host.name)),
  },
  {
    id: "state",
    title: "State",
    width: "130px",
    value: (host) => host.state,
    render: (cell, host) => cell.append(badge(host.phase || host.state, host.state)),
  },
  { id: "component", title: "Component", width: "minmax(100px, 1fr)", text: (host) => host.component || "" },
  { id: "group", title: "Group", width: "minmax(80px, 0.8fr)", text: (host) => host.group || "" },
  { id: "address", title: "Address", width: "minmax(110px, 1fr)", text: (host) => host.address || "" },
  {
    id: "blocks",
    title: "Blocks",
    width: "minmax(160px, 1.4fr)",
    value: (host) => blockCounts(host).completed || 0,
    text: (host) => {
      const counts = blockCounts(host);
      return ["completed", "started", "failed", "skipped"].filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(" · ");
    },
  },
];

function options(select, values, all) {
  const want = ["", ...values];
  const have = [...select.options].map((o) => o.value);
  if (want.length === have.length && want.every((v, i) => v === have[i])) return;
  const chosen = select.value;
  select.replaceChildren(...want.map((v) => h("option", { value: v }, v || all)));
  select.value = want.includes(chosen) ? chosen : "";
}

function hostList(root, store) {
  const filterBox = h("input", {
    type: "search",
    class: "filter",
    placeholder: "Filter: local-[1-20],web1 · words · state:running · component:web",
    value: kept.filter,
    "aria-label": "filter hosts",
  });
  const stateSelect = h("select", { class: "pick", "aria-label": "state" });
  const componentSelect = h("select", { class: "pick", "aria-label": "component" });
  const filterError = h("div", { class: "filter-error", hidden: true });
  const counts = h("span", { class: "counts muted" });
  const selectAll = h("button", { class: "btn", type: "button" }, "Select all shown");
  const clear = h("button", { class: "btn", type: "button" }, "Clear");
  const tableBox = h("div", { class: "table-box" });
  const selectionText = h("span", { class: "selection mono" });
  const command = h("input", { type: "text", class: "command mono", placeholder: "command, run by sh -c on each selected host", value: kept.command, "aria-label": "command" });
  const timeout = h("input", { type: "number", class: "timeout", min: "1", step: "1", value: kept.timeout, "aria-label": "timeout in seconds", title: "timeout (s)" });
  const runButton = h("button", { class: "btn primary", type: "submit" }, "Run");
  const output = h("div", { class: "exec-output" });
  const form = h(
    "form",
    { class: "command-bar" },
    h("span", { class: "prompt mono" }, "$"),
    command,
    h("label", { class: "muted timeout-label" }, "timeout ", timeout, " s"),
    runButton,
  );
  root.append(
    h("div", { class: "toolbar" }, filterBox, stateSelect, componentSelect, selectAll, clear, counts),
    filterError,
    tableBox,
    h("section", { class: "panel exec" }, h("div", { class: "exec-head" }, h("h2", {}, "Run a command"), h("span", { class: "muted" }, "on "), selectionText), form, output),
  );

  const table = createTable(tableBox, {
    columns: COLUMNS,
    key: (host) => host.name,
    rowHeight: 30,
    fitRows: 14,
    sort: { id: "name", dir: 1 },
    emptyText: "No host in the pool yet.",
    noMatch: "No host matches the filter.",
    onSelect: () => {
      kept.selection = table.selected();
      drawSelection();
    },
  });

  function drawSelection() {
    const chosen = table.selected();
    selectionText.textContent = chosen.length ? foldCount(chosen) : "no host selected: click rows (shift: a range, ctrl/⌘: one more)";
    selectionText.classList.toggle("muted", !chosen.length);
    runButton.disabled = !chosen.length || running;
    runButton.textContent = chosen.length ? `Run on ${chosen.length} host${chosen.length === 1 ? "" : "s"}` : "Run";
    counts.textContent = `${table.rowCount()} hosts · ${table.shown().length} shown · ${chosen.length} selected`;
  }

  function applyFilter() {
    kept.filter = filterBox.value;
    kept.state = stateSelect.value;
    kept.component = componentSelect.value;
    const { test, error } = hostFilter(filterBox.value);
    filterError.hidden = !error;
    filterError.textContent = error ? error.message : "";
    filterBox.classList.toggle("bad", Boolean(error));
    const state = stateSelect.value;
    const component = componentSelect.value;
    table.setFilter((host) => (!state || host.state === state) && (!component || host.component === component) && test(host));
    drawSelection();
  }

  function draw() {
    const hosts = [...store.hosts.values()];
    options(stateSelect, [...new Set(hosts.map((x) => x.state))].sort(), "every state");
    options(componentSelect, [...new Set(hosts.map((x) => x.component).filter(Boolean))].sort(), "every component");
    if (kept.state && stateSelect.value !== kept.state && [...stateSelect.options].some((o) => o.value === kept.state)) stateSelect.value = kept.state;
    if (kept.component && componentSelect.value !== kept.component && [...componentSelect.options].some((o) => o.value === kept.component)) {
      componentSelect.value = kept.component;
    }
    table.setRows(hosts);
    drawSelection();
  }

  let running = false;
  async function run(event) {
    event.preventDefault();
    const chosen = table.selected();
    const text = command.value.trim();
    if (!chosen.length || !text) return;
    kept.command = command.value;
    kept.timeout = timeout.value;
    running = true;
    drawSelection();
    const hostset = fold(chosen);
    output.replaceChildren(h("div", { class: "exec-summary muted", dataset: { state: "running" } }, `running \`${text}\` on ${foldCount(chosen)}…`));
    try {
      const answer = await api("POST", "/v1/exec", { cmd: text, hosts: hostset, shell: true, timeout: Number(timeout.value) || 60 });
      kept.output = { text, hostset, count: chosen.length, answer };
    } catch (error) {
      kept.output = { text, hostset, count: chosen.length, error: messageOf(error) };
    }
    running = false;
    drawSelection();
    drawOutput();
  }

  function drawOutput() {
    const last = kept.output;
    if (!last) {
      output.replaceChildren();
      return;
    }
    if (last.error) {
      output.replaceChildren(h("div", { class: "exec-summary bad", dataset: { state: "error" } }, h("code", {}, last.text), ` on ${last.hostset}: ${last.error}`));
      return;
    }
    const addresses = new Map([...store.hosts.values()].map((x) => [x.name, x.address]));
    const groups = foldExec(last.answer, addresses);
    const t = tally(groups);
    const parts = [`${t.ok} ok`];
    if (t.failed) parts.push(`${t.failed} failed`);
    if (t.timeout) parts.push(`${t.timeout} timed out`);
    if (t.unreachable) parts.push(`${t.unreachable} unreachable`);
    output.replaceChildren(
      h(
        "div",
        { class: "exec-summary", dataset: { state: "done", status: String(last.answer.status) } },
        h("code", {}, last.text),
        h("span", {}, ` on ${last.hostset} (${last.count}) `),
        badge(last.answer.status ? "failed" : "done", `status ${last.answer.status}`),
        h("span", { class: "muted" }, ` ${parts.join(" · ")} · ${formatDuration(last.answer.duration)}`),
      ),
      ...groups.map((group) =>
        h(
          "div",
          { class: `exec-group kind-${group.kind}`, dataset: { hosts: group.hostset } },
          h(
            "div",
            { class: "exec-group-head" },
            h("span", { class: "hostset mono" }, group.hostset),
            h("span", { class: "muted" }, ` (${group.hosts.length} host${group.hosts.length === 1 ? "" : "s"})`),
            badge(group.kind === "ok" ? "done" : group.kind === "timeout" ? "waiting" : "failed", group.text),
            group.marks.length ? h("span", { class: "varies muted" }, `varies: ${group.marks.map((m) => `{${m}}`).join(" ")}`) : null,
            group.truncated ? h("span", { class: "varies muted" }, "output truncated") : null,
          ),
          group.stdout ? h("pre", { class: "out" }, group.stdout) : null,
          group.stderr ? h("pre", { class: "out err" }, group.stderr) : null,
          !group.stdout && !group.stderr && group.kind !== "unreachable" ? h("div", { class: "muted no-output" }, "(no output)") : null,
        ),
      ),
    );
  }

  filterBox.addEventListener("input", applyFilter);
  stateSelect.addEventListener("change", applyFilter);
  componentSelect.addEventListener("change", applyFilter);
  selectAll.addEventListener("click", () => table.selectAllFiltered(true));
  clear.addEventListener("click", () => table.clearSelection());
  form.addEventListener("submit", run);

  draw();
  table.select(kept.selection.filter((name) => store.hosts.has(name)));
  applyFilter();
  drawOutput();
  const off = store.subscribe(draw);
  return {
    unmount() {
      off();
      table.destroy();
    },
  };
}
