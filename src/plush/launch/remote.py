"""What the SSH launcher runs on a host, and how it reads the answers: shell text in, decisions out.

Role: the pure half of :mod:`plush.launch.ssh`. :func:`probe_script` is one ``sh`` command that finds a Python
(``python3``, then ``python3.13`` ... ``python3.8``, or the host's ``python`` attribute), says whether the agent
zipapp of a given hash is cached on the host and where ``$HOME`` is; :func:`read_probe` turns its output into a
:class:`Probe` or the words of the failure (``no python3 ...``, ``python3 too old ...``). :func:`upload_script`
stores the zipapp (atomically: a temporary name, then ``mv``); :func:`stdio_start_script` starts an agent that
speaks on the session's stdio (``ssh_link = "channel"``: the session's command is the agent, ``pid N`` its
one-line preamble) and :func:`relay_script` reaches it from a later session (``relay``, then the relay to its
Unix socket); :func:`start_script` starts a TCP agent (``ssh_link = "tcp"``) detached from the SSH session
(``setsid``, its output to ``agent.log``) and waits for it, printing ``pid N`` and then ``exit N``;
:func:`signal_script` signals an agent's process group. Remote paths are ``$HOME``-relative:
the zipapp in ``$HOME/.cache/plush/agent-<hash>.pyz``, a host's directory in
``$HOME/.plush/<workspace>/hosts/<name>/`` (its ``work/``, ``agent.log``, ``ca.pem`` and the token file,
0600) -- one per logical host, even when several pool names reach the same machine and account.

Invariants: every value spliced into shell text is quoted (:func:`shlex.quote`); the token never appears in
a command line: it travels on the command's stdin and is written to a 0600 file by the shell's builtins.
No I/O here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from plush.agent.relay import NO_AGENT
from plush.agent.stdio import SOCKET_NAME

__all__ = [
    "CACHE_DIR",
    "MIN_PYTHON",
    "PYTHON_CANDIDATES",
    "SSH_MARK",
    "Probe",
    "ProbeFailed",
    "host_dir",
    "probe_script",
    "read_probe",
    "relay_script",
    "signal_script",
    "start_script",
    "stdio_start_script",
    "sweep_script",
    "upload_script",
]

#: the variable that marks every process an SSH launcher's agents start (with the launcher's token): a leftover
#: sweep by run id kills only what carries it (run ids are unique within one runs directory only)
SSH_MARK = "PLUSH_SSH_RUN"
#: the oldest Python the agent runs on
MIN_PYTHON = (3, 8)
#: the interpreters probed, in order (a host's ``python`` attribute replaces them)
PYTHON_CANDIDATES = ("python3", *(f"python3.{minor}" for minor in range(14, MIN_PYTHON[1] - 1, -1)))
#: where agent zipapps are cached on a host (relative to ``$HOME``)
CACHE_DIR = ".cache/plush"
_VERSION = re.compile(r"(\d+)\.(\d+)")


class ProbeFailed(Exception):
    """The host has no Python the agent can run on; the message says what was found."""


@dataclass(frozen=True)
class Probe:
    """What the probe found: the Python to use, its version, whether the zipapp is cached, ``$HOME``."""

    python: str
    version: tuple[int, int]
    cached: bool
    home: str


def _q(text: str) -> str:
    return shlex.quote(text)


def host_dir(workspace: str, name: str) -> str:
    """A host's directory, relative to ``$HOME`` (``name`` and ``workspace`` are plain file names)."""
    for part in (workspace, name):
        if not part or "/" in part or part in (".", ".."):
            raise ValueError(f"{part!r} is not a plain file name")
    return f".plush/{workspace}/hosts/{name}"


def probe_script(bundle_name: str, python: str | None = None) -> str:
    """One ``sh`` command: ``python NAME VERSION`` for each candidate found (up to the first >= 3.8), ``cached
    yes|no``, ``home PATH``."""
    candidates = (python,) if python else PYTHON_CANDIDATES
    check = "import sys; print('%d.%d' % sys.version_info[:2]); sys.exit(sys.version_info[:2] < (3, 8))"
    lines = ["for p in " + " ".join(_q(c) for c in candidates) + "; do"]
    lines.append('  if command -v "$p" >/dev/null 2>&1; then')
    lines.append(f'    v=$("$p" -c {_q(check)} 2>/dev/null); ok=$?; echo "python $p $v"')
    lines.append('    if [ "$ok" = 0 ]; then break; fi')
    lines.append("  fi")
    lines.append("done")
    lines.append(f'if [ -f "$HOME"/{CACHE_DIR}/{_q(bundle_name)} ]; then echo cached yes; else echo cached no; fi')
    lines.append('echo "home $HOME"')
    return "\n".join(lines)


