"""Plush's XML-RPC API on a real ``plush serve --xmlrpc`` (issue 13, Done when): an ``xmlrpc.client`` script adds
three local nodes, loads an example, runs it, receives the callbacks on its own small XML-RPC server, and quits
the controller, which exits 0. Every method answers a value (the client does not allow None); incoming XML
with entities is refused and the server goes on; a refusal is a fault with the CLI's words."""

from __future__ import annotations

import contextlib
import threading
import urllib.request
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest
from integration_support import RUN_TIMEOUT, wait_until
from serve_support import served

REPO = Path(__file__).resolve().parents[2]
BOMB = (
    '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    "<methodCall><methodName>plushLoadApp</methodName><params><param><value><string>&b;</string></value>"
    "</param></params></methodCall>"
)
CALLBACKS = ("sendResourceMatching", "sendHostStatus", "sendBlockStatus", "sendApplicationExit", "sendPlushError")


class _Quiet(SimpleXMLRPCRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, tuple[Any, ...]]]]]:
    """The client's own XML-RPC server: every callback it receives, in order."""
    calls: list[tuple[str, tuple[Any, ...]]] = []
    server = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=_Quiet, logRequests=False)
    for name in CALLBACKS:
        server.register_function(lambda *params, _name=name: calls.append((_name, params)) or True, name)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/RPC2", calls
    finally:
        server.shutdown()
        server.server_close()


def test_a_script_adds_three_nodes_loads_runs_gets_the_callbacks_and_quits(
    tmp_path: Path, receiver: tuple[str, list[tuple[str, tuple[Any, ...]]]]
) -> None:
    url, calls = receiver
    with served(tmp_path, hosts=0) as serve, contextlib.ExitStack() as stack:
        assert serve.xmlrpc is not None
        plush = stack.enter_context(xmlrpc.client.ServerProxy(serve.xmlrpc, allow_none=False))
        assert plush.plushTestConnection() == "Hello World"
        assert plush.setXmlRpcClientUrl(url) is True
        for k in (1, 2, 3):
            assert plush.plushAddNode({"hostname": f"node-{k}", "type": "local", "site": "lab"}) == f"node-{k}"
        assert plush.plushCreateResources() == 3
        assert plush.plushLoadApp(str(REPO / "examples" / "tarball.xml")) == "tarball"
        run_id = plush.plushRunApp()
        assert isinstance(run_id, str) and run_id
        wait_until(lambda: any(c[0] == "sendApplicationExit" for c in calls), RUN_TIMEOUT, "the exit callback")
        names = [c[0] for c in calls]
        assert names.index("sendResourceMatching") < names.index("sendBlockStatus") < names.index("sendApplicationExit")
        (matching,) = [c[1][0] for c in calls if c[0] == "sendResourceMatching"]
        assert sorted(matching) == ["workers"] and set(matching["workers"]) <= {"node-1", "node-2", "node-3"}
        blocks = [c[1] for c in calls if c[0] == "sendBlockStatus"]
        for host in matching["workers"]:  # each host's blocks in the order they happened
            states = [state for _, h, state in blocks if h == host]
            assert states and states[0] == "started" and states[-1] == "completed"
        assert ("sendApplicationExit", ("completed",)) in calls
        assert any(c[0] == "sendHostStatus" and c[1][0] == "node-1" for c in calls)
        with pytest.raises(xmlrpc.client.Fault) as refused:
            plush.plushFailHost("nowhere")
        assert refused.value.faultCode == 1 and "no application is running" in refused.value.faultString
        # incoming XML with entities is refused (defusedxml) and the server goes on
        request = urllib.request.Request(serve.xmlrpc, data=BOMB.encode(), headers={"Content-Type": "text/xml"})
        with urllib.request.urlopen(request, timeout=RUN_TIMEOUT) as reply:
            answer = reply.read().decode()
        assert "<fault>" in answer and "Entit" in answer
        with pytest.raises(xmlrpc.client.Fault, match="no method 'frobnicate'"):
            plush.frobnicate()
        assert plush.plushQuit() is True
        assert serve.process.wait(timeout=RUN_TIMEOUT) == 0
        assert "quit (plushQuit)" in serve.err()
