"""Container lifecycle on the real Docker engine, driven through the CLI as a user types it."""
from __future__ import annotations

import json
import shlex
import subprocess
import textwrap

import pytest

from conftest import cli

pytestmark = pytest.mark.docker


def profile_file(tmp_path, image, extra=""):
    """The test profile with `extra` (YAML) merged into it (a second `container:` key would be
    a duplicate key, which profiles refuse)."""
    import yaml
    from containerctl.profiles import deep_merge
    f = tmp_path / "t.yaml"
    base = yaml.safe_load(textwrap.dedent(f"""\
        name: lifecycle-test
        image: {image}
        platform: cpu
        container:
          shm_size: 256M
          env: {{A: "1"}}
        flagcx:
          make_flags: [USE_CPU_SELFTEST=1]
        """))
    f.write_text(yaml.safe_dump(deep_merge(base, yaml.safe_load(textwrap.dedent(extra)) or {}),
                                sort_keys=False))
    return str(f)


def managed(engine, name):
    return [c for c in engine.list() if c.name == name]


def test_up_noop_recreate_down(engine, selftest_image, tmp_path, unique_name):
    prof = profile_file(tmp_path, selftest_image)
    r = cli("up", "--profile", prof, "--name", unique_name)
    assert r.returncode == 0, r.stderr
    assert "created" in r.stdout
    cid = engine.find(unique_name).id

    r = cli("up", "--profile", prof, "--name", unique_name)
    assert r.returncode == 0 and "nothing changed" in r.stdout
    assert engine.find(unique_name).id == cid and len(managed(engine, unique_name)) == 1

    # something the user made in the workspace survives a recreate
    assert cli("exec", "--name", unique_name, "--", "sh", "-c",
               "echo keep > /workspace/mine.txt").returncode == 0
    r = cli("up", "--profile", prof, "--name", unique_name, "--set", "container.shm_size=512M")
    assert r.returncode == 0 and "recreated" in r.stdout, r.stdout + r.stderr
    c = engine.find(unique_name)
    assert c.id != cid
    assert engine.inspect(unique_name)["HostConfig"]["ShmSize"] == 512 * 1024**2
    r = cli("exec", "--name", unique_name, "--", "cat", "/workspace/mine.txt")
    assert r.stdout.strip() == "keep"

    r = cli("up", "--profile", prof, "--name", unique_name, "--set", "container.shm_size=512M",
            "--force-recreate")
    assert "recreated (forced)" in r.stdout

    # a stopped container is started, not recreated
    engine.stop(unique_name, timeout=1)
    r = cli("up", "--profile", prof, "--name", unique_name, "--set", "container.shm_size=512M")
    assert "started" in r.stdout and engine.find(unique_name).running

    r = cli("ps", "--json")
    rows = [x for x in json.loads(r.stdout) if x["name"] == unique_name]
    assert rows and rows[0]["profile"] == "lifecycle-test"

    r = cli("down", "--name", unique_name)
    assert r.returncode == 0 and "kept" in r.stdout
    assert engine.find(unique_name) is None
    assert engine.volume_exists(f"{unique_name}-workspace")
    # the volume still holds the user's file: bring it back
    cli("up", "--profile", prof, "--name", unique_name, "--set", "container.shm_size=512M")
    assert cli("exec", "--name", unique_name, "--", "cat", "/workspace/mine.txt").stdout.strip() == "keep"
    r = cli("down", "--name", unique_name, "--volumes")
    assert r.returncode == 0 and not engine.volume_exists(f"{unique_name}-workspace")


def test_exec_exit_codes_propagate(engine, selftest_image, tmp_path, unique_name):
    prof = profile_file(tmp_path, selftest_image)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    for code in (0, 3, 42):
        r = cli("exec", "--name", unique_name, "--", "sh", "-c", f"echo hi; exit {code}")
        assert r.returncode == code and "hi" in r.stdout
    r = cli("exec", "--name", unique_name, "--", "printenv", "A")
    assert r.stdout.strip() == "1"


