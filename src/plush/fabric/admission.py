"""Admission of unauthenticated connections: which ones the listener holds, and which it drops for room.

Role: the pure policy behind :class:`plush.fabric.listener.ControllerListener`. The listener tells it of
every accepted connection (:meth:`Admission.admit`, with its source address and the time), of every
connection that authenticated or went away (:meth:`Admission.release`), and asks it for a victim when the
process ran out of file descriptors (:meth:`Admission.make_room`). It does no I/O and reads no clock: the
listener drops the connections it names. Tests drive it with a fake clock.

Policy (docs/operations.md, Security): a new connection is *always* admitted -- refusing newcomers would let
idle connections lock real agents out. Room is made by dropping the oldest unauthenticated connections:

1. when the newcomer's source address already holds ``per_source`` of them, the oldest of that source;
2. then, when ``limit`` are held in total, the oldest of the source that holds the most (among sources tied
   for the most, the one whose oldest connection is oldest).

So a flood from one address only ever displaces its own connections, or those of addresses that hold as
many; an agent dialling from an address that holds fewer is never dropped for it. An agent that is dropped
all the same (it shares its address with the flood) dials again (``plush.agent.__main__``).

Invariants, after every call: at most ``limit`` connections held, at most ``per_source`` per source; a key
is held at most once; every key :meth:`admit` or :meth:`make_room` names as dropped is no longer held.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Admission"]


class Admission:
    """The table of unauthenticated connections: ``key -> (source, admitted at)``."""

    def __init__(self, limit: int, per_source: int) -> None:
        if limit < 1 or per_source < 1:
            raise ValueError(f"limits must be at least 1, not limit={limit}, per_source={per_source}")
        self.limit = limit
        self.per_source = min(per_source, limit)
        self._sources: dict[int, str] = {}  # key -> source, in admission order
        self._by_source: dict[str, dict[int, float]] = {}  # source -> {key: admitted at}, oldest first
        self.admitted = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._sources)

    def __contains__(self, key: object) -> bool:
        return key in self._sources

    def held(self, source: str) -> int:
        """How many unauthenticated connections ``source`` holds."""
        return len(self._by_source.get(source, ()))

    def admit(self, key: int, source: str, now: float) -> list[int]:
        """Hold the new connection ``key`` from ``source``; return the keys to drop to make room for it."""
        if key in self._sources:
            raise ValueError(f"connection {key} is already held")
        victims: list[int] = []
        if self.held(source) >= self.per_source:
            victims.append(self._drop(self._oldest(source)))
        if len(self._sources) >= self.limit:
            victims.append(self._drop(self._oldest(self._biggest())))
        self._sources[key] = source
        self._by_source.setdefault(source, {})[key] = now
        self.admitted += 1
        return victims

    def release(self, key: int) -> bool:
        """``key`` authenticated or went away: no longer held. False if it was not held (idempotent)."""
        source = self._sources.pop(key, None)
        if source is None:
            return False
        keys = self._by_source[source]
        del keys[key]
        if not keys:
            del self._by_source[source]
        return True

    def make_room(self) -> int | None:
        """Drop the connection whose going frees a descriptor most fairly (rule 2); ``None`` if none is held."""
        if not self._sources:
            return None
        return self._drop(self._oldest(self._biggest()))

    def _oldest(self, source: str) -> int:
        return next(iter(self._by_source[source]))

    def _biggest(self) -> str:
        def rank(item: tuple[str, dict[int, float]]) -> tuple[int, float]:
            keys = item[1]
            return len(keys), -next(iter(keys.values()))

        return max(self._by_source.items(), key=rank)[0]

    def _drop(self, key: int) -> int:
        self.release(key)
        self.dropped += 1
        return key

    def statistics(self) -> dict[str, Any]:
        return {
            "held": len(self._sources),
            "sources": len(self._by_source),
            "admitted": self.admitted,
            "dropped": self.dropped,
        }
