"""Multi-host runs. Units: the inventory (file:line errors, a missing file), the text a cluster
writes, the single-device warning. Integration (real engine, real networking on this machine):
two hosts with their own addresses on a user-defined Docker network, real sshd, real MPICH 4.2.3
across them, the cpu-selftest workload; and a Docker engine reached through ssh:// on loopback.
Traffic goes only to 127.0.0.1 and to the containers these tests create."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, cli

from containerctl import paths
from containerctl.errors import NotFound, ProfileError
from containerctl.cluster.inventory import (known_hosts, load_inventory, mpich_hostfile, openmpi_hostfile,
                                single_device_warnings, ssh_client_config)

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def _write(tmp_path: Path, text: str, name: str = "hosts.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


# ---------------------------------------------------------------------------------------------
# units

def test_examples_load():
    for f in sorted((ROOT / "examples").glob("hosts-*.yaml")):
        inv = load_inventory(f)
        assert len(inv.hosts) >= 2 and inv.cluster.ssh_port == 8010
        assert inv.cluster.mpi == "mpich"


def test_missing_hosts_file_is_not_found_exit_2(tmp_path):
    with pytest.raises(NotFound):
        load_inventory(tmp_path / "nope.yaml")
    r = cli("cluster", "ps", "--hosts", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[0] == f"error: hosts file {tmp_path / 'nope.yaml'} does not exist"
    assert lines[1].startswith("  fix: write one") and "--hosts FILE" in lines[1]


def test_unknown_key_names_file_line_and_suggests(tmp_path):
    f = _write(tmp_path, "cluster:\n  name: c1\nhosts:\n  - name: a\n    profile: cpu-selftest\n"
                         "    slot: 2\n")
    with pytest.raises(ProfileError) as ei:
        load_inventory(f)
    assert ei.value.message.startswith(f"{f}:6: unknown key `hosts.0.slot`")
    assert "slots" in ei.value.hint
    r = cli("cluster", "up", "--hosts", str(f))
    assert r.returncode == 2 and f"{f}:6" in r.stderr and "fix:" in r.stderr


@pytest.mark.parametrize("text, where, words", [
    ("cluster:\n  name: c1\n  ssh_port: 70000\nhosts:\n  - {name: a, profile: cpu-selftest}\n",
     3, "less than or equal"),
    ("cluster:\n  name: c1\nhosts:\n  - {name: a, profile: cpu-selftest}\n"
     "  - {name: a, profile: cpu-selftest}\n", 1, "appears twice"),
    ("cluster:\n  name: c1\nhosts:\n  - name: a\n    profile: cpu-selftest\n"
     "    docker: http://x\n", 6, "ssh://"),
    ("cluster:\n  name: c1\n  mpi: openmpi\nhosts:\n  - {name: a, profile: cpu-selftest}\n",
     3, "MPICH"),
    ("cluster:\n  name: Bad Name\nhosts:\n  - {name: a, profile: cpu-selftest}\n", 2,
     "lowercase"),
    ("cluster:\n  name: c1\nhosts: []\n", 3, "at least 1"),
    ("cluster:\n  name: c1\nhosts:\n  - name: a\n", 4, "missing required key `hosts.0.profile`"),
])
def test_bad_inventories(tmp_path, text, where, words):
    f = _write(tmp_path, text)
    with pytest.raises(ProfileError) as ei:
        load_inventory(f)
    assert ei.value.message.startswith(f"{f}:{where}:"), ei.value.message
    assert words in ei.value.message


def test_unknown_profile_names_the_host(tmp_path):
    f = _write(tmp_path, "cluster: {name: c1}\nhosts:\n  - {name: a, profile: no-such-prof}\n")
    r = cli("cluster", "export", "-f", "slurm", "--hosts", str(f))
    assert r.returncode == 2
    assert "host a" in r.stderr and "no-such-prof" in r.stderr


def test_hostfiles_ssh_config_known_hosts():
    assert mpich_hostfile([("10.0.0.1", 2), ("10.0.0.2", 2)]) == "10.0.0.1:2\n10.0.0.2:2\n"
    assert openmpi_hostfile([("h1", 2)]) == "h1 slots=2\n"
    conf = ssh_client_config(["10.0.0.1", "10.0.0.2"], 8010, "/root/.ssh/k", "/root/.ssh/kh")
    assert "Host 10.0.0.1 10.0.0.2\n" in conf and "    Port 8010\n" in conf
    assert "StrictHostKeyChecking yes" in conf and "IdentityFile /root/.ssh/k" in conf
    assert "Host *" not in conf   # the container's other ssh use is left alone
    kh = known_hosts([("10.0.0.1", 8010, "ssh-ed25519 AAAAC3 root@x"), ("h", 22, "ssh-rsa B")])
    assert kh == "[10.0.0.1]:8010 ssh-ed25519 AAAAC3\nh ssh-rsa B\n"


def test_single_device_warning(tmp_path):
    from containerctl.cluster import Cluster
    assert single_device_warnings({"a": 2, "b": 2}) == []
    f = _write(tmp_path, "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                         "slots: 1}\n  - {name: b, profile: cpu-selftest, slots: 2}\n")
    w = Cluster(load_inventory(f)).warnings()
    assert len(w) == 1 and w[0].startswith("host a has a single device")
    assert "2+2" in w[0] and "host communication" in w[0]


def test_cluster_profiles_get_the_cluster_settings(tmp_path):
    from containerctl.cluster import Cluster
    f = _write(tmp_path, "cluster: {name: c1, network: net1, workspace: /ws, mpi_home: /opt/m}\n"
                         "hosts:\n  - {name: a, profile: cpu-selftest, set: [flagcx.nranks=3]}\n")
    h = Cluster(load_inventory(f)).hosts[0]
    assert h.container == "cctl_c1_a"
    assert h.profile.container.network_mode == "net1"
    assert h.profile.container.workspace == "/ws"
    assert h.profile.flagcx.mpi_home == "/opt/m"
    assert h.slots == 3          # no `slots:` → the profile's nranks


def test_extract_wheel_data(tmp_path):
    import zipfile
    from containerctl.cluster import extract_wheel_data
    whl = tmp_path / "mpich-9.9-py3-none-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(whl, "w") as z:
        zi = zipfile.ZipInfo("mpich-9.9.data/data/bin/mpirun")
        zi.external_attr = 0o755 << 16
        z.writestr(zi, "#!/bin/sh\n")
        z.writestr("mpich-9.9.data/data/include/mpi.h", "/* */\n")
        z.writestr("mpich-9.9.data/data/../../evil", "x")
        z.writestr("mpich-9.9.dist-info/METADATA", "x")
    extract_wheel_data(whl, tmp_path / "out")
    assert (tmp_path / "out/bin/mpirun").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out/include/mpi.h").is_file()
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out/METADATA").exists()


# ---------------------------------------------------------------------------------------------
# integration: two hosts, their own addresses, real sshd and MPICH

def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=120,
                          check=check)


def _cleanup_cluster(name: str, network: str | None = None) -> None:
    ids = _docker("ps", "-aq", "--filter", f"label=io.containerctl.cluster={name}",
                  check=False).stdout.split()
    if ids:
        _docker("rm", "-f", *ids, check=False)
    vols = _docker("volume", "ls", "-q", "--filter", f"name=cctl_{name}_", check=False)
    for v in vols.stdout.split():
        _docker("volume", "rm", "-f", v, check=False)
    if network:
        _docker("network", "rm", network, check=False)


@pytest.fixture
def two_hosts(engine, selftest_image, tmp_path):
    name = f"t{uuid.uuid4().hex[:6]}"
    network = f"cctl-{name}"
    _docker("network", "create", "--label", "io.containerctl.test=1", network)
    inv = {"cluster": {"name": name, "network": network, "ssh_port": 8010},
           "hosts": [{"name": "a", "profile": "cpu-selftest", "slots": 2,
                      "env": {"CUDA_VISIBLE_DEVICES": "0,1"}},
                     {"name": "b", "profile": "cpu-selftest", "slots": 2,
                      "env": {"MACA_VISIBLE_DEVICES": "0,1"}}]}
    f = tmp_path / "hosts.yaml"
    f.write_text(yaml.safe_dump(inv, sort_keys=False))
    try:
        yield name, f
    finally:
        _cleanup_cluster(name, network)


@pytest.mark.docker
@pytest.mark.slow
def test_two_host_allreduce_through_mpich(two_hosts):
    name, hosts = two_hosts
    t0 = time.monotonic()
    r = cli("cluster", "up", "--hosts", str(hosts))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ssh mesh verified on port 8010" in r.stdout
    # one progress line per host per phase, all hosts at once
    for h in ("a", "b"):
        assert re.search(rf"^{h}: up [\d.]+s \(cctl_{name}_{h} created, [\d.]+\)$", r.stderr, re.M), r.stderr
        assert re.search(rf"^{h}: mesh ok \(1 peer \+ self\) [\d.]+s$", r.stderr, re.M), r.stderr

    # the key: 0700 dir, 0600 files, in the containers 0600, never in labels
    kd = paths.home() / "clusters" / name
    assert stat.S_IMODE(kd.stat().st_mode) == 0o700
    for f in ("id_ed25519", "id_ed25519.pub"):
        assert stat.S_IMODE((kd / f).stat().st_mode) == 0o600
    secret = (kd / "id_ed25519").read_text().strip().splitlines()[1]
    for h in ("a", "b"):
        c = f"cctl_{name}_{h}"
        st = _docker("exec", c, "stat", "-c", "%a", f"/root/.ssh/containerctl_{name}",
                     "/root/.ssh/authorized_keys").stdout.split()
        assert st == ["600", "600"]
        info = _docker("inspect", c).stdout
        assert secret not in info
        assert json.loads(info)[0]["Config"]["Labels"]["io.containerctl.cluster"] == name
    assert secret not in r.stdout + r.stderr

    # ps: both running, each with its own address on the network
    r = cli("cluster", "ps", "--hosts", str(hosts), "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["status"] for x in rows] == ["running", "running"]
    addrs = [x["address"] for x in rows]
    assert all(addrs) and addrs[0] != addrs[1]

    # the whole job: MPICH everywhere, deps + build per host, the two-host allreduce
    r = cli("cluster", "run", "--hosts", str(hosts), "-b", "1K", "-e", "64K", timeout=1200)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "MPICH 4.2.3 at /opt/mpich-4.2.3 on a, b" in out
    sizes = [int(m) for m in re.findall(r"Comm size: (\d+) bytes; Elapsed time: [\d.]+ sec; "
                                        r"Algo bandwidth: [\d.]+ GB/s; Bus bandwidth: [\d.]+ GB/s",
                                        out)]
    assert sizes == [1024 * 2 ** i for i in range(7)]
    m = re.search(r"allreduce: 4 ranks across 2 hosts, peak bus bandwidth ([\d.]+) GB/s", out)
    assert m and float(m.group(1)) > 0
    assert "hetero: passed" in out
    for a in addrs:
        assert f"{a}:2" in out                       # the hostfile
    assert "-genvnone" in out and "-env CUDA_VISIBLE_DEVICES 0,1" in out
    assert "-env MACA_VISIBLE_DEVICES 0,1" in out

    # the record: in the store like a single-host run
    from containerctl.results import store
    runs = [x for x in store.list_runs() if "hetero" in (x.get("stages") or [])]
    assert len(runs) == 1
    # one executor: a record per host's perf build, and the launch's record
    recs = store.load_run(runs[0]["run_id"])["records"]
    assert {"hetero-build-a", "hetero-build-b"} <= set(recs)
    assert all(recs[f"hetero-build-{h}"]["status"] == "passed" for h in "ab")
    rec = store.load_run(runs[0]["run_id"])["records"]["hetero"]
    assert rec["status"] == "passed"
    part = rec["metrics"]["collectives"]["allreduce"]
    assert part["nranks"] == 4
    rows = part["sweeps"][0]["rows"]
    assert [x["size"] for x in rows] == sizes and all(x["busbw"] > 0 for x in rows)
    checks = {c["name"]: c for c in rec["checks"]}
    assert checks["allreduce sum buffers"]["ok"] is True
    assert "4 ranks" in checks["allreduce sum buffers"]["detail"]
    assert sorted(h["address"] for h in rec["metrics"]["hosts"]) == sorted(addrs)
    assert {h["mpich"] for h in rec["metrics"]["hosts"]} == {"4.2.3"}
    assert "-genvnone" in rec["repro"]["mpirun"][0]
    r = cli("report", runs[0]["run_id"])
    assert r.returncode == 0 and "hetero" in r.stdout and "passed" in r.stdout

    # the ranks really spread over both containers: Hydra with the same hostfile and the mesh
    c0 = f"cctl_{name}_a"
    hf = _docker("exec", c0, "bash", "-c", "ls /var/tmp/containerctl/hetero/*/hostfile").stdout
    r2 = _docker("exec", c0, "/opt/mpich-4.2.3/bin/mpirun", "-f", hf.split()[0], "-n", "4",
                 "hostname")
    assert len(set(r2.stdout.split())) == 2, r2.stdout + r2.stderr

    # nothing of the run is left in either container
    for h in ("a", "b"):
        ps = _docker("exec", f"cctl_{name}_{h}", "ps", "-eo", "comm=").stdout.split()
        assert not [p for p in ps if p.startswith(("perf_", "test_", "hydra_pmi", "mpiexec"))]

    # down: nothing left on the engine for this cluster, keys gone
    r = cli("cluster", "down", "--hosts", str(hosts), "--volumes")
    assert r.returncode == 0, r.stderr
    left = _docker("ps", "-aq", "--filter", f"label=io.containerctl.cluster={name}").stdout
    assert left.strip() == ""
    assert not kd.exists()
    r = cli("cluster", "ps", "--hosts", str(hosts), "--json")
    assert [x["status"] for x in json.loads(r.stdout)] == ["absent", "absent"]
    print(f"two-host cluster test: {time.monotonic() - t0:.0f}s")


@pytest.mark.docker
@pytest.mark.slow
def test_mesh_failure_names_the_pair(two_hosts):
    """A host whose sshd is gone: verification fails naming the pair, before any launch."""
    name, hosts = two_hosts
    r = cli("cluster", "up", "--hosts", str(hosts))
    assert r.returncode == 0, r.stderr
    _docker("exec", f"cctl_{name}_b", "bash", "-c",
            "kill $(cat /run/containerctl-sshd-8010.pid)")
    r = cli("cluster", "exec-stage", "hetero", "--hosts", str(hosts))
    assert r.returncode == 2
    err = r.stderr
    assert "stage hetero needs build" in err or "passwordless ssh a → b" in err
    from containerctl.cluster import Cluster
    from containerctl.errors import HostError
    cl = Cluster(load_inventory(hosts))
    with pytest.raises(HostError) as ei:
        cl.verify()
    assert ei.value.message.startswith("passwordless ssh a → b (")
    assert ":8010) failed" in ei.value.message
    r = cli("cluster", "down", "--hosts", str(hosts), "--volumes")
    assert r.returncode == 0


# ---------------------------------------------------------------------------------------------
# integration: a Docker engine through ssh:// on loopback

def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def loopback_sshd(tmp_path, monkeypatch):
    """A throwaway sshd on 127.0.0.1:<free port> with its own host key and an authorized
    throwaway user key; an `ssh` on PATH that uses them (the Docker SDK runs `ssh`)."""
    sshd = "/usr/sbin/sshd"
    if not os.path.exists(sshd) or not shutil.which("ssh-keygen"):
        if os.environ.get("CI"):
            pytest.fail("openssh-server is missing: scripts/setup-host.sh installs it")
        pytest.skip("openssh-server is not installed (CONTAINERCTL_SETUP_TEST_DEPS=1 "
                    "scripts/setup-host.sh installs it)")
    d = tmp_path / "sshd"
    d.mkdir()
    for k in ("hostkey", "userkey"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / k)],
                       check=True)
    (d / "authorized_keys").write_text((d / "userkey.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "StrictModes no\nUsePAM no\n")
    (d / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {d}/userkey\n  IdentitiesOnly yes\n"
        f"  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n"
        "  LogLevel ERROR\n")
    bindir = d / "bin"
    bindir.mkdir()
    (bindir / "ssh").write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {d}/ssh_config "$@"\n')
    os.chmod(bindir / "ssh", 0o755)
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "w"))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("sshd exited: " + (d / "sshd.log").read_text())
                time.sleep(0.1)
        monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.docker
@pytest.mark.slow
def test_docker_engine_over_ssh_endpoint(engine, selftest_image, loopback_sshd, tmp_path):
    from containerctl.engine import Engine
    url = f"ssh://root@127.0.0.1:{loopback_sshd}"
    e = Engine(url)
    assert e.ping() is True
    assert e.version()["Version"] == engine.version()["Version"]

    name = f"s{uuid.uuid4().hex[:6]}"
    f = tmp_path / "hosts.yaml"
    f.write_text(yaml.safe_dump({"cluster": {"name": name},
                                 "hosts": [{"name": "far", "docker": url,
                                            "profile": "cpu-selftest", "slots": 2}]}))
    try:
        r = cli("cluster", "ps", "--hosts", str(f), "--json")
        assert r.returncode == 0, r.stderr
        row = json.loads(r.stdout)[0]
        assert row["docker"] == url and row["status"] == "absent"
        # up through the ssh endpoint: container, sshd, mesh (to itself) verified
        r = cli("cluster", "up", "--hosts", str(f))
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"far: cctl_{name}_far created" in r.stdout
        r = cli("cluster", "ps", "--hosts", str(f), "--json")
        row = json.loads(r.stdout)[0]
        assert row["status"] == "running" and row["address"]
        assert engine.find(f"cctl_{name}_far").running       # the same engine, seen locally
        r = cli("cluster", "down", "--hosts", str(f), "--volumes")
        assert r.returncode == 0, r.stderr
        assert engine.find(f"cctl_{name}_far") is None
    finally:
        _cleanup_cluster(name)


# ---------------------------------------------------------------------------------------------
# names, isolation, bounded waits (the launch lines: tests/test_launch.py)

def test_container_names_cannot_collide(tmp_path):
    from containerctl.cluster.inventory import container_name
    assert container_name("x", "a-b") != container_name("x-a", "b")
    pairs = [("x", "a-b"), ("x-a", "b"), ("x", "a_b"), ("x.a", "b"), ("x", "a.b")]
    assert len({container_name(c, h) for c, h in pairs}) == len(pairs)
    f = _write(tmp_path, "cluster:\n  name: x_a\nhosts:\n  - {name: b, profile: cpu-selftest}\n")
    with pytest.raises(ProfileError) as ei:
        load_inventory(f)
    assert ei.value.message.startswith(f"{f}:2:") and "'_' is reserved" in ei.value.message


def _inv(tmp_path: Path, cluster: str, host: str) -> Path:
    f = tmp_path / f"{cluster}.yaml"
    f.write_text(yaml.safe_dump({"cluster": {"name": cluster},
                                 "hosts": [{"name": host, "profile": "cpu-selftest",
                                            "slots": 2}]}))
    return f


@pytest.mark.docker
@pytest.mark.slow
def test_clusters_that_shared_a_name_stay_apart(engine, selftest_image, tmp_path):
    """Cluster x with host a-b and cluster x-a with host b were both cctl-x-a-b: the second up
    recreated the first's container. Now each keeps its own, ps and down see only their own
    (by label), and a container of another owner under the name is refused, not taken."""
    x = f"x{uuid.uuid4().hex[:6]}"
    f1, f2 = _inv(tmp_path, x, "a-b"), _inv(tmp_path, f"{x}-a", "b")
    f3 = _inv(tmp_path, f"{x}-c", "z")
    try:
        r = cli("cluster", "up", "--hosts", str(f1))
        assert r.returncode == 0, r.stdout + r.stderr
        c1 = engine.find(f"cctl_{x}_a-b")
        r = cli("cluster", "up", "--hosts", str(f2))
        assert r.returncode == 0, r.stdout + r.stderr
        c2 = engine.find(f"cctl_{x}-a_b")
        again = engine.find(c1.name)
        assert c2 is not None and c2.id != c1.id and again.id == c1.id and again.running
        rows = json.loads(cli("cluster", "ps", "--hosts", str(f1), "--json").stdout)
        assert [(r["host"], r["container"], r["status"]) for r in rows] == \
            [("a-b", c1.name, "running")]
        r = cli("cluster", "down", "--hosts", str(f2), "--volumes")
        assert r.returncode == 0 and c1.name not in r.stdout, r.stdout + r.stderr
        assert engine.find(c2.name) is None and engine.find(c1.name).running
        # a single-host container under a cluster container's name is not taken over
        r = cli("up", "--profile", "cpu-selftest", "--name", f"cctl_{x}-c_z")
        assert r.returncode == 0, r.stderr
        before = engine.find(f"cctl_{x}-c_z").id
        r = cli("cluster", "up", "--hosts", str(f3))
        assert r.returncode == 2
        assert f"host z: a container named cctl_{x}-c_z exists" in r.stderr
        assert "single-host container" in r.stderr and "fix:" in r.stderr
        assert engine.find(f"cctl_{x}-c_z").id == before
    finally:
        for c in (x, f"{x}-a"):
            _cleanup_cluster(c)
        engine.remove(f"cctl_{x}-c_z", force=True, volumes=True)
        engine.remove_volume(f"cctl_{x}-c_z-workspace")


def test_silent_ssh_engine_fails_within_the_bound(tmp_path):
    """An ssh:// engine whose host accepts TCP and then says nothing (no sshd banner): `cluster
    up` gives up within the stated bound (10 s) and names the host. Loopback only."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)                # never accepted: the handshake completes, no banner comes
    port = srv.getsockname()[1]
    f = tmp_path / "hosts.yaml"
    f.write_text(yaml.safe_dump({"cluster": {"name": "silent"},
                                 "hosts": [{"name": "mute", "profile": "cpu-selftest",
                                            "docker": f"ssh://root@127.0.0.1:{port}"}]}))
    try:
        t0 = time.monotonic()
        r = cli("cluster", "up", "--hosts", str(f), timeout=60)
        took = time.monotonic() - t0
    finally:
        srv.close()
    assert r.returncode == 2, r.stdout + r.stderr
    assert "host mute" in r.stderr and f"127.0.0.1:{port}" in r.stderr and "fix:" in r.stderr
    assert took < 20, f"took {took:.1f}s"      # 10 s bound + CLI start on a loaded machine


@pytest.mark.docker
@pytest.mark.slow
def test_cluster_down_volumes_leaves_a_volume_it_did_not_make(engine, selftest_image, tmp_path):
    """`cluster down --volumes` once removed every volume named like a host's workspace volume,
    whoever made it. A volume of that name that containerctl did not make (no labels) is kept
    and named; the cluster's own container still goes."""
    from containerctl.runspec import workspace_volume_name
    x = f"v{uuid.uuid4().hex[:6]}"
    f = _inv(tmp_path, x, "a")
    name = f"cctl_{x}_a"
    vol = workspace_volume_name(name)
    try:
        _docker("volume", "create", vol)          # someone else's, no labels
        r = cli("cluster", "up", "--hosts", str(f))
        # up refuses to adopt it, or (an older layout) mounts it: either way down keeps it
        if r.returncode == 0:
            r = cli("cluster", "down", "--hosts", str(f), "--volumes")
            assert r.returncode == 0, r.stdout + r.stderr
            assert engine.find(name) is None
        else:
            assert r.returncode == 2 and vol in r.stderr, r.stdout + r.stderr
            r = cli("cluster", "down", "--hosts", str(f), "--volumes")
            assert r.returncode == 0, r.stdout + r.stderr
        assert engine.volume_exists(vol), r.stdout
        assert f"kept a: volume {vol}" in r.stdout, r.stdout
    finally:
        _cleanup_cluster(x)
        engine.remove_volume(vol)
