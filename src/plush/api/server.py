"""The control server: a controller's Unix socket for its own CLI clients (``plush info``, ``plush quit``, ...).

Role: a thin face over :class:`plush.Controller`. It takes the controller's name and socket
(:mod:`plush.api.runtime`), accepts connections of the same user only (``SO_PEERCRED``; another uid gets one
error line and is closed), reads requests of :mod:`plush.api.control`'s format and hands each to its handler
in :mod:`plush.api.handlers` (the registry: what each op calls on the controller). It decides nothing.

The owner (``plush serve``, a batch ``plush run SPEC``) :meth:`~ControlServer.start`\\ s it, passes the
``on_quit`` callback that the ``quit`` request calls, calls :meth:`~ControlServer.ended` once the controller
has quit (a ``quit`` request is answered then), and :meth:`~ControlServer.close`\\ s it.

Invariants: a malformed, unknown or oversized request gets an error reply and never ends the server (an
oversized line also ends its connection, which cannot be resynchronised); a handler's bug is an error reply
(``internal error``, logged with its traceback), not a dead server; every task the server starts (connections,
detached runs) is its own and ends by :meth:`~ControlServer.close`; the socket and the name's entry are
removed at close (by the kernel's lock release if the process dies first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any

from plush.api import app_handlers, shell_handlers  # noqa: F401  (their requests register themselves in HANDLERS)
from plush.api.control import MAX_REQUEST, decode_line, encode_line, peer_uid
from plush.api.handlers import HANDLERS, Request
from plush.api.runtime import Registration
from plush.errors import PlushError, SpecError

if TYPE_CHECKING:
    from plush.controller.api import Controller

__all__ = ["ControlServer"]

log = logging.getLogger(__name__)

#: seconds :meth:`ControlServer.close` gives requests in flight (a ``quit`` being answered) to finish
CLOSE_WAIT = 5.0


class ControlServer:
    """The Unix socket of one controller (see the module)."""

    def __init__(
        self,
        controller: Controller,
        *,
        name: str | None,
        kind: str,
        on_quit: Callable[[str], None],
        ops: Collection[str] | None = None,
    ) -> None:
        """``kind``: ``serve`` or ``run``; ``ops``: the requests served (default: every one of the registry)."""
        self.controller = controller
        self.kind = kind
        self._wanted_name = name
        self._on_quit = on_quit
        self._ops = set(ops) if ops is not None else None
        self.registration: Registration | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._answering: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ended = asyncio.Event()
        #: where the web UI of this controller's HTTP listener is, and its token (``plush serve --http``)
        self.web_url: str | None = None
        self.web_token: str | None = None

    @property
    def name(self) -> str:
        assert self.registration is not None
        return self.registration.name

    async def start(self) -> None:
        """Take the name, bind the socket (0600), listen. Raises ControlDirError / PlushError (name taken)."""
        self.registration = Registration.take(self._wanted_name, kind=self.kind)
        path = str(self.registration.socket_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)  # the directory is 0700 already: nobody else reached it in between
            sock.listen(64)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_REQUEST)
        except BaseException:
            sock.close()
            self.registration.release()
            raise

    # --- what handlers use ------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A task owned by the server (a detached run): it outlives the request, not the server."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._spawned_done)
        return task

    def _spawned_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, PlushError):  # a refusal: answered to its request, or an event and the journal told it
            log.debug("a task of the control server ended: %s", exc)
        elif exc is not None:  # a bug: nobody else will say it
            log.warning("a task of the control server failed: %r", exc)

    def quit(self, reason: str) -> None:
        self._on_quit(reason)

    def ended(self) -> None:
        """The controller has quit: ``quit`` requests are answered, subscriptions end."""
        self._ended.set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    @property
    def is_ended(self) -> bool:
        return self._ended.is_set()

    # --- connections --------------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            uid = peer_uid(writer.get_extra_info("socket"))
            if uid != os.geteuid():
                log.warning("refused a control connection of uid %d", uid)
                await _reply(writer, _error(f"refused: uid {uid} is not this controller's user", 2))
                return
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # over the limit: the rest of the line cannot be told from the next request
                    await _reply(writer, _error(f"request over {MAX_REQUEST} bytes; connection closed", 2))
                    return
                if not line.endswith(b"\n"):
                    return  # end of the connection (a partial last line is no request)
                answering = asyncio.current_task()
                assert answering is not None
                self._answering.add(answering)
                try:
                    await self._answer(line, writer)
                finally:
                    self._answering.discard(answering)
        except (ConnectionError, BrokenPipeError):
            pass  # the client went away
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> None:
        try:
            message = decode_line(line)
            op = message["op"]
            args = message.get("args", {})
            if not isinstance(op, str) or not isinstance(args, dict):
                raise ValueError("'op' must be a string and 'args' an object")
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            await _reply(writer, _error(f"malformed request: {exc}", 2))
            return
        handler = HANDLERS.get(op)
        if handler is None or (self._ops is not None and op not in self._ops):
            known = sorted(HANDLERS if self._ops is None else self._ops & set(HANDLERS))
            what = f"unknown request {op!r}" if handler is None else f"{op!r} is not served by a batch run"
            await _reply(writer, _error(f"{what} (this controller serves: {', '.join(known)})", 2))
            return

        async def send(event: dict[str, Any]) -> None:
            await _reply(writer, {"event": event})

        try:
            result = await handler(Request(self, self.controller, args, send))
        except (ConnectionError, BrokenPipeError):
            raise
        except SpecError as exc:
            problems = [str(p) for p in exc.problems] if len(exc.problems) > 1 else None
            await _reply(writer, _error(str(exc.problems[0]) if problems is None else "", exc.exit_code, problems))
            return
        except PlushError as exc:
            await _reply(writer, _error(str(exc), exc.exit_code))
            return
        except Exception as exc:  # a bug of a handler: an error reply, the server stays up
            log.exception("control request %r failed", op)
            await _reply(writer, _error(f"internal error: {exc!r}", 1))
            return
        await _reply(writer, {"ok": True, "result": result})

    async def close(self) -> None:
        """Stop accepting, give requests in flight :data:`CLOSE_WAIT` s, end every task, remove the socket."""
        try:
            if self._server is not None:
                self._server.close()
            if self._answering:
                await asyncio.wait(set(self._answering), timeout=CLOSE_WAIT)
            tasks = [*self._connections, *self._tasks]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            if self.registration is not None:
                self.registration.release()


def _error(message: str, status: int, problems: list[str] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": False, "error": message, "status": status}
    if problems:
        reply["problems"] = problems
    return reply


async def _reply(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(encode_line(message))
    await writer.drain()
