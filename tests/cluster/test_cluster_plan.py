"""The plan of an emulated cluster (pure: plush.cluster.plan): names, addresses, files, command lines."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import asyncssh
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plush.cluster.hostfiles import (
    HostDirs,
    client_config,
    directory_file,
    hosts_file,
    known_hosts,
    start_command,
)
from plush.cluster.hostinit import main as hostinit_main
from plush.cluster.hostinit import parse as parse_hostinit
from plush.cluster.plan import (
    MAX_HOSTS,
    ClusterError,
    ClusterPlan,
    bridge_commands,
    check_name,
    format_size,
    host_commands,
    link_command,
    memory_warning,
    overlaps,
    parse_rate,
    parse_size,
    parse_subnet,
)
from plush.launch.ssh import ssh_target
from plush.launch.sshconn import SSHConnections, SSHTarget
from plush.resources.directory import parse_directory

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)


@given(st.text(max_size=12))
def test_a_name_is_accepted_only_when_it_fits_interface_names_and_is_plain(text: str) -> None:
    try:
        check_name(text)
    except ClusterError as exc:
        assert exc.exit_code == 2 and "bad cluster name" in str(exc)
        assert not re.fullmatch(r"[a-z][a-z0-9]{0,5}", text)
    else:
        assert re.fullmatch(r"[a-z][a-z0-9]{0,5}", text)


@pytest.mark.parametrize("bad", ["", "C1", "1c", "c-1", "c 1", "c;rm", "abcdefg", "c1\n", "../x", "c1$(x)"])
def test_names_with_anything_but_lowercase_letters_and_digits_are_refused(bad: str) -> None:
    with pytest.raises(ClusterError, match="bad cluster name"):
        check_name(bad)


@settings(max_examples=60, deadline=None)
@given(NAMES, st.integers(1, MAX_HOSTS), st.sampled_from(["10.213.0.0/16", "172.20.0.0/20", "10.0.0.0/8"]))
def test_the_address_plan_gives_every_host_its_own_address_and_short_interface_names(
    name: str, count: int, subnet: str
) -> None:
    net = ipaddress.ip_network(subnet)
    if count > net.num_addresses - 3:
        with pytest.raises(ClusterError):
            ClusterPlan(name, count, subnet)
        return
    plan = ClusterPlan(name, count, subnet)
    hosts = plan.hosts
    addresses = [ipaddress.ip_address(h.address) for h in hosts]
    assert len(set(addresses)) == count
    assert all(a in net and a not in (net.network_address, net.broadcast_address) for a in addresses)
    assert (
        ipaddress.ip_address(plan.bridge_address) in net and ipaddress.ip_address(plan.bridge_address) not in addresses
    )
    assert [h.name for h in hosts] == [f"{name}-h{k}" for k in range(1, count + 1)]
    assert len({h.netns for h in hosts}) == count
    assert all(len(x) <= 15 for x in [plan.bridge, *(h.veth for h in hosts)])
    assert plan.host(hosts[-1].name) == hosts[-1] and plan.host(f"h{count}") == hosts[-1]


def test_the_default_plan_and_the_hosts_a_name_gives() -> None:
    plan = ClusterPlan("c1", 3)
    assert (plan.bridge, plan.bridge_address, plan.prefix) == ("pb-c1", "10.213.0.1", 16)
    assert [(h.name, h.netns, h.veth, h.address) for h in plan.hosts] == [
        ("c1-h1", "plush-c1-h1", "pv-c1-1", "10.213.0.2"),
        ("c1-h2", "plush-c1-h2", "pv-c1-2", "10.213.0.3"),
        ("c1-h3", "plush-c1-h3", "pv-c1-3", "10.213.0.4"),
    ]
    for bad in ["h0", "h4", "c2-h1", "c1-h", "c1-h01", "host1", "h1; x"]:
        with pytest.raises(ClusterError, match="no host") as exc:
            plan.host(bad)
        assert exc.value.exit_code == 2


def test_subnets_are_private_ipv4_with_room() -> None:
    assert str(parse_subnet("10.213.0.0/16")) == "10.213.0.0/16"
    for bad in ["8.8.0.0/16", "fd00::/64", "10.213.0.1/16", "10.0.0.0/30", "nope"]:
        with pytest.raises(ClusterError) as exc:
            parse_subnet(bad)
        assert exc.value.exit_code == 2
    with pytest.raises(ClusterError, match="cannot make 6 hosts"):
        ClusterPlan("c1", 6, "10.9.9.0/29")
    ClusterPlan("c1", 5, "10.9.9.0/29")


def test_a_range_in_use_is_found_among_addresses_and_routes() -> None:
    net = parse_subnet("10.213.0.0/16")
    in_use = ["127.0.0.1/8", "192.0.2.2/24", "10.213.7.1/24", "10.0.0.0/8", "0.0.0.0/0", "junk"]
    assert overlaps(net, in_use) == ["10.213.7.1/24", "10.0.0.0/8"]


def test_rates_in_tc_units() -> None:
    assert parse_rate("100mbit") == 100 * 10**6
    assert parse_rate("12.5mbps") == 100 * 10**6
    assert parse_rate("1gbit") == 10**9
    for bad in ["100", "fast", "1e9bit", "-1mbit", "100 mbit", "1kbit", "100mbit; reboot"]:
        with pytest.raises(ClusterError, match="bad bandwidth"):
            parse_rate(bad)


@settings(deadline=None)
@given(NAMES, st.integers(1, 50), st.sampled_from([None, "100mbit", "2.5gbit"]))
def test_every_command_is_an_argv_whose_user_values_are_whole_elements(
    name: str, count: int, bandwidth: str | None
) -> None:
    plan = ClusterPlan(name, count, "10.213.0.0/16", bandwidth)
    commands = bridge_commands(plan) + [c for h in plan.hosts for c in host_commands(plan, h)]
    commands += [link_command(plan.hosts[0], up=False)]
    assert all(isinstance(c, list) and all(isinstance(x, str) and x for x in c) for c in commands)
    assert all(c[0] in ("ip", "tc") for c in commands)
    words = {x for c in commands for x in c}
    assert {plan.bridge, *(h.netns for h in plan.hosts), *(h.veth for h in plan.hosts)} <= words
    tbf = [c for c in commands if "tbf" in c]
    assert len(tbf) == (2 * count if bandwidth else 0)


@given(st.lists(st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=30), max_size=4))
def test_shared_paths_reach_hostinit_as_given_whatever_they_hold(shares: list[str]) -> None:
    plan = ClusterPlan("c1", 2, fs="machine")
    host = plan.hosts[1]
    dirs = HostDirs("/state/hosts/c1-h2")
    argv = start_command(
        plan, host, dirs, python="/py", hostinit="/hi.py", outside="mnt:[1]", home="/root", shares=shares, sshd="/sshd"
    )
    assert argv[:5] == ["ip", "netns", "exec", "plush-c1-h2", "unshare"]
    args = parse_hostinit(argv[argv.index("/hi.py") + 1 :])
    assert (args.outside, args.hostname) == ("mnt:[1]", "c1-h2")
    assert args.keeps == [dirs.sshd, *shares]
    assert ("/state/hosts/c1-h2/home", "/root") in args.binds and (dirs.tmp, "/tmp") in args.binds
    assert (args.tmpfs, args.mkdirs) == ([], [])  # the machine's disk: directories up made, nothing mounted
    assert args.program == ["/sshd", "-D", "-e", "-f", f"{dirs.sshd}/sshd_config"]


def test_a_host_s_home_and_tmp_are_made_in_a_tmpfs_of_its_own_mounted_before_any_bind() -> None:
    plan = ClusterPlan("c1", 2, fs_size="64m")
    host = plan.hosts[1]
    dirs = HostDirs("/state/hosts/c1-h2", tmpfs=True)
    argv = start_command(
        plan, host, dirs, python="/py", hostinit="/hi.py", outside="mnt:[1]", home="/root", shares=[], sshd="/sshd"
    )
    args = parse_hostinit(argv[argv.index("/hi.py") + 1 :])
    assert args.tmpfs == [("plush-c1-h2", "/state/hosts/c1-h2/fs", 64 * 2**20)]
    fs = "/state/hosts/c1-h2/fs"
    assert args.mkdirs == [(f"{fs}/home", 0o700), (f"{fs}/tmp", 0o1777), (f"{fs}/var-tmp", 0o1777)]
    assert args.binds[:3] == [(f"{fs}/home", "/root"), (f"{fs}/tmp", "/tmp"), (f"{fs}/var-tmp", "/var/tmp")]
    # hostinit acts in the order of its docstring: mount, make, open, bind (the tmpfs's path is never hidden)
    assert argv.index("--tmpfs") < argv.index("--mkdir") < argv.index("--bind")


@pytest.mark.parametrize(
    ("text", "size", "shown"),
    [
        ("512m", 512 * 2**20, "512m"),
        ("2g", 2 * 2**30, "2g"),
        ("2G", 2 * 2**30, "2g"),
        (" 1073741824 ", 2**30, "1g"),
        ("1536m", 1536 * 2**20, "1536m"),
        ("1024k", 2**20, "1m"),
        ("1t", 2**40, "1t"),
        ("1048577", 2**20 + 1, "1048577"),
    ],
)
def test_tmpfs_sizes_in_bytes_or_binary_units_read_back_as_written(text: str, size: int, shown: str) -> None:
    assert parse_size(text) == size
    assert format_size(size) == shown and parse_size(shown) == size


@pytest.mark.parametrize("bad", ["", "lots", "1.5g", "-1g", "2gb", "1 g", "512k", "0", "1048575", "10x", "9" * 16])
def test_a_bad_tmpfs_size_says_what_is_expected(bad: str) -> None:
    with pytest.raises(ClusterError, match=r"bad file system size .*at least 1m, like 512m") as err:
        parse_size(bad)
    assert err.value.exit_code == 2


def test_the_file_system_choice_is_recorded_and_an_older_state_means_the_machine_s_disk() -> None:
    plan = ClusterPlan("lab", 4)
    assert (plan.fs, plan.fs_size, plan.fs_bytes, plan.fs_words) == ("tmpfs", "1g", 2**30, "a tmpfs of 1g each")
    assert ClusterPlan.from_json(plan.to_json()) == plan
    sized = ClusterPlan("lab", 4, fs_size="1073741824")
    assert sized.to_json()["fs_size"] == "1g" and ClusterPlan.from_json(sized.to_json()) == sized
    disk = ClusterPlan("lab", 4, fs="machine")
    assert (disk.fs_size, disk.fs_bytes) == (None, 0) and ClusterPlan.from_json(disk.to_json()) == disk
    older = {"name": "lab", "count": 4, "subnet": "10.213.0.0/16", "bandwidth": None}
    assert ClusterPlan.from_json(older) == disk
    with pytest.raises(ClusterError, match="no meaning with --fs machine"):
        ClusterPlan("lab", 4, fs="machine", fs_size="2g")
    with pytest.raises(ClusterError, match="bad file system 'ext4'"):
        ClusterPlan("lab", 4, fs="ext4")


def test_hosts_whose_tmpfs_together_exceed_the_memory_are_warned_about_once() -> None:
    mem = 24 * 2**30
    assert memory_warning(ClusterPlan("c1", 24), mem) is None  # 24 x 1g: as much as the memory, not more
    assert memory_warning(ClusterPlan("c1", 100, fs="machine"), mem) is None
    assert memory_warning(ClusterPlan("c1", 100), 0) is None  # the memory is unknown
    said = memory_warning(ClusterPlan("c1", 25), mem)
    assert said is not None and "\n" not in said
    assert said.startswith("25 hosts with a tmpfs of 1g each may hold 25g, more than this machine's memory (24g)")
    assert "only for what its host writes" in said and "--fs-size" in said and "--fs machine" in said


def test_the_directory_file_is_a_pool_of_ssh_hosts() -> None:
    plan = ClusterPlan("lab", 3)
    hosts = parse_directory(directory_file(plan, '/state/lab/ssh "config"'), file="cluster.xml")
    assert [(h.name, h.provider, h.user, h.group) for h in hosts] == [
        (f"lab-h{k}", "ssh", "root", "lab") for k in (1, 2, 3)
    ]
    assert all(h.get("ssh_port") == 22 for h in hosts)


def test_each_host_of_the_directory_file_is_reached_with_the_cluster_s_client_config(tmp_path: Path) -> None:
    """No PLUSH_SSH_CONFIG: the host's own ``ssh_config`` attribute names the config its target is read with
    (and a host without one keeps the setting's)."""
    plan = ClusterPlan("lab", 2)
    config = tmp_path / "ssh_config"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(tmp_path / "id")
    config.write_text(client_config(plan, str(tmp_path / "id"), str(tmp_path / "known")))
    hosts = parse_directory(directory_file(plan, str(config)), file="cluster.xml")
    assert {h.get("ssh_config") for h in hosts} == {str(config)}
    conns = SSHConnections(config=str(tmp_path / "none"))
    target = ssh_target(hosts[1])
    assert target.config == str(config) and conns.hostname(target) == "10.213.0.3"
    assert conns.options(target).config.get("IdentityFile") == [str(tmp_path / "id")]
    assert conns.hostname(SSHTarget("lab-h2")) == "lab-h2"  # the setting's config does not know it


def test_each_host_has_a_client_config_of_its_own_which_its_directory_entry_names(tmp_path: Path) -> None:
    """A host's own config holds its block alone (a connection reads a few lines, not the whole cluster's);
    read through the directory entry it reaches the host at its address with the cluster's key; the name it
    resolves to is kept from the connection's options (the file is not read again for it)."""
    plan = ClusterPlan("lab", 3)
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(tmp_path / "id")
    own = {}
    for host in plan.hosts:
        own[host.name] = str(tmp_path / f"{host.name}.config")
        Path(own[host.name]).write_text(client_config(plan, str(tmp_path / "id"), "/k", only=host))
    whole = client_config(plan, str(tmp_path / "id"), "/k")
    h2 = Path(own["lab-h2"]).read_text()
    assert h2.count("Host ") == 1 and "Host lab-h2 10.213.0.3\n" in h2 and "lab-h1" not in h2
    assert whole.count("Host ") == 3 and h2.splitlines()[1:] == whole.splitlines()[8:15]
    hosts = parse_directory(directory_file(plan, own), file="cluster.xml")
    assert [h.get("ssh_config") for h in hosts] == [own["lab-h1"], own["lab-h2"], own["lab-h3"]]
    conns = SSHConnections(config=str(tmp_path / "none"))
    target = ssh_target(hosts[1])
    options = conns.options(target)
    assert options.config.get("IdentityFile") == [str(tmp_path / "id")] and options.config.get("User") == "root"
    Path(own["lab-h2"]).unlink()  # the name was noted when the options were read
    assert conns.hostname(target) == "10.213.0.3"


def test_the_client_config_reaches_each_host_at_its_address_with_the_cluster_key(tmp_path: Path) -> None:
    plan = ClusterPlan("lab", 3)
    config = tmp_path / "ssh_config"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(tmp_path / "id")
    config.write_text(client_config(plan, str(tmp_path / "id"), str(tmp_path / "known")))
    conns = SSHConnections(config=str(config))
    assert conns.hostname(SSHTarget("lab-h2")) == "10.213.0.3"
    options = conns.options(SSHTarget("lab-h3"))
    assert options.config.get("User") == "root" and options.config.get("Port") == 22
    assert options.config.get("IdentityFile") == [str(tmp_path / "id")]


def test_known_hosts_trust_each_host_s_own_key_by_name_and_address() -> None:
    plan = ClusterPlan("lab", 2)
    keys = {}
    for h in plan.hosts:
        key = asyncssh.generate_private_key("ssh-ed25519")
        keys[h.name] = key.export_public_key().decode()
    known = asyncssh.import_known_hosts(known_hosts(plan, keys))
    for h in plan.hosts:
        trusted = known.match(h.name, h.address, None)[0]
        assert {k.export_public_key().decode().split()[1] for k in trusted} == {keys[h.name].split()[1]}


def test_each_host_resolves_every_host_s_name_without_dns() -> None:
    plan = ClusterPlan("lab", 3)
    text = hosts_file(plan, plan.hosts[1])
    assert "10.213.0.3 lab-h2" in text.splitlines()[2]  # itself first, after loopback
    assert all(f"{h.address} {h.name}" in text for h in plan.hosts)
    assert "10.213.0.1 plush-controller" in text


def test_hostinit_names_a_bind_source_it_cannot_open_in_one_line(tmp_path: Path) -> None:
    """A missing source: one line naming it, no traceback in the host's sshd.log (it is the first argument, so
    nothing could be bound before it even in this machine's mount namespace)."""
    missing = tmp_path / "gone"
    argv = ["--outside", "mnt:[0]", "--bind", str(missing), str(tmp_path), "--keep", str(tmp_path)]
    with pytest.raises(SystemExit) as caught:
        hostinit_main([*argv, "--", "/bin/true"])
    assert str(caught.value) == f"hostinit: No such file or directory: {missing}"
