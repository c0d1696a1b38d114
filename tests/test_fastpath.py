"""The fast paths of exec-stage and status (benchmarks/overhead.py): remembered validation
(containerctl.validated) answers exactly as the pydantic models and follows every input; the
stdlib engine client (engine._LocalClient) answers as the docker SDK does; the stage script
travels with its exec; a plain script renders without Jinja2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from containerctl import validated
from containerctl.errors import NotFound, ProfileError


def _profile(tmp_path, text: str, name: str = "fp") -> Path:
    d = tmp_path / "profiles"
    d.mkdir(exist_ok=True)
    f = d / f"{name}.yaml"
    f.write_text(textwrap.dedent(text))
    return f


PROFILE = """\
    name: fp
    extends: cpu-selftest
    container:
      env: {A: "1", NUM: 7}
      shm_size: 300M
    flagcx:
      make_flags: [USE_X=1]
    stages:
      perf: {colls: [allreduce, allgather], end: 1M}
      torch: {debug: true}
      timeouts: {perf: 99}
    references:
      allreduce: {4G: 144}
"""


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _no_validation(monkeypatch):
    """Make any validation through the models fail: a remembered answer must not need them."""
    from containerctl import profiles

    def boom(*a, **k):
        raise AssertionError("validated again although nothing changed")
    monkeypatch.setattr(profiles, "load_profile", boom)


def test_remembered_profile_answers_as_the_model(cwd, monkeypatch):
    from containerctl import profiles
    from containerctl.stages.context import make_context
    _profile(cwd, PROFILE)
    real = profiles.load_profile("fp", ["stages.perf.iters=3"])
    first = validated.load_profile("fp", ["stages.perf.iters=3"])      # validates, records
    _no_validation(monkeypatch)
    again = validated.load_profile("fp", ["stages.perf.iters=3"])      # remembered
    for p in (first, again):
        assert isinstance(p, validated.Frozen)
        assert p.model_dump() == real.model_dump()
        assert p.model_dump_json() == real.model_dump_json()
        assert p.source_file == real.source_file
        assert p.stages.perf.model_dump() == real.stages.perf.model_dump()
        assert p.stages.perf.iters == 3 and p.container.env["NUM"] == "7"
        assert p.container.env == real.container.env and p.container.env["A"] == "1"
        assert p.stages.torch.debug is True and p.stages.torch.master_port == 8281   # typed
        assert p.stages.torch.model_dump() == real.stages.torch.model_dump()
        assert p.stages.timeouts == {"perf": 99}
        assert p.stages.only == real.stages.only and p.flagcx.make_flags == ["USE_X=1"]
        ctx_p, ctx_r = make_context(p, {}), make_context(real, {})
        for k in ("profile", "fx", "perf", "torch", "train"):
            ctx_p.pop(k), ctx_r.pop(k)
        assert ctx_p == ctx_r
        with pytest.raises(AttributeError):
            p.name = "other"
        with pytest.raises(AttributeError):
            p.no_such_field
        # a dict of models (stages.perf.variants, where the profile model has it): each value
        # answers attribute reads as the model does
        for k, v in (getattr(real.stages.perf, "variants", None) or {}).items():
            fv = p.stages.perf.variants[k]
            assert isinstance(fv, validated.Frozen) and fv.model_dump() == v.model_dump()
            assert (fv.colls, fv.env, fv.needs.min_ranks) == (v.colls, v.env, v.needs.min_ranks)


def test_dict_of_models_is_remembered(monkeypatch):
    """submodels() describes a dict[str, Model] field, so a profile holding one is still
    remembered (it was validated on every command when it was not)."""
    from typing import Optional
    from pydantic import BaseModel

    class Leaf(BaseModel):
        x: int = 1

    class Item(BaseModel):
        leaf: Leaf = Leaf()
        tags: list[str] = []

    class Top(BaseModel):
        items: dict[str, Item] = {}
        one: Optional[Item] = None
        many: list[Item] = []

    class Ok(BaseModel):
        items: dict[str, Item] = {}
    assert validated.submodels(Top) is None          # a list of models: not stood in for
    subs = validated.submodels(Ok)
    assert subs == {"items": {"*": {"leaf": {}}}}
    m = Ok(items={"a": {"leaf": {"x": 5}, "tags": ["t"]}})
    f = validated.Frozen(m.model_dump(), subs)
    assert f.items["a"].leaf.x == 5 and f.items["a"].tags == ["t"]
    assert f.model_dump() == m.model_dump()


def test_remembered_profile_follows_every_input(cwd, monkeypatch, tmp_path_factory):
    f = _profile(cwd, PROFILE)
    assert validated.load_profile("fp").container.shm_size == "300M"
    # the file changes
    f.write_text(f.read_text().replace("300M", "400M"))
    assert validated.load_profile("fp").container.shm_size == "400M"
    # what it extends is shadowed by a profile of that name in ./profiles
    shadow = _profile(cwd, "name: cpu-selftest\nimage: debian:bookworm\nplatform: cpu\n",
                      "cpu-selftest")
    assert validated.load_profile("fp").image == "debian:bookworm"
    shadow.unlink()
    assert validated.load_profile("fp").image != "debian:bookworm"
    # a site overlay appears (the config dir's site.yaml)
    site = Path(os.environ["XDG_CONFIG_HOME"]) / "containerctl" / "site.yaml"
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text("container:\n  env: {SITE: 'yes'}\n")
    assert validated.load_profile("fp").container.env["SITE"] == "yes"
    site.unlink()
    assert "SITE" not in validated.load_profile("fp").container.env
    # --set is part of what is remembered
    assert validated.load_profile("fp", ["container.shm_size=1G"]).container.shm_size == "1G"
    assert validated.load_profile("fp").container.shm_size == "400M"
    # an error is never remembered: the same error every time, then the fixed file again
    f.write_text(f.read_text().replace("shm_size: 400M", "shm_sise: 400M"))
    for _ in range(2):
        with pytest.raises(ProfileError) as e:
            validated.load_profile("fp")
        assert "shm_sise" in e.value.message and "did you mean" in e.value.hint
    f.unlink()
    with pytest.raises(NotFound):
        validated.load_profile("fp")


def test_damaged_cache_is_dropped_and_rebuilt(cwd, monkeypatch):
    _profile(cwd, PROFILE)
    validated.load_profile("fp")
    cache = validated._file()
    for bad in ("{not json", "[]", json.dumps({"profile:x": {"files": "no", "result": 1}})):
        cache.write_text(bad)
        p = validated.load_profile("fp")
        assert p.container.shm_size == "300M"
        data = json.loads(cache.read_text())    # rewritten in the right shape
        assert all(validated._entry_ok(e) for e in data.values())
    # a remembered entry whose result is not a profile's shape validates again
    data = json.loads(cache.read_text())
    for e in data.values():
        e["result"] = {"dump": "x"}
    cache.write_text(json.dumps(data))
    assert validated.load_profile("fp").container.shm_size == "300M"


STAGE = """\
    name: fpstage
    requires: []
    timeout: 60
    script: "echo one"