def read_probe(output: str, python: str | None = None) -> Probe:
    """The probe's findings; raises :class:`ProbeFailed` with the words of the failure."""
    found: list[tuple[str, tuple[int, int] | None]] = []
    cached, home = False, ""
    for line in output.splitlines():
        word, _, rest = line.partition(" ")
        if word == "python":
            name, _, text = rest.partition(" ")
            match = _VERSION.match(text.strip())
            found.append((name, (int(match[1]), int(match[2])) if match else None))
        elif word == "cached":
            cached = rest.strip() == "yes"
        elif word == "home":
            home = rest.strip()
    for name, version in found:
        if version is not None and version >= MIN_PYTHON:
            return Probe(name, version, cached, home)
    need = "{}.{}".format(*MIN_PYTHON)
    if not found:
        looked = python or f"{PYTHON_CANDIDATES[0]}, {PYTHON_CANDIDATES[1]} ... {PYTHON_CANDIDATES[-1]}"
        raise ProbeFailed(f"no python3 (looked for {looked} on its PATH, the agent needs Python >= {need})")
    seen = ", ".join(f"{n} is {f'{v[0]}.{v[1]}' if v else 'not a working Python'}" for n, v in found)
    raise ProbeFailed(f"python3 too old ({seen}, the agent needs Python >= {need})")


def upload_script(bundle_name: str) -> str:
    """Store stdin as ``$HOME/.cache/plush/<bundle_name>`` (a temporary name first, then ``mv``)."""
    target = f'"$HOME"/{CACHE_DIR}/{_q(bundle_name)}'
    return (
        f'mkdir -p "$HOME"/{CACHE_DIR} && tmp="$HOME"/{CACHE_DIR}/.upload-$$ && cat > "$tmp" '
        f'&& chmod 0644 "$tmp" && mv -f "$tmp" {target}'
    )


def start_script(python: str, bundle_name: str, hdir: str, agent_args: list[str], mark: str = "") -> str:
    """Start the agent detached from the SSH session and wait for it: stdin carries the token (one line)
    then the CA certificate; prints ``pid N`` once started and ``exit N`` when it ends. ``agent_args``:
    the agent's arguments but ``--ca``, ``--token-file`` and ``--workdir`` (added here)."""
    d = f'"$HOME"/{hdir}'
    args = " ".join(_q(a) for a in agent_args)
    return "\n".join(
        [
            "umask 077",
            f"export {SSH_MARK}={_q(mark)}",
            f"mkdir -p {d}/work && cd {d} || exit 97",
            'IFS= read -r tok || exit 98; printf "%s\\n" "$tok" > .token; tok=',
            "cat > ca.pem",
            f'setsid {_q(python)} "$HOME"/{CACHE_DIR}/{_q(bundle_name)} {args} --ca "$PWD/ca.pem" '
            '--token-file "$PWD/.token" --workdir "$PWD/work" </dev/null >>agent.log 2>&1 &',
            'pid=$!; echo "pid $pid"',
            'wait "$pid"; echo "exit $?"',
        ]
    )


def signal_script(pid: int, signal_number: int) -> str:
    """Send ``signal_number`` to the process group of agent ``pid`` (it leads its own session)."""
    return f"kill -{int(signal_number)} -- -{int(pid)} 2>/dev/null || kill -{int(signal_number)} {int(pid)}"


def stdio_start_script(python: str, bundle_name: str, hdir: str, agent_args: list[str], mark: str = "") -> str:
    """Start the agent AS the session's command (``exec``: the session's exit status is the agent's), speaking
    on the session's stdin/stdout and listening on ``agent.sock`` in its directory for later sessions' relays.
    Stdin carries the token (one line, read by the shell) before the protocol; prints ``pid N`` (the
    preamble) and then belongs to the protocol. ``agent_args``: the agent's arguments but ``--stdio``,
    ``--token-file`` and ``--workdir`` (added here); ``mark``: the launcher's token, exported as
    :data:`SSH_MARK` to the agent and so to every process it starts."""
    d = f'"$HOME"/{hdir}'
    args = " ".join(_q(a) for a in agent_args)
    return "\n".join(
        [
            "umask 077",
            f"export {SSH_MARK}={_q(mark)}",
            f"mkdir -p {d}/work && cd {d} || exit 97",
            'IFS= read -r tok || exit 98; printf "%s\\n" "$tok" > .token; tok=',
            'echo "pid $$"',
            f'exec {_q(python)} "$HOME"/{CACHE_DIR}/{_q(bundle_name)} --stdio {SOCKET_NAME} {args} '
            '--token-file "$PWD/.token" --workdir "$PWD/work" 2>>agent.log',
        ]
    )


def relay_script(python: str, bundle_name: str, hdir: str) -> str:
    """A later session to a running ``--stdio`` agent: prints ``relay`` (the preamble), then relays the
    session's stdin/stdout to the agent's socket; exit :data:`~plush.agent.relay.NO_AGENT` when no agent is
    there."""
    return "\n".join(
        [
            f'cd "$HOME"/{hdir} 2>/dev/null || exit {NO_AGENT}',
            "echo relay",
            f'exec {_q(python)} "$HOME"/{CACHE_DIR}/{_q(bundle_name)} --relay {SOCKET_NAME}',
        ]
    )


def sweep_script(python: str, bundle_name: str, run_id: str, mark: str, hosts: list[str] | None) -> str:
    """SIGKILL what the processes of run ``run_id`` carrying ``mark`` (the launcher's token) left on the host,
    of ``hosts`` only when given (:mod:`plush.processes.sweep`); prints their pids on one line."""
    names = " ".join(_q(h) for h in hosts or [])
    zipapp = f'"$HOME"/{CACHE_DIR}/{_q(bundle_name)}'
    return f"{_q(python)} {zipapp} --sweep {_q(run_id)} {_q(f'{SSH_MARK}={mark}')} {names}".rstrip()
