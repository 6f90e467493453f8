"""What ``plush exec`` gathers (plush.controller.gather, pure): folding outputs, host-varying templates, the
summary and the exit status. Hypothesis checks the folding invariants on arbitrary outputs and host names."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plush.controller.gather import (
    EXIT_TIMED_OUT,
    EXIT_UNREACHABLE,
    Block,
    ExecResult,
    HostOutput,
    HostValues,
    exit_status,
    expand,
    fold_outputs,
    gathered_lines,
    host_lines,
    summary_lines,
    template,
)

# host names like a pool's: a prefix and a number, sometimes padded, sometimes none
_names = st.builds(
    lambda prefix, number, pad: prefix + (str(number).zfill(pad) if number is not None else ""),
    st.sampled_from(["local-", "node", "web", "db-x", "n"]),
    st.one_of(st.none(), st.integers(0, 120)),
    st.integers(0, 3),
)
_addresses = st.one_of(st.none(), st.sampled_from(["127.0.0.1", "10.0.0.7", "node7.example"]))
# outputs built from fragments that collide with names, addresses and numbers on purpose
_fragments = st.sampled_from(
    ["local-", "node", "7", "1", "12", "127.0.0.1", "{host}", "{index}", "{", "}", "host", " ", "\n", "x", "é"]
)


@st.composite
def _outputs(draw: st.DrawFn) -> tuple[dict[str, bytes], dict[str, HostValues]]:
    names = draw(st.lists(_names, min_size=1, max_size=12, unique=True))
    values = {n: HostValues.of(n, draw(_addresses)) for n in names}
    outputs = {}
    for n in names:
        parts = draw(st.lists(st.one_of(_fragments, st.sampled_from(["<name>", "<index>", "<address>"])), max_size=8))
        text = "".join(
            n
            if p == "<name>"
            else (values[n].index or "")
            if p == "<index>"
            else (values[n].address or "")
            if p == "<address>"
            else p
            for p in parts
        )
        outputs[n] = text.encode()
    return outputs, values


@settings(max_examples=300, deadline=None)
@given(_outputs())
def test_every_host_is_in_one_block_which_gives_back_each_of_its_hosts_output(
    drawn: tuple[dict[str, bytes], dict[str, HostValues]],
) -> None:
    outputs, values = drawn
    blocks = fold_outputs(outputs, values.__getitem__)
    placed = [h for b in blocks for h in b.hosts]
    assert sorted(placed) == sorted(n for n, o in outputs.items() if o)  # each host with output, once
    for block in blocks:
        for host in block.hosts:  # a block without marks is shown as it is (a mark in it is the host's text)
            assert (expand(block.text, values[host]) if block.marks else block.text) == outputs[host]
        if block.marks:
            assert len(block.hosts) > 1
            assert len({outputs[h] for h in block.hosts}) > 1  # a template only when outputs differ
        elif len(block.hosts) > 1:
            assert len({outputs[h] for h in block.hosts}) == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60), _names, _addresses)
def test_a_template_expands_back_to_its_output(output: bytes, name: str, address: str | None) -> None:
    values = HostValues.of(name, address)
    assert expand(template(output, values), values) == output


def test_identical_outputs_fold_under_their_host_set() -> None:
    outputs = {f"node{k}": b"Linux\n" for k in [*range(1, 41), 43]} | {"node41": b"Darwin\n", "node42": b""}
    blocks = fold_outputs(outputs)
    assert blocks == [
        Block(tuple(f"node{k}" for k in [*range(1, 41), 43]), b"Linux\n"),
        Block(("node41",), b"Darwin\n"),
    ]
    assert gathered_lines(blocks) == [
        "---------------",
        "node[1-40,43] (41)",
        "---------------",
        "Linux",
        "---------------",
        "node41 (1)",
        "---------------",
        "Darwin",
    ]


def test_outputs_that_differ_by_the_host_name_address_or_index_fold_with_marks() -> None:
    values = {f"local-{k}": HostValues.of(f"local-{k}", f"10.0.0.{k}") for k in range(1, 6)}
    outputs = {n: f"I am {n} at {v.address}, rank {v.index}\nsame\n".encode() for n, v in values.items()}
    outputs["local-5"] = b"I am somebody else\nsame\n"
    blocks = fold_outputs(outputs, values.__getitem__)
    assert blocks[0] == Block(
        ("local-1", "local-2", "local-3", "local-4"),
        b"I am {host} at {address}, rank {index}\nsame\n",
        ("host", "address", "index"),
    )
    assert gathered_lines(blocks[:1])[1] == "local-[1-4] (4) varies: {host} {address} {index}"
    assert blocks[1] == Block(("local-5",), outputs["local-5"])


def test_a_number_inside_a_longer_one_is_not_the_index() -> None:
    values = HostValues.of("n1")
    assert template(b"n1 has 1 cpu, 10 disks, 21 fans", values) == b"{host} has {index} cpu, 10 disks, 21 fans"


def test_an_output_holding_a_mark_literally_is_never_a_template() -> None:
    outputs = {"a1": b"{host}", "a2": b"a2"}
    blocks = fold_outputs(outputs)
    assert {b.hosts: b.text for b in blocks} == {("a1",): b"{host}", ("a2",): b"a2"}
    assert all(not b.marks for b in blocks)


def test_host_lines_prefix_each_line_with_the_host() -> None:
    assert host_lines("local-3", b"a\nb\n") == ["local-3: a", "local-3: b"]
    assert host_lines("local-3", b"\xff") == ["local-3: \ufffd"]


def _result(**extra: object) -> ExecResult:
    results = {
        "n1": HostOutput("n1", 0),
        "n2": HostOutput("n2", 0),
        "n3": HostOutput("n3", 3),
        "n4": HostOutput("n4", None, 15),
    }
    return ExecResult(["n1", "n2", "n3", "n4", "n5", "n6"], results, timeout=2.0, **extra)  # type: ignore[arg-type]


def test_the_exit_status_is_the_highest_remote_one_then_timeouts_then_unreachable() -> None:
    assert exit_status(ExecResult([])) == 0
    assert exit_status(_result()) == 128 + 15  # a signal counts 128 + its number
    assert exit_status(ExecResult(["n1"], {"n1": HostOutput("n1", 3)})) == 3
    timed = _result(timed_out=["n5"])
    assert exit_status(timed) == EXIT_TIMED_OUT == 124
    gone = _result(timed_out=["n5"], unreachable=["n6"], reasons={"n6": "its agent exited"})
    assert exit_status(gone) == EXIT_UNREACHABLE == 255
    assert gone.status == 255 and not gone.ok


def test_the_summary_names_the_hosts_per_status_then_timed_out_then_unreachable() -> None:
    result = _result(timed_out=["n5"], unreachable=["n6"], reasons={"n6": "its agent exited"})
    assert summary_lines(result) == [
        "plush: exit 0: n[1-2] (2)",
        "plush: exit 3: n3 (1)",
        "plush: killed by signal 15: n4 (1)",
        "plush: timed out after 2s: n5 (1)",
        "plush: unreachable: n6 (1): its agent exited",
    ]
    assert summary_lines(result, everything=False)[0] == "plush: exit 3: n3 (1)"


def test_a_result_round_trips_through_plain_data() -> None:
    result = _result(timed_out=["n5"], unreachable=["n6"], reasons={"n6": "gone"})
    result.results["n1"] = HostOutput("n1", 0, None, b"\x00out\xff", b"err", True, False, 0.25)
    assert ExecResult.from_dict(result.to_dict()) == result
