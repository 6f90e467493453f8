"""Shared parts of the SSH benchmarks: a private sshd for N loopback hosts, the peers' command lines, timing.

Used by ``bench/ssh_cold.py`` (issue 9) and ``bench/exec_vs_ssh.py`` (issue 11); not a benchmark itself.

- :func:`start_sshd`: one private OpenSSH sshd under a temporary directory (host key, client key,
  ``authorized_keys``, config) on a free port of every address, so that 127.0.0.1 ... 127.0.0.N are N "hosts"
  (sshd listens on at most 16 addresses, hence ``0.0.0.0``; only root from 127.0.0.0/8 with the generated key
  may log in). ``MaxStartups 2000`` / ``MaxSessions 200`` as in ``../shared/peers/lib/sshd_up.sh``, so hundreds
  of handshakes at once are not dropped. Sessions get ``HOME`` inside the temporary directory (``SetEnv``):
  what Plush writes on "the hosts" (its zipapp cache, the hosts' directories) stays there; ``SHLVL=1`` as in
  the harness (no ``~/.bashrc`` for commands).
- The client side: an OpenSSH config for the peers (as the harness writes it: no host key check, BatchMode),
  its ``KexAlgorithms curve25519-sha256`` twin, and Plush's own config (``Host 127.0.0.*``, a known_hosts file
  of the directory: the default ``accept-new`` policy applies). :meth:`Sshd.env` is the environment every tool
  runs in: ``HOME``, ``XDG_RUNTIME_DIR``, ``ANSIBLE_CONFIG`` and ``PLUSH_SSH_CONFIG`` inside the directory, no
  ssh-agent of the caller's.
- :func:`peer_command`: the command lines of ``../shared/peers/peers.sh`` (``cmd_for``), with the command to run
  as a parameter. :func:`timed`: one invocation, its wall time and the CPU of everything it reaped.

The peers come from the harness's virtualenv (``PB_VENV``, default ``~/.cache/peers-venv``: ``bash
../shared/peers/peers.sh`` installs it) and Debian's ``parallel-ssh``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PLUSH = REPO / ".venv" / "bin" / "plush"
#: the peer harness: $PB_PEERS, else ../shared/peers beside the checkout (/work/main) or its worktree (/work/wt/X)
PEERS = next(
    (
        p
        for p in (
            Path(os.environ.get("PB_PEERS", "/nonexistent")),
            REPO.parent / "shared" / "peers",
            REPO.parent.parent / "shared" / "peers",
        )
        if (p / "lib" / "pssh_warm.py").is_file()
    ),
    None,
)
PB_VENV = Path(os.environ.get("PB_VENV", str(Path.home() / ".cache" / "peers-venv")))

#: the spec of the runs: one process block that runs ``true`` once on every host of one component
TRUE_SPEC = """<?xml version="1.0" encoding="UTF-8"?>
<plush>
  <project name="bench">
    <component name="comp">
      <rspec><num_hosts min="1" max="1000"/></rspec>
    </component>
    <application_block name="bench">
      <execution>
        <component_block name="cb">
          <component name="comp"/>
          <process_block name="noop">
            <process name="noop"><path>true</path></process>
          </process_block>
        </component_block>
      </execution>
    </application_block>
  </project>
