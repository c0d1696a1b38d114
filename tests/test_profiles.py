"""Profiles: validation with file:line, extends, site overlay, --set, every built-in renders."""
from __future__ import annotations

import json
import textwrap

import pytest

from conftest import cli
from containerctl import profiles as P
from containerctl.errors import NotFound, ProfileError, UsageError
from containerctl.runspec import build_spec

BUILTIN = sorted(P.all_profile_names())


def write(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(textwrap.dedent(text))
    return f


def test_builtins_cover_every_platform():
    expected = {"cpu-selftest", "nvidia-a800", "nvidia-h200", "kunlunxin-p800", "metax-c550",
                "cambricon-mlu", "ascend-910", "iluvatar-corex", "mthreads-musa", "hygon-dcu",
                "amd-rocm"}
    assert expected <= set(BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_validates_and_renders(name):
    p = P.load_profile(name, site=False)
    spec = build_spec(p, "img:tag", check_devices=False)
    line = spec.docker_run_line()
    assert line.startswith("docker run -itd --name cctl-" + name)
    assert spec.config_hash and len(spec.config_hash) == 16
    # the make flag names a vendor, and the visible-devices env reaches the container
    assert p.flagcx.make_flags, "every profile says how FlagCX is built"
    if p.flagcx.visible_devices_env:
        want = p.container.env.get(p.flagcx.visible_devices_env, p.flagcx.visible_devices)
        if want == "auto":
            # counted in the container when a stage runs, never passed on as the word
            assert p.flagcx.visible_devices_env not in spec.env, spec.env
            assert "auto" not in spec.env.values()
        else:
            assert spec.env[p.flagcx.visible_devices_env] == want


def test_p800_dry_run_carries_runbook_flags():
    p = P.load_profile("kunlunxin-p800", site=False)
    line = build_spec(p, p.image).docker_run_line()
    for flag in ["--privileged", "--net=host", "--pid=host", "--shm-size 128G",
                 "--ulimit memlock=-1", "--group-add video", "-v /usr/local/xpu:/usr/local/xpu",
                 "flagcx_kunlunxin_base:v1.1"]:
        assert flag in line, flag


def test_a800_dry_run_carries_runbook_flags():
    p = P.load_profile("nvidia-a800", site=False)
    line = build_spec(p, p.image).docker_run_line()
    for flag in ["--privileged", "--net=host", "--pid=host", "--cap-add=ALL", "--gpus all",
                 "--shm-size 128G", "--ulimit memlock=-1", "-v /dev/:/dev/",
                 "-v /lib/modules/:/lib/modules/"]:
        assert flag in line, flag


def test_unknown_key_names_file_line_and_suggests(tmp_path):
    f = write(tmp_path, "bad.yaml", """\
        name: bad
        image: x
        container:
          shm_szie: 1G
        """)
    with pytest.raises(ProfileError) as e:
        P.load_profile(str(f))
    assert f"{f}:4" in e.value.message
    assert "container.shm_szie" in e.value.message
    assert "container.shm_size" in e.value.hint


def test_bad_size_names_line(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\nimage: x\ncontainer:\n  shm_size: 12XB\n")
    with pytest.raises(ProfileError) as e:
        P.load_profile(str(f))
    assert f"{f}:4" in e.value.message and "12XB" in e.value.message


def test_yaml_syntax_error_names_line(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\nimage: x\ncontainer:\n  env: [a, b\n")
    with pytest.raises(ProfileError) as e:
        P.load_profile(str(f))
    assert "YAML syntax error" in e.value.message and str(f) in e.value.message


def test_wrong_type(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\nimage: x\ncontainer:\n  privileged: maybe\n")
    with pytest.raises(ProfileError) as e:
        P.load_profile(str(f))
    assert f"{f}:4" in e.value.message and "privileged" in e.value.message


def test_missing_image(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\n")
    with pytest.raises(ProfileError) as e:
        P.load_profile(str(f))
    assert "missing required key `image`" in e.value.message


def test_extends_inherits_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTAINERCTL_PROFILE_PATH", str(tmp_path))
    write(tmp_path, "mysite-p800.yaml", """\
        name: mysite-p800
        extends: kunlunxin-p800
        container:
          shm_size: 64G
          volumes+: [/nfs/me:/workspace]
        """)
    p = P.load_profile("mysite-p800")
    assert p.container.shm_size == "64G"
    assert p.container.privileged is True                      # inherited
    assert p.container.volumes == ["/usr/local/xpu:/usr/local/xpu", "/nfs/me:/workspace"]
    spec = build_spec(p, "img")
    # /workspace is the user's volume now: no named workspace volume is added
    assert spec.workspace_volume is None
    assert "/nfs/me:/workspace" in spec.host_config["binds"]


def test_extends_loop(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTAINERCTL_PROFILE_PATH", str(tmp_path))
    write(tmp_path, "a.yaml", "name: a\nextends: b\nimage: x\n")
    write(tmp_path, "b.yaml", "name: b\nextends: a\nimage: x\n")
    with pytest.raises(ProfileError) as e:
        P.load_profile("a")
    assert "loop" in e.value.message


def test_site_overlay_adds_workspace(tmp_path, monkeypatch):
    site = write(tmp_path, "site.yaml", """\
        container:
          volumes+: [/nfs/changtao:/workspace]
        profiles:
          nvidia-a800:
            container: {shm_size: 256G}
        """)
    monkeypatch.setenv("CONTAINERCTL_SITE", str(site))
    p = P.load_profile("nvidia-a800")
    assert "/nfs/changtao:/workspace" in p.container.volumes
    assert p.container.shm_size == "256G"
    q = P.load_profile("kunlunxin-p800")
    assert q.container.shm_size == "128G"  # the per-profile part applies to its profile only


def test_site_overlay_error_names_site_file(tmp_path, monkeypatch):
    site = write(tmp_path, "site.yaml", "container:\n  volumez: []\n")
    monkeypatch.setenv("CONTAINERCTL_SITE", str(site))
    with pytest.raises(ProfileError) as e:
        P.load_profile("cpu-selftest")
    assert str(site) in e.value.message


def test_set_overrides_and_validates():
    p = P.load_profile("kunlunxin-p800", ["container.privileged=false", "flagcx.nranks=4"],
                       site=False)
    assert p.container.privileged is False and p.flagcx.nranks == 4
    with pytest.raises(ProfileError) as e:
        P.load_profile("kunlunxin-p800", ["container.shm_size=lots"], site=False)
    assert e.value.message.startswith("--set")
    with pytest.raises(UsageError):
        P.load_profile("kunlunxin-p800", ["novalue"], site=False)


def test_unknown_profile_suggests():
    with pytest.raises(NotFound) as e:
        P.load_profile("kunlunxin-p80")
    assert "kunlunxin-p800" in e.value.hint


def test_config_hash_changes_with_config_only():
    p = P.load_profile("cpu-selftest", site=False)
    a = build_spec(p, "img").config_hash
    b = build_spec(P.load_profile("cpu-selftest", site=False), "img").config_hash
    c = build_spec(P.load_profile("cpu-selftest", ["container.shm_size=2G"], site=False),
                   "img").config_hash
    assert a == b != c


def test_device_globs_expand_and_missing_fails():
    from containerctl.errors import HostError
    p = P.load_profile("kunlunxin-p800-devices", site=False)
    fake = {"/dev/xpu[0-9]*": ["/dev/xpu0", "/dev/xpu1"]}
    spec = build_spec(p, "img", expand=lambda pat: fake.get(pat, []))
    assert "/dev/xpu0:/dev/xpu0:rwm" in spec.host_config["devices"]
    assert "/dev/xpuctrl:/dev/xpuctrl:rwm" in spec.host_config["devices"]
    with pytest.raises(HostError) as e:
        build_spec(p, "img", expand=lambda pat: [])
    assert "/dev/xpu[0-9]*" in e.value.message


def test_schema_is_json_schema():
    s = P.json_schema()
    assert s["title"] == "Profile" and "container" in s["properties"]
    json.dumps(s)


def test_sizes():
    assert P.parse_size("128G") == 128 * 1024**3
    assert P.parse_size("100gb") == 100 * 1024**3
    assert P.parse_size(4096) == 4096
    with pytest.raises(ValueError):
        P.parse_size("12XB")
    assert P.parse_ulimit("memlock", -1) == (-1, -1)
    assert P.parse_ulimit("nofile", "65535:65535") == (65535, 65535)
    assert P.parse_ulimit("memlock", "8M") == (8 * 1024**2, 8 * 1024**2)


# ---------------------------------------------------------------------------------------------
# hardening: host-mount warnings, names as written, image references

def _write(tmp_path, body):
    f = tmp_path / "p.yaml"
    f.write_text(body)
    return str(f)


@pytest.mark.parametrize("vol", ["/var/run/docker.sock:/var/run/docker.sock", "/run/docker.sock:/d",
                                 "/:/host", "//:/host", "/etc:/e:ro", "/etc/:/e"])
def test_validate_warns_about_host_mounts(tmp_path, vol):
    f = _write(tmp_path, f"name: hm\nimage: local/x\ncontainer:\n  volumes: ['{vol}']\n")
    r = cli("profile", "validate", f)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    assert r.stderr.startswith("warning: ") and repr(vol) in r.stderr
    assert "allow_host_mounts" in r.stderr
    f = _write(tmp_path, f"name: hm\nimage: local/x\ncontainer:\n  volumes: ['{vol}']\n"
                         "  allow_host_mounts: true\n")
    r = cli("profile", "validate", f)
    assert r.returncode == 0 and r.stderr == ""


def test_ordinary_mounts_do_not_warn(tmp_path):
    f = _write(tmp_path, "name: hm\nimage: local/x\ncontainer:\n  volumes: ['/etc/hosts:/h:ro', "
                         "'/etc/alternatives:/etc/alternatives:ro', '/opt:/opt', 'data:/data']\n")
    r = cli("profile", "validate", f)
    assert r.returncode == 0 and r.stderr == ""


def test_names_are_read_as_written(tmp_path):
    from containerctl.profiles import load_profile
    for written, name in [("010", "010"), ("1e3", "1e3"), ("0x1f", "0x1f"), ('"007"', "007")]:
        p = load_profile(_write(tmp_path, f"name: {written}\nimage: local/x\n"), site=False)
        assert p.name == name
    p = load_profile(_write(tmp_path, "name: x\nimage: local/x\n"), ["name=010"], site=False)
    assert p.name == "010"
    p = load_profile(_write(tmp_path, "name: x\nimage: local/x\ncontainer:\n"
                                      "  ulimits: {nofile: 1024:2048}\n"), site=False)
    assert p.container.ulimits["nofile"] == "1024:2048"


@pytest.mark.parametrize("ref", ["busybox", "local/busybox:1.36", "registry.example.com:5000/a/b:v1",
                                 "localhost/x", "a__b/c-d.e:TAG_1", "Reg.Example.com/x",
                                 "x@sha256:" + "a" * 64])
def test_valid_image_refs(ref):
    from containerctl.profiles import check_image_ref
    assert check_image_ref(ref) == ref


def test_refused_ulimit_is_named():
    from containerctl.engine import explain_refusal
    for n, name in [(7, "nofile"), (8, "memlock"), (6, "nproc"), (3, "stack")]:
        cause, fix = explain_refusal("OCI runtime create failed: error setting rlimits for ready "
                                     f"process: error setting rlimit type {n}: operation not "
                                     "permitted")
        assert f"ulimit {name}" in cause and f"container.ulimits.{name}" in fix
        if name != "memlock":
            assert "memlock" not in (cause + fix).lower()


def test_names_module():
    from containerctl.names import check_name, safe_filename
    from containerctl.errors import UsageError
    for bad in ["", "../x", "a/b", "-a", ".a", "a b", "a:b", "é", "a" * 129, "a\x00b"]:
        with pytest.raises(UsageError):
            check_name(bad)
    for good in ["a", "cctl-x_1.2", "A" * 128]:
        assert check_name(good) == good
    for n in ["../../x", "a/b", "..", ".", "", "/", "a\x00b", "x" * 300]:
        f = safe_filename(n)
        assert "/" not in f and "\x00" not in f and f not in (".", "..", "") and len(f) <= 90
    assert safe_filename("a/b") != safe_filename("a_b")   # no collisions with valid names
    assert safe_filename("cctl-x") == "cctl-x"
