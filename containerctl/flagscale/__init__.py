"""The one module that knows FlagScale on the host side: the train stage's options (checked here,
with a one-line cause and fix for each mistake) and the probe of a FlagScale tree.

The probe itself is stages/assets/flagscale_probe.py (standard library only): the train stage
copies it into the container with the driver (flagscale_train.py) and runs it against the
FlagScale there; `probe_local` runs the same code on a tree on this machine.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError

PROBE_FILE = Path(__file__).resolve().parent.parent / "stages" / "assets" / "flagscale_probe.py"

# stages.train keys: name -> (kind, driver option or None, what it is)
TRAIN_KEYS: dict[str, tuple[str, str | None, str]] = {
    "flagscale": ("str", "--flagscale", "FlagScale checkout, flag_scale package dir, or 'installed'"),
    "preset": ("choice:auto,small,runbook", "--preset",
               "small (a few layers, mock data) or runbook (LLaMA3 from the example, real data); "
               "auto: runbook where data_path and tokenizer_path are set, else small"),
    "model": ("str", "--model", "example folder (llama3; llama in older FlagScale)"),
    "size": ("str", "--size", "model config in the example's train/ folder (8b)"),
    "backend": ("choice:flagcx,nccl", "--backend", "distributed backend (nccl = baseline)"),
    "devices": ("count", "--devices", "ranks per node: auto = the devices present"),
    "nnodes": ("int", "--nnodes", "nodes"),
    "tp": ("count", "--tp", "tensor parallel size (auto: the example's, shrunk to fit)"),
    "pp": ("count", "--pp", "pipeline parallel size (auto: the example's, shrunk to fit)"),
    "iterations": ("int", "--iterations", "iterations the verdict asks for"),
    "min_loss_drop": ("float", None, "fraction the last loss must be below the first (0: lower)"),
    "lr": ("float", "--lr", "learning rate of the small preset"),
    "global_batch_size": ("int", "--global-batch-size", "global batch size"),
    "train_samples": ("int", "--train-samples", "train samples (runbook preset)"),
    "data_path": ("str", "--data-path", "data prefix (runbook preset)"),
    "tokenizer_path": ("str", "--tokenizer-path", "tokenizer dir (runbook preset)"),
    "exp_dir": ("str", "--exp-dir", "where each run gets its own run-<time>-<backend> folder"),
    "unpatch": ("choice:auto,yes,no", "--unpatch",
                "apply FlagScale's Megatron patches where the Megatron found is unpatched"),
    "poll_seconds": ("float", "--poll", "seconds between looks at the job's log"),
    "startup_seconds": ("float", "--startup", "bound to the first iteration"),
    "stall_seconds": ("float", "--stall", "bound between two iterations"),
    "time_limit": ("float", "--time-limit", "bound on the whole run"),
    "conda_env": ("str", None, "conda environment to activate first"),
    "env": ("dict", None, "extra environment for the job (experiment.envs)"),
    "checkpoint_load": ("str", "--checkpoint-load", "checkpoint to load (runbook preset)"),
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_train_options(train: dict[str, Any]) -> None:
    """Refuse an unknown key or a value of the wrong kind (UsageError: cause + fix)."""
    for k, v in (train or {}).items():
        if k == "unpatch" and isinstance(v, bool):
            continue
        if k not in TRAIN_KEYS:
            near = [x for x in TRAIN_KEYS if x.split("_")[0] == k.split("_")[0]]
            raise UsageError(f"stages.train.{k} is not a train option",
                             f"use one of {', '.join(near or sorted(TRAIN_KEYS))}")
        if v is None:
            continue
        kind = TRAIN_KEYS[k][0]
        bad = None
        if kind.startswith("choice:") and str(v) not in kind[7:].split(","):
            bad = "one of " + kind[7:].replace(",", ", ")
        elif kind == "count" and str(v) != "auto" and not re.fullmatch(r"[1-9][0-9]*", str(v)):
            bad = "auto or a positive whole number"
        elif kind == "int" and not re.fullmatch(r"[0-9]+", str(v)):
            bad = "a whole number"
        elif kind == "float":
            try:
                float(v)
            except (TypeError, ValueError):
                bad = "a number"
        elif kind == "dict":
            if not isinstance(v, dict) or not all(_ENV_NAME.match(str(x)) for x in v):
                bad = "a mapping of environment variable names to values"
        elif kind == "str" and "\n" in str(v):
            bad = "one line"
        if bad:
            raise UsageError(f"stages.train.{k} = {v!r} is not {bad}",
                             f"set stages.train.{k} to {bad}")
    if train.get("min_loss_drop") is not None and not 0 <= float(train["min_loss_drop"]) < 1:
        raise UsageError(f"stages.train.min_loss_drop = {train['min_loss_drop']} is outside [0, 1)",
                         "give a fraction of the first loss, e.g. 0.05 (0 = just lower)")


def preset_of(train: dict[str, Any]) -> str:
    p = str(train.get("preset") or "auto")
    if p != "auto":
        return p
    return "runbook" if train.get("data_path") and train.get("tokenizer_path") else "small"


def driver_args(train: dict[str, Any], visible_env: str | None,
                visible_devices: str | None) -> list[str]:
    """The driver's argv (after the script) for these stages.train options."""
    check_train_options(train)
    out: list[str] = []
    vals = dict(train)
    vals["preset"] = preset_of(train)
    if isinstance(vals.get("unpatch"), bool):
        vals["unpatch"] = "yes" if vals["unpatch"] else "no"
    for k, (kind, opt, _) in TRAIN_KEYS.items():
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


__all__ = ["PROBE_FILE", "TRAIN_KEYS", "check_train_options", "driver_args", "model_file",
           "preset_of", "probe_local"]
