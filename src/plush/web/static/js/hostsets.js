// Host sets in the browser, read and folded by the rules of plush.resources.hostset (the Python module is the
// reference; tests/web/test_hostsets_js.py checks that both agree on generated texts and name lists).
//
// `local-[3-5,9],web1` stands for local-3 local-4 local-5 local-9 web1. expand(text) reads a host set (the
// names, naturally sorted and unique; HostSetError naming the bad fragment), fold(names) writes the canonical
// text (folding on the last run of digits of each name, zero padding kept), naturalCompare orders n2 before
// n10. hostFilter(text) is the host view's filter box: host sets and plain words, state:X, component:X.
//
// Invariants: expand(fold(names)) is the natural sort of the distinct names; fold(expand(s)) === s for a
// canonical s; strings order by code point as Python's do (not by UTF-16 unit). Digits are the ASCII ones:
// Python also takes other Unicode decimal digits (Arabic-Indic, ...) for digits; names with those are outside
// what the two agree on. Pure: no DOM, no I/O.

export const MAX_EXPAND = 1000000;

const FORBIDDEN = new Set([",", "[", "]", " ", "\t", "\r", "\n"]);
// the characters Python's str.strip() removes (str.isspace())
const PY_SPACE = new Set(
  "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000",
);

export class HostSetError extends Error {
  // reason: what is wrong; fragment: the bad part; text: the whole text
  constructor(reason, fragment, text) {
    super(`${reason}: '${fragment}' in host set '${text}'`);
    this.name = "HostSetError";
    this.reason = reason;
    this.fragment = fragment;
    this.text = text;
  }
}

function pyStrip(s) {
  let a = 0;
  let b = s.length;
  while (a < b && PY_SPACE.has(s[a])) a += 1;
  while (b > a && PY_SPACE.has(s[b - 1])) b -= 1;
  return s.slice(a, b);
}

const isDigit = (c) => c >= 48 && c <= 57;

// --- ordering ---------------------------------------------------------------------------------------------

// a UTF-16 unit moved so that unit order is code point order (surrogates above the rest of the BMP)
const fixUnit = (u) => (u >= 0xe000 ? u - 0x800 : u >= 0xd800 ? u + 0x2000 : u);

