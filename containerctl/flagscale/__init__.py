"""The one module that knows FlagScale on the host side: the train stage's options as the driver's
command line (checked where every profile key is, profiles/model.py TrainOpts) and the probe of a
FlagScale tree.

The probe itself is stages/assets/flagscale_probe.py (standard library only): the train stage
copies it into the container with the driver (flagscale_train.py) and runs it against the
FlagScale there; `probe_local` runs the same code on a tree on this machine.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

PROBE_FILE = Path(__file__).resolve().parent.parent / "stages" / "assets" / "flagscale_probe.py"

# stages.train key -> the driver's option (flagscale_train.py), or None where the driver takes no
# such option (min_loss_drop: the verdict reads it; conda_env: the stage script; env: --env pairs).
# The keys' types, bounds and defaults are profiles/model.py's TrainOpts, the one place they are
# checked (when the profile loads; tests/test_profiles_model.py keeps the two key sets equal).
TRAIN_KEYS: dict[str, str | None] = {
    "flagscale": "--flagscale",
    "preset": "--preset",
    "model": "--model",
    "size": "--size",
    "backend": "--backend",
    "devices": "--devices",
    "nnodes": "--nnodes",
    "tp": "--tp",
    "pp": "--pp",
    "iterations": "--iterations",
    "min_loss_drop": None,
    "lr": "--lr",
    "global_batch_size": "--global-batch-size",
    "train_samples": "--train-samples",
    "data_path": "--data-path",
    "tokenizer_path": "--tokenizer-path",
    "exp_dir": "--exp-dir",
    "unpatch": "--unpatch",
    "poll_seconds": "--poll",
    "startup_seconds": "--startup",
    "stall_seconds": "--stall",
    "time_limit": "--time-limit",
    "conda_env": None,
    "env": None,
    "checkpoint_load": "--checkpoint-load",
}


def preset_of(train: dict[str, Any]) -> str:
    p = str(train.get("preset") or "auto")
    if p != "auto":
        return p
    return "runbook" if train.get("data_path") and train.get("tokenizer_path") else "small"


def driver_args(train: dict[str, Any], visible_env: str | None,
                visible_devices: str | None) -> list[str]:
    """The driver's argv (after the script) for these stages.train options: the values of a
    loaded profile (TrainOpts.model_dump(), checked by the model; no pydantic here, so the
    runner's fast path stays light)."""
    out: list[str] = []
    vals = dict(train)
    vals["preset"] = preset_of(train)
    for k, opt in TRAIN_KEYS.items():
        v = vals.get(k)
        if opt and v not in (None, ""):
            out += [opt, str(v)]
    for k, v in (train.get("env") or {}).items():
        out += ["--env", f"{k}={v}"]
    if visible_env:
        out += ["--visible-env", visible_env]
    if visible_devices not in (None, ""):
        out += ["--visible-devices", str(visible_devices)]
    return out


def _probe_module():
    spec = importlib.util.spec_from_file_location("cctl_flagscale_probe", PROBE_FILE)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def probe_local(root: str, model: str | None = None, python: str | None = None) -> dict:
    """The probe's facts for a FlagScale on this machine (see flagscale_probe.py)."""
    return _probe_module().probe(str(root), model, python or sys.executable)


def model_file(facts: dict, size: str) -> str | None:
    return _probe_module().model_file(facts, size)


__all__ = ["PROBE_FILE", "TRAIN_KEYS", "driver_args", "model_file",
           "preset_of", "probe_local"]
