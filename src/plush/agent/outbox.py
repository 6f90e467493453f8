"""The agent's reliable outbox: numbered run messages kept until the controller acknowledges them.

Role. Every *run* message the agent sends after ``prepared`` (block states, process starts and exits,
output, uploads, barrier and work requests, ``finished``, ...) gets the next sequence number in its field
``q`` (see :mod:`plush.protocol.reliable` and docs/protocol.md, "Reconnection") and is kept here, already
encoded as its frame, until the controller's cumulative ``ack``. When the link breaks, the processes keep
running and their output piles up here; after the agent resumed, :meth:`SpoolOutbox.get` hands out every
frame after the controller's ``received``, in order, for the replay.

Invariants:

- frames are encoded once: what is written to the link, what is kept and what is replayed are the same
  bytes (no re-encoding, no copy of a payload beyond the one ``encode`` makes);
- memory is bounded: frames stay in RAM while ``memory_bytes + size <= memory_limit`` and are spilled to a
  :class:`Spool` (anonymous temporary files in the agent's directory, deleted by the kernel when the agent
  exits, whatever ends it) beyond it; a segment file is dropped as soon as all its frames are acknowledged,
  so the disk holds at most what is pending plus one segment;
- the total is bounded by ``limit`` (``output_buffer_bytes``): :meth:`full` tells bulk producers (process
  output, uploads) to wait for acknowledgements -- the process then blocks on its pipe: backpressure, never
  loss. Small messages are always accepted (they are few and a producer of one must never deadlock);
- sequence numbers are consecutive: the pending frames are exactly ``acked + 1 .. next_seq - 1``.

Synchronous (the waiting lives in :mod:`plush.agent.session`). Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from typing import IO, Any, Deque, Dict, Optional, Tuple

from plush.errors import ProtocolError
from plush.protocol.framing import MAX_FRAME, encode
from plush.protocol.messages import Message, validate
from plush.protocol.reliable import SEQ_FIELD

__all__ = ["DEFAULT_MEMORY_LIMIT", "SEGMENT_SIZE", "Spool", "SpoolOutbox"]

#: bytes of pending frames kept in RAM before the outbox spills to disk
DEFAULT_MEMORY_LIMIT = 16 * 1024 * 1024
#: bytes per spool segment file
SEGMENT_SIZE = 16 * 1024 * 1024

#: where a spilled frame is: (segment id, offset, length)
Handle = Tuple[int, int, int]


class _Segment:
    __slots__ = ("file", "live", "size")

    def __init__(self, file: "IO[bytes]") -> None:
        self.file = file
        self.size = 0
        self.live = 0


class Spool:
    """Append-only segment files for spilled frames; a segment goes away when its last frame is released."""

    def __init__(self, directory: Optional[str] = None, segment_size: int = SEGMENT_SIZE) -> None:
        self.directory = directory
        self.segment_size = segment_size
        self._segments: Dict[int, _Segment] = {}
        self._current = -1
        self.bytes_written = 0

    def _open(self) -> _Segment:
        self._current += 1
        try:
            file = tempfile.TemporaryFile(dir=self.directory, prefix="plush-spool-")  # noqa: SIM115 (kept open)
        except OSError:  # the agent's directory is not writable: the system's temporary directory
            file = tempfile.TemporaryFile(prefix="plush-spool-")  # noqa: SIM115
        seg = self._segments[self._current] = _Segment(file)
        return seg

    def put(self, data: bytes) -> Handle:
        seg = self._segments.get(self._current)
        if seg is None or seg.size >= self.segment_size:
            seg = self._open()
        fd = seg.file.fileno()
        offset = seg.size
        view = memoryview(data)
        done = 0
        while done < len(data):
            done += os.pwrite(fd, view[done:], offset + done)
        seg.size += len(data)
        seg.live += 1
        self.bytes_written += len(data)
        return (self._current, offset, len(data))

    def get(self, handle: Handle) -> bytes:
        ident, offset, length = handle
        fd = self._segments[ident].file.fileno()
        parts = []
        got = 0
        while got < length:
            chunk = os.pread(fd, length - got, offset + got)
            if not chunk:
                raise OSError("spool segment {} is truncated at {}".format(ident, offset + got))
            parts.append(chunk)
            got += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self, handle: Handle) -> None:
        ident = handle[0]
        seg = self._segments[ident]
        seg.live -= 1
        if seg.live:
            return
        if ident == self._current:  # reuse the current segment from its start
            seg.file.truncate(0)
            seg.size = 0
        else:
            seg.file.close()
            del self._segments[ident]

    @property
    def files(self) -> int:
        return len(self._segments)

    @property
    def disk_bytes(self) -> int:
        return sum(seg.size for seg in self._segments.values())

    def close(self) -> None:
        for seg in self._segments.values():
            seg.file.close()
        self._segments.clear()


class _Entry:
    __slots__ = ("frame", "handle", "mtype", "size")

    def __init__(self, mtype: str, size: int, frame: Optional[bytes], handle: Optional[Handle]) -> None:
        self.mtype = mtype
        self.size = size
        self.frame = frame
        self.handle = handle


class SpoolOutbox:
    """Numbers, encodes and keeps outgoing run messages until acknowledged (see the module docstring)."""

    def __init__(
        self,
        limit: int = 256 * 1024 * 1024,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        spool_dir: Optional[str] = None,
        segment_size: int = SEGMENT_SIZE,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.limit = max(1, limit)
        self.memory_limit = memory_limit
        self.max_frame = max_frame
        self.next_seq = 1
        self.acked = 0
        self.bytes = 0  # every pending frame, in RAM or on disk
        self.memory_bytes = 0
        self.spilled = 0  # frames ever spilled (statistics)
        self._items: Deque[_Entry] = deque()
        self._spool_dir = spool_dir
        self._segment_size = segment_size
        self._spool: Optional[Spool] = None

    def add(self, msg: Message) -> Tuple[int, bytes]:
        """Number ``msg`` (sets its field ``q``), encode it and keep its frame; ``(seq, frame)``."""
        seq = self.next_seq
        msg.fields[SEQ_FIELD] = seq
        validate(msg)
        frame = encode(msg, self.max_frame)
        size = len(frame)
        if self.memory_bytes + size <= self.memory_limit:
            self._items.append(_Entry(msg.type, size, frame, None))
            self.memory_bytes += size
        else:
            if self._spool is None:
                self._spool = Spool(self._spool_dir, self._segment_size)
            self._items.append(_Entry(msg.type, size, None, self._spool.put(frame)))
            self.spilled += 1
        self.next_seq = seq + 1
        self.bytes += size
        return seq, frame

    def ack(self, seq: int) -> int:
        """The controller processed everything up to ``seq``: forget it; how many frames were released."""
        if seq >= self.next_seq:
            raise ProtocolError("ack {} for a message never sent (last sent {})".format(seq, self.next_seq - 1))
        released = 0
        items = self._items
        while items and self.acked < seq:
            entry = items.popleft()
            self.acked += 1
            self.bytes -= entry.size
            if entry.handle is None:
                self.memory_bytes -= entry.size
            else:
                assert self._spool is not None
                self._spool.release(entry.handle)
            released += 1
        self.acked = max(self.acked, seq)
        return released

    def get(self, seq: int) -> Optional[Tuple[str, bytes]]:
        """``(message type, frame)`` of pending message ``seq`` (read back from disk if spilled), or None."""
        index = seq - self.acked - 1
        if index < 0 or index >= len(self._items):
            return None
        entry = self._items[index]
        if entry.frame is not None:
            return entry.mtype, entry.frame
        assert entry.handle is not None and self._spool is not None
        return entry.mtype, self._spool.get(entry.handle)

    def full(self) -> bool:
        """True while bulk producers should wait for acknowledgements."""
        return self.bytes >= self.limit

    @property
    def pending(self) -> int:
        return len(self._items)

    def close(self) -> None:
        """Drop everything (the agent is exiting) and delete the spool files."""
        self._items.clear()
        self.bytes = self.memory_bytes = 0
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def statistics(self) -> Dict[str, Any]:
        spool = self._spool
        return {
            "next_seq": self.next_seq,
            "acked": self.acked,
            "pending": len(self._items),
            "bytes": self.bytes,
            "memory_bytes": self.memory_bytes,
            "spilled": self.spilled,
            "spool_files": spool.files if spool is not None else 0,
            "spool_bytes": spool.disk_bytes if spool is not None else 0,
        }
