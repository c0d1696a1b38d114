"""The bad-input corpus: every wrong thing a user can type or write, run through the real CLI.

Each case must exit 2 with exactly two lines on stderr — `error: <cause>` then `  fix: <hint>` —
no traceback, and nothing created (no container or workspace volume, no overwritten file).
A case the product gets wrong today is marked xfail(strict=True) with what it does instead, so
the corpus shows it and flips to a failure (XPASS) once it is fixed.
"""
from __future__ import annotations

import importlib.util
import textwrap
import uuid
from dataclasses import dataclass, field

import pytest

from conftest import cli


@dataclass
class Case:
    id: str
    args: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)   # relative to the case's cwd
    env: dict[str, str] = field(default_factory=dict)
    docker: bool = False        # reaches the engine: count containers before/after
    expect: str = ""            # a substring of stderr (a suggestion, the key, the file)
    xfail: str = ""             # why it fails today (a product bug outside this test)
    needs: str = ""             # privileged-refused | memlock-limited | no-gpu-runtime | cluster
    unchanged: str = ""         # a file that must be byte-identical afterwards


def prof(body: str, image: str = "{img}") -> str:
    """A profile file; `{tok}` makes its name (and so its default container name) unique."""
    return f"name: bi-{{tok}}\nimage: {image}\nplatform: cpu\n" + textwrap.dedent(body)


UP = ["up", "--profile", "p.yaml", "--name", "{name}"]
VALIDATE = ["profile", "validate", "p.yaml"]
SHOW = ["profile", "show", "cpu-selftest"]

