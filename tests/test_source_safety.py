"""Issue 18 (items 2 and 6): containerctl never deletes what it did not populate, and a --source
tree is bounded. On the real engine: a user's checkout on a bind mount is built in place or
refused, never emptied; a directory containerctl filled (its `.containerctl-source` marker)
is still replaced when the source changes; flagcx.dir can never be `/`, a system directory or
outside the workspace; every bad symlink class in a source tree is exit 2 naming the path, at
once, with nothing created. The unit tests check the validation and the tree scan directly."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli
from test_lifecycle import profile_file

ROOT = Path(__file__).resolve().parent.parent
EXPORT = ROOT / "workloads" / "flagcx-selftest" / "tools" / "export-generation.sh"


# ---------------------------------------------------------------------------------------------
# helpers

def export(dest: Path, fault: str | None = None) -> Path:
    """The FlagCX stand-in (selftest — NOT FlagCX) as a v0.13-layout checkout."""
    subprocess.run(["bash", str(EXPORT), "v0.13", str(dest)] + ([fault] if fault else []),
                   check=True, capture_output=True, text=True)
    return dest


def user_checkout(dest: Path) -> Path:
    """A user's working checkout: a git repository with a commit and uncommitted work."""
    export(dest)
    env = dict(os.environ, GIT_AUTHOR_NAME="u", GIT_AUTHOR_EMAIL="u@x", GIT_COMMITTER_NAME="u",
               GIT_COMMITTER_EMAIL="u@x")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "mine"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True, env=env)
    (dest / "WIP-not-committed.txt").write_text("my uncommitted work\n")
    (dest / "flagcx").mkdir(exist_ok=True)
    (dest / "flagcx" / "local-edit.c").write_text("/* mine */\n")
    return dest


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (links as their target text) → its sha256."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            rel = str(p.relative_to(root))
            out[rel] = ("link:" + os.readlink(p)) if p.is_symlink() else \
                hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_untouched(before: dict[str, str], root: Path) -> None:
    after = snapshot(root)
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    assert not gone and not changed, f"deleted: {gone[:10]} ({len(gone)}), changed: {changed[:10]}"


def two_line_error(r, *needles):
    out = f"exit {r.returncode}\nstdout:{r.stdout}\nstderr:{r.stderr}"
    # notes another part prints first (e.g. the state reconciled with the container) aside
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("note: ")]
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout, out
    assert len(lines) == 2 and lines[0].startswith("error: ") and \
        lines[1].startswith("  fix: "), out
    for n in needles:
        assert n in r.stderr, (n, out)


def runs(home: str) -> list[Path]:
    return sorted((Path(home) / "results").glob("*/run.json"))


def in_container(engine, name: str, script: str) -> str:
    code, out = engine.exec_capture(name, ["sh", "-c", script])
    assert code == 0, out
    return out


@pytest.fixture
def home():
    return os.environ["CONTAINERCTL_HOME"]


# ---------------------------------------------------------------------------------------------
# flagcx.dir validation (unit: no engine)

BAD_DIRS = [
    ("/", "root directory"),
    ("/etc", "system directory /etc"),
    ("/usr/lib", "system directory /usr"),
    ("/usr/local/FlagCX", "system directory /usr"),
    ("/proc/1", "system directory /proc"),
    ("/var", "whole system directory"),
    ("/root", "whole system directory"),
    ("FlagCX", "not an absolute path"),
    ("./FlagCX", "not an absolute path"),
    ("/workspace/../etc", "not a normalised path"),
    ("/workspace/FlagCX/", "not a normalised path"),
    ("/workspace//FlagCX", "not a normalised path"),
    ("/workspace", "the workspace itself"),
    ("/opt/FlagCX", "not under the workspace"),
    ("/tmp/FlagCX", "not under the workspace"),
]


@pytest.mark.parametrize("value,why", BAD_DIRS)
def test_flagcx_dir_refused_at_load(value, why):
    from containerctl.errors import ProfileError
    from containerctl.profiles import load_profile
    with pytest.raises(ProfileError) as e:
        load_profile("cpu-selftest", [f"flagcx.dir={value}"], site=False)
    assert e.value.exit_code == 2
    assert why in e.value.message and "flagcx.dir" in e.value.message, e.value.message
    assert "--set flagcx.dir=/workspace/FlagCX" in e.value.hint


