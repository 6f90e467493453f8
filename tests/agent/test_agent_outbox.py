"""The agent's outbox: numbering, bounded memory with a disk spool, replay order, release on ack, limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from plush.agent.outbox import Spool, SpoolOutbox
from plush.errors import ProtocolError
from plush.protocol.framing import FrameDecoder
from plush.protocol.messages import Message


def output(i: int, size: int = 300) -> Message:
    return Message.binary("output", bytes([i % 256]) * size, path="/a/c/p", instance=1, stream="stdout")


def decode(frame: bytes) -> Message:
    (msg,) = FrameDecoder().feed(frame)
    return msg


def test_messages_are_numbered_and_encoded_once(tmp_path: Path) -> None:
    box = SpoolOutbox(spool_dir=str(tmp_path))
    for i in range(1, 4):
        seq, frame = box.add(Message.of("block", path="/a/c", state="started"))
        assert seq == i
        assert decode(frame)["q"] == i
        assert box.get(seq) == ("block", frame)
    assert box.pending == 3


def test_memory_is_bounded_and_the_rest_spills_to_disk_in_order(tmp_path: Path) -> None:
    box = SpoolOutbox(limit=10**9, memory_limit=2000, spool_dir=str(tmp_path), segment_size=4000)
    frames = {}
    for i in range(1, 51):
        seq, frame = box.add(output(i))
        frames[seq] = frame
        assert box.memory_bytes <= 2000
    assert box.spilled > 0
    assert box.statistics()["spool_files"] >= 2
    for seq in range(1, 51):  # the replay order: every frame, as first encoded, RAM or disk
        item = box.get(seq)
        assert item is not None and item == ("output", frames[seq])
        assert decode(item[1]).payload == bytes([seq % 256]) * 300
    assert box.get(51) is None
    box.close()


def test_acks_release_frames_and_delete_spool_segments(tmp_path: Path) -> None:
    box = SpoolOutbox(limit=10**9, memory_limit=1000, spool_dir=str(tmp_path), segment_size=2000)
    for i in range(40):
        box.add(output(i))
    files = box.statistics()["spool_files"]
    assert files >= 3
    assert box.ack(20) == 20
    assert box.get(20) is None and box.get(21) is not None
    assert box.statistics()["spool_files"] < files
    box.ack(40)
    stats = box.statistics()
    assert stats["pending"] == 0 and stats["bytes"] == 0 and stats["memory_bytes"] == 0
    assert stats["spool_bytes"] == 0  # the last segment is reused from its start
    assert box.ack(40) == 0  # an old ack again changes nothing
    box.close()


def test_an_ack_for_a_message_never_sent_is_a_protocol_error() -> None:
    box = SpoolOutbox()
    box.add(output(1))
    with pytest.raises(ProtocolError, match="never sent"):
        box.ack(2)


def test_the_limit_says_when_producers_must_wait() -> None:
    box = SpoolOutbox(limit=1000)
    assert not box.full()
    box.add(output(1))
    box.add(output(2))
    box.add(output(3))
    assert not box.full() or box.bytes >= 1000
    box.add(output(4))
    assert box.full()
    box.ack(3)
    assert not box.full()


def test_spool_files_leave_nothing_behind(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), segment_size=10)
    handles = [spool.put(bytes([i]) * 7) for i in range(5)]
    assert [spool.get(h) for h in handles] == [bytes([i]) * 7 for i in range(5)]
    assert list(tmp_path.iterdir()) == []  # anonymous files: deleted even if the agent is killed
    spool.close()
    assert spool.files == 0
