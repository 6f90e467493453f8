"""bench/netns_copy.py (issue 10): a 10 MB package copied and untarred on N hosts of ``plush cluster up``, Plush
beside the SSH peers, interleaved in one run.

Run as root (it makes clusters): ``.venv/bin/python bench/netns_copy.py --sizes 8 32 100 --rounds 3``.

For each size N: one cluster of N hosts (``plush cluster up N``, state in a temporary ``XDG_STATE_HOME``), each
host with its own home, so its own content cache (``~/.cache/plush``) and its own copy, on a file system of its
own (``--fs tmpfs``, the cluster's default; ``--fs machine``: directories on this machine's disk, shared by
all). Each round writes a new payload (100 files of 100 KiB of random bytes, tar.gz, as
``../shared/peers/peers.sh``): no cache of any tool can hold it from an earlier round. Then, in a rotating
order per round:

- ``plush_warm``: inside one controller (this process) whose agents were connected once, before the rounds
  (that connect is reported apart, as ``plush_warm_connect``): ``Controller.copy(payload, "payload.tgz")``
  then ``Controller.exec(["tar", "xzf", "payload.tgz"])`` on every host; the agents' links run over their SSH
  connections (``ssh_link = channel``, the default); the hosts, on one bridge, fetch the file from each other
  (relayed copies, ``relay_fanout`` 4: the controller sends it once);
- ``plush_warm_star``: the same with ``relay_fanout = 0``: the controller sends the file to every host (the
  star of before relayed copies);
- ``plush_warm_tcp``: the same in a second controller whose agents link back over TCP + TLS (``ssh_link =
  tcp``): the file's bytes leave the controller through OpenSSL instead of asyncssh's SSH channel;
- ``plush_install``: in a third controller whose agents were connected once (``ssh_link = channel``,
  ``relay_fanout`` 4): ``Controller.run`` of a spec whose software is the payload (``type="tar"``: each host
  fetches it on a cache miss -- from each other, relayed installs -- and unpacks it into its working
  directory; a process checks the last file), on the connected agents;
- ``plush_cold``: ``plush run`` of a spec whose software is the payload (``type="tar"``: fetched and unpacked
  by each host) on the cluster's directory file: agents bootstrapped over SSH, installed, stopped;
- ``pssh`` / ``pssh_x25519``: ``parallel-scp`` then ``parallel-ssh 'tar xzf payload.tgz'`` (the harness's
  command lines, ``-F`` the cluster's client config; ``_x25519``: ``KexAlgorithms curve25519-sha256``);
- ``clush``: ``clush --copy`` then ``clush 'tar xzf payload.tgz'``.

Between measurements every host's copies and untarred files are removed (``rm`` over ssh, not timed); every
measurement is checked (every host has the untarred payload's last file) and a failed one is reported, not
counted. Results: ``bench/results/netns_copy.json``; the table is printed (bench/README.md, issue 10).
Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sshbench as sb  # noqa: E402

PLUSH = sb.PLUSH
TOOLS = (
    "plush_warm",
    "plush_warm_star",
    "plush_warm_tcp",
    "plush_install",
    "plush_cold",
    "pssh",
    "pssh_x25519",
    "clush",
)
LAST = "payload/f100.bin"

SPEC = """<?xml version="1.0" encoding="UTF-8"?>
<plush>
  <project name="netcopy">
    <software name="pkg" type="tar"><package name="payload.tgz" type="local"><path>{payload}</path></package></software>
    <component name="comp">
      <rspec><num_hosts min="1" max="1000"/></rspec>
      <software name="pkg"/>
    </component>
    <application_block name="netcopy">
      <execution>
        <component_block name="cb">
          <component name="comp"/>
          <process_block name="check">
            <process name="check"><path>test</path><cmdline><arg>-f</arg><arg>{last}</arg></cmdline></process>
          </process_block>
        </component_block>
      </execution>
    </application_block>
  </project>
