// The world view (#/world): every host of the pool on a map by its `lat`/`lon` properties, coloured by
// phase; hosts without coordinates listed beside it. The outline is static/world.json (Natural Earth 110m
// land, public domain: tools/make_world_outline.py), drawn once per size into an offscreen canvas.
//
// Invariants: hosts are drawn aggregated: one pie per place (hosts within a few pixels of each other), on
// one canvas, redrawn at most once per animation frame; the lists beside it are capped; names go in as text.
// Labels (at most 40 places labelled) are text over the canvas, placed greedily, biggest places first: right of
// the dot, else left, above or below; a label that would overlap one already placed, cover another place's dot
// or leave the map is dropped. No two labels overlap; every place keeps its dot and its tooltip.

import { PHASES, byName, emptyCounts, h, hostList } from "./viewkit.js";

const LAT_TOP = 84;
const LAT_BOTTOM = -58; // Antarctica left out: no testbed there worth the 30% of the height
const CELL = 14; // px: hosts closer than this on screen are one place
const LIST_CAP = 80;
const COLOURS = { idle: "#9aa5b1", running: "#2f80ed", done: "#27ae60", failed: "#eb5757" };

let outline = null; // the parsed world.json, shared by every mount

export function mount(el, store) {
  const view = new WorldView(el, store);
  return { unmount: () => view.close() };
}

/** A host's coordinates, or null when its properties carry no valid lat/lon. */
export function coordinates(host) {
  const p = host.properties || {};
  const lat = Number(p.lat);
  const lon = Number(p.lon);
  if (p.lat === undefined || p.lon === undefined || p.lat === null || p.lon === null) return null;
  if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return { lat, lon };
}

class WorldView {
  constructor(el, store) {
    this.el = el;
    this.store = store;
    this.places = [];
    this.canvas = h("canvas", { class: "pl-world-canvas", "data-testid": "world-map" });
    this.tip = h("div", { class: "pl-tip", hidden: true });
    this.legend = h("div", { class: "pl-legend", "data-testid": "world-legend" });
    this.side = h("aside", { class: "pl-side pl-world-side", "data-testid": "no-coordinates" });
    this.labels = h("div", { class: "pl-world-labels", "data-testid": "world-labels" });
    this.mapBox = h("div", { class: "pl-world-map" }, this.canvas, this.labels, this.tip);
    el.replaceChildren(
      h(
        "div",
        { class: "pl-worldview" },
        h("div", { class: "pl-toolbar" }, h("h2", { text: "World" }), h("div", { class: "pl-spacer" }), this.legend),
        h("div", { class: "pl-world-body" }, this.mapBox, this.side),
      ),
    );
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    this.resize = new ResizeObserver(() => {
      this.land = null;
      this.draw();
    });
    this.resize.observe(this.mapBox);
    this.off = store.subscribe(() => this.draw());
    this.loadOutline();
    this.draw();
  }

  close() {
    this.off();
    this.resize.disconnect();
    this.el.replaceChildren();
  }

  async loadOutline() {
    if (!outline) {
      try {
        const answer = await fetch("/static/world.json", { credentials: "same-origin" });
        outline = answer.ok ? await answer.json() : { rings: [] };
      } catch {
        outline = { rings: [] };
      }
    }
    this.land = null;
    this.draw();
  }

  /** The map's pixel box for the current size: equirectangular, 360 x (LAT_TOP - LAT_BOTTOM) degrees. */
  frame() {
    const width = this.mapBox.clientWidth;
    const height = this.mapBox.clientHeight;
    const span = LAT_TOP - LAT_BOTTOM;
    const scale = Math.max(0.1, Math.min(width / 360, height / span));
    return { width, height, scale, x0: (width - 360 * scale) / 2, y0: (height - span * scale) / 2 };
  }

  project(f, lon, lat) {
    return [f.x0 + (lon + 180) * f.scale, f.y0 + (LAT_TOP - lat) * f.scale];
  }

