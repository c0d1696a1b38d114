"""Inputs bounded and parsed (issue 18, items 6 and 7): engine URLs through one strict parser,
numbers bounded where they enter, YAML depth bounded, a full or odd home explained, memory
bounded whatever a stage prints. Real parts: the real CLI, the real ssh client, a real tmpfs."""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import cli
from containerctl.engineurl import EngineURL, parse
from containerctl.errors import UsageError


# --- engine URLs --------------------------------------------------------------------------------

def _accepts(url: str) -> EngineURL | None:
    try:
        return parse(url)
    except UsageError as exc:
        assert exc.message and exc.hint and "\n" not in exc.message
        return None


def _check_accepted(u: EngineURL) -> None:
    assert parse(str(u)) == u, "what is accepted prints as a URL that parses back to itself"
    assert not (u.user or "").startswith("-")
    assert not u.host.startswith("-")
    assert u.port is None or 1 <= u.port <= 65535
    if u.scheme == "ssh":
        argv = u.ssh_argv("-o", "BatchMode=yes")
        assert argv[-2:] == ["--", u.host]
        assert argv.count("--") == 1 and (not u.user or argv[argv.index("-l") + 1] == u.user)


PIECES = st.sampled_from(["", "-", "-o", "-oProxyCommand=touch${IFS}/tmp/x", "root", "u.s-er",
                          "@", ":", "::", "::1", "[", "]", "[::1]", "[fe80::1", "10.0.0.1",
                          "host", "h-1.example", "22", "0", "99999", "abc", "65535", "/", "//",
                          "/var/run/docker.sock", " ", "\t", "\x1b", "\r", "%2d", "?", "#",
                          "é", "\\", "-l", "--", "a b"])


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(scheme=st.sampled_from(["ssh://", "tcp://", "unix://", "npipe://", "SSH://", "http://",
                               "ssh:/", ""]),
       parts=st.lists(PIECES, max_size=6))
def test_engine_url_fuzz_structured(scheme, parts):
    u = _accepts(scheme + "".join(parts))
    if u is not None:
        _check_accepted(u)


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=60))
def test_engine_url_fuzz_any_text(text):
    for url in (text, "ssh://" + text, "tcp://" + text):
        u = _accepts(url)
        if u is not None:
            _check_accepted(u)


@pytest.mark.parametrize("url,part", [
    ("ssh://-oProxyCommand=touch${IFS}/tmp/x@127.0.0.1:22", "the user"),
    ("ssh://root@-oProxyCommand=x", "the host"),
    ("tcp://h:99999", "the port"), ("tcp://h:abc", "the port"), ("ssh://[::1", "the host"),
    ("ssh://h:0", "the port"), ("ssh://h: 22", "whitespace"), ("ssh://h\x1b]0;x\x07", "control"),
    ("unix://var/run/docker.sock", "socket path"), ("http://h", "the scheme"),
    ("tcp://u@h:2375", "the user"), ("ssh://::1", "brackets"),
])
def test_engine_url_refused_names_the_part(url, part):
    with pytest.raises(UsageError) as ei:
        parse(url)
    assert part in ei.value.message and ei.value.exit_code == 2
    assert "\x1b" not in ei.value.message and "\x07" not in ei.value.message


@pytest.mark.parametrize("url,argv", [
    ("ssh://root@10.1.15.233", ["ssh", "-l", "root", "--", "10.1.15.233"]),
    ("ssh://u@[::1]:2222", ["ssh", "-l", "u", "-p", "2222", "--", "::1"]),
    ("ssh://h", ["ssh", "--", "h"]),
])
def test_engine_url_ssh_argv(url, argv):
    assert parse(url).ssh_argv() == argv
    assert str(parse(url)) == url


def test_sdk_ssh_socket_parses_ipv6_and_puts_host_after_dashdash():
    """docker-py's own SSHSocket splits 'u@[::1]:22' on ':' and crashes; ours parses it."""
    from containerctl.engine import _bound_ssh_client
    _bound_ssh_client()
    import docker.transport.sshconn as sshconn
    s = sshconn.SSHSocket("u@[::1]:2222")
    try:
        assert (s.user, s.host, s.port) == ("u", "::1", "2222")
    finally:
        s.close()
    with pytest.raises(UsageError):
        sshconn.SSHSocket("-oProxyCommand=x@h")


