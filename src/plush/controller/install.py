"""The install phase of a run: each host prepared, its software installed, the start barrier, files served.

Role. :class:`Installer` (a part of :class:`~plush.controller.engine.RunEngine`) owns the run's
:class:`~plush.files.catalog.FileCatalog` and what every ``prepare`` carries. When a host's agent is
connected (it joined, or was idle at the run's start) it sends ``prepare``; ``prepared`` gets ``go install``;
``installed`` waits at the *start barrier* (every live host installed: ``go execute`` to all) unless the
application is a service or the barrier is past (a restarted or replacement host executes at once); an
``install.failed`` ends the run. ``fetch`` requests are served from the catalog by tasks of the run's
supervisor: chunks read in a worker thread, written as the link drains.

Relayed installs (docs/protocol.md, "Relayed copies"): when the mesh relays (``relay_fanout`` > 0, a CA), the
``prepare`` of each host on a peer network (:func:`~plush.controller.relayplan.peer_network`) carries a
``relay`` object -- the relay certificate, and a one-off token per served package -- encoded once per run;
each package key has its own :class:`~plush.controller.relayplan.RelayPlan`, and a ``fetch`` with the
host's listener ``port`` is placed in it: streamed by the controller, or told its peers (``file.peers``); a
``fetch`` with ``offset`` (its peers failed) is streamed from there.

Cost (issue 8): what every ``prepare`` shares -- the model, the settings, the package table and the
``PLUSH_HOSTS_<COMPONENT>`` lists -- is encoded to JSON once per run (the host lists again only when the run
gains a host) and spliced into each host's frame (:func:`~plush.protocol.framing.encode_fields`), so a host
costs the encoding of its own few fields, not of the whole model; the start barrier is O(1) per message.

The steps are the hosts' lifecycles' (``prepared`` -> ``installing`` and ``go install``, ``install_done`` ->
``ready``, ``start_released`` -> ``running`` and ``go execute``): the installer feeds them and sends what
their commands say.

Invariants: a host is prepared at most once per agent (its lifecycle's ``preparing``); ``go execute`` reaches
a host only from ``ready``; a file is served only to a host's current link.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable

from plush.controller.catalogue import (
    BARRIER_START_RELEASED,
    FILE_SENT,
    HOST_INSTALL_FAILED,
    HOST_INSTALLED,
    HOST_PREPARED,
)
from plush.controller.lifecycle import CONNECTING, MATCHED, READY
from plush.controller.mesh import Mesh
from plush.controller.relayplan import Peers, RelayPlan, peer_network
from plush.controller.runstate import HostSlot, RunPort
from plush.controller.supervisor import Supervisor
from plush.controller.transfers import RELAY_SILENCE
from plush.files.catalog import FileCatalog
from plush.protocol.framing import encode_fields, json_text
from plush.protocol.messages import Message
from plush.protocol.secret import Secret
from plush.resources.host import property_env
from plush.spec.model import to_dict

__all__ = ["RELAY_OFFER", "Installer", "env_name"]

#: seconds a host offers a package it installs to its peers
RELAY_OFFER = 120.0


class Installer:
    """Prepare, install, the start barrier and file serving of one run."""

    def __init__(
        self,
        run: RunPort,
        mesh: Mesh,
        tasks: Supervisor,
        *,
        resetting: Callable[[], bool],
        instances: Callable[[str], dict[str, int]],
    ):
        self.run = run
        self.mesh = mesh
        self.tasks = tasks
        self._resetting = resetting
        self._instances = instances
        self.catalog: FileCatalog | None = None
        self.started = False  # the start barrier was released: a host that installs later executes at once
        self._shared: list[tuple[str, bytes]] = []  # the encoded model and settings
        self._packages = b"{}"
        self._lists: bytes | None = None  # the encoded PLUSH_HOSTS_* items, for the run's hosts as they are
        self._lists_for = -1  # ... when the run had this many hosts
        #: the encoded ``relay`` of the prepares of hosts on a peer network (b"": no relay), made at the first
        #: prepare: a cold run starts its mesh (its CA, its launcher) after :meth:`start`
        self._relay: bytes | None = None
        self._relay_keys: list[str] = []
        self._networks: dict[str, str | None] = {}  # prepared hosts' peer networks and addresses: the plans'
        self._addresses: dict[str, str] = {}
        self._plans: dict[str, RelayPlan] = {}  # package key -> its relay tree
        #: bytes of packages the controller streamed, hosts told to fetch a package from peers
        self.counts = {"bytes_streamed": 0, "told_peers": 0}

    async def start(self) -> None:
        """Hash the catalog's files (in threads) and encode what every ``prepare`` shares, once."""
        run = self.run
        self.catalog = FileCatalog.for_project(run.project)
        await self.catalog.hash_all()
        self._shared = [
            ("spec", json_text(to_dict(run.project))),
            ("settings", json_text(run.settings.agent_settings().to_dict())),
        ]
        packages = self.catalog.packages_info()
        self._packages = json_text(packages)
        self._relay_keys = [k for k, info in packages.items() if info.get("served") and "sha256" in info]

    def _relay_field(self) -> bytes:
        """The encoded ``relay`` of this run's prepares: a token per served package; b"" when the mesh does not
        relay or nothing is served. Made once, when first asked (the mesh is started by then)."""
        if self._relay is None:
            self._relay = self._make_relay(self._relay_keys)
        return self._relay

    def _make_relay(self, keys: list[str]) -> bytes:
        transfers = self.mesh.transfers
        cert = transfers.relay_cert() if keys and transfers.fanout > 0 and self.mesh.launcher is not None else None
        if cert is None or transfers.ca is None:
            return b""
        relay = {
            "tokens": {key: Secret.generate().reveal() for key in keys},
            "ca": transfers.ca.cert_pem.decode("ascii"),
            "cert": cert[0],
            "key": cert[1],
            "timeout": RELAY_OFFER,
            "silence": RELAY_SILENCE,
        }
        return json_text(relay)

    # --- prepare ----------------------------------------------------------------------------------------

    def prepare(self, name: str) -> None:
        """``name``'s agent is connected (its lifecycle says ``preparing``): send it ``prepare`` (the model, its
        host record, the settings)."""
        run = self.run
        slot = run.hosts[name]
        slot.joined_at = time.time()
        frame, msg = self._prepare(slot)
        self.mesh.links.send_frame(name, frame, msg)
        if run.hosts.counts[MATCHED] + run.hosts.counts[CONNECTING] == 0:
            run.mark("all_joined")

    def _prepare(self, slot: HostSlot) -> tuple[bytes, Message]:
        run = self.run
        own = {"name": slot.name, "component": slot.component, "index": slot.index, "attrs": {}}
        env = self._own_env(slot)
        env_text = json_text(env)[:-1] + b"," + self._host_lists() + b"}"
        host_text = json_text(own)[:-1] + b',"env":' + env_text + b',"packages":' + self._packages
        relay = self._relay_field()
        if relay and self._on_network(slot.name):
            host_text += b',"relay":' + relay
        host_text += b"}"
        spec, settings = self._shared
        frame = encode_fields("prepare", [spec, ("host", host_text), settings])
        # the message object only names the type for the connection's state (its frame is ``frame``)
        msg = Message.of("prepare", spec={}, host=own, settings=run.settings.agent_settings().to_dict())
        return frame, msg

    def _on_network(self, name: str) -> bool:
        """Whether ``name`` reaches other hosts at their addresses (noted for the relay plans)."""
        member = self.mesh.members.get(name)
        launcher = self.mesh.launcher
        net = peer_network(member.host) if member is not None and launcher is not None else None
        self._networks[name] = net
        if net is not None and launcher is not None:
            self._addresses[name] = launcher.address(name)
        return net is not None

    def _own_env(self, slot: HostSlot) -> dict[str, str]:
        run = self.run
        launcher = self.mesh.launcher
        member = self.mesh.members.get(slot.name)
        workdir = member.workdir if member is not None and member.workdir else str(run.rundir.workdir(slot.name))
        env = {
            "PLUSH_HOST": slot.name,
            "PLUSH_HOST_INDEX": str(slot.index),
            "PLUSH_COMPONENT": slot.component,
            "PLUSH_RUN_ID": run.rundir.run_id,
            "PLUSH_RUN_DIR": str(run.rundir.shared),
            "PLUSH_WORKDIR": workdir,
            "PLUSH_ADDR": launcher.address(slot.name) if launcher is not None else "",
        }
        if member is not None:
            env.update(property_env(member.host.properties))  # PLUSH_PROP_<NAME>, PLUSH_VIP, PLUSH_VN
        return env

    def _host_lists(self) -> bytes:
        """``"PLUSH_HOSTS_<C>":"h1,h2",...`` for every component: encoded again only when the run gained a
        host (a rematch, a refill), else reused."""
        hosts = self.run.hosts
        if self._lists is None or self._lists_for != len(hosts):
            by_component: dict[str, list[str]] = {}
            for each in hosts.values():
                by_component.setdefault(each.component, []).append(each.name)
            lists = {
                f"PLUSH_HOSTS_{env_name(c.name)}": ",".join(by_component.get(c.name, ()))
                for c in self.run.project.components
            }
            self._lists = json_text(lists)[1:-1] if lists else b""
            self._lists_for = len(hosts)
        return self._lists

    # --- install and the start barrier ------------------------------------------------------------------

    def on_prepared(self, slot: HostSlot, msg: Message) -> None:
        self.run.bus.emit(HOST_PREPARED, host=slot.name)
        self.mesh.states.offer(slot.name, "prepared")  # -> go install

    def send_go(self, name: str, stage: str) -> None:
        """``go install``, or ``go execute`` with the instance numbers the host's processes go on from."""
        if stage == "install":
            self.run.send(name, Message.of("go", stage="install"))
        else:
            self.run.send(name, Message.of("go", stage="execute", instances=self._instances(name)))

    def on_installed(self, slot: HostSlot, msg: Message) -> None:
        run = self.run
        if not self.mesh.states.offer(slot.name, "install_done"):
            return
        run.bus.emit(HOST_INSTALLED, host=slot.name, data={"software": msg["software"]})
        if self._resetting():
            return  # the application restarts: every installed host executes once all have reset
        if run.project.application.service or self.started:
            self.go_execute([slot])  # a service host, or a restarted or replacement host, starts at once
        else:
            self.maybe_release_start()

    def maybe_release_start(self) -> None:
        """The start barrier: execution begins once every live host has installed (O(1): counts)."""
        run = self.run
        if self.started or not run.hosts.all_live_in(READY):
            return
        self.started = True
        live = run.hosts.live()
        run.mark("all_installed")
        run.bus.emit(BARRIER_START_RELEASED, data={"hosts": len(live)})
        self.go_execute(live)

    def go_execute(self, slots: list[HostSlot]) -> None:
        """Release ``slots`` (ready hosts, or lost ones that were: kept, replayed on resume): ``go execute``."""
        self.mesh.states.handle_many((slot.name, "start_released", {}) for slot in slots)

    def on_install_failed(self, slot: HostSlot, msg: Message) -> None:
        run = self.run
        reason = f"installing software {msg['software']!r} failed on {slot.name}: {msg['reason']}"
        run.bus.emit(HOST_INSTALL_FAILED, host=slot.name, data={"software": msg["software"], "reason": msg["reason"]})
        self.mesh.states.offer(slot.name, "install_failed", reason=reason)  # the run ends (AbortRun)

    # --- files --------------------------------------------------------------------------------------------

    def on_fetch(self, slot: HostSlot, msg: Message) -> None:
        key, req = msg["key"], msg["req"]
        offset = int(msg.get("offset") or 0)
        port = msg.get("port")
        if port is not None and self._relay_field():
            plan = self._plans.get(key)
            if plan is None:
                plan = self._plans[key] = RelayPlan(self.mesh.transfers.fanout, self._networks, self._addresses)
            step = plan.fetch(slot.name, int(port), offset)
            if isinstance(step, Peers):
                self.run.send(slot.name, Message.of("file.peers", req=req, sources=[list(s) for s in step.sources]))
                self.counts["told_peers"] += 1
                return
        self.tasks.spawn(self._serve_file(slot, req, key, offset), name=f"serve {slot.name} {key}")

    async def _serve_file(self, slot: HostSlot, req: int, key: str, offset: int = 0) -> None:
        """Send file ``key`` (from ``offset``) to ``slot``'s agent: chunks read in a thread, written as the link
        drains."""
        run = self.run
        peer = self.mesh.links.peer(slot.name)
        if peer is None:
            return  # the host failed meanwhile
        assert self.catalog is not None
        entry = self.catalog.entries.get(key)
        if entry is None or entry.path is None:
            run.send(slot.name, Message.of("file.error", req=req, reason=f"no file known as {key!r}"))
            return
        digest = hashlib.sha256()
        size = 0
        chunks = self.catalog.open_chunks(key, offset)
        try:
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                digest.update(chunk)
                size += len(chunk)
                self.counts["bytes_streamed"] += len(chunk)
                run.send(slot.name, Message.binary("file.data", chunk, req=req))
                await peer.drain()
        except OSError as exc:
            run.send(slot.name, Message.of("file.error", req=req, reason=str(exc)))
            return
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if offset:  # the rest of the file: the whole one's size and sha256
            size, sha = offset + size, entry.sha256 or ""
        else:
            sha = digest.hexdigest()
        run.send(slot.name, Message.of("file.end", req=req, size=size, sha256=sha))
        run.bus.emit(FILE_SENT, host=slot.name, data={"key": key, "size": size})


def env_name(name: str) -> str:
    """A component's name in a ``PLUSH_HOSTS_<COMPONENT>`` variable: upper case, ``A-Z 0-9 _``."""
    return "".join(c if c.isalnum() else "_" for c in name).upper()