@pytest.mark.parametrize("sets", [
    [],
    ["flagcx.dir=/workspace/FlagCX-cctl"],
    ["flagcx.dir=/workspace/src/FlagCX"],
    ["container.workspace=/data", "container.workdir=/data", "flagcx.dir=/data/FlagCX"],
    # /var is fine below the workspace
    ["container.workspace=/var/ws", "container.workdir=/var/ws", "flagcx.dir=/var/ws/FlagCX"],
])
def test_flagcx_dir_accepted(sets):
    from containerctl.profiles import load_profile
    p = load_profile("cpu-selftest", sets, site=False)
    assert p.flagcx.dir.startswith("/")


def test_flagcx_dir_follows_the_workspace():
    """The default flagcx.dir follows a moved workspace; one given explicitly outside it is
    refused, naming the workspace in the fix."""
    from containerctl.errors import ProfileError
    from containerctl.profiles import flagcx_dir_problem, load_profile
    moved = ["container.workspace=/data", "container.workdir=/data"]
    assert load_profile("cpu-selftest", moved, site=False).flagcx.dir == "/data/FlagCX"
    with pytest.raises(ProfileError) as e:
        load_profile("cpu-selftest", moved + ["flagcx.dir=/workspace/FlagCX"], site=False)
    assert "not under the workspace (/data)" in e.value.message
    assert "flagcx.dir=/data/FlagCX" in e.value.hint
    # no workspace at all: only the system-directory rules apply
    assert flagcx_dir_problem("/srv/x/FlagCX", []) is None
    assert flagcx_dir_problem("/etc/FlagCX", []) is not None
    assert flagcx_dir_problem("/var/lib/FlagCX", []) is not None


def test_flagcx_dir_in_a_profile_file_names_file_and_line(tmp_path):
    from containerctl.errors import ProfileError
    from containerctl.profiles import load_profile
    f = tmp_path / "p.yaml"
    f.write_text("name: p\nextends: cpu-selftest\nflagcx:\n  dir: /etc\n")
    with pytest.raises(ProfileError) as e:
        load_profile(str(f), site=False)
    assert e.value.message.startswith(f"{f}:4: `flagcx.dir`: /etc"), e.value.message


@pytest.mark.parametrize("value", ["/etc", "/", "/usr/lib", "FlagCX"])
def test_flagcx_dir_refused_by_the_cli_before_anything_is_made(value, unique_name, home):
    """`run --set flagcx.dir=/etc` is exit 2 with the fix; no container, no run record."""
    from containerctl.engine import get_engine
    r = cli("run", "--name", unique_name, "--set", f"flagcx.dir={value}", "-q", timeout=120)
    two_line_error(r, "flagcx.dir", "--set flagcx.dir=/workspace/FlagCX")
    assert get_engine().find(unique_name) is None
    assert not runs(home)


# ---------------------------------------------------------------------------------------------
# the source tree scan (unit: no engine)

def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.c").write_text("int a;\n")
    (src / "sub" / "b.c").write_text("int b;\n")
    return src


def _fifo_outside(tmp_path):
    p = tmp_path / "outside.fifo"
    os.mkfifo(p)
    return str(p)


LINK_CLASSES = {
    # name: (where the link is, its target (a callable makes one outside the tree), phrase)
    "dev-zero": ("zero", "/dev/zero", "/dev/zero, a device file"),
    "dev-zero-relative": ("sub/zero", "../../../../../../../../../../../dev/zero",
                          "leaves the source tree"),
    "fifo-outside": ("pipe", _fifo_outside, "a FIFO (named pipe), outside the source tree"),
    "absolute-inside": ("abs", lambda tmp: str(tmp / "src" / "a.c"), "absolute path"),
    "out-of-tree": ("sub/up", "../../secret.txt", "leaves the source tree"),
    "dangling": ("sub/gone", "nothing-here.c", "dangling symlink"),
    "loop": ("loop1", "loop2", "symlink loop"),
    "dir-loop": ("sub/again", "..", "directory loop"),
    "self-dir-loop": ("sub/me", ".", "directory loop"),
}