</plush>
"""


def payload(where: Path, tag: str) -> Path:
    """A new 10 MB tar.gz of 100 random 100 KiB files (``payload/f001.bin`` ...)."""
    root = where / f"src-{tag}"
    (root / "payload").mkdir(parents=True)
    for i in range(1, 101):
        (root / "payload" / f"f{i:03d}.bin").write_bytes(os.urandom(102400))
    out = where / f"round-{tag}" / "payload.tgz"
    out.parent.mkdir()
    subprocess.run(["tar", "-C", str(root), "-czf", str(out), "payload"], check=True)
    shutil.rmtree(root)
    return out


class Cluster:
    def __init__(self, n: int, work: Path, fs: str = "tmpfs") -> None:
        self.n = n
        self.work = work
        self.env = {**os.environ, "XDG_STATE_HOME": str(work / "state")}
        self.name = f"b{n}"
        fs_args = ["--fs", fs]
        up = subprocess.run(
            [str(PLUSH), "cluster", "up", str(n), "--name", self.name, "--subnet", f"10.219.{n % 250}.0/24", *fs_args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if up.returncode != 0:
            raise SystemExit(up.stderr)
        self.directory = Path(up.stdout.strip())
        self.config = self.directory.parent / "ssh_config"
        self.x25519 = work / "ssh_config_x25519"
        self.x25519.write_text(self.config.read_text() + "Host *\n  KexAlgorithms curve25519-sha256\n  BatchMode yes\n")
        self.hostfile = work / "hosts"
        self.hostfile.write_text("".join(f"{self.name}-h{k}\n" for k in range(1, n + 1)))
        self.nodes = f"{self.name}-h[1-{n}]"

    def down(self) -> None:
        subprocess.run([str(PLUSH), "cluster", "down", self.name], env=self.env, capture_output=True, check=False)

    def pssh(self, cmd: str, config: Path | None = None) -> str:
        return f"parallel-ssh -h {self.hostfile} -p {self.n} -t 0 -x '-F {config or self.config}' -i '{cmd}'"

    def clean(self) -> None:
        """Remove every copy and untarred file of every tool from every host (and Plush's content caches)."""
        cmd = "rm -rf ~/payload ~/payload.tgz ~/.cache/plush/content/[0-9a-f]* ~/.plush/*/hosts/*/exec/payload*"
        cmd += " ~/.plush/*/hosts/*/work/payload*"
        subprocess.run(self.pssh(cmd), shell=True, capture_output=True, check=False, env=self.peer_env())

    def complete(self) -> bool:
        """Whether every host has the untarred payload (in its home, or in a Plush working directory)."""
        check = f"ls ~/{LAST} ~/.plush/*/hosts/*/exec/{LAST} ~/.plush/*/hosts/*/work/{LAST} 2>/dev/null | head -1"
        out = subprocess.run(
            self.pssh(check), shell=True, capture_output=True, text=True, check=False, env=self.peer_env()
        ).stdout
        return out.count(LAST) == self.n

    def peer_env(self) -> dict[str, str]:
        return {**self.env, "PATH": f"{sb.PB_VENV / 'bin'}:{os.environ.get('PATH', '')}"}


def peer_line(cluster: Cluster, tool: str, pkg: Path) -> str:
    n = cluster.n
    cfg = cluster.x25519 if tool.endswith("_x25519") else cluster.config
    if tool.startswith("pssh"):
        copy = f"parallel-scp -h {cluster.hostfile} -p {n} -t 0 -x '-F {cfg}' {pkg} payload.tgz"
        return f"{copy} && {cluster.pssh('tar xzf payload.tgz', cfg)}"
    opts = f"-w '{cluster.nodes}' -f {n} -o '-F {cfg}'"
    return f"clush {opts} --copy {pkg} --dest . && clush {opts} 'tar xzf payload.tgz'"


async def run_peer(cluster: Cluster, tool: str, pkg: Path) -> dict[str, Any]:
    t = time.perf_counter()
    proc = await asyncio.create_subprocess_shell(
        peer_line(cluster, tool, pkg),
        env=cluster.peer_env(),
        cwd=cluster.work,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    return {"wall": time.perf_counter() - t, "rc": proc.returncode, "err": err.decode(errors="replace")[-500:]}


async def run_cold(cluster: Cluster, pkg: Path, tag: str) -> dict[str, Any]:
    spec = cluster.work / f"cold-{tag}.xml"
    spec.write_text(SPEC.format(payload=pkg, last=LAST))
    argv = [str(PLUSH), "run", str(spec), "-d", str(cluster.directory), "--hosts", str(cluster.n), "--plain", "-q"]
    argv += ["--runs-dir", str(cluster.work / "runs")]
    t = time.perf_counter()
    env = {**cluster.env, "PLUSH_SSH_CONFIG": ""}
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await proc.communicate()
    return {"wall": time.perf_counter() - t, "rc": proc.returncode, "err": err.decode(errors="replace")[-500:]}


async def run_warm(controller: Any, pkg: Path) -> dict[str, Any]:
    t = time.perf_counter()
    copied = await controller.copy(str(pkg), "payload.tgz")
    untar = await controller.exec(["tar", "xzf", "payload.tgz"])
    wall = time.perf_counter() - t
    ok = copied.ok and untar.status == 0
    why = "" if ok else f"copy {copied.status} {copied.reasons} untar {untar.status}"
    return {"wall": wall, "rc": 0 if ok else 1, "err": why, "copy": copied.duration}


async def run_install(controller: Any, cluster: Cluster, pkg: Path, tag: str) -> dict[str, Any]:
    """``Controller.run`` of the spec whose tar software is ``pkg``, on the connected agents."""
    spec = cluster.work / f"install-{tag}.xml"
    spec.write_text(SPEC.format(payload=pkg, last=LAST))
    project = controller.load(spec)
    t = time.perf_counter()
    result = await controller.run(project, hosts={"comp": cluster.n})
    wall = time.perf_counter() - t
    return {"wall": wall, "rc": 0 if result.ok else 1, "err": "" if result.ok else str(result)[-500:]}


async def one_size(n: int, rounds: int, tools: list[str], work: Path, fs: str) -> list[dict[str, Any]]:
    from plush import Controller
    from plush.config import Settings
    from plush.resources.directory import parse_directory

    cluster = Cluster(n, work, fs)
    records: list[dict[str, Any]] = []
    controllers: dict[str, Any] = {}
    try:
        print(f"N={n}: cluster {cluster.name} up; load {sb.load_note()}", flush=True)
        hosts = parse_directory(cluster.directory.read_text(), file=str(cluster.directory))
        warm = (
            ("plush_warm", "channel", 4),
            ("plush_warm_star", "channel", 0),
            ("plush_warm_tcp", "tcp", 4),
            ("plush_install", "channel", 4),
        )
        for tool, link, fanout in warm:
            if tool not in tools:
                continue
            settings = Settings(  # lenient pings: while a peer runs 100 ssh sessions (load 40+) agents missed 3 s
                runs_dir=str(work / "runs"), ssh_config="", ssh_link=link, relay_fanout=fanout, ping_timeout=10.0
            )
            controller = Controller(settings)
            t = time.perf_counter()
            await controller.connect(hosts)
            controllers[tool] = controller
            records.append({"tool": f"{tool}_connect", "n": n, "round": 0, "wall": time.perf_counter() - t, "ok": True})
            print(f"  {tool}_connect {records[-1]['wall']:.2f} s", flush=True)
        for r in range(rounds):
            pkg = payload(work, f"{n}-{r}")
            order = tools[r % len(tools) :] + tools[: r % len(tools)]
            for tool in order:
                cluster.clean()
                load = os.getloadavg()[0]
                rejoined = 0
                if tool in controllers and len(controllers[tool].mesh.joined()) < n:  # lost while a peer ran
                    rejoined = n - len(controllers[tool].mesh.joined())
                    await controllers[tool].connect(hosts)  # not timed
                if tool == "plush_install":
                    rec = await run_install(controllers[tool], cluster, pkg, f"{n}-{r}")
                elif tool in controllers:
                    rec = await run_warm(controllers[tool], pkg)
                elif tool == "plush_cold":
                    rec = await run_cold(cluster, pkg, f"{n}-{r}")
                else:
                    rec = await run_peer(cluster, tool, pkg)
                rec["ok"] = rec["rc"] == 0 and cluster.complete()
                rec.update({"tool": tool, "n": n, "round": r, "load": load, "rejoined": rejoined})
                records.append(rec)
                said = "ok" if rec["ok"] else "FAILED " + rec["err"]
                print(f"  r{r} {tool:<12} {rec['wall']:6.2f} s {said}", flush=True)
            pkg.unlink()
    finally:
        for controller in controllers.values():
            await controller.quit()
        cluster.clean()
        cluster.down()
    return records


def summarise(records: list[dict[str, Any]], sizes: list[int], tools: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        row: dict[str, Any] = {}
        connects = ["plush_warm_connect", "plush_warm_star_connect", "plush_warm_tcp_connect", "plush_install_connect"]
        for tool in [*connects, *tools]:
            walls = [r["wall"] for r in records if r["n"] == n and r["tool"] == tool and r["ok"]]
            if walls:
                row[tool] = sb.summary(walls)
        peers = [row[t]["median"] for t in ("pssh", "pssh_x25519", "clush") if t in row]
        if peers:
            best = min(peers)
            row["best_peer"] = best
            for t in ("plush_warm", "plush_warm_star", "plush_warm_tcp", "plush_install", "plush_cold"):
                if t in row:
                    row[f"{t}_speedup"] = best / row[t]["median"]
        out[str(n)] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--out", default=str(HERE / "results" / "netns_copy.json"))
    ap.add_argument(
        "--fs", default="tmpfs", choices=("tmpfs", "machine"), help="the hosts' file systems (plush cluster up --fs)"
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/netns_copy.py makes clusters: run it as root")
    records: list[dict[str, Any]] = []
    start_load = sb.load_note()
    with tempfile.TemporaryDirectory(prefix="netns-copy-") as tmp:
        for n in args.sizes:
            work = Path(tmp) / f"n{n}"
            work.mkdir()
            records += asyncio.run(one_size(n, args.rounds, args.tools, work, args.fs))
            summary = summarise(records, [m for m in args.sizes if m <= n], args.tools)
            doc = {  # written after each size: a run stopped at a larger size keeps the smaller ones
                "bench": "netns_copy",
                "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                "load_start": start_load,
                "load_end": sb.load_note(),
                "cpus": os.cpu_count(),
                "rounds": args.rounds,
                "fs": args.fs,
                "summary": summary,
                "records": [{k: v for k, v in r.items() if k != "err" or not r.get("ok")} for r in records],
            }
            Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