HC_KEYS = ["Init", "Privileged", "NetworkMode", "PidMode", "IpcMode", "CapAdd", "CapDrop", "SecurityOpt",
           "ShmSize", "Ulimits", "GroupAdd", "Devices", "Binds", "DeviceRequests"]


def test_dry_run_line_equals_up(engine, selftest_image, tmp_path, unique_name):
    """The printed `docker run` line, run by the docker CLI, yields the same HostConfig as up."""
    (tmp_path / "data").mkdir()
    prof = profile_file(tmp_path, selftest_image, f"""\
        container:
          shm_size: 300M
          network_mode: host
          pid_mode: host
          ipc_mode: shareable
          cap_add: [SYS_PTRACE]
          cap_drop: [MKNOD]
          security_opt: [seccomp=unconfined]
          ulimits: {{nofile: "1024:2048", stack: 67108864}}
          group_add: [video]
          devices: [/dev/null:/dev/mynull]
          volumes: ["{tmp_path}/data:/data:ro"]
          env: {{B: "two words"}}
          workdir: /data
        """)
    r = cli("up", "--profile", prof, "--name", unique_name, "--dry-run")
    assert r.returncode == 0, r.stderr
    vol_line, line = r.stdout.strip().splitlines()[-2:]
    assert engine.find(unique_name) is None, "--dry-run created something"
    assert not engine.volume_exists(f"{unique_name}-workspace"), "--dry-run created a volume"
    # the printed lines, run by the docker CLI, make what `up` accepts (a labelled volume)
    subprocess.run(shlex.split(vol_line), check=True, capture_output=True)
    from containerctl import labels as L
    assert engine.volume_labels(f"{unique_name}-workspace") == {L.MANAGED: "1",
                                                                L.VOLUME_OF: unique_name}

    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    ours = engine.inspect(unique_name)
    engine.remove(unique_name, force=True)
    argv = shlex.split(line)
    assert argv[:3] == ["docker", "run", "-itd"]
    subprocess.run(argv, check=True, capture_output=True)
    theirs = engine.inspect(unique_name)
    for k in HC_KEYS:
        a, b = ours["HostConfig"].get(k), theirs["HostConfig"].get(k)
        if k == "Binds":  # the CLI keeps -v flags in a map: order is not meaningful
            a, b = sorted(a), sorted(b)
        assert a == b, k
    assert sorted(ours["Config"]["Env"]) == sorted(theirs["Config"]["Env"])
    # the same labels, but for the creation id: one per creation (the printed line has none)
    from containerctl.labels import CREATION_ID
    assert ours["Config"]["Labels"].pop(CREATION_ID)
    assert ours["Config"]["Labels"] == theirs["Config"]["Labels"]
    assert ours["Config"]["WorkingDir"] == theirs["Config"]["WorkingDir"] == "/data"


@pytest.mark.parametrize("extra,needle", [
    ("container:\n  privileged: true\n", "privileged"),
    ("container:\n  cap_add: [ALL]\n", "cap_add=ALL"),
    ("container:\n  ulimits: {memlock: -1}\n", "memlock"),
    ("container:\n  gpus: all\n", "--gpus"),
    ("container:\n  devices: [/dev/xpu0]\n", "/dev/xpu0"),
    ("container:\n  devices: ['/dev/xpu*']\n", "/dev/xpu*"),
    ("container:\n  volumes: [/nonexistent/cctl:/x]\n", "/nonexistent/cctl"),
])
def test_refusals_exit_2_and_leave_nothing(engine, selftest_image, tmp_path, unique_name,
                                           extra, needle):
    if needle in ("privileged", "cap_add=ALL"):
        ok, _ = engine.probe(selftest_image, {"privileged": True})
        if ok:
            pytest.skip("this engine allows privileged; the refusal cannot be shown here")
    if needle == "memlock":
        from containerctl.hostcheck import dockerd_memlock_hard
        if dockerd_memlock_hard() in (None, -1):
            pytest.skip("dockerd's memlock is unlimited here")
    prof = profile_file(tmp_path, selftest_image, extra)
    r = cli("up", "--profile", prof, "--name", unique_name)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert lines[1].startswith("  fix: ")
    assert "Traceback" not in r.stderr
    assert engine.find(unique_name) is None
    left = engine.api.containers(all=True, filters={"name": unique_name})
    assert left == [], "a failed up left a container behind"
    # and no probe container either
    probes = [c for c in engine.api.containers(all=True, filters={"label": "io.containerctl.probe=1"})]
    assert probes == []