/** Compare two strings by code point, as Python does. */
export function compareText(a, b) {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return fixUnit(x) < fixUnit(y) ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

// compare two strings of ASCII digits by value
function compareDigits(a, b) {
  const x = a.replace(/^0+/, "");
  const y = b.replace(/^0+/, "");
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The natural key of a name: [text, digits, text, digits, ...] chunks as Python's natural_key makes them. */
export function naturalKey(name) {
  const key = [];
  let i = 0;
  const n = name.length;
  while (i < n) {
    const start = i;
    while (i < n && !isDigit(name.charCodeAt(i))) i += 1;
    const text = name.slice(start, i);
    const mid = i;
    while (i < n && isDigit(name.charCodeAt(i))) i += 1;
    key.push([text, name.slice(mid, i)]);
  }
  return key;
}

// (text, int(digits) or -1, len(digits)) tuples compared in order; a shorter key first when a prefix
function compareKeys(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const [ta, da] = a[i];
    const [tb, db] = b[i];
    let c = compareText(ta, tb);
    if (c) return c;
    if (da === "" || db === "") c = da === db ? 0 : da === "" ? -1 : 1;
    else c = compareDigits(da, db) || da.length - db.length;
    if (c) return c < 0 ? -1 : 1;
  }
  return a.length - b.length < 0 ? -1 : a.length > b.length ? 1 : 0;
}

/** n2 before n10; n1 before n01. */
export function naturalCompare(a, b) {
  return a === b ? 0 : compareKeys(naturalKey(a), naturalKey(b));
}

/** The names in natural order (a new array; keys computed once). */
export function naturalSort(names) {
  return names
    .map((name) => [naturalKey(name), name])
    .sort((x, y) => compareKeys(x[0], y[0]))
    .map((pair) => pair[1]);
}

// --- folding ------------------------------------------------------------------------------------------------

function checkName(name) {
  if (!name || [...name].some((c) => FORBIDDEN.has(c))) {
    throw new HostSetError("a host name must be non-empty without ',', '[', ']' or spaces", name, name);
  }
}

const padded = (digits) => digits.length > 1 && digits.startsWith("0");
const compareNumber = (a, b) => compareDigits(a, b) || a.length - b.length;
const zfill = (n, width) => n.toString().padStart(width, "0");

// ["3", "4", "5", "9"] -> "3-5,9"; each digit string comes back exactly from the ranges made
function foldNumbers(numbers) {
  const ordered = [...new Set(numbers)].sort(compareNumber);
  const parts = [];
  let start = ordered[0];
  let prev = start;
  let width = padded(start) ? start.length : 0;
  for (const digits of ordered.slice(1)) {
    const value = BigInt(digits);
    if (value === BigInt(prev) + 1n && digits === zfill(value, width)) {
      prev = digits;
      continue;
    }
    parts.push(start === prev ? start : `${start}-${prev}`);
    start = prev = digits;
    width = padded(start) ? start.length : 0;
  }
  parts.push(start === prev ? start : `${start}-${prev}`);
  return parts.join(",");
}

// [prefix, digits, suffix] of a name by its last run of digits, or null without digits
function lastDigits(name) {
  let end = name.length;
  while (end > 0 && !isDigit(name.charCodeAt(end - 1))) end -= 1;
  if (end === 0) return null;
  let start = end;
  while (start > 0 && isDigit(name.charCodeAt(start - 1))) start -= 1;
  return [name.slice(0, start), name.slice(start, end), name.slice(end)];
}

/** Fold host names into the canonical text: ["local-3", "local-4", "web1"] -> "local-[3-4],web1". */
export function fold(names) {
  const patterns = new Map();
  const plain = new Set();
  for (const name of names) {
    checkName(name);
    const parts = lastDigits(name);
    if (parts === null) {
      plain.add(name);
    } else {
      const id = JSON.stringify([parts[0], parts[2]]);
      if (!patterns.has(id)) patterns.set(id, [parts[0], parts[2], []]);
      patterns.get(id)[2].push(parts[1]);
    }
  }
  const items = [...plain].map((name) => [naturalKey(name), name]);
  for (const [prefix, suffix, numbers] of patterns.values()) {
    const distinct = [...new Set(numbers)];
    const body = distinct.length === 1 ? numbers[0] : `[${foldNumbers(numbers)}]`;
    const first = distinct.reduce((a, b) => (compareNumber(b, a) < 0 ? b : a));
    items.push([naturalKey(prefix + first + suffix), prefix + body + suffix]);
  }
  items.sort((x, y) => compareKeys(x[0], y[0]) || compareText(x[1], y[1]));
  return items.map((item) => item[1]).join(",");
}

/** "local-[1-3] (3 hosts)" */
export function foldCount(names) {
  const list = [...names];
  return `${fold(list)} (${list.length} host${list.length === 1 ? "" : "s"})`;
}

// --- expanding ----------------------------------------------------------------------------------------------

// split at commas outside brackets; refuses unbalanced or nested brackets
function splitTop(text) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === "[") {
      depth += 1;
      if (depth > 1) throw new HostSetError("nested brackets are not supported", text.slice(start), text);
    } else if (c === "]") {
      depth -= 1;
      if (depth < 0) throw new HostSetError("']' without '['", text.slice(start, i + 1), text);
    } else if (c === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (depth) throw new HostSetError("'[' without ']'", text.slice(start), text);
  parts.push(text.slice(start));
  return parts;
}

// Python's re.match(r"^\d+$", s): "$" also matches before a final newline
const BOUND = /^[0-9]+\n?$/;

