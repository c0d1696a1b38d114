"""doctor on this host (compared with what the host really is, never with constants), profile
detection from fake /dev listings, and `profile new`."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from conftest import cli
from containerctl import doctor as D
from containerctl import hostcheck
from containerctl.errors import NotFound, UsageError
from containerctl.profiles import all_profile_names, load_profile
from containerctl.sizes import approx_size


def by_name(findings):
    out = {}
    for f in findings:
        assert f.status in ("pass", "warn", "fail"), f
        assert f.detail, f
        if f.status != "pass":
            assert f.fix, f"{f.name}: a warn/fail says its fix"
        out.setdefault(f.name, f)
    return out


# ---------------------------------------------------------------------------------------------
# doctor on the real engine

@pytest.fixture(scope="module")
def probe_image(engine):
    img, _ = D._probe_image(engine, load_profile("cpu-selftest", site=False))
    if img is None:
        pytest.skip("no local image to probe with (build cpu-selftest)")
    return img


@pytest.fixture(scope="module")
def selftest_findings(engine, probe_image):
    from containerctl.engine import get_engine
    return by_name(D.run_doctor(get_engine, load_profile("cpu-selftest", site=False)))


@pytest.mark.docker
def test_doctor_engine_and_storage(engine, selftest_findings):
    f = selftest_findings["engine"]
    assert f.status == "pass"
    assert engine.version()["Version"] in f.detail
    s = selftest_findings["storage"]
    assert engine.info()["Driver"] in s.detail


@pytest.mark.docker
def test_doctor_memlock_reads_the_real_limit(selftest_findings):
    f = selftest_findings["memlock"]
    limit = hostcheck.dockerd_memlock_hard()
    if limit is None:
        assert f.status in ("warn", "pass", "fail") and "not readable" in f.detail or \
            "unknown" in f.detail
    elif limit == -1:
        assert f.status == "pass" and "unlimited" in f.detail
    else:
        # cpu-selftest asks no memlock: limited dockerd is a warning, with the real figure
        assert f.status == "warn", f
        assert f"{limit} bytes" in f.detail and approx_size(limit) in f.detail
        assert "LimitMEMLOCK" in f.fix


@pytest.mark.docker
def test_doctor_memlock_fails_for_a_profile_asking_unlimited(engine):
    limit = hostcheck.dockerd_memlock_hard()
    if limit in (None, -1):
        pytest.skip("dockerd's memlock is unlimited or unreadable here")
    from containerctl.engine import get_engine
    p = load_profile("cpu-selftest", ["container.ulimits.memlock=-1"], site=False)
    f = by_name(D.run_doctor(get_engine, p))["memlock"]
    assert f.status == "fail" and f"{limit} bytes" in f.detail
    assert f"container.ulimits.memlock={limit}" in f.fix


@pytest.mark.docker
def test_doctor_privileged_matches_a_fresh_probe(engine, probe_image, selftest_findings):
    ok, _msg = engine.probe(probe_image, {"privileged": True})
    f = selftest_findings["privileged"]
    # cpu-selftest does not ask for privileged: a refusing host is a warning, not a failure
    assert f.status == ("pass" if ok else "warn"), f
    if not ok:
        assert "privileged" in f.fix


@pytest.mark.docker
def test_doctor_privileged_fails_for_a_profile_that_needs_it(engine, probe_image):
    from containerctl.engine import get_engine
    ok, _msg = engine.probe(probe_image, {"privileged": True})
    prof = load_profile("cpu-selftest", ["container.privileged=true"], site=False)
    f = by_name(D.run_doctor(get_engine, prof))["privileged"]
    assert f.status == ("pass" if ok else "fail"), f


@pytest.mark.docker
def test_doctor_gpus(engine, selftest_findings):
    f = selftest_findings["gpus"]
    if hostcheck.gpu_runtime_available(engine):
        assert f.status in ("pass", "fail", "warn")
    else:
        # cpu-selftest does not use --gpus: a warning, not a failure
        assert f.status == "warn" and "NVIDIA" in f.detail
        p = load_profile("cpu-selftest", ["container.gpus=all"], site=False)
        g = by_name(D.run_doctor(lambda: engine, p))["gpus"]
        assert g.status == "fail"


@pytest.mark.docker
def test_doctor_profile_checks(selftest_findings):
    assert selftest_findings["devices"].status == "pass"
    assert selftest_findings["vendor tool"].status == "pass"
    assert selftest_findings["shm"].status == "pass" and "1G" in selftest_findings["shm"].detail
    assert selftest_findings["disk"].status in ("pass", "warn", "fail")
    assert selftest_findings["image"].status in ("pass", "warn")
    b = selftest_findings["bootstrap"]
    present = [t for t in ("mmdebstrap", "debootstrap") if shutil.which(t)]
    assert b.status == ("pass" if present else "warn")
    for t in present:
        assert t in b.detail


@pytest.mark.docker
def test_doctor_missing_devices_and_volumes_fail(engine):
    p = load_profile("cpu-selftest", ["container.devices=[/dev/cctl-nope0]",
                                      "container.volumes=[/nonexistent/cctl:/data]"], site=False)
    f = by_name(D.run_doctor(lambda: engine, p, fresh=False))
    assert f["devices"].status == "fail" and "/dev/cctl-nope0" in f["devices"].detail
    assert f["volumes"].status == "fail" and "/nonexistent/cctl" in f["volumes"].detail


@pytest.mark.docker
def test_doctor_json_cli(engine, probe_image):
    r = cli("doctor", "--profile", "cpu-selftest", "--json")
    rows = json.loads(r.stdout)
    assert {"name", "status", "detail", "fix"} <= set(rows[0])
    names = [x["name"] for x in rows]
    for n in ("engine", "storage", "memlock", "privileged", "gpus", "devices", "vendor tool",
              "shm", "disk", "image", "bootstrap"):
        assert n in names, n
    failed = any(x["status"] == "fail" for x in rows)
    assert r.returncode == (1 if failed else 0), r.stderr


@pytest.mark.docker
def test_doctor_table_cli(engine, probe_image):
    r = cli("doctor")
    assert r.returncode in (0, 1), r.stderr
    assert "engine" in r.stdout and "passed" in r.stdout and "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------
# doctor without an engine / without an image (no Docker needed)

def test_doctor_unreachable_engine_still_checks_the_host():
    from containerctl.engine import Engine
    f = by_name(D.run_doctor(lambda: Engine("unix:///nonexistent-cctl.sock"),
                             load_profile("cpu-selftest", site=False)))
    assert f["engine"].status == "fail" and "nonexistent-cctl.sock" in f["engine"].detail
    assert "privileged" not in f and "gpus" not in f
    for n in ("memlock", "devices", "vendor tool", "shm", "disk", "bootstrap"):
        assert n in f


class _NoImageEngine:
    base_url = "tcp://fake-engine:2375"    # remote: no host paths are read

    def version(self):
        return {"Version": "99.0", "ApiVersion": "1.43", "Os": "linux", "Arch": "amd64"}

    def info(self):
        return {"Driver": "overlay2", "DockerRootDir": "/var/lib/docker", "Runtimes": {"runc": {}}}

    def images(self):
        return []

    def image_exists(self, ref):
        return False

    def image_id(self, ref):
        return None

    def probe(self, *a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("probed without an image")


def test_doctor_without_any_image_says_probes_need_one():
    f = by_name(D.run_doctor(_NoImageEngine, load_profile("cpu-selftest", site=False)))
    assert f["engine"].status == "pass" and "99.0" in f["engine"].detail
    assert f["probes"].status == "warn" and "image" in f["probes"].detail
    assert "privileged" not in f
    assert f["gpus"].status == "warn"


def test_doctor_no_profile_suggests_one():
    f = by_name(D.run_doctor(_NoImageEngine, None, which=lambda t: None))
    assert "cpu-selftest" in f["profile"].detail
    assert f["vendor tool"].status == "warn"
    assert f["bootstrap"].status == "warn" and "mmdebstrap" in f["bootstrap"].fix


# ---------------------------------------------------------------------------------------------
# detect

def tools(*names):
    return lambda t: f"/usr/bin/{t}" if t in names else None


NV = ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null", "dri"]
XPU = ["xpu0", "xpu1", "xpuctrl", "null"]


@pytest.mark.parametrize("devs,which,want", [
    (NV, tools(), "nvidia-h200"),
    (["null"], tools("nvidia-smi"), "nvidia-h200"),
    (XPU, tools("xpu-smi"), "kunlunxin-p800-devices"),
    (["dri", "mxcd"], tools(), "metax-c550"),
    (["null"], tools("mx-smi"), "metax-c550"),
    (["cambricon_ctl", "cambricon_dev0", "cambricon_dev1", "dri"], tools(), "cambricon-mlu"),
    (["davinci0", "davinci1", "davinci_manager", "devmm_svm", "hisi_hdc"], tools(), "ascend-910"),
    (["null"], tools("npu-smi"), "ascend-910"),
    (["null"], tools("ixsmi"), "iluvatar-corex"),
    (["iluvatar0"], tools(), "iluvatar-corex"),
    (["dri"], tools("mthreads-gmi"), "mthreads-musa"),
    (["kfd", "mkfd", "dri"], tools(), "hygon-dcu"),
    (["kfd", "dri"], tools("hy-smi"), "hygon-dcu"),
    (["kfd", "dri"], tools(), "amd-rocm"),
    (["kfd", "dri"], tools("rocm-smi"), "amd-rocm"),
    (["null", "tty", "dri", "shm"], tools(), "cpu-selftest"),
    ([], tools(), "cpu-selftest"),
])
def test_detect(devs, which, want):
    res = D.detect(devs=devs, which=which, gpu_runtime=lambda: False, privileged_ok=lambda: False)
    assert res["profile"] == want, res
    assert res["reason"]
    assert want in all_profile_names()
    if want != "cpu-selftest":
        assert res["candidates"] and res["candidates"][0]["profile"] == want


def test_detect_nvidia_with_runtime_and_kunlunxin_privileged():
    assert D.detect(devs=NV, which=tools(), gpu_runtime=lambda: True)["profile"] == "nvidia-a800"
    r = D.detect(devs=NV, which=tools(), gpu_runtime=lambda: None)
    assert r["profile"] == "nvidia-h200" and "nvidia-a800" in [c["profile"] for c in r["candidates"]]
    assert D.detect(devs=XPU, which=tools(), privileged_ok=lambda: True)["profile"] == \
        "kunlunxin-p800"
    # cannot tell: the runbook's profile, with the device-mode one as the next candidate
    r = D.detect(devs=XPU, which=tools(), privileged_ok=lambda: None)
    assert r["profile"] == "kunlunxin-p800"
    assert r["candidates"][1]["profile"] == "kunlunxin-p800-devices"


def test_detect_accepts_dev_paths_and_json_shape():
    r = D.detect(devs=["/dev/davinci0", "/dev/davinci_manager"], which=tools())
    assert r["profile"] == "ascend-910"
    json.dumps(r)


def test_profile_detect_cli():
    r = cli("profile", "detect", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["profile"] in all_profile_names()


# ---------------------------------------------------------------------------------------------
# profile new

def test_new_profile_writes_a_profile_that_extends_the_base(tmp_path):
    path = D.new_profile("mysite-a800", "nvidia-a800", str(tmp_path), False)
    assert path == tmp_path / "mysite-a800.yaml"
    text = path.read_text()
    data = yaml.safe_load(text)
    assert data["name"] == "mysite-a800" and data["extends"] == "nvidia-a800"
    assert "volumes+:" in text and "/workspace" in text and "/nfs/" in text
    assert "shm_size" in text and "visible_devices" in text
    p = load_profile(str(path), site=False)
    base = load_profile("nvidia-a800", site=False)
    assert p.name == "mysite-a800"
    assert (p.platform, p.image, p.container) == (base.platform, base.image, base.container)

    # the commented starter, uncommented, appends the site volume to the base's
    lines = []
    for ln in text.splitlines():
        if ln.startswith("# container:") or ln.startswith("#   volumes+:") or \
                ln.startswith("#     - /nfs/"):
            ln = ln[2:]
        lines.append(ln)
    path.write_text("\n".join(lines) + "\n")
    p = load_profile(str(path), site=False)
    assert p.container.volumes[:len(base.container.volumes)] == base.container.volumes
    assert p.container.volumes[-1].startswith("/nfs/") and \
        p.container.volumes[-1].endswith(":/workspace")


def test_new_profile_default_dir_is_on_the_search_path(tmp_path):
    path = D.new_profile("site-cpu", "cpu-selftest", None, False)
    assert path.parent.name == "profiles" and path.is_file()
    assert load_profile("site-cpu", site=False).platform == "cpu"


def test_new_profile_refuses_overwrite_unknown_base_and_bad_name(tmp_path):
    path = D.new_profile("mine", "cpu-selftest", str(tmp_path), False)
    path.write_text("# edited by hand\n")
    with pytest.raises(UsageError) as ei:
        D.new_profile("mine", "cpu-selftest", str(tmp_path), False)
    assert "--force" in ei.value.hint and ei.value.exit_code == 2
    assert path.read_text() == "# edited by hand\n"
    assert D.new_profile("mine", "cpu-selftest", str(tmp_path), True) == path
    assert "extends: cpu-selftest" in path.read_text()

    with pytest.raises(NotFound) as ei:
        D.new_profile("other", "nvidia-a80", str(tmp_path), False)
    assert "nvidia-a800" in ei.value.hint
    assert not (tmp_path / "other.yaml").exists()
    with pytest.raises(UsageError):
        D.new_profile("Bad Name", "cpu-selftest", str(tmp_path), False)


def test_profile_new_cli(tmp_path):
    r = cli("profile", "new", "clisite", "--from", "metax-c550", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "clisite.yaml").is_file()
    r = cli("profile", "validate", str(tmp_path / "clisite.yaml"))
    assert r.returncode == 0 and "platform metax" in r.stdout, r.stderr


# ---------------------------------------------------------------------------------------------
# host mounts: the host's root, /etc and the Docker socket are said, unless meant

@pytest.mark.docker
@pytest.mark.parametrize("vol,allowed", [("/var/run/docker.sock:/var/run/docker.sock", False),
                                         ("/:/host:ro", False), ("/etc/:/host-etc:ro", False),
                                         ("/run/docker.sock:/s", True)])
def test_doctor_warns_about_host_mounts(engine, tmp_path, vol, allowed):
    f = tmp_path / "p.yaml"
    f.write_text(f"name: dm-test\nextends: cpu-selftest\ncontainer:\n  volumes: ['{vol}']\n"
                 + ("  allow_host_mounts: true\n" if allowed else ""))
    r = cli("doctor", "--profile", str(f), "--json")
    assert "Traceback" not in r.stderr and r.returncode in (0, 1), r.stderr
    rows = [x for x in json.loads(r.stdout) if x["name"] == "host mounts"]
    if allowed:
        assert rows == []
    else:
        assert len(rows) == 1 and rows[0]["status"] == "warn"
        assert vol.split(":")[0] in rows[0]["detail"] or vol in rows[0]["detail"]
        assert "allow_host_mounts" in rows[0]["fix"]


def test_probe_cache_of_the_wrong_shape_is_dropped_and_rebuilt(tmp_path, monkeypatch, capsys):
    """A probes.json holding valid JSON of another shape: warned about, probed afresh, rewritten
    (an engine double: only the cache handling is under test here)."""
    monkeypatch.setenv("CONTAINERCTL_HOME", str(tmp_path))

    class Eng:
        calls = 0

        def info(self):
            return {"ID": "x", "ServerVersion": "1", "KernelVersion": "k"}

        def probe(self, image, hc):
            Eng.calls += 1
            return True, ""
    for bad in ("[]", '"text"', '{"k": []}', '{"x|1|k|privileged": {"ok": "yes", "msg": 1}}',
                "{not json"):
        (tmp_path / "probes.json").write_text(bad)
        before = Eng.calls
        assert hostcheck.probe(Eng(), "img", "privileged", {"privileged": True}) == (True, "")
        assert Eng.calls == before + 1
        assert "damaged" in capsys.readouterr().err
        data = json.loads((tmp_path / "probes.json").read_text())
        assert data == {"x|1|k|privileged": {"ok": True, "msg": ""}}
    # a good cache is used as is, silently
    assert hostcheck.probe(Eng(), "img", "privileged", {"privileged": True}) == (True, "")
    assert Eng.calls == 5 and capsys.readouterr().err == ""