"""


def _fresh_defs():
    from containerctl.stages import catalog as defs
    defs._CACHE.clear()
    return defs


def test_remembered_stage_defs_follow_their_files(cwd, monkeypatch):
    (cwd / "stages").mkdir()
    f = cwd / "stages" / "50-fpstage.yaml"
    f.write_text(textwrap.dedent(STAGE))
    real = _fresh_defs()._load_defs()
    first = _fresh_defs().load_defs()
    from containerctl.stages import catalog as defs
    validate = defs._load_defs
    monkeypatch.setattr(defs, "_load_defs", lambda: pytest.fail("validated again"))
    again = _fresh_defs().load_defs()
    for got in (first, again):
        assert [d.model_dump() for d in got] == [d.model_dump() for d in real]
        assert [d.file for d in got] == [d.file for d in real]
        assert next(d for d in got if d.name == "fpstage").script == "echo one"
    monkeypatch.setattr(defs, "_load_defs", validate)
    f.write_text(textwrap.dedent(STAGE).replace("echo one", "echo two"))
    assert _fresh_defs().get_def("fpstage").script == "echo two"
    f.write_text(textwrap.dedent(STAGE).replace("timeout: 60", "timeout: 0"))
    for _ in range(2):   # a bad stage file: the models' error every time
        with pytest.raises(ProfileError):
            _fresh_defs().load_defs()
    f.unlink()
    assert "fpstage" not in _fresh_defs().stage_names()


@pytest.mark.parametrize("script", ["echo plain; exit 0\n", "#!/bin/bash\necho $CCTL_NRANKS\n",
                                    "", "no newline at the end"])
def test_a_script_without_jinja_syntax_renders_as_jinja_renders_it(script):
    import jinja2
    from containerctl.stages import render as defs
    from containerctl.stages.stagedef import StageDef
    sd = StageDef(name="x", script=script)
    ctx = {"env": {"CCTL_NRANKS": "2", "CCTL_OTHER": "x", "PATH": "/bin"}}
    body = defs._env([defs.DEFS_DIR]).from_string(script).render(**ctx)
    assert defs.render(sd, ctx) == defs._with_values(body, ctx)
    assert "jinja2" in sys.modules and isinstance(jinja2.__version__, str)
    # with `{` Jinja2 renders it (and a template error is still an error)
    with pytest.raises(ProfileError):
        defs.render(StageDef(name="x", script="{{ nope }}"), ctx)


# ---------------------------------------------------------------------------------------------
# the engine: the stdlib client answers as the SDK does

@pytest.fixture(scope="module")
def box(engine, selftest_image):
    import uuid
    name = f"cctl-fp-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "run", "-d", "--name", name, "--label", "io.containerctl.managed=1",
                    "--label", f"io.containerctl.fp={name}", selftest_image, "sleep",
                    "infinity"], check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def _engines(monkeypatch):
    from containerctl.engine import Engine
    local = Engine()
    monkeypatch.setenv("CONTAINERCTL_ENGINE_SDK", "1")
    sdk = Engine()
    monkeypatch.delenv("CONTAINERCTL_ENGINE_SDK")
    assert local._local is not None and sdk._local is None
    return local, sdk


def test_local_client_answers_as_the_sdk(box, monkeypatch):
    local, sdk = _engines(monkeypatch)
    script = ("echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; echo out2; printf 'no newline'; "
              "exit 3")
    for e in (local, sdk):
        code, out = e.exec_capture(box, ["bash", "-c", script])
        assert code == 3 and out.splitlines() == ["out1", "err1", "out2", "no newline"], out
        code, out = e.exec_capture(box, ["bash", "-c", 'echo "$V|$(pwd)|$(id -u)"'],
                                   env={"V": "a b 'c'"}, workdir="/tmp")
        assert (code, out) == (0, "a b 'c'|/tmp|0\n")
        code, out = e.exec_capture(box, "echo split by shlex")        # a string command
        assert out == "split by shlex\n"
        big = os.urandom(200_000).hex()                               # many frames
        code, out = e.exec_capture(box, ["bash", "-c", f"echo {big[:100]}; head -c 300000 "
                                         "/dev/zero | tr '\\0' x"])
        assert code == 0 and out == big[:100] + "\n" + "x" * 300_000
        assert e.exec(box, ["bash", "-c", "test -t 1"], tty=True) == 0
        assert e.exec(box, ["bash", "-c", "test -t 1"]) == 1
        e.put_files(box, "/", {"tmp/fp/a/b.txt": (b"payload\n", 0o600)})
        assert e.exec_capture(box, ["stat", "-c", "%a %s", "/tmp/fp/a/b.txt"]) == (0, "600 8\n")
    assert local.inspect(box) == sdk.inspect(box)
    assert local.find(box).__dict__ == sdk.find(box).__dict__
    label = {"io.containerctl.fp": box}
    assert [c.__dict__ for c in local.list(label)] == [c.__dict__ for c in sdk.list(label)]
    assert [c.name for c in local.list(label)] == [box]
    assert local.find("cctl-fp-no-such") is None and sdk.find("cctl-fp-no-such") is None
    errs = []
    for e in (local, sdk):
        with pytest.raises(NotFound) as ex:
            e.inspect("cctl-fp-no-such")
        errs.append((ex.value.message, ex.value.hint))
        with pytest.raises(NotFound) as ex:
            e.exec("cctl-fp-no-such", ["true"])
        errs.append((ex.value.message, ex.value.hint))
        errs.append(e.exec(box, ["/no/such/binary"]))
    assert errs[:3] == errs[3:] and errs[2] in (126, 127), errs


def test_local_client_without_engine_says_so(tmp_path):
    from containerctl.engine import Engine
    from containerctl.errors import EngineError
    e = Engine(f"unix://{tmp_path}/no.sock")
    with pytest.raises(EngineError) as ex:
        e.inspect("x")
    assert "cannot reach a Docker engine" in ex.value.message and ex.value.hint


def test_stage_script_travels_with_its_exec_or_is_copied_when_big(box, engine):
    from containerctl.stages.executor import exec_stage_script
    for size in (10, 150_000):
        marker = "x" * size
        script = (f"# {marker}\necho in-stage; "
                  "env | grep -c '^CCTL_SCRIPT_SH\\|^CCTL_KILL_SH' || true\n")
        out = bytearray()
        code, outcome = exec_stage_script(engine, box, script, "fpstage", 60, out.extend)
        assert (code, outcome) == (0, "ok")
        assert out.decode().splitlines() == ["in-stage", "0"]     # not in the stage's env
        _, text = engine.exec_capture(box, ["cat", "/var/tmp/containerctl/fpstage/script.sh"])
        assert text == script
        assert engine.exec(box, ["test", "-x", "/var/tmp/containerctl/fpstage/kill.sh"]) == 0
    code, outcome = exec_stage_script(engine, box, "sleep 30\n", "fpstage", 1, lambda b: None)
    assert (code, outcome) == (124, "timeout")
    _, ps = engine.exec_capture(box, ["bash", "-c", "ps -eo args | grep -c '^sleep 30' || true"])
    assert ps.strip() == "0"


def test_trivial_stage_and_status_need_no_heavy_import(box, tmp_path):
    """A remembered exec-stage of a plain stage, and status, import none of pydantic, yaml,
    jinja2, docker (what makes them cost about a docker exec)."""
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "00-fpnoop.yaml").write_text(
        "name: fpnoop\nrequires: []\ntimeout: 60\nscript: \"true\"\nparse: null\n")
    prof = _profile(tmp_path, "name: fp\nextends: cpu-selftest\n")
    code = ("import sys; from containerctl.cli.entry import main; rc = main(sys.argv[1:]); "
            "print('HEAVY', sorted(m for m in ('pydantic', 'yaml', 'jinja2', 'docker') "
            "if m in sys.modules)); sys.exit(rc)")
    env = dict(os.environ)
    for i, argv in enumerate([["exec-stage", "fpnoop", "--name", box, "--profile", str(prof),
                               "-q"]] * 2 + [["status", "--name", box]]):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        heavy = r.stdout.strip().splitlines()[-1]
        if i == 0:
            assert "pydantic" in heavy      # the first one validates
        else:
            assert heavy == "HEAVY []", (argv, r.stdout)
    assert "fpnoop" in r.stdout and "passed" in r.stdout
