// A virtualised table: only the rows in view (and a few beyond) are in the DOM, at a fixed row height, so
// 1,000s of rows scroll and update smoothly. Sortable columns (click a header: up, down), a filter (a
// predicate), multi-select (click, shift-click for a range, ctrl/cmd-click to toggle, the header box selects
// every row the filter lets through), and rows replaced at any time: the selection is kept by key (a key
// that is no longer among the rows leaves it).
//
// Invariants: every change (rows, filter, sort, selection, scroll) only marks the table dirty; one draw per
// animation frame does the work (sort and filter when those changed, then the visible slice). Cells get
// their content through textContent or a column's render(cell, row) that must build DOM nodes (never
// innerHTML with data). No global state: several tables may live on one page.
//
//   const table = createTable(el, {columns, key: (row) => row.name, rowHeight: 28, onSelect, onRender})
//   table.setRows(rows); table.setFilter((row) => ...); table.selected() -> [keys]; table.destroy()
//
// A column: {id, title, width ("120px" | "2fr"), value(row) (for sorting: a number or a string, strings in
// natural order), text(row) | render(cell, row), className(row)?, align?}. Option selectable: false shows no
// check boxes and selects nothing: a click calls onActivate(row) instead. Option fitRows: N makes the box `el` as
// tall as its rows, at most N rows (else it keeps the height its CSS gives it).

import { naturalCompare } from "./hostsets.js";

const OVERSCAN = 8;

function compareValues(a, b) {
  if (a === b) return 0;
  if (a == null || a === "") return 1; // empty last, whatever the direction
  if (b == null || b === "") return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return naturalCompare(String(a), String(b));
}