</plush>
"""


def hosts(n: int) -> list[str]:
    """The N loopback "hosts" (N <= 254)."""
    if not 1 <= n <= 254:
        raise SystemExit(f"N = {n}: 1 to 254 loopback hosts")
    return [f"127.0.0.{i}" for i in range(1, n + 1)]


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(stats: dict[str, float] | None, scale: float = 1.0, unit: str = "s", digits: int = 2) -> str:
    if not stats:
        return "-"
    m, lo, hi = (stats[k] * scale for k in ("median", "min", "max"))
    return f"{m:.{digits}f} {unit} ({lo:.{digits}f}-{hi:.{digits}f})"


@dataclass
class Sshd:
    """A running private sshd and the client files that reach it."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    key: Path
    home: Path
    ssh_config: Path = field(init=False)
    ssh_config_x25519: Path = field(init=False)
    plush_ssh_config: Path = field(init=False)
    ansible_cfg: Path = field(init=False)

    def __post_init__(self) -> None:
        common = [
            "Host *",
            "    User root",
            f"    Port {self.port}",
            f"    IdentityFile {self.key}",
            "    IdentitiesOnly yes",
            "    StrictHostKeyChecking no",
            "    UserKnownHostsFile /dev/null",
            "    LogLevel ERROR",
            "    BatchMode yes",
            "    ConnectTimeout 30",
        ]
        self.ssh_config = self.root / "ssh_config"
        self.ssh_config.write_text("\n".join(common) + "\n")
        self.ssh_config_x25519 = self.root / "ssh_config_x25519"
        self.ssh_config_x25519.write_text("\n".join([*common, "    KexAlgorithms curve25519-sha256"]) + "\n")
        self.plush_ssh_config = self.root / "plush_ssh_config"
        self.plush_ssh_config.write_text(
            "\n".join(
                [
                    "Host 127.0.0.*",
                    f"  Port {self.port}",
                    "  User root",
                    f"  IdentityFile {self.key}",
                    "  IdentitiesOnly yes",
                    f"  UserKnownHostsFile {self.root / 'known_hosts'}",
                ]
            )
            + "\n"
        )
        ansible = self.root / "ansible"
        (ansible / "tmp").mkdir(parents=True, exist_ok=True)
        (ansible / "cp").mkdir(exist_ok=True)
        self.ansible_cfg = ansible / "ansible.cfg"
        self.ansible_cfg.write_text(
            "[defaults]\nhost_key_checking = False\n"
            f"local_tmp = {ansible / 'tmp'}\nremote_tmp = {self.home / '.ansible-remote'}\n"
            "deprecation_warnings = False\ninterpreter_python = /usr/bin/python3\n"
            f"[ssh_connection]\ncontrol_path_dir = {ansible / 'cp'}\n"
            "ssh_common_args = -o UserKnownHostsFile=/dev/null\n"
        )

    def env(self) -> dict[str, str]:
        """The environment of every tool: HOME and the runtime directory inside the sshd's directory."""
        client_home = self.root / "client-home"
        runtime = self.root / "run"
        for d in (client_home, runtime):
            d.mkdir(mode=0o700, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_AUTH_SOCK", "PLUSH_", "ANSIBLE_"))}
        env.update(
            HOME=str(client_home),
            XDG_RUNTIME_DIR=str(runtime),
            PLUSH_SSH_CONFIG=str(self.plush_ssh_config),
            PLUSH_SSH_CONNECT_TIMEOUT="60",
            ANSIBLE_CONFIG=str(self.ansible_cfg),
            PATH=f"{PB_VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        )
        return env

    def hostfile(self, n: int) -> Path:
        path = self.root / f"hosts{n}"
        path.write_text("\n".join(hosts(n)) + "\n")
        return path

    def inventory(self, n: int) -> Path:
        path = self.root / "ansible" / f"inv{n}"
        path.write_text(
            "[bench]\n" + "\n".join(hosts(n)) + "\n[all:vars]\nansible_user=root\n"
            f"ansible_port={self.port}\nansible_ssh_private_key_file={self.key}\n"
        )
        return path

    def pool(self, n: int) -> Path:
        """A directory file of N ``type="ssh"`` hosts 127.0.0.1 ... 127.0.0.N."""
        path = self.root / f"pool{n}.xml"
        nodes = "".join(f'    <node hostname="{h}"/>\n' for h in hosts(n))
        path.write_text(f'<plush>\n  <resource_manager type="ssh">\n{nodes}  </resource_manager>\n</plush>\n')
        return path

    def close_ansible_masters(self) -> None:
        """Ask each ControlPersist master ansible left to exit (its next run is cold again)."""
        for s in (self.root / "ansible" / "cp").iterdir():
            if s.is_socket():
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={s}", "-O", "exit", "dummy"], capture_output=True, check=False
                )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.close_ansible_masters()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_sshd(root: Path) -> Sshd:
    if not Path("/usr/sbin/sshd").is_file():
        raise SystemExit("no /usr/sbin/sshd: apt-get install openssh-server (or bash ../shared/peers/peers.sh)")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    home.mkdir(exist_ok=True)
    for name in ("host_ed25519", "client_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "client_ed25519.pub").read_text())
    port = _free_port()
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 0.0.0.0",
                f"HostKey {root / 'host_ed25519'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                "PidFile none",
                "StrictModes no",
                "UsePAM no",
                "UseDNS no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "AllowUsers root@127.0.0.0/8",
                "AllowTcpForwarding yes",
                "PrintMotd no",
                "X11Forwarding no",
                "MaxStartups 2000",
                "MaxSessions 200",
                "MaxAuthTries 10",
                "LoginGraceTime 60",
                "LogLevel ERROR",
                f"SetEnv HOME={home} SHLVL=1",
                "Subsystem sftp /usr/lib/openssh/sftp-server",
            ]
        )
        + "\n"
    )
    log = open(root / "sshd.log", "ab")  # noqa: SIM115 (the sshd's stderr for its lifetime)
    process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.2", port), timeout=1):
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"sshd did not start: {(root / 'sshd.log').read_text()}")
        time.sleep(0.05)  # polling the port with a deadline
    return Sshd(root, port, process, root / "client_ed25519", home)


