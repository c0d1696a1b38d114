"""Fault drills against real Docker engines, driven through the CLI as a user types it:

* the daemon is stopped before `up`, or dies in the middle of `up` (a private dockerd that this
  module starts in its own network namespace, so the shared engine is never touched);
* the container is killed while a stage runs, then `run` resumes;
* the state/results directory cannot be written;
* a reader polling the results while the pipeline writes them never sees half a file.

After each drill: no process of a stage's session is left in the container and no container is
left behind for the drill's name. (Timeout, SIGINT and concurrent `up` are in test_pipeline.py
and test_lifecycle.py.)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import cli

pytestmark = pytest.mark.docker
EXE = str(Path(sys.executable).parent / "containerctl")
LABEL = "io.containerctl."


def hcli(home, *args, env=None, **kw):
    """The CLI with an explicit state/results home (and optionally another engine)."""
    return cli(*args, env={"CONTAINERCTL_HOME": str(home), **(env or {})}, **kw)


def one_line_error(stderr: str) -> bool:
    lines = stderr.strip().splitlines()
    return (len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("  fix: ")
            and "Traceback" not in stderr)


def temp_leftovers(home) -> list[str]:
    return [str(p) for p in Path(home).rglob(".*.tmp")]


def session_procs(engine, name, stage):
    from containerctl.stages.executor import session_alive
    from containerctl.stages.state import IN_CONTAINER_DIR
    return session_alive(engine, name, f"{IN_CONTAINER_DIR}/{stage}/session")


def assert_no_stage_process(engine, name, stages):
    for st in stages:
        assert session_procs(engine, name, st) == [], f"{st}: a session process survived"
    _, ps = engine.exec_capture(name, ["ps", "-eo", "comm"])
    assert "mpirun" not in ps and "perf_allreduce" not in ps, ps


# =============================================================================================
# 1. the daemon stopped before / killed during `up` — a private dockerd
# =============================================================================================

class PrivateDockerd:
    """A dockerd of our own: its own data/exec roots, socket and containerd, and its own network
    namespace (`unshare --net`). Never `--bridge=none`: a dockerd started with it deletes the
    host's docker0 interface, which would cut the shared engine's containers off."""

    def __init__(self, root: Path):
        self.root = root
        self.sock = root / "d.sock"
        self.url = f"unix://{self.sock}"
        self.log = open(root / "dockerd.log", "ab")
        self.proc: subprocess.Popen | None = None

    def start(self, limit: float = 60) -> None:
        r = self.root
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--", "dockerd", "--host", self.url,
             "--data-root", str(r / "data"), "--exec-root", str(r / "exec"),
             "--pidfile", str(r / "d.pid"), "--iptables=false", "--ip6tables=false"],
            stdout=self.log, stderr=self.log, start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private dockerd exited {self.proc.returncode}: "
                                   f"{(r / 'dockerd.log').read_text()[-1500:]}")
            if self.answers():
                # unshare exec()s dockerd: the pid we hold is the daemon's own
                assert os.readlink(f"/proc/{self.proc.pid}/ns/net") != \
                    os.readlink("/proc/self/ns/net"), "private dockerd shares our network"
                return
            time.sleep(0.2)
        raise RuntimeError("private dockerd did not answer within a minute")

    def answers(self) -> bool:
        try:
            return self.api(timeout=5).ping()
        except Exception:
            return False

    def api(self, timeout: int = 30):
        import docker
        return docker.APIClient(base_url=self.url, version="auto", timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """A clean shutdown (the socket file goes away)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """A crash: SIGKILL, the socket file stays behind."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(30)
        self._wait_containerd_gone()

    def _wait_containerd_gone(self) -> None:
        """The daemon's containerd outlives a killed dockerd for a moment; a dockerd started
        while it is still there adopts it, waits for its socket, and gives up."""
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 15
        while True:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                ours = str(self.root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, IndexError):
                break
            if state == "Z" or not ours:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        pidfile.unlink(missing_ok=True)

    def containers(self, name: str) -> list[dict]:
        return self.api().containers(all=True, filters={"label": f"{LABEL}name={name}"})

    def cleanup(self) -> None:
        try:
            if not self.alive():
                self.start()
            api = self.api()
            for c in api.containers(all=True):
                api.remove_container(c["Id"], force=True, v=True)
            for v in (api.volumes() or {}).get("Volumes") or []:
                api.remove_volume(v["Name"], force=True)
        except Exception:
            pass
        self.stop()
        # what the daemon started and left: containerd and shims (named by our root in their
        # command line) and the processes of its containers (in cgroups named by their ids)
        ids = [p.name for p in (self.root / "data" / "containers").glob("*")]
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                    cg = Path(f"/proc/{pid}/cgroup").read_text()
                except OSError:
                    continue
                if str(self.root).encode() + b"/" in cmd or any(i in cg for i in ids):
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
        mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()
                  if ln.split()[1].startswith(str(self.root) + "/")]
        for m in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _tiny_rootfs(path: Path) -> None:
    """A root filesystem with just `sleep` and `true` and their libraries (for `sleep infinity`
    and probes): importing it takes a fraction of a second."""
    files = {"/bin/sleep", "/bin/true"}
    for b in ("/bin/sleep", "/bin/true"):
        out = subprocess.run(["ldd", b], capture_output=True, text=True).stdout
        files |= {w for ln in out.splitlines() for w in ln.split() if w.startswith("/")}
    with tarfile.open(path, "w") as tar:
        for f in sorted(files):
            tar.add(os.path.realpath(f), arcname=f.lstrip("/"))


@pytest.fixture(scope="module")
def private_daemon():
    for tool in ("dockerd", "unshare", "ldd"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed: no private engine can be started")
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root")
    had_docker0 = os.path.exists("/sys/class/net/docker0")
    root = Path(tempfile.mkdtemp(prefix="cctl-dd-", dir="/tmp"))   # a short socket path
    d = PrivateDockerd(root)
    try:
        d.start()
        _tiny_rootfs(root / "rootfs.tar")
        image = "cctl-drill/tiny:1"
        repo, tag = image.split(":")
        d.api(timeout=120).import_image_from_file(str(root / "rootfs.tar"), repository=repo,
                                                  tag=tag)
        home = root / "home"
        home.mkdir()
        prof = root / "drill.yaml"
        prof.write_text(textwrap.dedent(f"""\
            name: drill-private
            image: {image}
            platform: cpu
            container:
              shm_size: 64M
            flagcx:
              make_flags: [USE_CPU_SELFTEST=1]
            """))
        yield SimpleNamespace(d=d, image=image, home=home, profile=str(prof))
    finally:
        d.cleanup()
        if had_docker0:
            assert os.path.exists("/sys/class/net/docker0"), \
                "the host's docker0 vanished while the private dockerd ran"


def _pcli(pd, *args, url=None):
    return hcli(pd.home, *args, env={"DOCKER_HOST": url or pd.d.url}, timeout=120)


@pytest.mark.parametrize("how", ["stopped", "crashed"])
def test_daemon_down_before_up(private_daemon, how):
    """A clean stop (socket gone) or a crash (stale socket): exit 2, one cause, one fix."""
    pd = private_daemon
    name = f"cctl-dd-{uuid.uuid4().hex[:6]}"
    (pd.d.stop if how == "stopped" else pd.d.kill)()
    try:
        r = _pcli(pd, "up", "--profile", pd.profile, "--name", name)
        assert r.returncode == 2, r.stdout + r.stderr
        assert one_line_error(r.stderr), r.stderr
        assert r.stderr.startswith(f"error: cannot reach a Docker engine at {pd.d.url}"), r.stderr
        assert "internal error" not in r.stderr
    finally:
        pd.d.start()
    assert pd.d.containers(name) == [], "an up against a dead daemon made a container"


class KillingProxy:
    """A unix-socket relay in front of the private dockerd that SIGKILLs the daemon the moment
    the client's request matches `pattern`, before that request reaches it. This puts the crash
    at an exact point of `up` (the `create` or the `start` call) instead of a racy instant."""

    def __init__(self, path: Path, upstream: Path, pattern: bytes, on_match):
        self.path, self.upstream = str(path), str(upstream)
        self.pattern = re.compile(pattern)
        self.on_match = on_match
        self.matched = threading.Event()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            up.connect(self.upstream)
        except OSError:   # the daemon is gone: the client sees its connection dropped
            client.close()
            up.close()
            return
        threading.Thread(target=self._pump, args=(up, client, False), daemon=True).start()
        self._pump(client, up, True)

    def _pump(self, src, dst, inspect):
        tail = b""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            if inspect and not self.matched.is_set():
                window = tail + data
                if self.pattern.search(window):
                    self.matched.set()
                    self.on_match()
                    break
                tail = window[-512:]
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.srv.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


KILL_POINTS = {
    # the daemon dies when `up` asks it to create the container: nothing was made
    "create": rb"POST /v[0-9.]+/containers/create",
    # the daemon dies when `up` asks it to start the container it just created
    "start": rb"POST /v[0-9.]+/containers/[0-9a-f]{12,}/start",
}


def _kill_during_up(pd, point):
    name = f"cctl-dd-{uuid.uuid4().hex[:6]}"
    proxy = KillingProxy(pd.d.root / f"p-{point}.sock", pd.d.sock, KILL_POINTS[point],
                         on_match=pd.d.kill)
    try:
        t0 = time.monotonic()
        first = _pcli(pd, "up", "--profile", pd.profile, "--name", name,
                      url=f"unix://{proxy.path}")
        took = time.monotonic() - t0
    finally:
        proxy.close()
    out = SimpleNamespace(name=name, matched=proxy.matched.is_set(), first=first, took=took,
                          proxy_url=f"unix://{proxy.path}")
    pd.d.start()
    out.after_restart = pd.d.containers(name)
    out.up = _pcli(pd, "up", "--profile", pd.profile, "--name", name)
    out.converged = pd.d.containers(name)
    out.up_again = _pcli(pd, "up", "--profile", pd.profile, "--name", name)
    out.ps = _pcli(pd, "ps", "--json")
    out.down = _pcli(pd, "down", "--name", name, "--volumes")
    out.left = pd.d.containers(name)
    out.volumes = [v["Name"] for v in (pd.d.api().volumes() or {}).get("Volumes") or []
                   if v["Name"].startswith(name)]
    return out


@pytest.fixture(scope="module")
def killed_during_up(private_daemon):
    done = {}

    def get(point):
        if point not in done:
            done[point] = _kill_during_up(private_daemon, point)
        return done[point]
    return get


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_daemon_killed_during_up_converges(killed_during_up, point):
    """Whatever `up` had made when the daemon died, the next `up` (after a restart) ends with
    exactly one running container, a later `up` is a no-op, and `down` leaves nothing."""
    o = killed_during_up(point)
    assert o.matched, f"up never reached its {point} call: {o.first.stderr}"
    assert o.first.returncode != 0 and o.took < 60, o.first.stdout + o.first.stderr
    assert "Traceback" not in o.first.stderr
    assert len(o.after_restart) <= 1
    if point == "create":
        assert o.after_restart == [], "the create never reached the daemon, yet a container exists"
    assert o.up.returncode == 0, o.up.stdout + o.up.stderr
    assert ("started" if point == "start" else "created") in o.up.stdout, o.up.stdout
    assert len(o.converged) == 1 and o.converged[0]["State"] == "running", o.converged
    assert o.up_again.returncode == 0 and "nothing changed" in o.up_again.stdout
    rows = [x for x in json.loads(o.ps.stdout) if x["name"] == o.name]
    assert len(rows) == 1 and rows[0]["status"] == "running", o.ps.stdout
    assert o.down.returncode == 0, o.down.stderr
    assert o.left == [] and o.volumes == [], (o.left, o.volumes)


@pytest.mark.parametrize("point", [
    "create",
    "start",
])
def test_daemon_killed_during_up_says_one_line_error(killed_during_up, point):
    """The dying daemon is reported like an unreachable one: exit 2, a cause and a fix."""
    o = killed_during_up(point)
    assert o.first.returncode == 2, o.first.stderr
    assert one_line_error(o.first.stderr), o.first.stderr
    assert o.first.stderr.startswith(f"error: cannot reach a Docker engine at {o.proxy_url}")


# =============================================================================================
# 2 + 4. the shared engine: a container of our own with deps and build passed
# =============================================================================================

@pytest.fixture(scope="module")
def built(selftest_image, tmp_path_factory):
    from containerctl.engine import get_engine
    name = f"cctl-drill-{uuid.uuid4().hex[:6]}"
    home = tmp_path_factory.mktemp("drill-home")
    try:
        r = hcli(home, "run", "--profile", "cpu-selftest", "--name", name, "--until", "build",
                 "-q")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        yield SimpleNamespace(name=name, home=home)
    finally:
        get_engine().remove(name, force=True)
        get_engine().remove_volume(f"{name}-workspace")


def _runs(home) -> list[Path]:
    d = Path(home) / "results"
    return sorted(d.iterdir(), key=lambda p: p.name) if d.is_dir() else []


def _new_run(home, before: set) -> Path:
    new = [r for r in _runs(home) if r.name not in before]
    assert len(new) == 1, new
    return new[0]


@pytest.mark.slow
def test_results_are_written_atomically(engine, built):
    """A reader that parses every record and the state file over and over while `run --force`
    rewrites them never gets half a file; no temp file is left afterwards."""
    home = Path(built.home)
    before = {r.name for r in _runs(home)}
    stop = threading.Event()
    partial, statuses = [], set()
    reads = [0]

    def reader():
        while not stop.is_set():
            for f in list(home.glob("results/*/*.json")) + list(home.glob("state/*.json")):
                try:
                    text = f.read_text()
                except FileNotFoundError:
                    continue
                try:
                    obj = json.loads(text)
                except ValueError:
                    partial.append((str(f), text[:120]))
                    continue
                reads[0] += 1
                if f.name == "run.json" and f.parent.name not in before:
                    statuses.add(obj.get("status"))
            time.sleep(0.005)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        r = hcli(home, "run", "--profile", "cpu-selftest", "--name", built.name, "--force", "-q")
    finally:
        stop.set()
        t.join(10)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert partial == [], f"a reader saw a partial file: {partial[:3]}"
    assert reads[0] > 50, reads
    assert {"running", "passed"} <= statuses, statuses   # it watched the run from start to end
    run = _new_run(home, before)
    for st in ("deps", "build", "perf"):
        assert json.loads((run / f"{st}.json").read_text())["status"] == "passed"
    assert temp_leftovers(home) == []
    assert_no_stage_process(engine, built.name, ["deps", "build", "perf"])


def _wait_for_mpirun(engine, name, limit=120):
    t0 = time.time()
    while time.time() - t0 < limit:
        procs = session_procs(engine, name, "perf")
        if any("mpirun" in p for p in procs) and any("perf_" in p for p in procs):
            return procs
        time.sleep(0.3)
    raise AssertionError("mpirun never started")


@pytest.fixture(scope="module")
def killed_mid_stage(engine, built):
    """`exec-stage perf` with a long sweep; `docker kill` once mpirun and its ranks run."""
    home = built.home
    cid = engine.find(built.name).id
    before = {r.name for r in _runs(home)}
    env = dict(os.environ, CONTAINERCTL_HOME=str(home))
    p = subprocess.Popen([EXE, "exec-stage", "perf", "--name", built.name, "-q",
                          "--set", "stages.perf.end=1G", "--set", "stages.perf.iters=200"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    try:
        _wait_for_mpirun(engine, built.name)
        subprocess.run(["docker", "kill", built.name], check=True, capture_output=True)
        t0 = time.monotonic()
        out, err = p.communicate(timeout=120)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    run = _new_run(home, before)
    return SimpleNamespace(cid=cid, rc=p.returncode, out=out, err=err, took=took, run=run,
                           rec=json.loads((run / "perf.json").read_text()),
                           meta=json.loads((run / "run.json").read_text()),
                           state_text=(Path(home) / "state" / f"{built.name}.json").read_text(),
                           running=engine.find(built.name).running)


@pytest.mark.slow
def test_container_killed_mid_stage_then_run_resumes(engine, built, killed_mid_stage):
    k = killed_mid_stage
    # the CLI noticed promptly and said so without a traceback
    assert k.rc not in (0, 70) and k.took < 30, (k.rc, k.took, k.err)
    assert "Traceback" not in k.err + k.out and "internal error" not in k.err
    assert not k.running       # nothing can be left running inside a dead container
    # the record and the run say what happened; the state stays valid and keeps build
    assert k.rec["status"] in ("failed", "interrupted") and k.rec["message"], k.rec
    assert k.rec["exit_code"] not in (0, None)
    assert k.meta["status"] == k.rec["status"] and k.meta["finished"], k.meta
    st = json.loads(k.state_text)
    assert st["container_id"] == k.cid
    assert st["stages"]["deps"]["status"] == st["stages"]["build"]["status"] == "passed"
    assert st["stages"]["perf"]["status"] != "passed"
    assert temp_leftovers(built.home) == []

    # `run` starts the same container again, skips deps and build, and perf passes
    before = {r.name for r in _runs(built.home)}
    r = hcli(built.home, "run", "--profile", "cpu-selftest", "--name", built.name, "-q")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # the same container was started again (-q prints only the stages' verdicts)
    c = engine.find(built.name)
    assert c.id == k.cid and c.running
    run = _new_run(built.home, before)
    for st_name in ("deps", "build"):
        rec = json.loads((run / f"{st_name}.json").read_text())
        assert rec["status"] == "skipped" and "already passed" in rec["message"], rec
    assert json.loads((run / "perf.json").read_text())["status"] == "passed"
    assert temp_leftovers(built.home) == []
    assert_no_stage_process(engine, built.name, ["perf"])


@pytest.mark.slow
def test_container_killed_mid_stage_is_named(killed_mid_stage):
    k = killed_mid_stage
    said = (k.rec["message"] + " " + k.err).lower()
    assert "container" in said and any(w in said for w in ("stopped", "killed", "not running",
                                                           "exited")), k.rec["message"]


@pytest.mark.slow
def test_drill_container_down_leaves_nothing(engine, built):
    r = hcli(built.home, "down", "--name", built.name, "--volumes")
    assert r.returncode == 0, r.stderr
    assert engine.find(built.name) is None
    assert not engine.volume_exists(f"{built.name}-workspace")
    assert engine.api.containers(all=True, filters={"label": f"{LABEL}name={built.name}"}) == []


# =============================================================================================
# 3. the state/results directory cannot be written
# =============================================================================================

@pytest.fixture
def ro_mount(tmp_path):
    """A read-only tmpfs; the test is skipped only when this host does not let us mount."""
    mounted = []

    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {r.stderr.strip()}")
        mounted.append(path)
        with pytest.raises(OSError):
            (path / "probe").write_text("")
        return path
    yield make
    for m in reversed(mounted):
        if subprocess.run(["umount", str(m)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(m)], capture_output=True)


@pytest.mark.parametrize("under", ["", "home"])
def test_unwritable_home_refuses_before_anything(engine, selftest_image, ro_mount, tmp_path,
                                                 unique_name, under):
    """CONTAINERCTL_HOME is the read-only mount itself, or a directory to be made under it."""
    home = ro_mount(tmp_path / "ro") / under if under else ro_mount(tmp_path / "ro")
    for args in (["up"], ["run", "-q"]):
        r = hcli(home, *args, "--profile", "cpu-selftest", "--name", unique_name)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert one_line_error(r.stderr), r.stderr
        assert r.stderr.startswith(
            f"error: cannot write containerctl's state/results directory {home}"), r.stderr
        assert engine.find(unique_name) is None, f"{args[0]} created a container"
        assert not engine.volume_exists(f"{unique_name}-workspace")


@pytest.mark.parametrize("sub", [
    "results",
    "state",
])
def test_unwritable_results_subdir_refuses_before_anything(engine, selftest_image, ro_mount,
                                                           tmp_path, unique_name, sub):
    home = tmp_path / "home"
    ro_mount(home / sub)
    r = hcli(home, "run", "-q", "--profile", "cpu-selftest", "--name", unique_name,
             "--until", "deps")
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert one_line_error(r.stderr) and "cannot write" in r.stderr, r.stderr
    assert engine.find(unique_name) is None, "run created a container it could not record"
