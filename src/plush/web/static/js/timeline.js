/*
 * The timeline of a run: a Gantt chart per host row, drawn on a canvas.
 *
 * A CLASSIC script (not a module): it defines window.PlushTimeline.render(el, data), where data is the JSON of
 * GET /v1/runs/{run}/timeline (plush.controller.timeline.Timeline.to_dict, docs/api.md), the same JSON that
 * report.html embeds. The web UI's run view loads it as a plain script; report.html inlines it (so this file
 * never holds the end tag of a script element or an HTML comment's opening: tests/web/test_report_html.py).
 *
 * Drawing: rows (a component's header, then its folded host rows) on one canvas the height of the visible
 * part, redrawn on scroll and resize within an animation frame: a thousand rows cost what the visible ones cost.
 * Each row: its host set, load and memory sparklines, then its spans (process instances by outcome, barrier
 * waits, installs) and marks on the run's time axis; the run's own marks (barrier releases, restarts) are
 * dashed lines across every row. Hovering shows a tooltip.
 *
 * The data is untrusted text (host names, reasons): it only reaches the DOM through textContent and canvas
 * fillText, never innerHTML. Styles are set through the CSSOM (el.style), which a strict CSP allows.
 */
(function () {
  "use strict";

  var COLOURS = {
    ok: "#27ae60",
    failed: "#eb5757",
    killed: "#9b51e0",
    lost: "#828282",
    open: "#2f80ed",
    wait: "#f2994a",
    install: "#9aa5b1",
    text: "#1f2933",
    muted: "#616e7c",
    grid: "#e4e7eb",
    band: "#f5f7fa",
    header: "#eef1f4",
    load: "#2f80ed",
    mem: "#8e44ad",
  };
  var FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  var BOLD = "600 " + FONT;
  var SMALL = '10.5px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  var ROW = 24;
  var HEAD = 24;
  var AXIS = 30;
  var LABEL_W = 190;
  var SPARK_W = 64;
  var PAD = 14;
  var MAX_HEIGHT = 640;
  var LATE_W = 6;

  //: how each mark kind looks: [shape, colour, what the legend says]
  var MARKS = {
    late: ["triangle", "#d9731a", "late pass"],
    failed: ["cross", COLOURS.failed, "host failed"],
    limits: ["cross", "#c0392b", "over limits"],
    liveness: ["cross", "#c0392b", "liveness failed"],
    restart: ["circle", "#2f80ed", "restart"],
    rematch: ["square", "#9b51e0", "rematch"],
    dropped: ["cross", "#828282", "dropped"],
    disconnect: ["tick", "#828282", "disconnect"],
    reconnect: ["tick", "#27ae60", "reconnect"],
  };
  var RUN_MARKS = {
    release: "#f2994a",
    start: "#9aa5b1",
    restart: "#2f80ed",
    abort: "#eb5757",
    stop: "#616e7c",
  };

  function css(node, styles) {
    for (var key in styles) {
      if (Object.prototype.hasOwnProperty.call(styles, key)) node.style[key] = styles[key];
    }
    return node;
  }

  function make(tag, styles, text) {
    var node = document.createElement(tag);
    if (styles) css(node, styles);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function num(value, fallback) {
    return typeof value === "number" && isFinite(value) ? value : fallback;
  }

  function str(value) {
    return value === null || value === undefined ? "" : String(value);
  }

  function list(value) {
    return Array.isArray(value) ? value : [];
  }

  function fmtTime(t) {
    if (t < 10) return t.toFixed(3) + " s";
    if (t < 60) return t.toFixed(1) + " s";
    var m = Math.floor(t / 60);
    var s = t - m * 60;
    if (m < 60) return m + "m " + s.toFixed(0).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h " + String(m % 60).padStart(2, "0") + "m";
  }

  function fmtSpan(d) {
    if (d < 1) return Math.round(d * 1000) + " ms";
    return fmtTime(d);
  }

  function niceStep(range, ticks) {
    var raw = range / Math.max(1, ticks);
    var steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300,
      600, 900, 1800, 3600, 7200, 14400, 28800, 86400];
    for (var i = 0; i < steps.length; i++) if (steps[i] >= raw) return steps[i];
    return steps[steps.length - 1];
  }

  function tickLabel(t, step) {
    if (step >= 60) {
      var m = Math.floor(t / 60);
      if (m >= 60) return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0");
      return m + "m" + (t % 60 ? String(Math.round(t % 60)).padStart(2, "0") : "");
    }
    var decimals = step >= 1 ? 0 : step >= 0.1 ? 1 : step >= 0.01 ? 2 : 3;
    return t.toFixed(decimals) + "s";
  }

  /* The data, checked: rows flattened into entries with their y offsets. */
  function model(data) {
    var fields = (data && data.fields) || {};
    var spanFields = list(fields.span).length ? list(fields.span) : ["kind", "start", "end", "outcome", "name", "info"];
    var markFields = list(fields.mark).length ? list(fields.mark) : ["kind", "at", "label"];
    var duration = Math.max(0, num(data && data.duration, 0));
    function pick(names, item) {
      var out = {};
      var arr = list(item);
      for (var i = 0; i < names.length; i++) out[names[i]] = arr[i];
      return out;
    }
    function clampT(t) {
      return Math.min(duration, Math.max(0, num(t, 0)));
    }
    function span(item) {
      var s = pick(spanFields, item);
      var start = clampT(s.start);
      return {
        kind: str(s.kind), start: start, end: Math.max(start, clampT(s.end)),
        outcome: str(s.outcome), name: str(s.name), info: str(s.info),
      };
    }
    function mark(item) {
      var m = pick(markFields, item);
      return { kind: str(m.kind), at: clampT(m.at), label: str(m.label) };
    }
    var entries = [];
    var y = 0;
    list(data && data.groups).forEach(function (group) {
      var rows = list(group && group.rows);
      var component = group && group.component !== null && group.component !== undefined ? str(group.component) : "";
      var header = {
        type: "group", y: y, h: HEAD,
        title: component || "(no component)", hosts: num(group && group.hosts, 0), rows: rows.length,
      };
      header.index = entries.length;
      entries.push(header);
      y += HEAD;
      rows.forEach(function (row) {
        var samples = list(row && row.samples).map(function (s) {
          var a = list(s);
          return { at: clampT(a[0]), load: num(a[1], null), mem: num(a[2], null) };
        });
        entries.push({
          type: "row", y: y, h: ROW,
          hosts: str(row && row.hosts), count: num(row && row.count, 1), cpus: num(row && row.cpus, null),
          spans: list(row && row.spans).map(span), marks: list(row && row.marks).map(mark),
          samples: samples, omitted: num(row && row.omitted, 0), component: component, header: header,
        });
        y += ROW;
      });
    });
    return {
      run: str(data && data.run), startedAt: num(data && data.started_at, null), duration: duration,
      finished: !!(data && data.finished), ok: data ? data.ok : null,
      hosts: num(data && data.hosts, 0), rowCount: num(data && data.rows, 0),
      marks: list(data && data.marks).map(mark), entries: entries, height: y,
    };
  }

  function firstVisible(entries, top) {
    var lo = 0;
    var hi = entries.length - 1;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (entries[mid].y + entries[mid].h <= top) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function drawGlyph(ctx, shape, colour, x, y, r) {
    ctx.save();
    ctx.fillStyle = colour;
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    if (shape === "triangle") {
      ctx.moveTo(x - r, y - r);
      ctx.lineTo(x + r, y - r);
      ctx.lineTo(x, y + r);
      ctx.closePath();
      ctx.fill();
      ctx.lineWidth = 1;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
    } else if (shape === "cross") {
      ctx.moveTo(x - r, y - r);
      ctx.lineTo(x + r, y + r);
      ctx.moveTo(x + r, y - r);
      ctx.lineTo(x - r, y + r);
      ctx.stroke();
    } else if (shape === "circle") {
      ctx.arc(x, y, r, 0, Math.PI * 2);
      ctx.fill();
    } else if (shape === "square") {
      ctx.rect(x - r, y - r, 2 * r, 2 * r);
      ctx.fill();
    } else {
      ctx.moveTo(x, y - r - 1);
      ctx.lineTo(x, y + r + 1);
      ctx.stroke();
    }
    ctx.restore();
  }

  function fitText(ctx, text, width) {
    if (ctx.measureText(text).width <= width) return text;
    var lo = 0;
    var hi = text.length;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + "…").width <= width) lo = mid;
      else hi = mid - 1;
    }
    return text.slice(0, lo) + "…";
  }

  function spanColour(span) {
    if (span.kind === "wait") return COLOURS.wait;
    if (span.kind === "install") return span.outcome === "failed" ? COLOURS.failed : COLOURS.install;
    return COLOURS[span.outcome] || COLOURS.lost;
  }

  function legendItem(label, draw) {
    var item = make("span", { display: "inline-flex", alignItems: "center", gap: "5px", marginRight: "14px",
      whiteSpace: "nowrap" });
    var swatch = document.createElement("canvas");
    var ratio = window.devicePixelRatio || 1;
    swatch.width = 16 * ratio;
    swatch.height = 12 * ratio;
    css(swatch, { width: "16px", height: "12px" });
    var ctx = swatch.getContext("2d");
    ctx.scale(ratio, ratio);
    draw(ctx);
    item.appendChild(swatch);
    item.appendChild(make("span", null, label));
    return item;
  }

  function render(el, data) {
    var m = model(data || {});
    var ratio = window.devicePixelRatio || 1;
    var disposed = false;
    var shown = false;
    var frame = 0;
    var layout = { width: 0, viewH: 0, x0: 0, x1: 0 };

    var root = make("div", { position: "relative", font: FONT, color: COLOURS.text, background: "#ffffff",
      border: "1px solid " + COLOURS.grid, borderRadius: "6px", overflow: "hidden" });
    root.className = "plush-timeline";

    var head = make("div", { display: "flex", flexWrap: "wrap", alignItems: "baseline", gap: "6px 18px",
      padding: "10px " + PAD + "px 8px", borderBottom: "1px solid " + COLOURS.grid });
    var title = make("div", { fontWeight: "600", fontSize: "13px" }, "Timeline");
    head.appendChild(title);
    var facts = [m.hosts + (m.hosts === 1 ? " host" : " hosts") + " in " + m.rowCount + (m.rowCount === 1 ? " row" : " rows"),
      fmtTime(m.duration) + (m.finished ? "" : " so far")];
    if (m.startedAt !== null) facts.push("started " + new Date(m.startedAt * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC");
    head.appendChild(make("div", { color: COLOURS.muted }, facts.join(" · ")));
    root.appendChild(head);

    var legend = make("div", { display: "flex", flexWrap: "wrap", rowGap: "4px", padding: "6px " + PAD + "px",
      color: COLOURS.muted, borderBottom: "1px solid " + COLOURS.grid, fontSize: "11.5px" });
    legend.setAttribute("data-role", "legend");
    [["process ok", COLOURS.ok, 10], ["failed", COLOURS.failed, 10], ["killed", COLOURS.killed, 10],
      ["running", COLOURS.open, 10], ["lost", COLOURS.lost, 10], ["install", COLOURS.install, 6]].forEach(function (it) {
      legend.appendChild(legendItem(it[0], function (ctx) {
        ctx.fillStyle = it[1];
        ctx.fillRect(1, 6 - it[2] / 2, 14, it[2]);
      }));
    });
    legend.appendChild(legendItem("barrier wait", function (ctx) {
      ctx.fillStyle = "rgba(242,153,74,0.35)";
      ctx.fillRect(1, 2, 14, 8);
      ctx.strokeStyle = COLOURS.wait;
      ctx.strokeRect(1.5, 2.5, 13, 7);
    }));
    ["late", "failed", "restart", "rematch", "disconnect"].forEach(function (kind) {
      var spec = MARKS[kind];
      legend.appendChild(legendItem(spec[2], function (ctx) { drawGlyph(ctx, spec[0], spec[1], 8, 6, 4); }));
    });
    legend.appendChild(legendItem("barrier released", function (ctx) {
      ctx.strokeStyle = RUN_MARKS.release;
      ctx.setLineDash([3, 2]);
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(8, 0);
      ctx.lineTo(8, 12);
      ctx.stroke();
    }));
    legend.appendChild(legendItem("load / memory", function (ctx) {
      ctx.strokeStyle = COLOURS.load;
      ctx.beginPath();
      ctx.moveTo(1, 10); ctx.lineTo(5, 6); ctx.lineTo(9, 8); ctx.lineTo(15, 2);
      ctx.stroke();
    }));
    root.appendChild(legend);

    var axis = document.createElement("canvas");
    css(axis, { display: "block" });
    axis.setAttribute("data-role", "axis");
    root.appendChild(axis);

    var scroller = make("div", { position: "relative", overflowY: "auto", overflowX: "hidden" });
    scroller.setAttribute("data-role", "rows");
    var spacer = make("div", { position: "relative", height: m.height + "px" });
    var canvas = document.createElement("canvas");
    css(canvas, { position: "sticky", top: "0", display: "block" });
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "Gantt chart of " + m.hosts + " hosts over " + fmtTime(m.duration));
    spacer.appendChild(canvas);
    scroller.appendChild(spacer);
    root.appendChild(scroller);

    if (!m.entries.length) {
      scroller.appendChild(make("div", { padding: "18px " + PAD + "px", color: COLOURS.muted },
        "No host activity recorded in this run yet."));
    }

    var tip = make("div", { position: "absolute", display: "none", pointerEvents: "none", zIndex: "10",
      background: "#1f2933", color: "#ffffff", padding: "6px 8px", borderRadius: "4px", fontSize: "12px",
      lineHeight: "1.45", whiteSpace: "pre-wrap", maxWidth: "460px", overflowWrap: "anywhere",
      boxShadow: "0 2px 8px rgba(0,0,0,0.25)" });
    tip.setAttribute("data-role", "tooltip");
    root.appendChild(tip);

    el.replaceChildren(root);

    function xOf(t) {
      var d = m.duration > 0 ? m.duration : 1;
      return layout.x0 + (t / d) * (layout.x1 - layout.x0);
    }

    function resize() {
      if (!root.isConnected) {  // the view that showed it is gone (it need not call destroy)
        if (shown) handle.destroy();
        return;
      }
      shown = true;
      var width = Math.max(480, scroller.clientWidth || el.clientWidth || 960);
      var viewH = Math.min(Math.max(m.height, 1), MAX_HEIGHT);
      scroller.style.height = (m.entries.length ? viewH : 0) + "px";
      width = Math.max(480, scroller.clientWidth || width);
      layout.width = width;
      layout.viewH = viewH;
      layout.x0 = LABEL_W + 2 * SPARK_W + 3 * 10;
      layout.x1 = width - PAD - 4;
      [[canvas, viewH], [axis, AXIS]].forEach(function (pair) {
        pair[0].width = Math.round(width * ratio);
        pair[0].height = Math.round(pair[1] * ratio);
        pair[0].style.width = width + "px";
        pair[0].style.height = pair[1] + "px";
      });
      schedule();
    }

    function schedule() {
      if (frame || disposed) return;
      frame = window.requestAnimationFrame(function () {
        frame = 0;
        draw();
      });
    }

    function drawAxis() {
      var ctx = axis.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, layout.width, AXIS);
      ctx.font = FONT;
      ctx.fillStyle = COLOURS.muted;
      ctx.textBaseline = "middle";
      ctx.textAlign = "left";
      ctx.fillText("hosts", PAD, AXIS / 2);
      ctx.fillText("load", LABEL_W + 10, AXIS / 2);
      ctx.fillText("memory", LABEL_W + SPARK_W + 20, AXIS / 2);
      var step = niceStep(m.duration || 1, Math.floor((layout.x1 - layout.x0) / 90));
      ctx.strokeStyle = COLOURS.grid;
      ctx.textAlign = "center";
      for (var t = 0; t <= (m.duration || 0) + 1e-9; t += step) {
        var x = Math.round(xOf(t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x, AXIS - 6);
        ctx.lineTo(x, AXIS);
        ctx.stroke();
        ctx.fillText(tickLabel(t, step), Math.min(x, layout.x1 - 12), AXIS / 2 - 2);
      }
      m.marks.forEach(function (mark) {
        var x = Math.round(xOf(mark.at));
        ctx.fillStyle = RUN_MARKS[mark.kind] || COLOURS.muted;
        ctx.beginPath();
        ctx.moveTo(x - 5, AXIS - 9);
        ctx.lineTo(x + 5, AXIS - 9);
        ctx.lineTo(x, AXIS - 1);
        ctx.closePath();
        ctx.fill();
      });
      ctx.strokeStyle = COLOURS.grid;
      ctx.beginPath();
      ctx.moveTo(0, AXIS - 0.5);
      ctx.lineTo(layout.width, AXIS - 0.5);
      ctx.stroke();
    }

    function sparkline(ctx, samples, key, x, y, w, h, max, colour) {
      ctx.fillStyle = COLOURS.band;
      ctx.fillRect(x, y, w, h);
      var pts = samples.filter(function (s) { return s[key] !== null; });
      if (!pts.length) return;
      var d = m.duration > 0 ? m.duration : 1;
      ctx.beginPath();
      pts.forEach(function (s, i) {
        var px = x + (s.at / d) * w;
        var py = y + h - Math.min(1, s[key] / max) * (h - 1);
        if (i === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      });
      if (pts.length === 1) ctx.lineTo(x + w, y + h - Math.min(1, pts[0][key] / max) * (h - 1));
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1.25;
      ctx.stroke();
    }

    function drawBack(ctx, entry, top, index) {
      if (entry.type === "row" && index % 2 === 1) {
        ctx.fillStyle = "#fafbfc";
        ctx.fillRect(0, entry.y - top, layout.width, entry.h);
      }
    }

    function drawRow(ctx, entry, top) {
      var y = entry.y - top;
      if (entry.type === "group") {
        ctx.fillStyle = COLOURS.header;
        ctx.fillRect(0, y, layout.width, entry.h);
        ctx.fillStyle = COLOURS.text;
        ctx.font = BOLD;
        var label = entry.title;
        ctx.fillText(fitText(ctx, label, LABEL_W + 2 * SPARK_W), PAD, y + entry.h / 2);
        ctx.font = FONT;
        ctx.fillStyle = COLOURS.muted;
        var count = entry.hosts + (entry.hosts === 1 ? " host" : " hosts") +
          (entry.rows !== entry.hosts ? ", folded into " + entry.rows + (entry.rows === 1 ? " row" : " rows") : "");
        ctx.fillText(count, PAD + Math.min(ctx.measureText(label).width + 14, LABEL_W + 2 * SPARK_W), y + entry.h / 2);
        return;
      }
      var mid = y + entry.h / 2;
      ctx.fillStyle = COLOURS.text;
      var badge = entry.count > 1 ? "×" + entry.count : "";
      var badgeW = badge ? ctx.measureText(badge).width + 10 : 0;
      ctx.fillText(fitText(ctx, entry.hosts, LABEL_W - PAD - badgeW - 6), PAD + 6, mid);
      if (badge) {
        ctx.fillStyle = COLOURS.muted;
        ctx.fillText(badge, LABEL_W - badgeW, mid);
      }
      var maxLoad = Math.max(entry.cpus || 1, 1);
      entry.samples.forEach(function (s) { if (s.load !== null) maxLoad = Math.max(maxLoad, s.load); });
      sparkline(ctx, entry.samples, "load", LABEL_W + 10, y + 4, SPARK_W, entry.h - 8, maxLoad, COLOURS.load);
      sparkline(ctx, entry.samples, "mem", LABEL_W + SPARK_W + 20, y + 4, SPARK_W, entry.h - 8, 100, COLOURS.mem);

      var lates = [];
      var ordered = entry.spans.filter(function (sp) { return sp.kind !== "wait"; })
        .concat(entry.spans.filter(function (sp) { return sp.kind === "wait"; }));  // waits on top
      ordered.forEach(function (span) {
        var x = xOf(span.start);
        var w = Math.max(xOf(span.end) - x, span.kind === "wait" && span.outcome === "late" ? LATE_W : 2);
        var colour = spanColour(span);
        var inside = "";
        var ink = "#ffffff";
        if (span.kind === "wait") {
          var late = span.outcome === "late";
          ctx.fillStyle = late ? COLOURS.wait : "rgba(242,153,74,0.28)";
          ctx.fillRect(x, mid - 6, w, 12);
          ctx.strokeStyle = late ? "#b35a12" : COLOURS.wait;
          ctx.lineWidth = 1;
          ctx.strokeRect(Math.round(x) + 0.5, Math.round(mid - 6) + 0.5, Math.max(1, Math.round(w) - 1), 11);
          if (late) lates.push([x, w, span.name]);
          inside = "wait " + span.name;
          ink = "#8a4a10";
        } else if (span.kind === "install") {
          ctx.fillStyle = colour;
          ctx.fillRect(x, mid - 3, w, 6);
        } else {
          ctx.fillStyle = colour;
          ctx.fillRect(x, mid - 7, w, 14);
          if (span.outcome === "open") {
            ctx.fillStyle = "rgba(255,255,255,0.35)";
            ctx.fillRect(x + w - Math.min(w, 6), mid - 7, Math.min(w, 6), 14);
          }
          inside = span.name.split("/").pop();
        }
        if (inside && w > 36) {
          ctx.font = SMALL;
          var fitted = fitText(ctx, inside, w - 8);
          if (fitted.length > 1) {
            ctx.fillStyle = ink;
            ctx.fillText(fitted, x + 4, mid + 0.5);
          }
          ctx.font = FONT;
        }
      });
      lates.forEach(function (late) {
        ctx.font = BOLD;
        var text = "late: " + late[2];
        var tw = Math.min(ctx.measureText(text).width, 160) + 10;
        var px = late[0] + late[1] + 6;
        if (px + tw > layout.x1) px = Math.max(layout.x0, late[0] - tw - 6);
        ctx.fillStyle = "#fff4ea";
        ctx.strokeStyle = COLOURS.wait;
        ctx.lineWidth = 1;
        ctx.fillRect(px, mid - 8, tw, 16);
        ctx.strokeRect(Math.round(px) + 0.5, Math.round(mid - 8) + 0.5, Math.round(tw) - 1, 15);
        ctx.fillStyle = "#b35a12";
        ctx.fillText(fitText(ctx, text, tw - 10), px + 5, mid + 0.5);
        ctx.font = FONT;
      });
      entry.marks.forEach(function (mark) {
        var spec = MARKS[mark.kind] || ["circle", COLOURS.muted, mark.kind];
        drawGlyph(ctx, spec[0], spec[1], xOf(mark.at), y + 4, 4);
      });
    }

    function draw() {
      if (disposed) return;
      drawAxis();
      var ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, layout.width, layout.viewH);
      ctx.font = FONT;
      ctx.textBaseline = "middle";
      var top = scroller.scrollTop;
      var first = firstVisible(m.entries, top);
      var last = first;
      while (last < m.entries.length && m.entries[last].y < top + layout.viewH) last++;
      var i;
      for (i = first; i < last; i++) drawBack(ctx, m.entries[i], top, i);
      var step = niceStep(m.duration || 1, Math.floor((layout.x1 - layout.x0) / 90));
      ctx.strokeStyle = COLOURS.grid;
      ctx.lineWidth = 1;
      for (var t = 0; t <= (m.duration || 0) + 1e-9; t += step) {
        var gx = Math.round(xOf(t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(gx, 0);
        ctx.lineTo(gx, layout.viewH);
        ctx.stroke();
      }
      ctx.beginPath();
      ctx.moveTo(layout.x0 - 6.5, 0);
      ctx.lineTo(layout.x0 - 6.5, layout.viewH);
      ctx.stroke();
      ctx.save();
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 1.25;
      m.marks.forEach(function (mark) {
        var x = Math.round(xOf(mark.at)) + 0.5;
        ctx.strokeStyle = RUN_MARKS[mark.kind] || COLOURS.muted;
        ctx.beginPath();
        ctx.moveTo(x, 0);
        ctx.lineTo(x, layout.viewH);
        ctx.stroke();
      });
      ctx.restore();
      for (i = first; i < last; i++) drawRow(ctx, m.entries[i], top);
      // the component of the rows at the top stays in view
      var head = m.entries[first] && m.entries[first].header;
      if (head && head.y < top) {
        var next = m.entries[head.index + head.rows + 1];
        var pinned = Object.assign({}, head, { y: top });
        if (next && next.y - HEAD < top) pinned.y = next.y - HEAD;
        drawRow(ctx, pinned, top);
        ctx.strokeStyle = COLOURS.grid;
        ctx.beginPath();
        ctx.moveTo(0, pinned.y - top + HEAD - 0.5);
        ctx.lineTo(layout.width, pinned.y - top + HEAD - 0.5);
        ctx.stroke();
      }
    }

    function within(x, t0, t1, slack) {
      return x >= xOf(t0) - slack && x <= Math.max(xOf(t1), xOf(t0) + LATE_W) + slack;
    }

    function describeRow(entry) {
      return entry.hosts + (entry.count > 1 ? " (" + entry.count + " hosts)" : "");
    }

    function hit(px, py) {
      var y = py + scroller.scrollTop;
      var entry = m.entries[firstVisible(m.entries, y)];
      var atTop = m.entries[firstVisible(m.entries, scroller.scrollTop)];
      if (py < HEAD && atTop && atTop.header && atTop.header.y < scroller.scrollTop) entry = atTop.header;
      if (entry && entry.type === "group") return [entry.title, entry.hosts + " hosts, " + entry.rows + " rows"];
      if (!entry || y < entry.y || y >= entry.y + entry.h) return null;
      var runMark = m.marks.filter(function (mk) { return Math.abs(xOf(mk.at) - px) <= 3; })[0];
      if (entry.type === "group") {
        return [entry.title, entry.hosts + " hosts, " + entry.rows + " rows"];
      }
      if (px < LABEL_W) {
        var lines = [describeRow(entry), "component " + (entry.component || "(none)")];
        if (entry.omitted) lines.push(entry.omitted + " more spans and marks not shown");
        return lines;
      }
      if (px < layout.x0 - 6) {
        var key = px < LABEL_W + SPARK_W + 15 ? "load" : "mem";
        var d = m.duration > 0 ? m.duration : 1;
        var x0 = key === "load" ? LABEL_W + 10 : LABEL_W + SPARK_W + 20;
        var t = ((px - x0) / SPARK_W) * d;
        var best = null;
        entry.samples.forEach(function (s) {
          if (s[key] !== null && (best === null || Math.abs(s.at - t) < Math.abs(best.at - t))) best = s;
        });
        if (!best) return [describeRow(entry), "no " + (key === "load" ? "load" : "memory") + " samples"];
        return [describeRow(entry), key === "load"
          ? "load " + best.load.toFixed(2) + (entry.cpus ? " on " + entry.cpus + " CPUs" : "") + " at " + fmtTime(best.at)
          : "memory used " + best.mem.toFixed(1) + "% at " + fmtTime(best.at),
          "(the highest of the hosts and of the moments folded here)"];
      }
      var rowY = entry.y;
      var marks = entry.marks.filter(function (mk) {
        return Math.abs(xOf(mk.at) - px) <= 6 && y >= rowY && y <= rowY + 11;
      });
      if (marks.length) {
        return [describeRow(entry)].concat(marks.map(function (mk) {
          return mk.label + " at " + fmtTime(mk.at);
        }));
      }
      var spans = entry.spans.filter(function (s) { return within(px, s.start, s.end, 1); });
      if (spans.length) {
        // the most specific: a wait (drawn on top), then the shortest
        spans.sort(function (a, b) {
          return (a.kind === "wait" ? 0 : 1) - (b.kind === "wait" ? 0 : 1) || (a.end - a.start) - (b.end - b.start);
        });
        var s = spans[0];
        var what = s.kind === "process" ? "process " + s.name : s.kind === "wait" ? "barrier " + s.name : "install";
        var outcome = s.outcome + (s.info ? " · " + s.info : "");
        if (s.kind === "wait") {
          outcome = s.outcome === "late" ? "late: the barrier was released before it arrived; it passed at once"
            : "waited: " + s.outcome + (s.info ? " (" + s.info + ")" : "");
        }
        return [what, describeRow(entry), outcome,
          fmtTime(s.start) + " → " + fmtTime(s.end) + " (" + fmtSpan(s.end - s.start) + ")"];
      }
      if (runMark) return [runMark.label, "at " + fmtTime(runMark.at)];
      return null;
    }

    function showTip(lines, clientX, clientY) {
      if (!lines) {
        tip.style.display = "none";
        return;
      }
      tip.textContent = lines.join("\n");
      tip.style.display = "block";
      var box = root.getBoundingClientRect();
      var x = clientX - box.left + 14;
      var y = clientY - box.top + 14;
      if (x + tip.offsetWidth > box.width - 4) x = Math.max(4, clientX - box.left - tip.offsetWidth - 10);
      if (y + tip.offsetHeight > box.height - 4) y = Math.max(4, clientY - box.top - tip.offsetHeight - 10);
      tip.style.left = x + "px";
      tip.style.top = y + "px";
    }

    function onMove(event) {
      var rect = canvas.getBoundingClientRect();
      showTip(hit(event.clientX - rect.left, event.clientY - rect.top), event.clientX, event.clientY);
    }

    function onAxisMove(event) {
      var rect = axis.getBoundingClientRect();
      var px = event.clientX - rect.left;
      var found = m.marks.filter(function (mk) { return Math.abs(xOf(mk.at) - px) <= 6; });
      showTip(found.length ? found.map(function (mk) { return mk.label + " at " + fmtTime(mk.at); }) : null,
        event.clientX, event.clientY);
    }

    function onLeave() {
      tip.style.display = "none";
    }

    canvas.addEventListener("mousemove", onMove);
    canvas.addEventListener("mouseleave", onLeave);
    axis.addEventListener("mousemove", onAxisMove);
    axis.addEventListener("mouseleave", onLeave);
    scroller.addEventListener("scroll", schedule, { passive: true });
    window.addEventListener("resize", resize);
    var observer = typeof ResizeObserver === "function" ? new ResizeObserver(resize) : null;
    if (observer) observer.observe(el);
    var handle = {
      /* Redraws now (after the element changed size, for one). */
      redraw: resize,
      /* What was drawn, for tests and the run view: the rows' host sets in order. */
      rows: function () {
        return m.entries.filter(function (e) { return e.type === "row"; }).map(function (e) { return e.hosts; });
      },
      /* The tooltip lines at a point of the rows' canvas (CSS pixels from its top left), or null. */
      at: function (x, y) { return hit(x, y); },
      /* The x of a time on the canvas (CSS pixels), and the y of a row's middle (before scrolling). */
      xOf: xOf,
      yOf: function (hosts) {
        var e = m.entries.filter(function (en) { return en.type === "row" && en.hosts === hosts; })[0];
        return e ? e.y + e.h / 2 : null;
      },
      destroy: function () {
        disposed = true;
        if (frame) window.cancelAnimationFrame(frame);
        if (observer) observer.disconnect();
        window.removeEventListener("resize", resize);
        if (root.parentNode === el) el.replaceChildren();
      },
    };
    resize();
    return handle;
  }

  window.PlushTimeline = { render: render };
})();
