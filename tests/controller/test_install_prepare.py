"""What every ``prepare`` shares is encoded once per run (issue 8): the model, the settings, the package table
and the ``PLUSH_HOSTS_<COMPONENT>`` lists are encoded to JSON once and spliced into each host's frame, so a
host costs the encoding of its own few fields. The frames are exactly those of the whole message."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import plush.controller.install as install_module
from plush.config import Settings
from plush.controller.install import Installer
from plush.controller.lifecycle import Lifecycles
from plush.controller.lifecycle_commands import LifecycleTimeouts
from plush.controller.runstate import RunHosts
from plush.protocol.framing import FrameDecoder
from plush.protocol.messages import Message
from plush.resources.host import Host
from plush.spec.load import load_spec
from plush.spec.model import to_dict

SPEC = """\
project: big
components:
  senders:
    hosts: {min: 1, max: 1000}
  v-nodes:
    hosts: {min: 1, max: 1000}
application:
  execution:
    senders:
      blocks:
        - process: send
          run: [sh, -c, 'echo "$PLUSH_HOSTS_V_NODES"']
"""


def _member(name: str) -> SimpleNamespace:
    return SimpleNamespace(workdir=f"/w/{name}", host=Host(name, "10.0.0.1", properties={"vip": "10.1.0.1"}))


def _run(tmp_path: Path, n: int) -> tuple[SimpleNamespace, list[tuple[str, bytes]]]:
    spec = tmp_path / "big.yaml"
    spec.write_text(SPEC)
    project = load_spec(spec)
    hosts = RunHosts()
    table = Lifecycles(LifecycleTimeouts(), on_move=lambda name, old, new: hosts.moved(name))
    for k in range(1, n + 1):
        component = "senders" if k % 2 else "v-nodes"
        hosts.add(f"h{k}", component, table.add(f"h{k}", 0.0, component=component))
        table.handle(f"h{k}", "launch_started", 0.0)
    sent: list[tuple[str, bytes]] = []
    links = SimpleNamespace(send_frame=lambda name, frame, msg: sent.append((name, frame)))
    mesh = SimpleNamespace(
        links=links,
        launcher=SimpleNamespace(address=lambda name: "10.0.0.1"),
        members={f"h{k}": _member(f"h{k}") for k in range(1, n + 1)},
        transfers=SimpleNamespace(fanout=0, ca=None, relay_cert=lambda: None),  # no relay: see test_cluster.py
    )
    rundir = SimpleNamespace(run_id="r1", shared=tmp_path / "shared", workdir=lambda name: tmp_path / name)
    marks: list[str] = []
    run = SimpleNamespace(
        project=project, settings=Settings(), hosts=hosts, mesh=mesh, rundir=rundir, marks=marks, table=table
    )
    run.mark = marks.append
    return run, sent


async def test_each_prepare_is_the_whole_message_and_the_shared_parts_are_encoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 500
    run, sent = _run(tmp_path, n)
    encoded: list[Any] = []
    real = install_module.json_text

    def counting(value: Any) -> bytes:
        encoded.append(value)
        return real(value)

    monkeypatch.setattr(install_module, "json_text", counting)
    installer = Installer(run, run.mesh, None, resetting=lambda: False, instances=lambda name: {})  # type: ignore[arg-type]
    await installer.start()
    for name in run.hosts:
        run.table.handle(name, "agent_joined", 1.0)  # its lifecycle says: send prepare
        installer.prepare(name)
    assert len(sent) == n and run.hosts.counts["preparing"] == n
    spec = to_dict(run.project)
    assert sum(1 for v in encoded if v == spec) == 1  # the model: once per run, not once per host
    assert sum(1 for v in encoded if isinstance(v, dict) and "PLUSH_HOSTS_SENDERS" in v) == 1  # the lists too
    assert len(encoded) == 4 + 2 * n  # per run: 4 shared parts; per host: its own record and variables
    senders = ",".join(f"h{k}" for k in range(1, n + 1, 2))
    vnodes = ",".join(f"h{k}" for k in range(2, n + 1, 2))
    for name, frame in [sent[0], sent[-1]]:
        (msg,) = FrameDecoder().feed(frame)
        slot = run.hosts[name]
        expected = Message.of(
            "prepare",
            spec=spec,
            host={
                "name": name,
                "component": slot.component,
                "index": slot.index,
                "attrs": {},
                "env": {
                    "PLUSH_HOST": name,
                    "PLUSH_HOST_INDEX": str(slot.index),
                    "PLUSH_COMPONENT": slot.component,
                    "PLUSH_RUN_ID": "r1",
                    "PLUSH_RUN_DIR": str(tmp_path / "shared"),
                    "PLUSH_WORKDIR": f"/w/{name}",
                    "PLUSH_ADDR": "10.0.0.1",
                    "PLUSH_PROP_VIP": "10.1.0.1",
                    "PLUSH_VIP": "10.1.0.1",
                    "PLUSH_HOSTS_SENDERS": senders,
                    "PLUSH_HOSTS_V_NODES": vnodes,
                },
                "packages": {},
            },
            settings=Settings().agent_settings().to_dict(),
        )
        assert msg == expected
    assert run.marks == ["all_joined"]  # once, when the last one joined


async def test_a_host_added_to_the_run_is_in_the_lists_of_the_next_prepares(tmp_path: Path) -> None:
    run, sent = _run(tmp_path, 2)
    installer = Installer(run, run.mesh, None, resetting=lambda: False, instances=lambda name: {})  # type: ignore[arg-type]
    await installer.start()
    installer.prepare("h1")
    run.hosts.add("h3", "senders")
    run.mesh.members["h3"] = _member("h3")
    installer.prepare("h3")
    (first,), (second,) = (FrameDecoder().feed(frame) for _, frame in sent)
    assert first["host"]["env"]["PLUSH_HOSTS_SENDERS"] == "h1"
    assert second["host"]["env"]["PLUSH_HOSTS_SENDERS"] == "h1,h3"