  drawLand(f, ratio) {
    const land = document.createElement("canvas");
    land.width = Math.max(1, Math.round(f.width * ratio));
    land.height = Math.max(1, Math.round(f.height * ratio));
    const g = land.getContext("2d");
    g.scale(ratio, ratio);
    g.fillStyle = "#f4f7fa";
    g.fillRect(f.x0, f.y0, 360 * f.scale, (LAT_TOP - LAT_BOTTOM) * f.scale);
    g.strokeStyle = "#e3e8ee";
    g.lineWidth = 1;
    g.beginPath();
    for (let lon = -150; lon <= 150; lon += 30) {
      const [x] = this.project(f, lon, 0);
      g.moveTo(x, f.y0);
      g.lineTo(x, f.y0 + (LAT_TOP - LAT_BOTTOM) * f.scale);
    }
    for (let lat = -30; lat <= 60; lat += 30) {
      const [, y] = this.project(f, 0, lat);
      g.moveTo(f.x0, y);
      g.lineTo(f.x0 + 360 * f.scale, y);
    }
    g.stroke();
    g.save();
    g.beginPath();
    g.rect(f.x0, f.y0, 360 * f.scale, (LAT_TOP - LAT_BOTTOM) * f.scale);
    g.clip(); // a ring across the antimeridian is given twice, shifted by 360 degrees: each copy clipped here
    g.beginPath();
    for (const ring of (outline && outline.rings) || []) {
      for (let k = 0; k < ring.length; k += 2) {
        const [x, y] = this.project(f, ring[k], ring[k + 1]);
        if (k === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      }
      g.closePath();
    }
    g.fillStyle = "#dde3ea";
    g.fill("evenodd");
    g.strokeStyle = "#c3ccd6";
    g.lineWidth = 0.7;
    g.stroke();
    g.restore();
    return land;
  }

  draw() {
    const f = this.frame();
    if (!f.width || !f.height) return;
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(f.width * ratio) || this.canvas.height !== Math.round(f.height * ratio)) {
      this.canvas.width = Math.round(f.width * ratio);
      this.canvas.height = Math.round(f.height * ratio);
      this.land = null;
    }
    if (!this.land && outline) this.land = this.drawLand(f, ratio);
    const g = this.canvas.getContext("2d");
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (this.land) g.drawImage(this.land, 0, 0);
    g.scale(ratio, ratio);

    const cells = new Map();
    const without = [];
    const totals = emptyCounts();
    for (const host of this.store.hosts.values()) {
      const phase = PHASES.includes(host.phase) ? host.phase : "idle";
      totals[phase] += 1;
      const at = coordinates(host);
      if (!at) {
        without.push(host);
        continue;
      }
      const [x, y] = this.project(f, at.lon, at.lat);
      const key = `${Math.round(x / CELL)},${Math.round(y / CELL)}`;
      let place = cells.get(key);
      if (!place) cells.set(key, (place = { x: 0, y: 0, n: 0, counts: emptyCounts(), names: [], sites: new Set() }));
      place.x += x;
      place.y += y;
      place.n += 1;
      place.counts[phase] += 1;
      place.names.push(host.name);
      const site = host.properties && host.properties.site;
      if (site !== undefined) place.sites.add(String(site));
    }
    this.places = [...cells.values()];
    for (const place of this.places) {
      place.x /= place.n;
      place.y /= place.n;
      place.r = 4 + Math.min(14, Math.sqrt(place.n) * 1.6);
    }
    this.places.sort((a, b) => b.r - a.r); // the big ones under the small ones
    const labelled = this.places.length <= 40;
    for (const place of this.places) drawPie(g, place);
    this.drawLabels(f, labelled ? this.places : []);
    this.drawLegend(totals, this.store.hosts.size - without.length);
    this.drawSide(without);
    this.canvas.dataset.places = String(this.places.length);
  }

  /** The places' labels, greedily: the biggest places first; one that would overlap a placed one is dropped. */
  drawLabels(f, places) {
    const wanted = [...places]
      .sort((a, b) => b.n - a.n || a.y - b.y || a.x - b.x)
      .map((place) => ({ place, text: labelOf(place) }))
      .filter((l) => l.text);
    const key = JSON.stringify([f.width, f.height, wanted.map((l) => [l.text, Math.round(l.place.x), Math.round(l.place.y), l.place.r])]);
    if (key === this.labelsKey) return;
    this.labelsKey = key;
    const spans = wanted.map((l) => h("span", { class: "pl-place-label", text: l.text }));
    this.labels.replaceChildren(...spans); // measured in place, then positioned
    const boxes = [];
    const dots = places.map((p) => ({ place: p, x: p.x - p.r, y: p.y - p.r, w: 2 * p.r, h: 2 * p.r })); // nor cover a dot
    wanted.forEach(({ place }, i) => {
      const span = spans[i];
      const w = span.offsetWidth;
      const ht = span.offsetHeight;
      const { x, y, r } = place;
      const gap = r + 3;
      const candidates = [
        [x + gap, y - ht / 2], // right
        [x - gap - w, y - ht / 2], // left
        [x - w / 2, y - gap - ht], // above
        [x - w / 2, y + gap], // below
      ];
      const fits = (b) => b.x >= 0 && b.y >= 0 && b.x + b.w <= f.width && b.y + b.h <= f.height && !boxes.some((o) => overlap(o, b)) && !dots.some((d) => d.place !== place && overlap(d, b));
      const box = candidates.map(([bx, by]) => ({ x: bx, y: by, w, h: ht })).find(fits);
      if (!box) {
        span.remove();
        return;
      }
      boxes.push(box);
      span.style.left = `${box.x}px`;
      span.style.top = `${box.y}px`;
    });
    this.labels.dataset.labels = String(boxes.length);
  }