CASES = [
    # --- YAML syntax --------------------------------------------------------------------------
    Case("yaml-unclosed-bracket", VALIDATE,
         {"p.yaml": "name: x\nimage: a\ncontainer: {devices: [/dev/a\n"}, expect="p.yaml:"),
    Case("yaml-mapping-in-scalar", VALIDATE,
         {"p.yaml": "name: x\nimage: a\ncontainer:\n  shm_size: 1G\n    ipc_mode: host\n"},
         expect="p.yaml:"),
    Case("yaml-tab-indent", VALIDATE,
         {"p.yaml": "name: x\nimage: a\ncontainer:\n\tshm_size: 1G\n"}, expect="YAML syntax"),
    Case("yaml-unclosed-quote", VALIDATE, {"p.yaml": 'name: "x\nimage: a\n'},
         expect="YAML syntax"),
    Case("yaml-undefined-alias", VALIDATE, {"p.yaml": "name: x\nimage: *nope\n"},
         expect="YAML syntax"),
    Case("yaml-top-level-list", VALIDATE, {"p.yaml": "- name: x\n- image: a\n"},
         expect="mapping"),
    Case("yaml-top-level-scalar", VALIDATE, {"p.yaml": "just some text\n"}, expect="mapping"),
    Case("yaml-not-utf8", VALIDATE, {"p.yaml": b"name: x\nimage: \xff\xfe\x00\n"},
         expect="p.yaml"),
    Case("yaml-empty-file", VALIDATE, {"p.yaml": ""}, expect="image"),
    Case("yaml-recursive-alias", VALIDATE, {"p.yaml": "name: x\nimage: a\nnotes: &x [*x]\n"},),
    # --- unknown keys -------------------------------------------------------------------------
    Case("unknown-top-level-key", VALIDATE, {"p.yaml": prof("imagee: b\n")},
         expect="did you mean `image`?"),
    Case("unknown-nested-key", VALIDATE, {"p.yaml": prof("container:\n  shm_sise: 1G\n")},
         expect="did you mean `container.shm_size`?"),
    Case("unknown-deep-key", VALIDATE, {"p.yaml": prof("stages:\n  perf:\n    iter: 3\n")},
         expect="did you mean `stages.perf.iters`?"),
    # --- wrong types --------------------------------------------------------------------------
    Case("type-bool", VALIDATE, {"p.yaml": prof("container:\n  privileged: maybe\n")},
         expect="container.privileged"),
    Case("type-int", VALIDATE, {"p.yaml": prof("flagcx:\n  nranks: two\n")},
         expect="flagcx.nranks"),
    Case("type-str-for-list", VALIDATE, {"p.yaml": prof("container:\n  cap_add: SYS_PTRACE\n")},
         expect="container.cap_add"),
    Case("type-list-for-str", VALIDATE,
         {"p.yaml": "name: x\nimage: [a, b]\n"}, expect="image"),
    Case("type-list-for-mapping", VALIDATE, {"p.yaml": prof("container:\n  env: [A=1]\n")},
         expect="container.env"),
    Case("type-section-scalar", VALIDATE, {"p.yaml": prof("container: host\n")},
         expect="container"),
    # --- sizes and ulimits --------------------------------------------------------------------
    Case("size-12XB", VALIDATE, {"p.yaml": prof("container:\n  shm_size: 12XB\n")},
         expect="12XB"),
    Case("size-negative", VALIDATE, {"p.yaml": prof("container:\n  shm_size: -1G\n")},
         expect="shm_size"),
    Case("size-perf-begin", VALIDATE, {"p.yaml": prof("stages:\n  perf:\n    begin: 1Q\n")},
         expect="1Q"),
    Case("ulimit-not-a-number", VALIDATE,
         {"p.yaml": prof("container:\n  ulimits: {memlock: lots}\n")}, expect="memlock"),
    Case("ulimit-unknown-subkey", VALIDATE,
         {"p.yaml": prof("container:\n  ulimits: {nofile: {soft: 1, max: 2}}\n")},
         expect="nofile"),
    # --- volume specs -------------------------------------------------------------------------
    Case("volume-no-colon", VALIDATE, {"p.yaml": prof("container:\n  volumes: [/data]\n")},
         expect="/data"),
    Case("volume-relative-target", VALIDATE,
         {"p.yaml": prof("container:\n  volumes: ['/tmp:data']\n")}, expect="/tmp:data"),
    Case("volume-bad-mode", VALIDATE,
         {"p.yaml": prof("container:\n  volumes: ['/tmp:/data:rx']\n")}, expect="ro or rw"),
    # --- profile names, files, extends --------------------------------------------------------
    Case("unknown-profile-name", ["profile", "show", "nvidia-a80"],
         expect="did you mean `nvidia-a800`?"),
    Case("unknown-profile-on-up", ["up", "--profile", "cpu-selftst", "--name", "{name}"],
         expect="did you mean `cpu-selftest`?"),
    Case("profile-file-missing", ["up", "--profile", "./nope.yaml", "--name", "{name}"],
         expect="nope.yaml"),
    Case("profile-file-is-directory", ["profile", "show", "dir.yaml/"],
         files={"dir.yaml/x": "x"}, expect="dir.yaml"),
    Case("extends-loop", ["profile", "show", "bi-a"],
         {"profs/bi-a.yaml": "name: bi-a\nextends: bi-b\nimage: a\n",
          "profs/bi-b.yaml": "name: bi-b\nextends: bi-a\nimage: a\n"},
         env={"CONTAINERCTL_PROFILE_PATH": "profs"}, expect="loop"),
    Case("extends-self", ["profile", "show", "bi-self"],
         {"profs/bi-self.yaml": "name: bi-self\nextends: bi-self\nimage: a\n"},
         env={"CONTAINERCTL_PROFILE_PATH": "profs"}, expect="loop"),
    Case("extends-unknown", VALIDATE, {"p.yaml": "name: x\nextends: nvidia-a80\n"},
         expect="did you mean `nvidia-a800`?"),
    Case("extends-not-a-name", VALIDATE, {"p.yaml": "name: x\nextends: [a, b]\nimage: a\n"},
         expect="extends"),
    # --- --set --------------------------------------------------------------------------------
    Case("set-without-equals", SHOW + ["--set", "container.shm_size"], expect="KEY=VALUE"),
    Case("set-bad-value", SHOW + ["--set", "container.shm_size=12XB"], expect="12XB"),
    Case("set-bad-bool", SHOW + ["--set", "container.privileged=maybe"], expect="privileged"),
    Case("set-on-non-mapping", SHOW + ["--set", "container.shm_size.x=1"],
         expect="not a mapping"),
    Case("set-unknown-key", SHOW + ["--set", "container.shm_sz=1G"],
         expect="did you mean `container.shm_size`?"),
    Case("set-empty-key", SHOW + ["--set", "=1"], expect="bad key"),
    Case("set-append-to-scalar", SHOW + ["--set", "container.shm_size+=1"],
         expect="not a list"),
    # --- stages -------------------------------------------------------------------------------
    Case("exec-stage-unknown", ["exec-stage", "perff", "--name", "{name}"],
         expect="did you mean `perf`?"),
    Case("exec-stage-malformed-stage-file", ["exec-stage", "perf", "--name", "{name}"],
         {"stages/00-bad.yaml": "name: [\n"}, expect="00-bad.yaml"),
    Case("exec-stage-invalid-stage-def", ["exec-stage", "perf", "--name", "{name}"],
         {"stages/00-bad.yaml": "name: bad\nscript: true\ntimeout: soon\n"},
         expect="00-bad.yaml"),
    Case("run-only-unknown-stage", ["run", "--profile", "p.yaml", "--name", "{name}",
                                    "--only", "perff", "-q"],
         {"p.yaml": prof("")}, docker=True, expect="did you mean `perf`?",),
    Case("run-from-unknown-stage", ["run", "--profile", "p.yaml", "--name", "{name}",
                                    "--from", "biuld", "-q"],
         {"p.yaml": prof("")}, docker=True, expect="did you mean `build`?",),
    # --- lifecycle ----------------------------------------------------------------------------
    Case("exec-no-command", ["exec", "--name", "{name}"], expect="containerctl exec --"),
    Case("down-missing-container", ["down", "--name", "{name}"], docker=True,
         expect="{name}"),
    Case("logs-missing-container", ["logs", "--name", "{name}"], docker=True,
         expect="{name}"),
    Case("up-missing-volume-source", UP,
         {"p.yaml": prof("container:\n  volumes: ['/nonexistent/cctl-{tok}:/data']\n")},
         docker=True, expect="/nonexistent/cctl-{tok}"),
    Case("up-missing-device", UP,
         {"p.yaml": prof("container:\n  devices: [/dev/cctl-nonexistent0]\n")},
         docker=True, expect="/dev/cctl-nonexistent0"),
    Case("up-device-glob-matches-nothing", UP,
         {"p.yaml": prof("container:\n  devices: ['/dev/cctlnope[0-9]*']\n")},
         docker=True, expect="/dev/cctlnope"),
    Case("up-privileged-refused", UP, {"p.yaml": prof("container:\n  privileged: true\n")},
         docker=True, needs="privileged-refused", expect="privileged"),
    Case("up-cap-add-all-refused", UP, {"p.yaml": prof("container:\n  cap_add: [ALL]\n")},
         docker=True, needs="privileged-refused", expect="cap_add"),
    Case("up-memlock-refused", UP,
         {"p.yaml": prof("container:\n  ulimits: {memlock: -1}\n")},
         docker=True, needs="memlock-limited", expect="memlock"),
    Case("up-gpus-refused", UP, {"p.yaml": prof("container:\n  gpus: all\n")},
         docker=True, needs="no-gpu-runtime", expect="gpus"),
    Case("up-image-missing", UP, {"p.yaml": prof("", image="containerctl-test/nope:{tok}")},
         docker=True, expect="containerctl-test/nope:{tok}"),
    Case("up-daemon-unreachable", UP, {"p.yaml": prof("")},
         env={"DOCKER_HOST": "unix:///nonexistent.sock"}, expect="/nonexistent.sock"),
    Case("ps-daemon-unreachable", ["ps"], env={"DOCKER_HOST": "unix:///nonexistent.sock"},
         expect="/nonexistent.sock"),
    # --- site overlay -------------------------------------------------------------------------
    Case("site-overlay-missing", SHOW, env={"CONTAINERCTL_SITE": "nope-site.yaml"},
         expect="CONTAINERCTL_SITE"),
    Case("site-overlay-yaml-error", SHOW, {"site.yaml": "container: {shm_size: 1G\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="site.yaml"),
    Case("site-overlay-unknown-key", SHOW, {"site.yaml": "container:\n  shm_sise: 1G\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="site.yaml"),
    Case("site-overlay-profiles-not-mapping", SHOW, {"site.yaml": "profiles: 5\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="profiles"),
    # --- profile new, doctor ------------------------------------------------------------------
    Case("profile-new-exists", ["profile", "new", "mine", "--from", "cpu-selftest",
                                "--dir", "out"],
         {"out/mine.yaml": "# mine, hand-written\n"}, expect="--force",
         unchanged="out/mine.yaml"),
    Case("profile-new-unknown-base", ["profile", "new", "mine", "--from", "nvidia-a80",
                                      "--dir", "out"], expect="did you mean `nvidia-a800`?"),
    Case("profile-new-bad-name", ["profile", "new", "My Site", "--from", "cpu-selftest",
                                  "--dir", "out"], expect="lowercase"),
    Case("doctor-unknown-profile", ["doctor", "--profile", "nvidia-a80"],
         expect="did you mean `nvidia-a800`?"),
    # --- command-line syntax (click) ----------------------------------------------------------
    Case("unknown-option", ["up", "--bogus-flag"], expect="--bogus-flag",),
    Case("missing-required-option", ["profile", "new", "mine"], expect="--from",),
]

HAS_CLUSTER = importlib.util.find_spec("containerctl.cli_cluster") is not None


def _params():
    out = []
    for c in CASES:
        marks = []
        if c.xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=c.xfail))
        if c.needs == "cluster" and not HAS_CLUSTER:
            marks.append(pytest.mark.skip(reason="containerctl/cli_cluster.py does not exist"))
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def test_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def local_image(request):
    """An image that is on the host (no registry is used): any tagged one, else cpu-selftest."""
    engine = request.getfixturevalue("engine")
    for img in sorted(engine.images(), key=lambda i: i.get("Size") or 0):
        for tag in img.get("RepoTags") or []:
            if tag and tag != "<none>:<none>":
                return tag
    return request.getfixturevalue("selftest_image")


def _ours(engine, tok: str, name: str) -> list[str]:
    """Managed containers (and workspace volumes) that this case could have made."""
    rows = [c.name for c in engine.list()
            if c.name == name or tok in c.name or tok in c.labels.get("io.containerctl.profile", "")]
    vols = [v["Name"] for v in (engine.api.volumes().get("Volumes") or [])
            if v["Name"].startswith(name) or tok in v["Name"]]
    return rows + vols


def _needs_ok(engine, image: str, needs: str) -> str | None:
    """Why this host cannot show the refusal the case needs (then the case is skipped)."""
    from containerctl import hostcheck
    if needs == "privileged-refused":
        ok, _ = engine.probe(image, {"privileged": True})
        return "this engine allows --privileged" if ok else None
    if needs == "memlock-limited":
        lim = hostcheck.dockerd_memlock_hard()
        return "dockerd's memlock is unlimited (or unreadable)" if lim in (None, -1) else None
    if needs == "no-gpu-runtime":
        return "this engine has the NVIDIA runtime" if hostcheck.gpu_runtime_available(engine) \
            else None
    return None


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Case, tmp_path, request, unique_name):
    tok = uuid.uuid4().hex[:8]
    engine = image = None
    if case.docker or case.needs:
        engine = request.getfixturevalue("engine")
        image = request.getfixturevalue("local_image")
        why = _needs_ok(engine, image, case.needs) if case.needs else None
        if why:
            pytest.skip(why)

    def fill(s: str) -> str:
        return s.replace("{img}", image or "local/none:none").replace("{tok}", tok) \
                .replace("{name}", unique_name)

    for rel, content in case.files.items():
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            f.write_bytes(content)
        else:
            f.write_text(fill(content))
    before_file = (tmp_path / case.unchanged).read_bytes() if case.unchanged else None
    env = {k: (str(tmp_path / v) if k in ("CONTAINERCTL_PROFILE_PATH", "CONTAINERCTL_SITE")
               else v) for k, v in case.env.items()}
    before = _ours(engine, tok, unique_name) if engine else []
    assert before == []

    r = cli(*[fill(a) for a in case.args], env=env, cwd=str(tmp_path), timeout=300)

    out = f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    lines = r.stderr.splitlines()
    assert "Traceback" not in r.stderr + r.stdout, out
    assert r.returncode == 2, out
    assert len(lines) == 2, out
    assert lines[0].startswith("error: ") and len(lines[0]) > len("error: "), out
    assert lines[1].startswith("  fix: ") and len(lines[1]) > len("  fix: "), out
    if case.expect:
        assert fill(case.expect) in r.stderr, out
    if engine is not None:
        assert _ours(engine, tok, unique_name) == [], out + "\n(something was created)"
    if case.unchanged:
        assert (tmp_path / case.unchanged).read_bytes() == before_file
    if not case.files and "profile" in case.args[:1] and "new" in case.args[:2]:
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
