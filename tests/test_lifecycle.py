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
    f = tmp_path / "t.yaml"
    f.write_text(textwrap.dedent(f"""\
        name: lifecycle-test
        image: {image}
        platform: cpu
        container:
          shm_size: 256M
          env: {{A: "1"}}
        flagcx:
          make_flags: [USE_CPU_SELFTEST=1]
        """) + textwrap.dedent(extra))
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
    line = r.stdout.strip().splitlines()[-1]
    assert engine.find(unique_name) is None, "--dry-run created something"

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
