"""The train stage driving a FlagScale stand-in (tests/fixtures/flagscale_standin: FlagScale's
config layout and run/stop protocol; real training needs GPUs) inside the cpu-selftest container:
config edits, launch, polling, iteration parsing, stop."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import cli

FIX = Path(__file__).parent / "fixtures" / "flagscale_standin"


def test_config_edits_follow_the_runbook(tmp_path):
    import shutil
    import sys
    sys.path.insert(0, str(Path(__file__).parent.parent / "containerctl" / "stages" / "assets"))
    import flagscale_config as F
    root = tmp_path / "fs"
    shutil.copytree(FIX, root)
    conf = root / "examples/llama3/conf"
    rc = F.main(["--conf", str(conf), "--data-path", "/data/pile_wikipedia_demo",
                 "--tokenizer-path", "/tok", "--visible-env", "MACA_VISIBLE_DEVICES",
                 "--visible-devices", "0,1", "--train-samples", "4096",
                 "--global-batch-size", "2048"])
    assert rc == 0
    train = yaml.safe_load((conf / "train.yaml").read_text())
    assert {"train": "8b"} in train["defaults"]
    assert "hostfile" not in train["experiment"]["runner"]
    assert train["experiment"]["envs"]["MACA_VISIBLE_DEVICES"] == "0,1"
    m = yaml.safe_load((conf / "train/8b.yaml").read_text())
    assert m["system"]["distributed_backend"] == "flagcx"
    assert m["model"]["train_samples"] == 4096 and m["model"]["global_batch_size"] == 2048
    assert m["data"]["data_path"] == "/data/pile_wikipedia_demo"
    assert m["data"]["tokenizer"]["tokenizer_path"] == "/tok"
    assert (conf / "train.yaml.orig").is_file()


@pytest.mark.docker
@pytest.mark.slow
def test_train_stage_runs_polls_parses_and_stops(engine, selftest_image, tmp_path, unique_name):
    home = str(tmp_path / "home")
    env = {"CONTAINERCTL_HOME": home, "CONTAINERCTL_TEST_SHARED_HOME": "1"}
    sets = ["--set", "stages.only=[deps,build,train]",
            "--set", "stages.train.flagscale=/workspace/flagscale-standin",
            "--set", "stages.train.data_path=/workspace/data/pile_wikipedia_demo",
            "--set", "stages.train.tokenizer_path=/workspace/tokenizer",
            "--set", "stages.train.iterations=3", "--set", "stages.train.poll_seconds=1",
            "--set", "stages.train.train_samples=20480"]
    r = cli("up", "--profile", "cpu-selftest", "--name", unique_name, *sets, env=env)
    assert r.returncode == 0, r.stderr
    # FlagScale's environment has PyYAML; the selftest image does not
    assert engine.exec(unique_name, ["bash", "-c", "python3 -c 'import yaml' || (apt-get update -qq "
                       "&& apt-get install -y -qq python3-yaml)"]) == 0
    engine.put_dir(unique_name, FIX, "/workspace", arcname="flagscale-standin")
    r = cli("run", "--profile", "cpu-selftest", "--name", unique_name, "-q", *sets, env=env,
            timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    runs = sorted((Path(home) / "results").iterdir())
    rec = json.loads((runs[-1] / "train.json").read_text())
    assert rec["status"] == "passed", rec
    iters = rec["metrics"]["iterations"]
    assert len(iters) >= 3 and iters[0]["iteration"] == 1 and iters[0]["total"] == 10
    assert iters[0]["tflops_per_gpu"] == pytest.approx(401.2)
    # the job was stopped: no stand-in trainer left running
    code, ps = engine.exec_capture(unique_name, ["ps", "-eo", "args"])
    assert "import time,sys" not in ps
