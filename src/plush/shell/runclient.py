"""``plush run`` without SPEC: run the application loaded into a running controller (``plush serve``) and show it
as a batch run shows itself.

Role: a client of the control socket (its ``run`` request streams the run's events), feeding each event to the
same :class:`~plush.shell.runface.Face` a batch run uses: the live view on a terminal, plain lines (off a
terminal, ``--plain``), one JSON event per line (``--json``), output folded at the end (``--fold``) or not
shown (``--quiet``); the same last lines and exit status (:func:`plush.shell.console.end_status`). The live
view is redrawn every :attr:`Face.TICK <plush.shell.runface.Face.TICK>` seconds by a thread of its own (:class:`
_Ticker`), which reads the controller's ``info`` over a second connection when the view needs it (the
components' sizes once, the barriers' expected counts while there are barriers), so that a quiet run still
moves its clock; events and refreshes take one lock, so the view is never drawn half-fed.

The first Ctrl-C (or SIGTERM) stops the run on request; a second leaves it running on the controller (exit
130). Standard library, click and rich only: no asyncio, no controller (the client starts fast).
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

import click

from plush.controller.catalogue import CATALOGUE, PROCESS_OUTPUT
from plush.shell.cli import notice, warn

if TYPE_CHECKING:
    from plush.api.runtime import Entry
    from plush.shell.runface import Face

__all__ = ["run_on_controller"]


def _kinds(face: Face) -> list[str]:
    """The event names the face wants streamed (process output travels apart: the request's ``output``)."""
    if face.kinds is None:
        return [k for k in CATALOGUE if k != PROCESS_OUTPUT]
    return [k for k in face.kinds if k != PROCESS_OUTPUT]


def run_on_controller(name: str | None, hosts: dict[str, int], seed: str | None, face: Face, *, detach: bool) -> int:
    """Run the controller's loaded application, shown through ``face``; the exit status (see the module)."""
    from plush.api.control import ControlClient
    from plush.api.runtime import find_controller
    from plush.errors import PlushError
    from plush.shell.console import end_status

    entry = find_controller(name)
    if seed is not None and not seed.lstrip("-").isdigit():
        raise click.BadParameter(f"{seed!r} is not a whole number", param_hint="--seed")
    output = face.writer is not None or (face.json and face.kinds is None)
    args = {
        "hosts": hosts or None,
        "seed": int(seed) if seed is not None else None,
        "detach": detach,
        "events": _kinds(face),
        "output": output,
    }
    if detach:
        with ControlClient(entry.socket, entry.name) as client:
            started = client.call("run", args)
        for line in started.get("notices", ()):
            notice(line)
        click.echo(started["run"])
        return 0
    lock = threading.Lock()
    results: list[str] = []
    ticker = _Ticker(face, entry, lock)
    interrupts = 0

    def on_event(event: dict[str, Any]) -> None:
        with lock:
            _take(face, event, results)

    def on_signal(sig: int, _frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            raise KeyboardInterrupt
        click.echo("plush: stopping (Ctrl-C again to leave it running)", err=True)
        with ControlClient(entry.socket, entry.name) as other:
            other.call("stop", {"reason": f"stopped by request ({signal.Signals(sig).name})"})

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    if face.screen is not None:
        face.screen.start()
        ticker.start()
    try:
        with ControlClient(entry.socket, entry.name) as client:
            summary = client.call("run", args, on_event)
    except KeyboardInterrupt:
        summary = None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ticker.finish()
        with lock:
            face.writer_flush()
            face.end(results[0] if results and summary is not None else None)
    if summary is None:
        click.echo(f"plush: left the run going on controller {entry.name}", err=True)
        return 130
    if summary["missed"]:
        warn(f"{summary['missed']} events were not shown (this client was slow); the run's logs have every line")
    if summary["error"]:
        raise PlushError(summary["error"])
    return end_status(summary, interrupts)


def _take(face: Face, event: dict[str, Any], results: list[str]) -> None:
    """One streamed event (:func:`plush.api.handlers.wire_event`) into the face."""
    from plush.api.control import text_to_bytes

    name = event.get("name")
    if name == PROCESS_OUTPUT:
        data = text_to_bytes(event.get("data", ""))
        if face.writer is not None:
            face.writer(event["host"], event["block"], event.get("instance") or 1, event["stream"], data)
        elif face.json:
            out = {k: event[k] for k in ("name", "host", "block", "instance") if event.get(k) is not None}
            out["data"] = {"stream": event.get("stream"), "data": event.get("data", "")}
            face.take(PROCESS_OUTPUT, event.get("host"), event.get("block"), {}, 0.0, str, lambda: out)
        return
    if name == "run.begin":
        results.append(str(event["results"]))
        click.echo(f"plush: run {event['run']}: results in {event['results']}", err=True)
        for line in event.get("notices", ()):
            notice(line)
        return
    if not isinstance(name, str):
        return
    shown_line = str(event.get("line") or name)
    plain = {k: v for k, v in event.items() if k != "line"}
    face.take(
        name,
        event.get("host"),
        event.get("block"),
        event.get("data") or {},
        float(event.get("at") or 0.0),
        lambda: shown_line,
        lambda: plain,
    )


class _Ticker(threading.Thread):
    """Redraws the live view every ``face.TICK`` seconds until :meth:`finish` (see the module)."""

    def __init__(self, face: Face, entry: Entry, lock: threading.Lock) -> None:
        super().__init__(name="plush-live-view", daemon=True)
        self.face, self.entry, self.lock = face, entry, lock
        self._halt = threading.Event()

    def run(self) -> None:
        from plush.api.control import ControlClient
        from plush.errors import PlushError

        client: ControlClient | None = None
        try:
            ending = False
            while not ending:  # a last refresh after finish(): a run quicker than a tick is placed too
                ending = self._halt.wait(self.face.TICK)
                with self.lock:
                    needs = self.face.needs()
                info: dict[str, Any] = {}
                try:
                    if needs and client is None:
                        client = ControlClient(self.entry.socket, self.entry.name)
                    for what in needs:
                        assert client is not None
                        info[what] = client.call("info", {"what": what})
                except (PlushError, OSError):
                    pass  # the controller is going away: the run's own stream says how it ended
                with self.lock:
                    self.face.tick(info)
        finally:
            if client is not None:
                client.close()

    def finish(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()