def _plant(src: Path, tmp_path: Path, cls: str) -> Path:
    where, target, _ = LINK_CLASSES[cls]
    if callable(target):
        target = target(tmp_path)
    link = src / where
    os.symlink(target, link)
    if cls == "loop":
        os.symlink("loop1", src / "loop2")
    (tmp_path / "secret.txt").write_text("outside\n")
    return link


@pytest.mark.parametrize("cls", sorted(LINK_CLASSES))
def test_scan_refuses_each_bad_link_class(cls, tmp_path):
    from containerctl.errors import UsageError
    from containerctl.stages.source import check_tree, source_identity
    src = _tree(tmp_path)
    link = _plant(src, tmp_path, cls)
    for fn in (lambda: check_tree(src), lambda: source_identity("dir", str(src), "")):
        t0 = time.monotonic()
        with pytest.raises(UsageError) as e:
            fn()
        assert time.monotonic() - t0 < 2
        assert e.value.exit_code == 2
        assert str(link) in e.value.message or (cls == "loop" and "loop" in e.value.message), \
            e.value.message
        assert LINK_CLASSES[cls][2] in e.value.message, e.value.message


def test_scan_refuses_a_fifo_reached_through_a_link_inside(tmp_path):
    """The FIFO itself is in the tree: named as a FIFO, whatever links to it."""
    from containerctl.errors import UsageError
    from containerctl.stages.source import check_tree
    src = _tree(tmp_path)
    os.mkfifo(src / "sub" / "p")
    os.symlink("sub/p", src / "to-pipe")
    with pytest.raises(UsageError) as e:
        check_tree(src)
    assert "FIFO" in e.value.message


def test_scan_accepts_links_inside_and_never_follows_them(tmp_path):
    """Relative links to a file or a sibling directory inside the tree are fine; the
    fingerprint hashes the link's target text, not what it points to."""
    from containerctl.stages.source import _tree_fingerprint, check_tree
    src = _tree(tmp_path)
    os.symlink("a.c", src / "alias.c")
    os.symlink("sub", src / "sub2")
    os.symlink("../a.c", src / "sub" / "up.c")
    check_tree(src)
    fp1 = _tree_fingerprint(src)
    (src / "a.c").write_text("int a; /* changed */\n")
    fp2 = _tree_fingerprint(src)
    assert fp1 != fp2      # the file changed
    os.unlink(src / "alias.c")
    os.symlink("sub/b.c", src / "alias.c")
    assert _tree_fingerprint(src) != fp2     # the link's target changed


def test_fingerprint_of_plain_tree_unchanged(tmp_path):
    """A tree of regular files fingerprints as before (the stand-in's recorded fingerprints
    stay valid): the old algorithm, inlined."""
    from containerctl.stages.source import _tree_fingerprint
    src = export(tmp_path / "fx")
    (src / "build").mkdir(exist_ok=True)
    (src / "build" / "x.o").write_text("obj")
    h = hashlib.sha256()
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src).as_posix()
        if rel.startswith(("build/", ".git/")) or "/build/" in rel or p.is_dir():
            continue
        h.update(rel.encode())
        h.update(p.read_bytes())
    assert _tree_fingerprint(src) == h.hexdigest()[:16]


def test_fingerprint_reads_in_chunks(tmp_path):
    """A 256 MiB file is hashed with a bounded amount of memory."""
    import tracemalloc
    from containerctl.stages.source import _tree_fingerprint
    src = _tree(tmp_path)
    with open(src / "big.bin", "wb") as f:
        f.truncate(256 << 20)          # sparse: no disk used
    tracemalloc.start()
    try:
        _tree_fingerprint(src)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_tree_bounds(tmp_path, monkeypatch):
    from containerctl.errors import UsageError
    from containerctl.stages.source import check_tree
    src = _tree(tmp_path)
    deep = src / "deep"
    os.makedirs(deep / "/".join(["d"] * 200))
    with pytest.raises(UsageError) as e:      # not a RecursionError (exit 70)
        check_tree(src)
    assert "nested more than" in e.value.message
    import shutil
    shutil.rmtree(deep)
    check_tree(src)
    with open(src / "big.bin", "wb") as f:
        f.truncate(10 << 20)
    monkeypatch.setenv("CONTAINERCTL_SOURCE_MAX_BYTES", str(1 << 20))
    with pytest.raises(UsageError) as e:
        check_tree(src)
    assert "CONTAINERCTL_SOURCE_MAX_BYTES" in e.value.hint
    monkeypatch.delenv("CONTAINERCTL_SOURCE_MAX_BYTES")
    monkeypatch.setenv("CONTAINERCTL_SOURCE_MAX_FILES", "3")
    with pytest.raises(UsageError) as e:
        check_tree(src)
    assert "CONTAINERCTL_SOURCE_MAX_FILES" in e.value.hint
    monkeypatch.setenv("CONTAINERCTL_SOURCE_MAX_FILES", "lots")
    with pytest.raises(UsageError):
        check_tree(src)


