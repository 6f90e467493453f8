#!/usr/bin/env python3
"""Writes the web UI's world outline, ``src/plush/web/static/world.json``, from Natural Earth's land polygons.

Run once by hand; its output is committed (the UI needs no tile server and nothing from the network):

    cd /tmp && npm pack world-atlas && tar xzf world-atlas-*.tgz
    python3 tools/make_world_outline.py /tmp/package/land-110m.json src/plush/web/static/world.json

Source: the npm package ``world-atlas`` 2.0.2 (Mike Bostock, ISC licence), a TopoJSON redistribution of
Natural Earth's 1:110m "land" vector data, version 4.1.0, which Natural Earth puts in the public domain
(https://www.naturalearthdata.com/about/terms-of-use/). The output keeps the source and licence in its
``source`` and ``license`` fields.

The output: ``{"source", "license", "rings": [[lon, lat, lon, lat, ...], ...]}``, one flat list per polygon
ring (outer rings and holes alike: the UI fills them with the even-odd rule), degrees rounded to 0.1 and
simplified (Douglas-Peucker, tolerance ``--tolerance`` degrees), tiny rings and Antarctica dropped, a ring across
the antimeridian given on both sides (``unwrap``), so that the file stays well under 60 KB. Equirectangular:
x = lon, y = lat. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SOURCE = "Natural Earth 1:110m land 4.1.0, via the npm package world-atlas 2.0.2 (land-110m.json)"
LICENSE = "Natural Earth: public domain; world-atlas: ISC, Copyright 2013-2019 Michael Bostock"

Point = tuple[float, float]
#: rings wholly south of this latitude (Antarctica) are left out: the map stops at 58 S
ANTARCTIC = -60.0


def decode_arcs(topology: dict) -> list[list[Point]]:
    """The topology's arcs in degrees (delta-decoded, then the quantization transform applied)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(indexes: list[int], arcs: list[list[Point]]) -> list[Point]:
    """One ring from its arc indexes (a negative index ~i is arc i reversed); shared ends are kept once."""
    points: list[Point] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def simplify(points: list[Point], tolerance: float) -> list[Point]:
    """Douglas-Peucker, iterative: the points farther than ``tolerance`` from the chord of their span stay."""
    if len(points) < 3:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        (ax, ay), (bx, by) = points[first], points[last]
        dx, dy = bx - ax, by - ay
        norm = (dx * dx + dy * dy) ** 0.5
        best, index = 0.0, -1
        for k in range(first + 1, last):
            px, py = points[k]
            d = abs(dy * (px - ax) - dx * (py - ay)) / norm if norm else ((px - ax) ** 2 + (py - ay) ** 2) ** 0.5
            if d > best:
                best, index = d, k
        if index >= 0 and best > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [p for p, k in zip(points, keep, strict=True) if k]


def area(points: list[Point]) -> float:
    """The ring's area in square degrees (shoelace, unsigned)."""
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True))) / 2


def outline(topology: dict, tolerance: float, min_area: float) -> list[list[float]]:
    """Every ring of the ``land`` object, simplified and rounded, as flat coordinate lists."""
    arcs = decode_arcs(topology)
    rings = []
    for geometry in topology["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for indexes in polygon:
                points = simplify(ring(indexes, arcs), tolerance)
                rounded: list[Point] = []
                for x, y in points:
                    p = (round(x, 1), round(y, 1))
                    if not rounded or rounded[-1] != p:
                        rounded.append(p)
                if len(rounded) < 4 or area(rounded) < min_area or max(y for _, y in rounded) < ANTARCTIC:
                    continue
                for piece in unwrap(rounded):
                    rings.append([c for p in piece for c in p])
    return rings


def unwrap(points: list[Point]) -> list[list[Point]]:
    """A ring that crosses the antimeridian (a step of more than 180 degrees of longitude) made continuous, then
    drawn twice, shifted by 360 degrees: the map clips each copy to its frame (no stroke across the world)."""
    out = [points[0]]
    for x, y in points[1:]:
        px = out[-1][0]
        while x - px > 180:
            x -= 360
        while px - x > 180:
            x += 360
        out.append((round(x, 1), y))
    low, high = min(x for x, _ in out), max(x for x, _ in out)
    if low >= -180 and high <= 180:
        return [out]
    shift = 360 if low < -180 else -360
    return [out, [(round(x + shift, 1), y) for x, y in out]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topojson", type=Path, help="world-atlas's land-110m.json")
    parser.add_argument("output", type=Path, help="where to write world.json")
    parser.add_argument("--tolerance", type=float, default=0.15, help="simplification, degrees")
    parser.add_argument("--min-area", type=float, default=0.5, help="smaller rings are dropped, square degrees")
    args = parser.parse_args()
    rings = outline(json.loads(args.topojson.read_text()), args.tolerance, args.min_area)
    text = json.dumps({"source": SOURCE, "license": LICENSE, "rings": rings}, separators=(",", ":"))
    args.output.write_text(text + "\n")
    print(f"{args.output}: {len(rings)} rings, {sum(len(r) // 2 for r in rings)} points, {len(text)} bytes")


if __name__ == "__main__":
    main()
