"""The train stage end to end in a real container: `containerctl run` probes the FlagScale
stand-in (tests/fixtures/flagscale_standin: FlagScale's layout and run/stop protocol; real
training needs GPUs, see tests/fixtures/h100/) inside the cpu-selftest container, sizes the run,
writes its own config, launches, polls, stops and judges; the record carries the verdict. A
stalled job is a FAIL in the record and leaves nothing running in the container."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli

FIX = Path(__file__).parent / "fixtures" / "flagscale_standin"


def _sets(*extra: str) -> list[str]:
    out = []
    for s in ("stages.only=[deps,build,train]",
              "stages.train.flagscale=/workspace/flagscale-standin",
              "stages.train.devices=1", "stages.train.iterations=4",
              "stages.train.poll_seconds=0.5", "stages.train.stall_seconds=4",
              "stages.train.exp_dir=/workspace/train-runs", *extra):
        out += ["--set", s]
    return out


def _left(engine, name: str) -> list[str]:
    code, ps = engine.exec_capture(name, ["ps", "-eo", "args"])
    return [ln for ln in ps.splitlines() if "train_gpt.py" in ln]


@pytest.mark.docker
@pytest.mark.slow
def test_train_stage_probes_runs_judges_and_stops(engine, selftest_image, tmp_path, unique_name):
    home = str(tmp_path / "home")
    env = {"CONTAINERCTL_HOME": home, "CONTAINERCTL_TEST_SHARED_HOME": "1"}
    r = cli("up", "--profile", "cpu-selftest", "--name", unique_name, *_sets(), env=env)
    assert r.returncode == 0, r.stderr
    # FlagScale's environment has PyYAML; the selftest image does not
    assert engine.exec(unique_name, ["bash", "-c", "python3 -c 'import yaml' || (apt-get update -qq "
                       "&& apt-get install -y -qq python3-yaml)"]) == 0
    engine.put_dir(unique_name, FIX, "/workspace", arcname="flagscale-standin")
    r = cli("run", "--profile", "cpu-selftest", "--name", unique_name, "-q", *_sets(), env=env,
            timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    runs = sorted((Path(home) / "results").iterdir())
    rec = json.loads((runs[-1] / "train.json").read_text())
    assert rec["status"] == "passed", rec
    checks = {c["name"]: c for c in rec["checks"]}
    assert checks["train FlagScale"]["detail"].startswith("layout submodule")
    assert checks["train backend flagcx"]["ok"] is True
    m = rec["metrics"]
    assert [i["iteration"] for i in m["iterations"]] == [1, 2, 3, 4]
    assert m["first_loss"] == pytest.approx(11.0) and m["last_loss"] == pytest.approx(2.75)
    assert m["sized"]["nproc_per_node"] == "1" and m["backend"] == "flagcx"
    assert _left(engine, unique_name) == []
    # the stand-in's own example files were read, never edited
    code, out = engine.exec_capture(unique_name, ["find", "/workspace/flagscale-standin",
                                                  "-name", "*.orig"])
    assert out.strip() == ""

    # a job that stops printing iterations: FAIL naming the stall, and the job is stopped
    r = cli("exec-stage", "train", "--name", unique_name,
            *_sets("stages.train.env.STANDIN_MODE=stall"), env=env, timeout=600)
    assert r.returncode != 0
    runs = sorted((Path(home) / "results").iterdir())
    rec = json.loads((runs[-1] / "train.json").read_text())
    assert rec["status"] == "failed", rec
    checks = {c["name"]: c for c in rec["checks"]}
    assert checks["train job"]["detail"].startswith("stalled: no new iteration for")
    assert checks["train stop"]["ok"] is True
    assert _left(engine, unique_name) == []
