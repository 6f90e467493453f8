"""What the SSH launcher runs on a host, and how it reads the answers: shell text in, decisions out.

Role: the pure half of :mod:`plush.launch.ssh`. :func:`stdio_start_script` (``ssh_link = "channel"``) is the ONE
command of a host's start: it takes the first Python on the PATH and ``exec``s the agent, unpacked with its
bytecode (``$HOME/.cache/plush/agent-<hash>/``), which speaks on the session's stdio after a one-line preamble
(``pid N PYTHON``), or it answers what the host lacks (``missing PYTHON``, ``nopython``; the agent itself says
``oldpython X.Y``): :func:`read_start`. Then :func:`probe_script` finds a Python (``python3``, then
``python3.14`` ... ``python3.8``, or the host's ``python`` attribute), says whether the agent of a given hash is
unpacked on the host and where ``$HOME`` is; :func:`read_probe` turns its output into a :class:`Probe` or the
words of the failure (``no python3 ...``, ``python3 too old ...``). :func:`upload_script` stores the zipapp
(atomically: a temporary name, then ``mv``) and unpacks it (:mod:`plush.agent.selfunpack`);
:func:`relay_script` reaches a ``--stdio`` agent from a later session (``relay``, then the relay to its Unix
socket); :func:`start_script` starts a TCP agent (``ssh_link = "tcp"``) detached from the SSH session
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
from collections.abc import Sequence
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
    "StartAnswer",
    "host_dir",
    "probe_script",
    "read_probe",
    "read_start",
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


def _pyz(bundle_name: str) -> str:
    """The zipapp on the host (shell text)."""
    return f'"$HOME"/{CACHE_DIR}/{_q(bundle_name)}'


def _unpacked(bundle_name: str) -> str:
    """The directory the zipapp unpacks to on the host, with bytecode (shell text; what agents, relays and
    sweeps run)."""
    return f'"$HOME"/{CACHE_DIR}/{_q(bundle_name.removesuffix(".pyz"))}'


#: the shell test that the unpacked agent is there: a directory (not a link) of this user, complete by
#: construction (renamed into place by :mod:`plush.agent.selfunpack`)
def _have_unpacked(bundle_name: str) -> str:
    d = _unpacked(bundle_name)
    return f"[ -d {d} ] && [ ! -L {d} ] && [ -O {d} ]"


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
    lines.append(f"if {_have_unpacked(bundle_name)}; then echo cached yes; else echo cached no; fi")
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


def upload_script(bundle_name: str, python: str) -> str:
    """Store stdin as ``$HOME/.cache/plush/<bundle_name>`` (a temporary name first, then ``mv``) and unpack it
    with bytecode beside itself (``agent-<hash>/``, :mod:`plush.agent.selfunpack`) with ``python``."""
    target = _pyz(bundle_name)
    return (
        f'mkdir -p "$HOME"/{CACHE_DIR} && tmp="$HOME"/{CACHE_DIR}/.upload-$$ && cat > "$tmp" '
        f'&& chmod 0644 "$tmp" && mv -f "$tmp" {target} && {_q(python)} {target} --unpack'
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
            f'setsid {_q(python)} {_unpacked(bundle_name)} {args} --ca "$PWD/ca.pem" '
            '--token-file "$PWD/.token" --workdir "$PWD/work" </dev/null >>agent.log 2>&1 &',
            'pid=$!; echo "pid $pid"',
            'wait "$pid"; echo "exit $?"',
        ]
    )


def signal_script(pid: int, signal_number: int) -> str:
    """Send ``signal_number`` to the process group of agent ``pid`` (it leads its own session)."""
    return f"kill -{int(signal_number)} -- -{int(pid)} 2>/dev/null || kill -{int(signal_number)} {int(pid)}"


def stdio_start_script(
    pythons: Sequence[str], bundle_name: str, hdir: str, agent_args: list[str], mark: str = ""
) -> str:
    """ONE command that starts the agent AS the session's command (``exec``: the session's exit status is the
    agent's), speaking on the session's stdin/stdout and listening on ``agent.sock`` in its directory for later
    sessions' relays -- or says in its one preamble line what is missing (:func:`read_start`). It takes the
    first of ``pythons`` on the PATH (``nopython`` when none is); ``missing PYTHON`` when the unpacked agent of
    ``bundle_name`` is not on the host (the launcher uploads it, then starts again); else stdin's first line
    (the token, read by the shell) goes to a 0600 file, and the agent prints ``pid N PYTHON`` (the preamble)
    after checking its Python's version (``oldpython X.Y`` when too old: the launcher then probes) and then
    belongs to the protocol. ``agent_args``: the agent's arguments but ``--stdio``, ``--preamble``,
    ``--token-file`` and ``--workdir`` (added here); ``mark``: the launcher's token, exported as :data:`SSH_MARK`
    to the agent and so to every process it starts."""
    d = f'"$HOME"/{hdir}'
    args = " ".join(_q(a) for a in agent_args)
    return "\n".join(
        [
            "umask 077",
            f"for p in {' '.join(_q(c) for c in pythons)}; do",
            '  if command -v "$p" >/dev/null 2>&1; then break; fi; p=',
            "done",
            'if [ -z "$p" ]; then echo nopython; exit 0; fi',
            f'if ! {{ {_have_unpacked(bundle_name)}; }}; then echo "missing $p"; exit 0; fi',
            f"export {SSH_MARK}={_q(mark)}",
            f"mkdir -p {d}/work && cd {d} || exit 97",
            'IFS= read -r tok || exit 98; printf "%s\\n" "$tok" > .token; tok=',
            f'exec "$p" {_unpacked(bundle_name)} --stdio {SOCKET_NAME} --preamble "$p" {args} '
            '--token-file "$PWD/.token" --workdir "$PWD/work" 2>>agent.log',
        ]
    )


@dataclass(frozen=True)
class StartAnswer:
    """What the preamble of :func:`stdio_start_script` says: ``word`` is ``pid`` (started: ``pid`` and
    ``python``), ``missing`` (no unpacked agent; ``python`` found), ``nopython``, or ``other`` (anything else,
    e.g. ``oldpython 3.6``: the launcher probes to say why in words)."""

    word: str
    pid: int = 0
    python: str = ""
    text: str = ""


def read_start(preamble: str) -> StartAnswer:
    """The meaning of the start command's preamble line."""
    word, _, rest = preamble.strip().partition(" ")
    if word == "pid":
        pid, _, python = rest.partition(" ")
        if pid.isdigit() and python:
            return StartAnswer("pid", int(pid), python)
    elif word == "missing" and rest:
        return StartAnswer("missing", python=rest)
    elif word == "nopython" and not rest:
        return StartAnswer("nopython")
    return StartAnswer("other", text=preamble)


def relay_script(python: str, bundle_name: str, hdir: str) -> str:
    """A later session to a running ``--stdio`` agent: prints ``relay`` (the preamble), then relays the
    session's stdin/stdout to the agent's socket; exit :data:`~plush.agent.relay.NO_AGENT` when no agent is
    there."""
    return "\n".join(
        [
            f'cd "$HOME"/{hdir} 2>/dev/null || exit {NO_AGENT}',
            "echo relay",
            f"exec {_q(python)} {_unpacked(bundle_name)} --relay {SOCKET_NAME}",
        ]
    )


def sweep_script(python: str, bundle_name: str, run_id: str, mark: str, hosts: list[str] | None) -> str:
    """SIGKILL what the processes of run ``run_id`` carrying ``mark`` (the launcher's token) left on the host,
    of ``hosts`` only when given (:mod:`plush.processes.sweep`); prints their pids on one line."""
    names = " ".join(_q(h) for h in hosts or [])
    return f"{_q(python)} {_unpacked(bundle_name)} --sweep {_q(run_id)} {_q(f'{SSH_MARK}={mark}')} {names}".rstrip()