@contextlib.contextmanager
def running_sshd(root: Path) -> Iterator[Sshd]:
    sshd = start_sshd(root)
    try:
        yield sshd
    finally:
        sshd.stop()


def peer_command(sshd: Sshd, tool: str, n: int, cmd: str = "true") -> str:
    """The shell command line of a peer on N hosts, as ``../shared/peers/peers.sh`` (``cmd_for``) writes it."""
    cfg = sshd.ssh_config_x25519 if tool.endswith("_x25519") else sshd.ssh_config
    nodes = f"127.0.0.[1-{n}]"
    ans = f"ansible all -i {sshd.inventory(n)} -f {n}"
    match tool.removesuffix("_x25519"):
        case "clush":
            return f"clush -w '{nodes}' -f {n} -o '-F {cfg}' {cmd}"
        case "pssh":
            return f"parallel-ssh -h {sshd.hostfile(n)} -p {n} -t 0 -x '-F {cfg}' -i {cmd}"
        case "ansible":  # defaults: ControlPersist masters (closed before each run: cold), no pipelining
            return f"{ans} -m ping"
        case "ansible_pipe":
            return f"ANSIBLE_PIPELINING=True {ans} -m ping"
    raise ValueError(tool)


def peer_ok(tool: str, n: int, rc: int, out: str) -> bool:
    """Did every host answer? (clush: its exit status; pssh and ansible: one SUCCESS line per host)."""
    if rc != 0:
        return False
    if tool.startswith("pssh"):
        return out.count("[SUCCESS]") == n
    if tool.startswith("ansible"):
        return out.count("SUCCESS") == n
    return True


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


HZ = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by the process ``root`` and everything it started: its reaped children (its
    cutime/cstime) and every live descendant (as ``../shared/peers/lib/cpu_of.py``). For the sshd listener:
    every session, shell, command and agent started through it: the hosts' side."""
    procs: dict[int, tuple[int, list[int]]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            procs[int(d)] = (int(rest[1]), [int(x) for x in rest[11:15]])
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total = sum(procs[root][1][2:]) if root in procs else 0
    stack = list(children.get(root, []))
    while stack:
        p = stack.pop()
        total += sum(procs[p][1])
        stack.extend(children.get(p, []))
    return total / HZ


def timed(
    argv: str | list[str], env: dict[str, str], cwd: Path, timeout: float = 600, sshd: Sshd | None = None
) -> dict[str, Any]:
    """Run one command (a string: through ``sh -c``); its wall time, the CPU it and its children used, rc, output;
    with ``sshd``: the CPU the hosts' side used meanwhile (``host_cpu``: the sshd and all it started)."""
    host = tree_cpu(sshd.process.pid) if sshd is not None else 0.0
    cpu, t = children_cpu(), time.perf_counter()
    try:
        proc = subprocess.run(
            argv,
            check=False,
            shell=isinstance(argv, str),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = -1, str(exc.stdout or ""), f"timed out after {timeout} s"
    rec = {"wall": time.perf_counter() - t, "cpu": children_cpu() - cpu, "rc": rc, "out": out, "err": err[-2000:]}
    if sshd is not None:
        rec["host_cpu"] = tree_cpu(sshd.process.pid) - host
    return rec


def have(tool: str) -> str | None:
    """Why a peer cannot run here (None: it can)."""
    exe = {"clush": "clush", "pssh": "parallel-ssh", "ansible": "ansible"}[tool.split("_", maxsplit=1)[0]]
    if shutil.which(exe, path=f"{PB_VENV / 'bin'}:{os.environ.get('PATH', '')}") is None:
        return f"{exe} not found (PB_VENV={PB_VENV}; `bash ../shared/peers/peers.sh` installs the peers)"
    return None