# ---------------------------------------------------------------------------------------------
# end to end on the real engine

def _mounted_profile(tmp_path, image, host_ws: Path, extra: str = "") -> str:
    return profile_file(tmp_path, image, f"""\
        container:
          workdir: /workspace
          volumes: ["{host_ws}:/workspace"]
          env: {{OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
                 OMPI_MCA_btl_vader_single_copy_mechanism: none}}
        flagcx:
          source: selftest
          mpi_home: /usr/lib/x86_64-linux-gnu/openmpi
          nranks: 2
        {extra}""")


@pytest.mark.docker
def test_user_checkout_on_a_bind_mount_is_never_emptied(engine, selftest_image, tmp_path,
                                                        unique_name, home):
    """The issue's case: the README's site overlay mounts a host directory at /workspace and
    the user's checkout is inside it. `run --source <that checkout> --only deps --only build`
    builds it in place (nothing copied, nothing removed); the default source and a git URL
    into it are refused (exit 2) with the fix; every file the user had is still there, byte
    for byte, .git and uncommitted work included."""
    ws = tmp_path / "ws"
    ws.mkdir()
    co = user_checkout(ws / "FlagCX")
    before = snapshot(co)
    assert any(k.startswith(".git/") for k in before) and "WIP-not-committed.txt" in before
    prof = _mounted_profile(tmp_path, selftest_image, ws)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0

    # the default source (the stand-in) would replace the user's checkout: refused, untouched
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "-q", timeout=300)
    two_line_error(r, "/workspace/FlagCX", "no .containerctl-source marker", str(ws),
                   "--set flagcx.dir=/workspace/FlagCX-cctl", f"--source {co}")
    assert_untouched(before, co)
    assert not runs(home), "a refused run stores nothing"

    # a git URL: the clone would go into the user's directory: refused before any fetch
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "--source", "https://example.invalid/FlagCX.git", "-q", timeout=300)
    two_line_error(r, "no .containerctl-source marker")
    assert_untouched(before, co)

    # the checkout itself as --source: built in place, nothing removed
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "--source", str(co), "-q", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_untouched(before, co)
    assert (co / "build" / "lib" / "libflagcx.so").is_file()
    meta = json.loads(runs(home)[-1].read_text())
    log = (runs(home)[-1].parent / "logs" / "build.log").read_text()
    assert "building in place in " + str(co) in log and "nothing removed" in log, log[:2000]
    assert "copying" not in log.split("\n", 3)[0]
    assert meta["status"] == "passed"
    # its marker says in place: a later run with another source still refuses it
    assert (co / ".containerctl-source").read_text().split()[1] == "in-place"
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "build", "-q",
            timeout=300)
    two_line_error(r, "built in place")
    assert_untouched(before, co)

    # another directory on the same mount, given as the fix says: filled and marked there
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "--set", "flagcx.dir=/workspace/FlagCX-cctl", "-q", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (ws / "FlagCX-cctl" / ".containerctl-source").is_file()
    assert_untouched(before, co)


@pytest.mark.docker
def test_source_overlapping_flagcx_dir_is_refused(engine, selftest_image, tmp_path, unique_name):
    """--source the whole mounted workspace while flagcx.dir is inside it: copying would write
    into (and could empty part of) the source itself."""
    ws = tmp_path / "ws"
    ws.mkdir()
    export(ws / "tree")
    before = snapshot(ws)
    prof = _mounted_profile(tmp_path, selftest_image, ws)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "--source", str(ws), "-q", timeout=300)
    two_line_error(r, "inside the source")
    assert_untouched(before, ws)
    assert not (ws / "FlagCX").exists()