  drawLegend(totals, placed) {
    const key = JSON.stringify([totals, placed]);
    if (key === this.legendKey) return;
    this.legendKey = key;
    const items = PHASES.map((phase) => h("span", { class: "pl-legend-item", "data-phase": phase }, h("span", { class: `pl-dot pl-${phase}` }), `${totals[phase]} ${phase}`));
    this.legend.replaceChildren(h("span", { class: "pl-muted", "data-testid": "placed", text: `${placed} on the map` }), ...items);
  }

  drawSide(without) {
    const key = without.map((host) => `${host.name}:${host.phase}`).join(" ");
    if (key === this.sideKey) return;
    this.sideKey = key;
    const counts = emptyCounts();
    for (const host of without) counts[PHASES.includes(host.phase) ? host.phase : "idle"] += 1;
    const phases = new Map(without.map((host) => [host.name, host.phase]));
    const parts = [h("h3", { text: `Without coordinates: ${without.length}` })];
    if (!without.length) {
      parts.push(h("p", { class: "pl-muted", text: "Every host has lat/lon properties." }));
    } else {
      parts.push(
        h("div", { class: "pl-counts-row" }, PHASES.filter((p) => counts[p]).map((p) => h("span", { class: "pl-legend-item" }, h("span", { class: `pl-dot pl-${p}` }), `${counts[p]} ${p}`))),
        h("p", { class: "pl-muted pl-small", text: "Give hosts lat and lon properties in the pool file to place them (docs/pools.md)." }),
        hostList(
          without.map((host) => host.name).sort(byName),
          (name) => phases.get(name) || "idle",
          LIST_CAP,
        ),
      );
    }
    this.side.replaceChildren(...parts);
  }

  hover(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const y = event.clientY - rect.top;
    const place = this.places.find((p) => (p.x - x) ** 2 + (p.y - y) ** 2 <= (p.r + 3) ** 2);
    if (!place) {
      this.tip.hidden = true;
      return;
    }
    const names = [...place.names].sort(byName);
    const shown = names.slice(0, 12).join(", ") + (names.length > 12 ? ` and ${names.length - 12} more` : "");
    const states = PHASES.filter((p) => place.counts[p]).map((p) => `${place.counts[p]} ${p}`).join(" · ");
    this.tip.replaceChildren(
      h("b", { text: place.sites.size ? [...place.sites].join(", ") : `${place.n} hosts` }),
      h("div", { text: states }),
      h("div", { class: "pl-muted", text: shown }),
    );
    this.tip.hidden = false;
    this.tip.style.left = `${Math.min(x + 14, this.mapBox.clientWidth - 260)}px`;
    this.tip.style.top = `${y + 14}px`;
  }
}

function overlap(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function labelOf(place) {
  const site = place.sites.size === 1 ? [...place.sites][0] : "";
  return site ? `${site} ${place.n}` : place.n > 1 ? String(place.n) : "";
}

function drawPie(g, place) {
  const { x, y, r, n, counts } = place;
  let angle = -Math.PI / 2;
  for (const phase of PHASES) {
    if (!counts[phase]) continue;
    const sweep = (2 * Math.PI * counts[phase]) / n;
    g.beginPath();
    g.moveTo(x, y);
    g.arc(x, y, r, angle, angle + sweep);
    g.closePath();
    g.fillStyle = COLOURS[phase];
    g.fill();
    angle += sweep;
  }
  g.beginPath();
  g.arc(x, y, r, 0, 2 * Math.PI);
  g.lineWidth = 1.5;
  g.strokeStyle = "#ffffff";
  g.stroke();
}