def test_start_refused_by_engine_removes_created_container(engine, selftest_image, unique_name):
    """When the engine itself refuses the start, the created container is removed."""
    from containerctl.errors import EngineError
    from containerctl.profiles import load_profile
    from containerctl.runspec import build_spec
    ok, _ = engine.probe(selftest_image, {"privileged": True})
    if ok:
        pytest.skip("this engine allows privileged")
    p = load_profile("cpu-selftest", ["container.privileged=true"], site=False)
    spec = build_spec(p, selftest_image, name=unique_name)
    with pytest.raises(EngineError) as e:
        engine.create_and_start(spec)
    assert "capabilit" in e.value.message
    assert engine.find(unique_name) is None


def test_unknown_image_is_exit_2(engine, tmp_path, unique_name):
    prof = profile_file(tmp_path, "nosuch/image:v0")
    r = cli("up", "--profile", prof, "--name", unique_name)
    assert r.returncode == 2 and "nosuch/image:v0" in r.stderr and "fix:" in r.stderr


def test_unreachable_daemon_is_one_line():
    r = cli("ps", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert r.returncode == 2
    assert r.stderr.startswith("error: cannot reach a Docker engine at unix:///nonexistent")
    assert "fix:" in r.stderr and "Traceback" not in r.stderr


def test_a800_here_exits_2_without_container(engine, unique_name):
    r = cli("up", "--profile", "nvidia-a800", "--name", unique_name)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 2
    assert engine.find(unique_name) is None


def test_concurrent_up_makes_one_container(engine, selftest_image, tmp_path, unique_name):
    prof = profile_file(tmp_path, selftest_image)
    import os
    import sys
    exe = os.path.join(os.path.dirname(sys.executable), "containerctl")
    procs = [subprocess.Popen([exe, "up", "--profile", prof, "--name", unique_name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert len(managed(engine, unique_name)) == 1
    joined = " ".join(o[0] for o in outs)
    assert "created" in joined and "nothing changed" in joined


def test_noop_fast_path_sees_file_changes(engine, selftest_image, tmp_path, unique_name):
    """The no-op shortcut must notice an edited profile, a new site overlay, and a removed
    container."""
    prof = profile_file(tmp_path, selftest_image)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    r = cli("up", "--profile", prof, "--name", unique_name)
    assert "nothing changed" in r.stdout
    # edit the profile file: same arguments, different content → recreated
    text = open(prof).read().replace("shm_size: 256M", "shm_size: 320M")
    open(prof, "w").write(text)
    r = cli("up", "--profile", prof, "--name", unique_name)
    assert "recreated" in r.stdout, r.stdout
    assert engine.inspect(unique_name)["HostConfig"]["ShmSize"] == 320 * 1024 ** 2
    # a site overlay appears → its content applies
    site = tmp_path / "site.yaml"
    site.write_text("container:\n  env: {SITE: 'yes'}\n")
    r = cli("up", "--profile", prof, "--name", unique_name, env={"CONTAINERCTL_SITE": str(site)})
    assert "recreated" in r.stdout
    # the container was removed behind our back → created again
    engine.remove(unique_name, force=True)
    r = cli("up", "--profile", prof, "--name", unique_name, env={"CONTAINERCTL_SITE": str(site)})
    assert "created" in r.stdout and engine.find(unique_name).running


# ---------------------------------------------------------------------------------------------
# hardening: unmanaged containers, names, leftovers, bounded waits, special files, caches

def _two_line_error(r, needle):
    out = f"exit {r.returncode}\nstdout:{r.stdout}\nstderr:{r.stderr}"
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout, out
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("  fix: "), out
    assert needle in r.stderr, out


def test_unmanaged_container_is_left_alone_by_every_verb(engine, selftest_image, tmp_path,
                                                         unique_name):
    """A container of that name that containerctl did not create: every verb refuses it
    (exit 2) and it is neither stopped, restarted, exec'd into nor replaced."""
    c = engine.api.create_container(selftest_image, ["sleep", "infinity"], name=unique_name)
    engine.api.start(c["Id"])
    started = engine.inspect(unique_name)["State"]["StartedAt"]
    prof = profile_file(tmp_path, selftest_image)
    verbs = [["up", "--profile", prof, "--name", unique_name],
             ["up", "--profile", prof, "--name", unique_name, "--force-recreate"],
             ["down", "--name", unique_name], ["down", "--name", unique_name, "--volumes"],
             ["restart", "--name", unique_name], ["status", "--name", unique_name],
             ["status", "--name", unique_name, "--json"],
             ["exec-stage", "perf", "--name", unique_name], ["exec", "--name", unique_name,
                                                            "--", "touch", "/tmp/x"],
             ["logs", "--name", unique_name], ["shell", "--name", unique_name],
             ["run", "--profile", prof, "--name", unique_name, "-q"]]
    for v in verbs:
        r = cli(*v, input="touch /tmp/x\n")
        _two_line_error(r, f"container {unique_name} exists but was not created by containerctl")
    info = engine.inspect(unique_name)
    assert info["Id"] == c["Id"] and info["State"]["Running"]
    assert info["State"]["StartedAt"] == started            # never restarted
    code, _ = engine.exec_capture(unique_name, ["test", "-e", "/tmp/x"])
    assert code == 1                                         # never exec'd into


def test_names_never_escape_the_state_directory(tmp_path, monkeypatch):
    home = tmp_path / "deep" / "home"
    for bad in ["../../x", "../../../etc/cctl-x", "a/b"]:
        r = cli("up", "--name", bad, env={"CONTAINERCTL_HOME": str(home)})
        _two_line_error(r, "not a valid container name")
    found = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(home in p.parents for p in found), found
    from containerctl import paths
    monkeypatch.setenv("CONTAINERCTL_HOME", str(home))
    for bad in ["../../x", "a/b", "..", "/abs"]:
        assert paths.lock_file(bad).parent == home / "locks"
        assert paths.state_file(bad).parent == home / "state"


def _start_refused_profile(tmp_path, image, unique_name, extra=""):
    """A profile the engine accepts at create and refuses at start (no init, a command that
    does not exist): nothing containerctl's pre-checks can see."""
    return profile_file(tmp_path, image, f"""\
        container:
          init: false
          command: [/nonexistent-cctl-cmd]
          volumes: ['{unique_name}-data:/data']
        """ + extra)


def _volumes(engine, prefix):
    return sorted(v["Name"] for v in engine.api.volumes().get("Volumes") or []
                  if v["Name"].startswith(prefix))


def test_failed_up_removes_the_volumes_it_created(engine, selftest_image, tmp_path, unique_name):
    prof = _start_refused_profile(tmp_path, selftest_image, unique_name)
    r = cli("up", "--profile", prof, "--name", unique_name)
    _two_line_error(r, "nonexistent-cctl-cmd")
    assert engine.find(unique_name) is None
    assert _volumes(engine, unique_name) == []
    # a workspace volume that existed before (an earlier up's, kept by `down`) is kept
    from containerctl import labels as L
    engine.api.create_volume(f"{unique_name}-workspace",
                             labels={L.MANAGED: "1", L.VOLUME_OF: unique_name})
    try:
        r = cli("up", "--profile", prof, "--name", unique_name)
        _two_line_error(r, "nonexistent-cctl-cmd")
        assert _volumes(engine, unique_name) == [f"{unique_name}-workspace"]
    finally:
        engine.remove_volume(f"{unique_name}-workspace")


def test_interrupted_up_leaves_nothing_and_the_next_up_converges(engine, selftest_image, tmp_path,
                                                                 unique_name, monkeypatch):
    """Ctrl-C during the start, and during the create (after the engine made the container but
    before its answer came back): nothing is left; a container left created-but-not-started (a
    Ctrl-C that killed the process outright) is started by the next `up`."""
    from containerctl import lifecycle
    from containerctl.profiles import load_profile
    p = load_profile(profile_file(tmp_path, selftest_image), site=False)
    api = engine.api

    def interrupt(*a, **kw):
        raise KeyboardInterrupt
    real_create = api.create_container

    def create_then_interrupt(*a, **kw):
        real_create(*a, **kw)
        raise KeyboardInterrupt
    for where, fake in (("start", interrupt), ("create_container", create_then_interrupt)):
        monkeypatch.setattr(api, where, fake)
        with pytest.raises(KeyboardInterrupt):
            lifecycle.up(engine, p, unique_name)
        monkeypatch.undo()
        assert engine.find(unique_name) is None, where
        assert _volumes(engine, unique_name) == [], where
    # killed outright between create and start: the next `up` finishes the job
    spec = lifecycle.plan(p, unique_name, engine, build=True)
    engine.api.create_container(spec.image, spec.command, name=spec.name, labels=spec.labels,
                                host_config=engine.api.create_host_config(**spec.host_config))
    r = cli("up", "--profile", p.source_file, "--name", unique_name)
    assert r.returncode == 0 and "started" in r.stdout, r.stdout + r.stderr
    assert engine.find(unique_name).running
    r = cli("up", "--profile", p.source_file, "--name", unique_name)
    assert "nothing changed" in r.stdout


def test_noop_fast_path_after_a_set_recreates(engine, selftest_image, tmp_path, unique_name):
    """up → up --set container.shm_size=512M → up: the last one goes back to the profile's shm
    size (the remembered no-op for the plain `up` must not answer "nothing changed")."""
    prof = profile_file(tmp_path, selftest_image)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    assert "nothing changed" in cli("up", "--profile", prof, "--name", unique_name).stdout
    r = cli("up", "--profile", prof, "--name", unique_name, "--set", "container.shm_size=512M")
    assert "recreated" in r.stdout
    assert engine.inspect(unique_name)["HostConfig"]["ShmSize"] == 512 * 1024 ** 2
    r = cli("up", "--profile", prof, "--name", unique_name)
    assert "recreated" in r.stdout, r.stdout
    assert engine.inspect(unique_name)["HostConfig"]["ShmSize"] == 256 * 1024 ** 2
    assert "nothing changed" in cli("up", "--profile", prof, "--name", unique_name).stdout


def test_up_warns_about_host_mounts_also_on_the_fast_path(engine, selftest_image, tmp_path,
                                                          unique_name):
    prof = profile_file(tmp_path, selftest_image, "container:\n  volumes: ['/etc:/host-etc:ro']\n")
    for expect in ("created", "nothing changed"):
        r = cli("up", "--profile", prof, "--name", unique_name)
        assert r.returncode == 0 and expect in r.stdout, r.stdout + r.stderr
        assert r.stderr.startswith("warning: ") and "/etc" in r.stderr, r.stderr


@pytest.mark.parametrize("bad", ["[]", '"text"', '{"k": []}', '{"k": {"name": "x"}}',
                                 '{"k": {"name": 1, "config_hash": "h", "files": [],'
                                 ' "globs": [], "fingerprint": "f"}}', "{not json"])
def test_damaged_up_cache_is_dropped_and_rebuilt(engine, selftest_image, tmp_path, unique_name,
                                                 bad):
    import os
    prof = profile_file(tmp_path, selftest_image)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    cache = os.path.join(os.environ["CONTAINERCTL_HOME"], "cache", "up.json")
    with open(cache, "w") as fh:
        fh.write(bad)
    r = cli("up", "--profile", prof, "--name", unique_name)
    assert r.returncode == 0 and "nothing changed" in r.stdout, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("warning: ") and "damaged" in r.stderr
    data = json.load(open(cache))
    assert isinstance(data, dict) and len(data) == 1
    (entry,) = data.values()
    assert entry["name"] == unique_name and isinstance(entry["files"], list)
    # and the rebuilt cache works: the next `up` is the quiet fast path
    r = cli("up", "--profile", prof, "--name", unique_name)
    assert "nothing changed" in r.stdout and r.stderr == ""


def test_damaged_image_tag_memo_is_dropped(tmp_path, monkeypatch, capsys):
    from containerctl import upcache
    monkeypatch.setenv("CONTAINERCTL_HOME", str(tmp_path))
    f = tmp_path / "cache" / "image-tags.json"
    f.parent.mkdir(parents=True)
    for bad in ("[]", '{"k": "tag"}', '{"k": {"tag": 1}}'):
        f.write_text(bad)
        assert upcache.image_tag_lookup("spec", {}, "base", []) is None
        upcache.image_tag_record("spec", {}, "base", [], "containerctl/spec:abc")
        assert "damaged" in capsys.readouterr().err
        assert upcache.image_tag_lookup("spec", {}, "base", []) == "containerctl/spec:abc"


def test_ssh_engine_that_never_answers_fails_in_seconds():
    """An ssh:// host that accepts TCP and then says nothing (loopback listener): the command
    fails in about 10 s naming the host, instead of hanging forever."""
    import shutil
    import socket
    import threading
    import time
    if not shutil.which("ssh"):
        pytest.skip("no ssh client")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])   # accept, never answer
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        r = cli("ps", env={"DOCKER_HOST": f"ssh://root@127.0.0.1:{port}"}, timeout=60)
        took = time.monotonic() - t0
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()
    assert held, "the listener was never reached"
    _two_line_error(r, f"127.0.0.1:{port}")
    assert took < 20, took


def test_put_dir_refuses_special_files_up_front(engine, selftest_image, tmp_path, unique_name):
    import os
    import socket
    import time
    from containerctl.errors import UsageError
    c = engine.api.create_container(selftest_image, ["sleep", "infinity"], name=unique_name,
                                    labels={"io.containerctl.managed": "1"})
    engine.api.start(c["Id"])
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "ok.txt").write_text("x")
    os.mkfifo(src / "sub" / "pipe")
    t0 = time.monotonic()
    with pytest.raises(UsageError) as e:
        engine.put_dir(unique_name, src, "/tmp")
    assert time.monotonic() - t0 < 5
    assert str(src / "sub" / "pipe") in e.value.message and "FIFO" in e.value.message
    os.unlink(src / "sub" / "pipe")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(src / "sock"))
    try:
        with pytest.raises(UsageError) as e:
            engine.put_dir(unique_name, src, "/tmp")
        assert "socket" in e.value.message
    finally:
        s.close()
    os.unlink(src / "sock")
    # an excluded directory's contents are not looked at; the rest is copied
    (src / "build").mkdir()
    os.mkfifo(src / "build" / "pipe")
    engine.put_dir(unique_name, src, "/tmp", arcname="src",
                   exclude=lambda n: n.split("/")[1:2] == ["build"])
    assert engine.exec_capture(unique_name, ["cat", "/tmp/src/ok.txt"]) == (0, "x")