@pytest.mark.docker
def test_mount_inside_flagcx_dir_is_refused(engine, selftest_image, tmp_path, unique_name):
    """A host directory mounted inside flagcx.dir (e.g. a shared third-party tree): emptying
    flagcx.dir would delete through the mount, so the run is refused; the files stay."""
    shared = tmp_path / "third-party"
    shared.mkdir()
    (shared / "keep.h").write_text("/* shared */\n")
    prof = profile_file(tmp_path, selftest_image, f"""\
        container:
          volumes: ["{shared}:/workspace/FlagCX/third-party"]
        """)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "-q", timeout=300)
    two_line_error(r, "has a mount inside it", "/workspace/FlagCX/third-party")
    assert (shared / "keep.h").read_text() == "/* shared */\n"


@pytest.mark.docker
def test_unmarked_dir_in_a_volume_is_refused_and_a_marked_one_replaced(
        engine, selftest_image, tmp_path, unique_name, home):
    """flagcx.dir in the workspace volume: a directory someone else put there (no marker) is
    refused, untouched; a directory containerctl filled is replaced when the source changes
    (a file gone from the source does not survive), and the marker names the new source."""
    prof = profile_file(tmp_path, selftest_image, """\
        container:
          workdir: /workspace
          env: {OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
                OMPI_MCA_btl_vader_single_copy_mechanism: none}
        flagcx:
          mpi_home: /usr/lib/x86_64-linux-gnu/openmpi
        """)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    in_container(engine, unique_name, "mkdir -p /workspace/FlagCX/.git && echo mine > "
                 "/workspace/FlagCX/notes.txt && echo ref > /workspace/FlagCX/.git/HEAD")
    a = export(tmp_path / "a")
    (a / "stale-only-in-a.txt").write_text("stale\n")
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "--source", str(a), "-q", timeout=300)
    two_line_error(r, "no .containerctl-source marker", "--set flagcx.dir=/workspace/FlagCX-cctl")
    assert "sits on" not in r.stderr and "bind-mounted" not in r.stderr   # a volume, not a bind
    assert in_container(engine, unique_name, "cat /workspace/FlagCX/notes.txt "
                        "/workspace/FlagCX/.git/HEAD") == "mine\nref\n"

    # the user moves their directory away: containerctl fills and marks flagcx.dir
    in_container(engine, unique_name, "mv /workspace/FlagCX /workspace/mine")
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "--source", str(a), "-q", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    from containerctl.stages.source import _tree_fingerprint, read_marker
    assert read_marker(engine, unique_name, "/workspace/FlagCX") == _tree_fingerprint(a)
    assert "stale-only-in-a.txt" in in_container(engine, unique_name, "ls /workspace/FlagCX")

    # another source: the marked directory is emptied and refilled (the stale file is gone)
    b = export(tmp_path / "b")
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "build",
            "--source", str(b), "-q", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    ls = in_container(engine, unique_name, "ls -A /workspace/FlagCX")
    assert "stale-only-in-a.txt" not in ls and ".containerctl-source" in ls
    assert read_marker(engine, unique_name, "/workspace/FlagCX") == _tree_fingerprint(b)
    assert in_container(engine, unique_name, "cat /workspace/mine/notes.txt") == "mine\n"

    # the marker removed by hand: the directory is no longer containerctl's to empty
    in_container(engine, unique_name, "rm /workspace/FlagCX/.containerctl-source")
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "build",
            "--source", str(a), "-q", timeout=300)
    two_line_error(r, "no .containerctl-source marker")
    assert "Makefile" in in_container(engine, unique_name, "ls /workspace/FlagCX")

    # flagcx.dir reached through a symlink (here to /etc): refused, /etc untouched
    in_container(engine, unique_name, "ln -s /etc /workspace/etc-link")
    n_etc = in_container(engine, unique_name, "ls -A /etc | wc -l")
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "build", "--set",
            "flagcx.dir=/workspace/etc-link", "--source", str(a), "-q", timeout=300)
    two_line_error(r, "symlink", "/etc")
    assert in_container(engine, unique_name, "ls -A /etc | wc -l") == n_etc


