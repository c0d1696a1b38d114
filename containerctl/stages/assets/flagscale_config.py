"""Apply the runbook's §三.3 edits to a FlagScale example config, in place (run inside the
container by the train stage; needs only PyYAML). Originals are kept as *.orig once.

train.yaml:      defaults train: <size>; experiment.exp_dir; runner.hostfile removed (single
                 node); experiment.envs.<VISIBLE_ENV> = the visible devices
train/<size>.yaml: system.distributed_backend: flagcx; model.train_samples and
                 global_batch_size; data.data_path; data.tokenizer.tokenizer_path
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml


def _load(p: Path) -> dict:
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"{p}: not a mapping")
    return data


def _save(p: Path, data: dict) -> None:
    orig = p.with_name(p.name + ".orig")
    if not orig.exists():
        shutil.copy2(p, orig)
    p.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def edit_train(data: dict, size: str, exp_dir: str, visible_env: str, visible: str) -> dict:
    defaults = data.get("defaults") or []
    found = False
    for i, item in enumerate(defaults):
        if isinstance(item, dict) and "train" in item:
            defaults[i] = {"train": size}
            found = True
    if not found:
        defaults.append({"train": size})
    data["defaults"] = defaults
    exp = data.setdefault("experiment", {})
    exp["exp_dir"] = exp_dir
    runner = exp.setdefault("runner", {})
    runner.pop("hostfile", None)
    envs = exp.setdefault("envs", {})
    envs[visible_env] = visible
    return data


def edit_model(data: dict, data_path: str, tokenizer_path: str, train_samples: int,
               global_batch_size: int) -> dict:
    system = data.setdefault("system", {})
    system["distributed_backend"] = "flagcx"
    model = data.setdefault("model", {})
    model["train_samples"] = int(train_samples)
    model["global_batch_size"] = int(global_batch_size)
    d = data.setdefault("data", {})
    d["data_path"] = data_path
    tok = d.setdefault("tokenizer", {})
    tok["tokenizer_path"] = tokenizer_path
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conf", required=True)
    ap.add_argument("--size", default="8b")
    ap.add_argument("--data-path", required=True)
    ap.add_argument("--tokenizer-path", required=True)
    ap.add_argument("--visible-env", default="CUDA_VISIBLE_DEVICES")
    ap.add_argument("--visible-devices", default="0")
    ap.add_argument("--train-samples", type=int, default=20480)
    ap.add_argument("--global-batch-size", type=int, default=2048)
    ap.add_argument("--exp-dir", default="./outputs_llama3_8b")
    a = ap.parse_args(argv)
    conf = Path(a.conf)
    train, model = conf / "train.yaml", conf / "train" / f"{a.size}.yaml"
    for f in (train, model):
        if not f.is_file():
            print(f"missing {f}: is this a FlagScale checkout with examples/llama3?", file=sys.stderr)
            return 5
    if a.train_samples % a.global_batch_size:
        print(f"note: train_samples {a.train_samples} is not a multiple of global_batch_size "
              f"{a.global_batch_size}; steps = {a.train_samples / a.global_batch_size:.2f}")
    _save(train, edit_train(_load(train), a.size, a.exp_dir, a.visible_env, a.visible_devices))
    _save(model, edit_model(_load(model), a.data_path, a.tokenizer_path, a.train_samples,
                            a.global_batch_size))
    print(f"configured {train} and {model}: backend flagcx, {a.visible_env}={a.visible_devices}, "
          f"steps {a.train_samples // a.global_batch_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