export function createTable(el, options) {
  const columns = options.columns;
  const keyOf = options.key;
  const rowHeight = options.rowHeight || 28;
  const selectable = options.selectable !== false;
  const template = [...(selectable ? ["32px"] : []), ...columns.map((c) => c.width || "1fr")].join(" ");
  const first = selectable ? 1 : 0; // the index of the first column's cell in a row

  let rows = [];
  let filter = null;
  let view = []; // the rows the filter lets through, sorted
  let sort = options.sort || null; // {id, dir: 1 | -1}
  let anchor = null; // the key a shift-click ranges from
  const selection = new Set();
  let dirtyView = true;
  let frame = 0;
  const pool = []; // row elements, reused

  const root = document.createElement("div");
  root.className = options.onActivate ? "vt activate" : "vt";
  root.setAttribute("role", "grid");
  const head = document.createElement("div");
  head.className = "vt-head";
  head.style.gridTemplateColumns = template;
  head.setAttribute("role", "row");
  const allBox = document.createElement("input");
  allBox.type = "checkbox";
  allBox.className = "vt-all";
  allBox.title = "Select every row the filter shows";
  allBox.setAttribute("aria-label", "select all shown");
  const allCell = document.createElement("div");
  allCell.className = "vt-cell vt-check";
  allCell.append(allBox);
  if (selectable) head.append(allCell);
  const headCells = columns.map((column) => {
    const cell = document.createElement("div");
    cell.className = "vt-cell vt-th";
    cell.setAttribute("role", "columnheader");
    cell.dataset.col = column.id;
    cell.textContent = column.title;
    if (column.align) cell.style.textAlign = column.align;
    head.append(cell);
    return cell;
  });
  const scroller = document.createElement("div");
  scroller.className = "vt-body";
  const spacer = document.createElement("div");
  spacer.className = "vt-spacer";
  scroller.append(spacer);
  const empty = document.createElement("div");
  empty.className = "vt-empty";
  root.append(head, scroller, empty);
  el.append(root);

  function schedule() {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function rebuildView() {
    const kept = filter ? rows.filter(filter) : rows.slice();
    if (sort) {
      const column = columns.find((c) => c.id === sort.id);
      const value = column.value || column.text;
      const keyed = kept.map((row) => [value(row), row]);
      const dir = sort.dir;
      const blank = (v) => v == null || v === "";
      keyed.sort((x, y) => {
        const order = blank(x[0]) || blank(y[0]) ? compareValues(x[0], y[0]) : compareValues(x[0], y[0]) * dir;
        return order || naturalCompare(String(keyOf(x[1])), String(keyOf(y[1])));
      });
      view = keyed.map((pair) => pair[1]);
    } else {
      view = kept;
    }
    dirtyView = false;
  }

  function rowElement() {
    const row = document.createElement("div");
    row.className = "vt-row";
    row.setAttribute("role", "row");
    row.style.height = `${rowHeight}px`;
    row.style.gridTemplateColumns = template;
    if (selectable) {
      const check = document.createElement("div");
      check.className = "vt-cell vt-check";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.tabIndex = -1;
      box.setAttribute("aria-label", "select");
      check.append(box);
      row.append(check);
    }
    for (const column of columns) {
      const cell = document.createElement("div");
      cell.className = "vt-cell";
      cell.dataset.col = column.id;
      if (column.align) cell.style.textAlign = column.align;
      row.append(cell);
    }
    scroller.append(row);
    return row;
  }

  function draw() {
    frame = 0;
    if (dirtyView) rebuildView();
    spacer.style.height = `${view.length * rowHeight}px`;
    if (options.fitRows) {
      // as tall as its rows (at least 3, at most fitRows), so a short list leaves no empty box
      const shownRows = Math.min(options.fitRows, Math.max(3, view.length));
      el.style.height = `${head.offsetHeight + shownRows * rowHeight + 2}px`;
    }
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 600;
    const from = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
    const last = Math.min(view.length, Math.ceil((top + height) / rowHeight) + OVERSCAN);
    while (pool.length < last - from) pool.push(rowElement());
    for (let i = 0; i < pool.length; i += 1) {
      const element = pool[i];
      const index = from + i;
      if (index >= last) {
        element.hidden = true;
        continue;
      }
      const row = view[index];
      const key = keyOf(row);
      element.hidden = false;
      element.style.transform = `translateY(${index * rowHeight}px)`;
      element.dataset.index = String(index);
      element.dataset.key = key;
      const chosen = selection.has(key);
      element.classList.toggle("selected", chosen);
      element.setAttribute("aria-selected", chosen ? "true" : "false");
      if (selectable) element.firstChild.firstChild.checked = chosen;
      columns.forEach((column, c) => {
        const cell = element.children[c + first];
        if (column.render) {
          cell.replaceChildren();
          column.render(cell, row);
        } else {
          const text = String(column.text(row) ?? "");
          if (cell.textContent !== text) cell.textContent = text;
          cell.title = text;
        }
        const extra = column.className ? column.className(row) : "";
        cell.className = extra ? `vt-cell ${extra}` : "vt-cell";
      });
    }
    headCells.forEach((cell, c) => {
      const on = sort && sort.id === columns[c].id;
      cell.classList.toggle("sorted", Boolean(on));
      cell.dataset.dir = on ? (sort.dir > 0 ? "asc" : "desc") : "";
      cell.setAttribute("aria-sort", on ? (sort.dir > 0 ? "ascending" : "descending") : "none");
    });
    const shown = view.filter((row) => selection.has(keyOf(row))).length;
    allBox.checked = view.length > 0 && shown === view.length;
    allBox.indeterminate = shown > 0 && shown < view.length;
    empty.hidden = view.length > 0;
    empty.textContent = rows.length ? options.noMatch || "No row matches the filter." : options.emptyText || "Nothing here.";
    if (options.onRender) options.onRender(view.slice(from, last));
  }

  function changed() {
    if (options.onSelect) options.onSelect(api);
    schedule();
  }

  function clickRow(event) {
    const element = event.target.closest(".vt-row");
    if (!element || event.target.closest("a, button")) return;
    const index = Number(element.dataset.index);
    const key = keyOf(view[index]);
    if (!selectable) {
      if (options.onActivate) options.onActivate(view[index]);
      return;
    }
    const toggle = event.ctrlKey || event.metaKey || event.target.type === "checkbox";
    if (event.shiftKey && anchor !== null) {
      const from = view.findIndex((row) => keyOf(row) === anchor);
      if (from >= 0) {
        if (!toggle) selection.clear();
        const [a, b] = from < index ? [from, index] : [index, from];
        for (let i = a; i <= b; i += 1) selection.add(keyOf(view[i]));
        event.preventDefault();
        changed();
        return;
      }
    }
    if (toggle) {
      if (selection.has(key)) selection.delete(key);
      else selection.add(key);
    } else {
      selection.clear();
      selection.add(key);
    }
    anchor = key;
    changed();
  }

  function clickHead(event) {
    const cell = event.target.closest(".vt-th");
    if (!cell) return;
    const id = cell.dataset.col;
    sort = sort && sort.id === id ? (sort.dir > 0 ? { id, dir: -1 } : null) : { id, dir: 1 };
    dirtyView = true;
    schedule();
  }

  function clickAll() {
    api.selectAllFiltered(allBox.checked);
  }

  function preventTextSelection(event) {
    if (event.shiftKey) event.preventDefault();
  }

  scroller.addEventListener("click", clickRow);
  scroller.addEventListener("mousedown", preventTextSelection);
  scroller.addEventListener("scroll", schedule, { passive: true });
  head.addEventListener("click", clickHead);
  allBox.addEventListener("change", clickAll);
  const resize = new ResizeObserver(schedule);
  resize.observe(scroller);

  const api = {
    /** Replace every row (the selection keeps the keys still there). */
    setRows(next) {
      rows = next;
      const keys = new Set(rows.map(keyOf));
      for (const key of [...selection]) if (!keys.has(key)) selection.delete(key);
      dirtyView = true;
      schedule();
    },
    /** Keep the rows for which fn(row) is true (null: every row). */
    setFilter(fn) {
      filter = fn;
      dirtyView = true;
      schedule();
    },
    setSort(id, dir = 1) {
      sort = id ? { id, dir } : null;
      dirtyView = true;
      schedule();
    },
    /** Select (or with false unselect) every row the filter lets through. */
    selectAllFiltered(on = true) {
      if (dirtyView) rebuildView();
      for (const row of view) {
        if (on) selection.add(keyOf(row));
        else selection.delete(keyOf(row));
      }
      changed();
    },
    clearSelection() {
      selection.clear();
      anchor = null;
      changed();
    },
    select(keys) {
      selection.clear();
      for (const key of keys) selection.add(key);
      changed();
    },
    selected() {
      return [...selection];
    },
    /** The rows the filter lets through, in their order. */
    shown() {
      if (dirtyView) rebuildView();
      return view.slice();
    },
    rowCount() {
      return rows.length;
    },
    redraw: schedule,
    destroy() {
      if (frame) cancelAnimationFrame(frame);
      resize.disconnect();
      root.remove();
    },
  };
  schedule();
  return api;
}