@pytest.mark.docker
def test_bad_links_in_source_refused_end_to_end(engine, selftest_image, tmp_path, unique_name,
                                                home):
    """Each symlink class through `run --source`: exit 2 naming the path within a few seconds,
    before anything is copied or recorded (the container's flagcx.dir stays absent)."""
    prof = profile_file(tmp_path, selftest_image)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    for cls in sorted(LINK_CLASSES):
        d = tmp_path / cls
        d.mkdir()
        src = _tree(d)
        (src / "Makefile").write_text("all:\n")
        link = _plant(src, d, cls)
        t0 = time.monotonic()
        r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only",
                "build", "--source", str(src), "-q", timeout=60)
        took = time.monotonic() - t0
        two_line_error(r, LINK_CLASSES[cls][2])
        assert str(link) in r.stderr or cls == "loop", r.stderr
        assert took < 20, (cls, took)
    assert not runs(home), "a refused run stores nothing"
    code, _ = engine.exec_capture(unique_name, ["test", "-e", "/workspace/FlagCX"])
    assert code != 0, "nothing was copied"


@pytest.mark.docker
def test_special_file_sockets_refused(engine, selftest_image, tmp_path, unique_name):
    """A socket in the tree (the FIFO case is in test_lifecycle): exit 2 naming it."""
    prof = profile_file(tmp_path, selftest_image)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    src = _tree(tmp_path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(src / "sub" / "sock"))
    try:
        r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only",
                "build", "--source", str(src), "-q", timeout=60)
    finally:
        s.close()
    two_line_error(r, str(src / "sub" / "sock"), "socket")


# ---------------------------------------------------------------------------------------------
# the cluster's MPICH copy: mpi_home is replaced only when containerctl filled it

def _fake_mpich_wheel(tmp_path: Path, version: str = "4.2.3") -> Path:
    import zipfile
    whl = tmp_path / f"mpich-{version}-py3-none-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(whl, "w") as z:
        for name, text in (("bin/mpirun", "#!/bin/sh\n"),
                           ("bin/mpichversion", f"#!/bin/sh\necho 'MPICH Version: {version}'\n")):
            zi = zipfile.ZipInfo(f"mpich-{version}.data/data/{name}")
            zi.external_attr = 0o755 << 16
            z.writestr(zi, text)
        z.writestr(f"mpich-{version}.data/data/include/mpi.h", "/* */\n")
    return whl


@pytest.mark.docker
def test_cluster_mpich_never_replaces_a_users_mpi_home(engine, selftest_image, tmp_path,
                                                       unique_name):
    from containerctl.cluster.inventory import ClusterOpts, Host, HostEntry
    from containerctl.cluster.mpi import MPICH_MARKER, ensure
    from containerctl.errors import HostError
    c = engine.api.create_container(selftest_image, ["sleep", "infinity"], name=unique_name,
                                    labels={"io.containerctl.managed": "1"})
    engine.api.start(c["Id"])
    h = Host(entry=HostEntry(name="a", profile="cpu-selftest"), profile=None, engine=engine,
             container=unique_name)
    whl = _fake_mpich_wheel(tmp_path)
    quiet = (lambda *a: None)

    # someone's directory at mpi_home (no marker): refused before anything changes
    in_container(engine, unique_name, "mkdir -p /opt/theirs/bin && echo mine > /opt/theirs/keep")
    opts = ClusterOpts(name="t", mpi_home="/opt/theirs", mpich_wheel=str(whl))
    with pytest.raises(HostError) as e:
        ensure([h], opts, None, quiet, quiet)
    assert e.value.exit_code == 2 and "/opt/theirs" in e.value.message
    assert "mpi_home" in e.value.hint
    assert in_container(engine, unique_name, "cat /opt/theirs/keep") == "mine\n"

    # an absent mpi_home: filled and marked
    opts = ClusterOpts(name="t", mpi_home="/opt/m/mpich", mpich_wheel=str(whl))
    assert ensure([h], opts, None, quiet, quiet) == {"a": "4.2.3"}
    assert in_container(engine, unique_name, f"cat /opt/m/mpich/{MPICH_MARKER}") == "4.2.3\n"

    # containerctl's own copy of another version: replaced (a stale file does not survive)
    in_container(engine, unique_name, "echo stale > /opt/m/mpich/stale && printf "
                 "'#!/bin/sh\\necho MPICH Version: 4.1\\n' > /opt/m/mpich/bin/mpichversion")
    assert ensure([h], opts, None, quiet, quiet) == {"a": "4.2.3"}
    assert "stale" not in in_container(engine, unique_name, "ls /opt/m/mpich")