// "01-03,7" -> ["01", "02", "03", "7"]
function expandRanges(ranges, text) {
  const out = [];
  for (const raw of ranges.split(",")) {
    const piece = pyStrip(raw);
    const dash = piece.indexOf("-");
    const sep = dash >= 0;
    const lo = sep ? piece.slice(0, dash) : piece;
    const hi = sep ? piece.slice(dash + 1) : "";
    if (!BOUND.test(lo) || (sep && !BOUND.test(hi))) {
      throw new HostSetError("a range is N or N-M with decimal bounds", piece || "[]", text);
    }
    if (!sep) {
      out.push(lo);
      continue;
    }
    const width = padded(lo) ? lo.length : 0;
    const first = BigInt(lo.trim());
    const last = BigInt(hi.trim());
    if (hi !== zfill(last, width)) {
      throw new HostSetError("the bounds of a padded range have different widths", piece, text);
    }
    if (first > last) throw new HostSetError("a range must not go down", piece, text);
    if (last - first >= BigInt(MAX_EXPAND)) {
      throw new HostSetError(`a range may hold at most ${MAX_EXPAND} names`, piece, text);
    }
    for (let n = first; n <= last; n += 1n) out.push(zfill(n, width));
  }
  return out;
}

function expandOne(item, text) {
  const pieces = item.split(/\[([^\]]*)\]/); // text, ranges, text, ranges, ..., text
  for (let i = 0; i < pieces.length; i += 2) {
    if ([...pieces[i]].some((c) => FORBIDDEN.has(c))) {
      throw new HostSetError("a host name must not contain spaces", item, text);
    }
  }
  if (pieces.length === 1) return [item];
  const choices = pieces.map((p, i) => (i % 2 === 0 ? [p] : expandRanges(p, text)));
  let total = 1;
  for (const choice of choices) total *= choice.length;
  if (total > MAX_EXPAND) throw new HostSetError(`a host set may hold at most ${MAX_EXPAND} names`, item, text);
  let names = [""];
  for (const choice of choices) {
    const next = [];
    for (const head of names) for (const tail of choice) next.push(head + tail);
    names = next;
  }
  return names;
}

/** Expand a host set text into its names, naturally sorted and unique: "n[1-2],w" -> ["n1", "n2", "w"].
 * Whitespace around items is ignored; a blank text is the empty set. Throws HostSetError. */
export function expand(text) {
  if (!pyStrip(text)) return [];
  const names = new Set();
  for (const raw of splitTop(text)) {
    const item = pyStrip(raw);
    if (!item) throw new HostSetError("empty item", raw || ",", text);
    for (const name of expandOne(item, text)) names.add(name);
    if (names.size > MAX_EXPAND) {
      throw new HostSetError(`a host set may hold at most ${MAX_EXPAND} names`, item, text);
    }
  }
  return naturalSort([...names]);
}

// --- the filter box -----------------------------------------------------------------------------------------

const FIELDS = ["state", "component", "group", "phase"];

/** The host view's filter: words separated by spaces, every one must match a host (a {name, address, state,
 * component, group, phase} record). A word with "[" or "," is a host set (the host is one of its names);
 * `state:X`, `component:X`, `group:X`, `phase:X` match that field exactly; any other word is looked for in the
 * name, address, state, component and group (case-insensitive). Answers {test(host), error} where error is
 * the HostSetError of a bad host set (test then matches nothing). */
export function hostFilter(text) {
  const tests = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const field = word.match(/^([a-z]+):(.*)$/);
    if (field && FIELDS.includes(field[1])) {
      const [, name, value] = field;
      tests.push((host) => String(host[name] ?? "") === value);
    } else if (/[[\],]/.test(word)) {
      let names;
      try {
        names = new Set(expand(word));
      } catch (err) {
        if (err instanceof HostSetError) return { test: () => false, error: err };
        throw err;
      }
      tests.push((host) => names.has(host.name));
    } else {
      const needle = word.toLowerCase();
      tests.push((host) =>
        [host.name, host.address, host.state, host.component, host.group].some(
          (v) => v != null && String(v).toLowerCase().includes(needle),
        ),
      );
    }
  }
  return { test: (host) => tests.every((t) => t(host)), error: null };
}