def test_docker_host_env_is_parsed_strictly():
    r = cli("ps", env={"DOCKER_HOST": "tcp://127.0.0.1:99999"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "the port '99999'" in r.stderr and "fix:" in r.stderr


def test_mesh_and_preflight_put_the_host_after_dashdash():
    from containerctl.cluster import mesh
    assert 'ConnectTimeout=5 -- "$t" true' in mesh.VERIFY_SCRIPT


@pytest.mark.parametrize("docker", [
    "ssh://-oProxyCommand=touch${IFS}{marker}@127.0.0.1:22",
    "ssh://root@-oProxyCommand=touch${IFS}{marker}",
    "ssh://-oProxyCommand=touch$IFS{marker}@127.0.0.1",
])
def test_proxycommand_in_inventory_runs_nothing(tmp_path, docker):
    """The issue's case end to end: `cluster ps` on an inventory whose engine URL carries an ssh
    option. Before, the ssh preflight ran the ProxyCommand on this machine."""
    marker = tmp_path / f"pwned-{uuid.uuid4().hex[:6]}"
    inv = tmp_path / "h.yaml"
    inv.write_text("cluster: {name: px}\nhosts:\n  - name: a\n    profile: cpu-selftest\n"
                   f"    docker: '{docker.replace('{marker}', str(marker))}'\n")
    r = cli("cluster", "ps", "--hosts", str(inv), timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "h.yaml" in r.stderr and "fix:" in r.stderr
    assert "starts with '-'" in r.stderr or "not a host name" in r.stderr or "path" in r.stderr
    assert not list(tmp_path.glob("pwned-*")), "the ProxyCommand ran"


def test_preflight_argv_real_ssh_takes_dash_host_as_a_host(tmp_path):
    """The second lock: even a host that starts with '-' (were it ever to get past the parser)
    reaches the real ssh client after `--`, as a host name, so no option it spells is obeyed."""
    marker = tmp_path / "m"
    u = EngineURL("ssh", host=f"-oProxyCommand=touch {marker}", port=1)
    argv = u.ssh_argv("-o", "ConnectTimeout=2", "-o", "BatchMode=yes") + ["true"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and not marker.exists()


# --- numbers and YAML bounded where they enter ---------------------------------------------------

def _prof(tmp_path, body: str) -> str:
    p = tmp_path / "p.yaml"
    p.write_text(f"name: ib-{uuid.uuid4().hex[:6]}\nimage: a\nplatform: cpu\n{body}")
    return str(p)


@pytest.mark.parametrize("body,expect", [
    ("stages:\n  perf: {begin: 8G, end: 4G}\n", "begin 8G is above end 4G"),
    ("stages:\n  perf: {end: 2T}\n", "above 1T"),
    ("stages:\n  perf: {iters: 100000000}\n", "iters"),
    ("stages:\n  perf: {factor: 100000}\n", "factor"),
    ("stages:\n  timeouts: {perf: 0}\n", "stages.timeouts.perf 0"),
    ("stages:\n  timeouts: {perf: 99999999999}\n", "from 1 to 604800"),
    ("stages:\n  unittest: {timeout_per_binary: 99999999}\n", "timeout_per_binary"),
    ("flagcx: {nranks: 100000000}\n", "nranks"),
    ("notes: " + "[" * 5000 + "]" * 5000 + "\n", "p.yaml:4: YAML syntax error: nested more than 64"),
    ("notes:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)), "nested more than 64"),
])
def test_profile_numbers_and_depth_bounded(tmp_path, body, expect):
    r = cli("profile", "validate", _prof(tmp_path, body), timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in r.stderr and "Traceback" not in r.stderr and "fix:" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2, r.stderr


def test_set_values_are_depth_bounded_too():
    r = cli("profile", "show", "cpu-selftest", "--set", "notes=" + "[" * 5000 + "]" * 5000)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "internal error" not in r.stderr


def test_yaml_depth_unit():
    import yaml
    from containerctl import yamlio
    ok = "a: " + "[" * 60 + "]" * 60
    assert yamlio.safe_load(ok)["a"] is not None
    with pytest.raises(yaml.YAMLError) as ei:
        yamlio.compose("a: 1\nb:\n" + "".join("  " * i + "- \n" for i in range(1, 80)))
    assert ei.value.problem_mark.line + 1 == 66          # where the 65th level begins
    # aliases count at every place they are used: 40 anchors of 10 levels each are 400 deep
    chain = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]\n"
                                      for i in range(1, 40))
    with pytest.raises(yaml.YAMLError):
        yamlio.compose(chain)


def test_import_nranks_and_size_bounded(tmp_path):
    f = tmp_path / "perf.txt"
    line = "Comm size: 1024 bytes; Elapsed time: 0.001 sec; Algo bandwidth: 1.0 GB/s; " \
           "Bus bandwidth: 1.0 GB/s\n"
    f.write_text(line)
    r = cli("results", "import", str(f), "--nranks", "100000000", timeout=60)
    assert r.returncode == 2 and "4096" in r.stderr and "Traceback" not in r.stderr
    big = tmp_path / "big.txt"
    big.write_text(line * 30000)          # ~2.6 MB
    r = cli("results", "import", str(big), env={"CONTAINERCTL_PARSE_LIMIT_MB": "1"})
    assert r.returncode == 2 and "imports at most 1 MiB" in r.stderr, r.stderr
    assert cli("results", "import", str(big)).returncode == 0


# --- the home: odd file types and a full disk -----------------------------------------------------

@pytest.fixture
def up_container(unique_name, selftest_image):
    r = cli("up", "--profile", "cpu-selftest", "--name", unique_name)
    assert r.returncode == 0, r.stderr
    return unique_name


def test_lock_and_state_paths_that_are_not_files(up_container, tmp_path):
    home = Path(os.environ["CONTAINERCTL_HOME"])
    lock = home / "locks" / f"{up_container}.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir(parents=True)
    (lock / "mine.txt").write_text("the user's")
    r = cli("up", "--profile", "cpu-selftest", "--name", up_container,
            "--set", "container.shm_size=2G", timeout=120)
    assert r.returncode == 2 and "is a directory, not a file" in r.stderr, r.stderr
    assert (lock / "mine.txt").read_text() == "the user's"        # never removed
    lock.rename(tmp_path / "moved")
    state = home / "state" / f"{up_container}.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.unlink(missing_ok=True)
    os.mkfifo(state)
    r = cli("exec-stage", "deps", "--name", up_container, "-q", timeout=120)   # a FIFO hung
    assert r.returncode == 2 and "is a FIFO, not a file" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 2 and state.exists()


BIG = """name: big
description: test stage - prints about 2 MB
requires: []
timeout: 120
script: |
  head -c 2000000 /dev/zero | tr '\\0' 'x' | fold -w 100
  echo done
"""


@pytest.fixture
def small_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    m = tmp_path / "tmpfs"
    m.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(m)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield m
    subprocess.run(["umount", "-l", str(m)], capture_output=True)


def _fill(m: Path, leave_kb: int) -> None:
    st = os.statvfs(m)
    free_kb = st.f_bavail * st.f_frsize // 1024
    with open(m / "filler", "ab") as f:
        f.write(b"\0" * max(0, free_kb - leave_kb) * 1024)


def test_full_disk_during_a_run(small_tmpfs, unique_name, selftest_image, tmp_path):
    home = small_tmpfs / "home"
    env = {"CONTAINERCTL_HOME": str(home)}
    assert cli("up", "--profile", "cpu-selftest", "--name", unique_name, env=env).returncode == 0
    cwd = tmp_path / "cwd"
    (cwd / "stages").mkdir(parents=True)
    (cwd / "stages" / "96-big.yaml").write_text(BIG)
    _fill(small_tmpfs, 160)
    r = cli("exec-stage", "big", "--name", unique_name, "-q", env=env, cwd=str(cwd), timeout=300)
    assert r.returncode == 1, r.stderr[-500:]
    err = r.stderr.strip().splitlines()
    assert err[-2].startswith("error: cannot write the stage log") and "No space left" in err[-2]
    assert err[-1].startswith("  fix: free space there")
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    runs = list((home / "results").glob("*/run.json"))
    assert len(runs) == 1
    meta = json.loads(runs[0].read_text())
    assert meta["status"] == "error" and "No space left" in meta["error"]
    assert not [p for p in small_tmpfs.rglob("*") if ".tmp" in p.name]
    # completely full before the run: refused before anything starts, in one line
    _fill(small_tmpfs, 0)
    r = cli("exec-stage", "big", "--name", unique_name, "-q", env=env, cwd=str(cwd), timeout=300)
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert "No space left" in r.stderr and "fix:" in r.stderr
    assert not [p for p in small_tmpfs.rglob("*") if ".tmp" in p.name]


def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch):
    from containerctl import paths
    from containerctl.errors import HostError
    target = tmp_path / "d" / "f.json"
    paths.atomic_write(target, "old")
    real = os.replace

    def fail(*a, **k):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(HostError):
        paths.atomic_write(target, "new")
    monkeypatch.setattr(os, "replace", real)
    assert target.read_text() == "old" and sorted(os.listdir(target.parent)) == ["f.json"]
    with pytest.raises(HostError):
        paths.atomic_write(tmp_path / "d", "x")          # a directory is never replaced
    assert target.exists()


# --- memory bounded whatever a stage prints -------------------------------------------------------

def test_parse_buffer_keeps_head_and_tail():
    from containerctl.logread import ParseBuffer
    b = ParseBuffer(limit=1000)
    data = b"".join(b"line %05d\n" % i for i in range(1000))       # 11000 bytes
    for i in range(0, len(data), 77):
        b.extend(data[i:i + 77])
    t = b.text()
    assert t.startswith("line 00000\n") and t.endswith("line 00999\n")
    assert b.dropped > 9000 and "not read here" in t and len(t) < 1200
    assert all(len(ln) == 10 for ln in t.splitlines() if ln.startswith("line"))   # whole lines
    small = ParseBuffer(limit=1000)
    small.extend(data[:999])
    assert small.text() == data[:999].decode() and small.dropped == 0


def test_read_bounded_and_line_splitter(tmp_path):
    from containerctl.logread import LineSplitter, read_bounded
    p = tmp_path / "log"
    p.write_bytes(b"first\n" + b"y" * 5_000_000 + b"\nlast\n")
    text, dropped = read_bounded(p, limit=100_000)
    assert text.startswith("first\n") and text.endswith("last\n") and dropped > 4_800_000
    s = LineSplitter(max_line=1000)
    out = s.feed(b"z" * 3500)                      # no newline: shown in pieces, not kept
    assert [len(x) for x in out] == [1000, 1000, 1000] and len(s.pending) == 500
    assert s.feed(b"\nok\n") == ["z" * 500, "ok"]


HUGE = """name: huge
description: test stage - prints 150 MB of perf lines and one unterminated 20 MB line
requires: []
timeout: 300
parse: perf
script: |
  echo "=== containerctl coll=allreduce nranks=2 ==="
  yes 'Comm size: 1024 bytes; Elapsed time: 0.000001 sec; Algo bandwidth: 1.0 GB/s; Bus bandwidth: 1.0 GB/s' | head -c 150000000
  head -c 20000000 /dev/zero | tr '\\0' 'z'
  echo
  echo "=== containerctl end coll=allreduce rc=0 ==="
"""


def test_a_stage_printing_150_mb_stays_bounded(up_container, tmp_path):
    """The issue's 150 MB perf log took 3.2 GB of RSS. With an 8 MiB parse limit the whole CLI
    stays far below that, the log keeps every byte, and the cut is a failed check (no pass
    drawn from part of the evidence)."""
    import sys
    cwd = tmp_path / "cwd"
    (cwd / "stages").mkdir(parents=True)
    (cwd / "stages" / "97-huge.yaml").write_text(HUGE)
    exe = str(Path(sys.executable).parent / "containerctl")
    # a wrapper whose only child is the CLI: its RUSAGE_CHILDREN peak is the CLI's own
    wrap = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    r = subprocess.run([sys.executable, "-c", wrap, exe, "exec-stage", "huge", "--name",
                        up_container, "-q"], capture_output=True, text=True, cwd=str(cwd),
                       timeout=600, env={**os.environ, "CONTAINERCTL_PARSE_LIMIT_MB": "8"})
    peak_kb, rc = map(int, r.stdout.strip().splitlines()[-1].split()[1:])
    assert rc == 1, r.stdout[-1000:] + r.stderr[-1000:]
    assert peak_kb < 300 * 1024, f"peak RSS {peak_kb} KiB"
    home = Path(os.environ["CONTAINERCTL_HOME"])
    run_dir = sorted((home / "results").glob("*/run.json"))[-1].parent
    assert (run_dir / "logs" / "huge.log").stat().st_size > 170_000_000
    rec = json.loads((run_dir / "huge.json").read_text())
    cut = [c for c in rec["checks"] if c["name"] == "output read"]
    assert cut and cut[0]["ok"] is False and rec["status"] == "failed"


def test_report_output_that_is_not_a_file(tmp_path):
    f = tmp_path / "perf.txt"
    f.write_text("Comm size: 1024 bytes; Elapsed time: 0.001 sec; Algo bandwidth: 1.0 GB/s; "
                 "Bus bandwidth: 1.0 GB/s\n")
    rid = cli("results", "import", str(f)).stdout.strip()
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = cli("report", rid, "-f", "md", "-o", str(out))
    assert r.returncode == 2 and "not a regular file" in r.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_a_cut_output_fails_only_a_stage_that_parses_it(up_container, tmp_path):
    """A stage without a parser loses nothing when its output is cut: it passes on its exit
    code; the log still has every byte."""
    cwd = tmp_path / "cwd"
    (cwd / "stages").mkdir(parents=True)
    (cwd / "stages" / "96-big.yaml").write_text(BIG)
    r = cli("exec-stage", "big", "--name", up_container, "-q", cwd=str(cwd), timeout=300,
            env={"CONTAINERCTL_PARSE_LIMIT_MB": "1"})
    assert r.returncode == 0, r.stdout[-800:] + r.stderr[-800:]
    home = Path(os.environ["CONTAINERCTL_HOME"])
    run_dir = sorted((home / "results").glob("*/run.json"))[-1].parent
    assert (run_dir / "logs" / "big.log").stat().st_size > 2_000_000
    rec = json.loads((run_dir / "big.json").read_text())
    assert rec["status"] == "passed" and not any(c["name"] == "output read" for c in rec["checks"])