@pytest.mark.docker
def test_git_source_clones_beside_and_marks(engine, selftest_image, tmp_path, unique_name):
    """A git source: cloned beside flagcx.dir and swapped in marked (its commit); a later
    directory source replaces it (marked), and a git source replaces that again; no clone
    leftovers."""
    work = user_checkout(tmp_path / "work")
    sha = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(tmp_path / "repo.git")],
                   check=True)
    prof = profile_file(tmp_path, selftest_image, f"""\
        container:
          workdir: /workspace
          volumes: ["{tmp_path / 'repo.git'}:/srv/repo.git:ro"]
          env: {{OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1"}}
        flagcx:
          mpi_home: /usr/lib/x86_64-linux-gnu/openmpi
        """)
    from containerctl.stages.source import _tree_fingerprint, read_marker
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    url = "file:///srv/repo.git"
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "deps", "--only", "build",
            "--source", url, "-q", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert read_marker(engine, unique_name, "/workspace/FlagCX") == sha
    assert "WIP-not-committed.txt" not in in_container(engine, unique_name, "ls /workspace/FlagCX")
    a = export(tmp_path / "a")
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "build", "--source",
            str(a), "-q", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert read_marker(engine, unique_name, "/workspace/FlagCX") == _tree_fingerprint(a)
    r = cli("run", "--profile", prof, "--name", unique_name, "--only", "build", "--source", url,
            "-q", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert read_marker(engine, unique_name, "/workspace/FlagCX") == sha
    assert "cctl-clone" not in in_container(engine, unique_name, "ls -A /workspace")


@pytest.mark.docker
def test_destination_states_and_the_emptying_shell(engine, selftest_image, unique_name):
    """What flagcx.dir is, as containerctl sees it, and the shell that empties it checking the
    marker again itself (whatever changed since the look): no marker, or a checkout built in
    place, is never emptied."""
    from containerctl.errors import StageError
    from containerctl.stages.source import _EMPTY, _empty, inspect_dest
    c = engine.api.create_container(selftest_image, ["sleep", "infinity"], name=unique_name,
                                    labels={"io.containerctl.managed": "1"})
    engine.api.start(c["Id"])
    sh = (lambda s: in_container(engine, unique_name, s))
    sh("mkdir -p /w/empty /w/mine /w/ours/sub /w/inplace && echo x > /w/mine/f && echo f > /w/file"
       " && echo y > /w/ours/sub/g && printf 'abc123\\n' > /w/ours/.containerctl-source"
       " && echo z > /w/inplace/h && printf 'abc123 in-place\\n' > /w/inplace/.containerctl-source"
       " && ln -s /etc /w/link && mkdir -p /w/fake && ln -s /etc/hostname "
       "/w/fake/.containerctl-source && echo k > /w/fake/keep")
    states = {p: inspect_dest(engine, unique_name, f"/w/{p}") for p in
              ["absent", "empty", "mine", "file", "ours", "inplace", "link", "fake"]}
    assert {p: d.state for p, d in states.items()} == {
        "absent": "absent", "empty": "empty", "mine": "unmarked", "file": "notdir",
        "ours": "marked", "inplace": "marked", "link": "link", "fake": "unmarked"}
    assert [p for p, d in states.items() if d.ours] == ["absent", "empty", "ours"]
    assert states["ours"].marker == ["abc123"] and states["link"].resolved == "/etc"

    def empty(p):
        return engine.exec(unique_name, ["sh", "-c", _EMPTY, "empty", f"/w/{p}"])
    assert empty("mine") == 3 and empty("fake") == 3 and empty("link") == 3
    assert empty("inplace") == 4
    assert sh("cat /w/mine/f /w/inplace/h /w/fake/keep") == "x\nz\nk\n"
    assert sh("ls /etc | wc -l").strip() != "0"
    # the Python side says so as a stage error, naming the directory
    with pytest.raises(StageError) as e:
        _empty(engine, unique_name, "/w/mine", states["mine"])
    assert "/w/mine" in e.value.message
    # containerctl's own directory: emptied, the marker kept (saying `incomplete`) until refilled
    assert empty("ours") == 0
    assert sh("ls -A /w/ours") == ".containerctl-source\n"
    assert sh("cat /w/ours/.containerctl-source") == "incomplete\n"
    from containerctl.stages.source import read_marker
    assert read_marker(engine, unique_name, "/w/ours") is None
    assert empty("absent") == 0 and sh("cat /w/absent/.containerctl-source") == "incomplete\n"


@pytest.mark.docker
@pytest.mark.parametrize("cls", ["dev-zero", "fifo-outside", "loop", "dir-loop"])
def test_bad_source_refused_before_a_container_is_made(cls, engine, selftest_image, tmp_path,
                                                       unique_name, home):
    """No container yet: `run --source <bad tree>` is refused before `up` makes one (nor its
    workspace volume), within seconds."""
    prof = profile_file(tmp_path, selftest_image)
    src = _tree(tmp_path)
    link = _plant(src, tmp_path, cls)
    t0 = time.monotonic()
    r = cli("run", "--profile", prof, "--name", unique_name, "--source", str(src), "-q",
            timeout=60)
    took = time.monotonic() - t0
    two_line_error(r, LINK_CLASSES[cls][2])
    assert str(link) in r.stderr or cls == "loop"
    assert took < 20, took
    assert engine.find(unique_name) is None
    assert not engine.volume_exists(f"{unique_name}-workspace")
    assert not runs(home)


@pytest.mark.docker
def test_unmarked_dir_refuses_a_recreating_run_before_the_recreate(engine, selftest_image,
                                                                   tmp_path, unique_name):
    """A run whose changed settings would recreate the container, into a flagcx.dir that is
    not containerctl's: refused before the recreate (the same container keeps running)."""
    prof = profile_file(tmp_path, selftest_image)
    assert cli("up", "--profile", prof, "--name", unique_name).returncode == 0
    cid = engine.inspect(unique_name)["Id"]
    in_container(engine, unique_name, "mkdir -p /workspace/FlagCX && echo mine > "
                 "/workspace/FlagCX/notes.txt")
    r = cli("run", "--profile", prof, "--name", unique_name, "--set",
            "container.shm_size=300M", "--only", "deps", "--only", "build", "-q", timeout=300)
    two_line_error(r, "no .containerctl-source marker")
    assert engine.inspect(unique_name)["Id"] == cid
    assert in_container(engine, unique_name, "cat /workspace/FlagCX/notes.txt") == "mine\n"


@pytest.mark.skipif(os.geteuid() != 0 or not __import__("shutil").which("setpriv"),
                    reason="needs root and setpriv to scan as another user")
def test_unreadable_file_refused_by_the_scan():
    """A file the user cannot read is named by the scan (before the run), not found by the
    fingerprint mid-run. Run as `nobody` (root reads everything)."""
    import shutil
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="cctl-perm-", dir="/tmp"))
    try:
        src = d / "src"
        src.mkdir()
        os.chmod(d, 0o755)
        os.chmod(src, 0o755)
        (src / "ok.c").write_text("x\n")
        (src / "secret.c").write_text("s\n")
        os.chmod(src / "secret.c", 0o600)
        code = ("import sys; sys.path.insert(0, %r)\n"
                "from containerctl.stages.source import check_tree\n"
                "from containerctl.errors import UsageError\n"
                "try:\n    check_tree(%r)\nexcept UsageError as e:\n    print(e.message)\n"
                % (str(ROOT), str(src)))
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60)
        assert f"{src / 'secret.c'} cannot be read" in r.stdout, r.stdout + r.stderr
    finally:
        shutil.rmtree(d)
