"""Host sets: many host names written as one folded string, like ClusterShell's ``NodeSet``.

``local-[3-5,9],web1`` stands for ``local-3 local-4 local-5 local-9 web1``. Reports, the terminal and the
event renderers print host sets instead of long lists; specs and the command line accept them.

Folding works on the *last* run of digits of each name: names that share the text before and after it (the
pattern ``prefix[...]suffix``) fold into one bracket of ranges. Zero padding is kept: ``node01 node02
node03`` folds to ``node[01-03]``, and a range's padding is the width of its first bound (``node[08-10]``).
Names without digits are listed as they are. The listing order is *natural*: ``n2`` before ``n10``.

Invariants:

- ``expand(fold(names)) == natural_sorted(set(names))`` for every list of valid names (no ``,[]``, no
  whitespace, not empty), and ``fold(expand(s)) == s`` for every canonical ``s`` (one that ``fold`` made).
- :class:`HostSet` is an immutable value: ``HostSet.parse(str(hs)) == hs``; set operations return new sets.
- A malformed text raises :class:`HostSetError` (a ``ValueError``) carrying the bad ``fragment``.

Pure: standard library only, no I/O.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator

from plush.errors import PlushError

__all__ = ["MAX_EXPAND", "HostSet", "HostSetError", "expand", "fold", "natural_key"]

#: the most names one text may expand to (a guard against ``node[1-999999999]``)
MAX_EXPAND = 1_000_000

_FORBIDDEN = frozenset(",[]") | frozenset(" \t\r\n")
_LAST_DIGITS = re.compile(r"^(.*?)(\d+)(\D*)$", re.DOTALL)
_CHUNK = re.compile(r"(\D*)(\d*)")
_BOUND = re.compile(r"^\d+$")


class HostSetError(PlushError, ValueError):
    """A host set text or host name cannot be read. ``fragment`` is the bad part, ``text`` the whole."""

    exit_code = 2

    def __init__(self, message: str, *, fragment: str, text: str) -> None:
        super().__init__(f"{message}: {fragment!r} in host set {text!r}")
        self.fragment = fragment
        self.text = text


def natural_key(name: str) -> tuple[tuple[str, int, int], ...]:
    """Sort key that orders digit runs by value: ``n2 < n10``; ``n1 < n01`` (shorter digits first)."""
    return tuple(
        (text, int(digits) if digits else -1, len(digits)) for text, digits in _CHUNK.findall(name) if text or digits
    )


def _check_name(name: str) -> None:
    if not name or any(c in _FORBIDDEN for c in name):
        raise HostSetError("a host name must be non-empty without ',', '[', ']' or spaces", fragment=name, text=name)


def _padded(digits: str) -> bool:
    return len(digits) > 1 and digits.startswith("0")


# --- folding ------------------------------------------------------------------------------------------


def _fold_numbers(numbers: list[str]) -> str:
    """``["3", "4", "5", "9"]`` -> ``"3-5,9"``; each digit string comes back exactly from the ranges made."""
    ordered = sorted(set(numbers), key=lambda d: (int(d), len(d)))
    parts: list[str] = []
    start = prev = ordered[0]
    width = len(start) if _padded(start) else 0
    for digits in ordered[1:]:
        if int(digits) == int(prev) + 1 and digits == str(int(digits)).zfill(width):
            prev = digits
            continue
        parts.append(start if start == prev else f"{start}-{prev}")
        start = prev = digits
        width = len(start) if _padded(start) else 0
    parts.append(start if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def fold(names: Iterable[str]) -> str:
    """Fold host names into the canonical text: ``["local-3", "local-4", "web1"]`` -> ``"local-[3-4],web1"``."""
    patterns: dict[tuple[str, str], list[str]] = {}
    plain: set[str] = set()
    for name in names:
        _check_name(name)
        match = _LAST_DIGITS.match(name)
        if match is None:
            plain.add(name)
        else:
            patterns.setdefault((match.group(1), match.group(3)), []).append(match.group(2))
    items: list[tuple[tuple[tuple[str, int, int], ...], str]] = [(natural_key(n), n) for n in plain]
    for (prefix, suffix), numbers in patterns.items():
        distinct = set(numbers)
        body = numbers[0] if len(distinct) == 1 else f"[{_fold_numbers(numbers)}]"
        text = prefix + body + suffix
        first = min(distinct, key=lambda d: (int(d), len(d)))
        items.append((natural_key(prefix + first + suffix), text))
    items.sort()
    return ",".join(text for _, text in items)


# --- expanding ----------------------------------------------------------------------------------------


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets; refuses unbalanced or nested brackets."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, c in enumerate(text):
        if c == "[":
            depth += 1
            if depth > 1:
                raise HostSetError("nested brackets are not supported", fragment=text[start:], text=text)
        elif c == "]":
            depth -= 1
            if depth < 0:
                raise HostSetError("']' without '['", fragment=text[start : i + 1], text=text)
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise HostSetError("'[' without ']'", fragment=text[start:], text=text)
    parts.append(text[start:])
    return parts


def _expand_ranges(ranges: str, text: str) -> list[str]:
    """``"01-03,7"`` -> ``["01", "02", "03", "7"]``."""
    out: list[str] = []
    for piece in ranges.split(","):
        piece = piece.strip()
        lo, sep, hi = piece.partition("-")
        if not _BOUND.match(lo) or (sep and not _BOUND.match(hi)):
            raise HostSetError("a range is N or N-M with decimal bounds", fragment=piece or "[]", text=text)
        if not sep:
            out.append(lo)
            continue
        width = len(lo) if _padded(lo) else 0
        if hi != str(int(hi)).zfill(width):
            raise HostSetError("the bounds of a padded range have different widths", fragment=piece, text=text)
        first, last = int(lo), int(hi)
        if first > last:
            raise HostSetError("a range must not go down", fragment=piece, text=text)
        if last - first >= MAX_EXPAND:
            raise HostSetError(f"a range may hold at most {MAX_EXPAND} names", fragment=piece, text=text)
        out.extend(str(n).zfill(width) for n in range(first, last + 1))
    return out


def _expand_one(item: str, text: str) -> list[str]:
    pieces = re.split(r"\[([^\]]*)\]", item)  # text, ranges, text, ranges, ..., text
    for literal in pieces[::2]:
        if any(c in _FORBIDDEN for c in literal):
            raise HostSetError("a host name must not contain spaces", fragment=item, text=text)
    if len(pieces) == 1:
        return [item]
    choices = [[p] if i % 2 == 0 else _expand_ranges(p, text) for i, p in enumerate(pieces)]
    total = 1
    for choice in choices:
        total *= len(choice)
    if total > MAX_EXPAND:
        raise HostSetError(f"a host set may hold at most {MAX_EXPAND} names", fragment=item, text=text)
    return ["".join(combo) for combo in itertools.product(*choices)]


def expand(text: str) -> list[str]:
    """Expand a host set text into its names, naturally sorted and unique: ``"n[1-2],w"`` -> ``["n1", "n2", "w"]``.

    Whitespace around items is ignored; an empty (or blank) text is the empty set.
    """
    if not text.strip():
        return []
    names: set[str] = set()
    for raw in _split_top(text):
        item = raw.strip()
        if not item:
            raise HostSetError("empty item", fragment=raw or ",", text=text)
        names.update(_expand_one(item, text))
        if len(names) > MAX_EXPAND:
            raise HostSetError(f"a host set may hold at most {MAX_EXPAND} names", fragment=item, text=text)
    return sorted(names, key=natural_key)


# --- the value type -----------------------------------------------------------------------------------


class HostSet:
    """An immutable set of host names that prints folded: ``HostSet(["n1", "n2"])`` -> ``n[1-2]``."""

    __slots__ = ("_names",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        if isinstance(names, str):
            raise TypeError("HostSet takes an iterable of names; use HostSet.parse() for a text")
        found = frozenset(names)
        for name in found:
            _check_name(name)
        self._names = found

    @classmethod
    def parse(cls, text: str) -> HostSet:
        """Read a folded text (``"local-[1-3],web1"``); raises :class:`HostSetError` naming the bad fragment."""
        return cls(expand(text))

    def __str__(self) -> str:
        return fold(self._names)

    def __repr__(self) -> str:
        return f"HostSet({str(self)!r})"

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names, key=natural_key))

    def __len__(self) -> int:
        return len(self._names)

    def __bool__(self) -> bool:
        return bool(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HostSet):
            return self._names == other._names
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._names)

    def union(self, *others: Iterable[str]) -> HostSet:
        return HostSet(self._names.union(*others))

    def difference(self, *others: Iterable[str]) -> HostSet:
        return HostSet(self._names.difference(*others))

    def intersection(self, *others: Iterable[str]) -> HostSet:
        return HostSet(self._names.intersection(*others))

    def __or__(self, other: HostSet) -> HostSet:
        return self.union(other)

    def __sub__(self, other: HostSet) -> HostSet:
        return self.difference(other)

    def __and__(self, other: HostSet) -> HostSet:
        return self.intersection(other)

    def first(self) -> str | None:
        """The naturally first name, or None when empty."""
        return min(self._names, key=natural_key) if self._names else None
