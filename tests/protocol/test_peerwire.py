"""The relay's request and answer lines (plush.protocol.peerwire): what a peer sends before its token is
checked is parsed strictly, whatever the bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.protocol.peerwire import MAX_LINE, PeerRequest, WireError, answer_no, answer_ok, parse_answer, parse_request
from plush.protocol.secret import Secret

SHA = "ab" * 32


def test_a_request_round_trips_and_answers_say_the_size_or_the_reason() -> None:
    req = PeerRequest(Secret.generate().reveal(), SHA, 4096)
    assert parse_request(req.encode()) == req
    assert parse_answer(answer_ok(10_000_000)) == 10_000_000
    with pytest.raises(WireError, match="no such offer"):
        parse_answer(answer_no("no such offer"))


@pytest.mark.parametrize(
    "line",
    [
        b"PLUSH-RELAY 1 " + b"t" * 43 + b" " + SHA.encode() + b" 0",  # no end of line
        b"PLUSH-RELAY 2 " + b"t" * 43 + b" " + SHA.encode() + b" 0\n",  # another version
        b"PLUSH-RELAY 1 short " + SHA.encode() + b" 0\n",
        b"PLUSH-RELAY 1 " + b"t" * 43 + b" " + SHA.upper().encode() + b" 0\n",
        b"PLUSH-RELAY 1 " + b"t" * 43 + b" " + SHA.encode() + b" -1\n",
        b"PLUSH-RELAY 1 " + b"t" * 43 + b" " + SHA.encode() + b" 0 extra\n",
        b"PLUSH-RELAY 1 " + b"t" * 43 + b" " + SHA.encode() + b" " + b"9" * 16 + b"\n",
        b"PLUSH-RELAY 1 " + b"t" * 300 + b"\n",
        b"GET / HTTP/1.1\n",
        b"\xff\xfe\n",
    ],
)
def test_anything_but_the_request_line_is_refused(line: bytes) -> None:
    with pytest.raises(WireError):
        parse_request(line)


@given(st.binary(max_size=2 * MAX_LINE))
def test_any_bytes_parse_to_a_well_formed_request_or_a_wire_error(data: bytes) -> None:
    try:
        req = parse_request(data)
    except WireError:
        return
    assert len(data) <= MAX_LINE and req.encode() == data and len(req.sha256) == 64 and req.offset >= 0


@given(
    st.text(alphabet="ABCxyz019_-", min_size=43, max_size=64),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    st.integers(0, 10**15 - 1),
)
def test_every_well_formed_request_round_trips(token: str, sha: str, offset: int) -> None:
    req = PeerRequest(token, sha, offset)
    assert parse_request(req.encode()) == req


@given(st.binary(max_size=2 * MAX_LINE))
def test_any_answer_bytes_give_a_size_or_a_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        assert parse_answer(data) >= 0