def test_source_with_a_fifo_is_refused_through_the_cli(engine, selftest_image, tmp_path,
                                                       unique_name):
    import os
    prof = profile_file(tmp_path, selftest_image)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    src = tmp_path / "flagcx"
    src.mkdir()
    (src / "Makefile").write_text("all:\n")
    os.mkfifo(src / "fifo")
    # refused before anything runs (deps included): the FIFO is named
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "--source", str(src), "-q", timeout=60)
    _two_line_error(r, str(src / "fifo"))


def test_damaged_state_file_does_not_break_status(engine, selftest_image, tmp_path, unique_name):
    import os
    prof = profile_file(tmp_path, selftest_image)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    from containerctl.stages import state as runner
    cid = engine.find(unique_name).id
    for bad in ["[]", '"x"', '{"container_id": 5}', '{"container_id": "%s", "stages": []}' % cid,
                '{"container_id": "%s", "stages": {"deps": "passed"}}' % cid, "{not json"]:
        f = runner.state_file(unique_name)
        os.makedirs(f.parent, exist_ok=True)
        f.write_text(bad)
        for args in (["status", "--name", unique_name], ["status", "--name", unique_name, "--json"]):
            r = cli(*args)
            assert r.returncode == 0 and "Traceback" not in r.stderr, (bad, r.stdout, r.stderr)
            assert "internal error" not in r.stderr, (bad, r.stderr)
