"""What one FlagScale offers, read from its files (standard library only: it runs inside the
container, and containerctl.flagscale imports it on the host).

FlagScale has moved its runner, its example configs and the way Megatron reaches it from release
to release. Nothing here reads a version number to decide anything: every answer is a fact found
in the files, and what was not found is said, never borrowed from another release.

Layouts seen in FlagScale's history (all probed the same way):
  vendored   run.py + flagscale/runner + megatron/megatron/training (FlagScale's own copy, on
             PYTHONPATH as <root>/megatron), examples/<model>/conf           (to spring 2025)
  submodule  run.py + flagscale/runner + third_party/Megatron-LM (a git submodule) patched by
             tools/patch/unpatch.py from flagscale/backends/Megatron-LM/*.patch  (the runbook's)
  package    the `flag-scale` wheel: <site-packages>/flag_scale/{run.py, flagscale/,
             third_party/Megatron-LM (already patched), examples/}

Usage: flagscale_probe.py ROOT|installed [--model llama3]  -> JSON on stdout (exit 0 even when
the FlagScale is unusable: `problems` says why).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

MODELS = ("llama3", "llama")   # example folders holding a LLaMA train config, newest name first


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


def locate_installed(python: str = sys.executable) -> str | None:
    """Directory of an installed `flag-scale` package (import name flag_scale), or None."""
    code = ("import importlib.util as u, os; s = u.find_spec('flag_scale'); "
            "print(os.path.dirname(s.origin) if s and s.origin else '')")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    d = out.stdout.strip()
    return d or None


def _megatron_facts(tree: Path) -> dict:
    """tree = a directory that holds megatron/ (the PYTHONPATH entry)."""
    args = tree / "megatron" / "training" / "arguments.py"
    core = (tree / "megatron" / "core").is_dir()
    if not args.is_file():
        return {"path": str(tree), "training": False, "core": core, "flagcx": False,
                "no_flags": []}
    text = _read(args)
    m = re.search(r"--distributed-backend['\"][^)]*?choices=\[([^\]]*)\]", text, re.S)
    choices = re.findall(r"['\"](\w+)['\"]", m.group(1)) if m else []
    # the kernel fusions this Megatron lets one switch off (a small model needs none of apex/TE)
    no_flags = sorted(set(re.findall(r"['\"]--(no-[a-z-]*fusion|no-persist-layer-norm)['\"]",
                                     text)))
    return {"path": str(tree), "training": True, "core": core, "choices": choices,
            "flagcx": "flagcx" in choices, "no_flags": no_flags,
            "mock_data": "'--mock-data'" in text or '"--mock-data"' in text,
            "null_tokenizer": "NullTokenizer" in text,
            "log_throughput": "--log-throughput" in text}


def probe(root: str, model: str | None = None, python: str = sys.executable) -> dict:
    f: dict = {"root": root, "layout": None, "version": None, "runner": None, "actions": [],
               "train_runner": None, "log_file": None, "pid_file": None, "conf": None,
               "config_name": None, "model_files": [], "defaults_self_first": None, "entrypoint": None,
               "megatron": None, "megatron_source": None, "unpatch": None,
               "backend_selection": None, "cli": None, "problems": [], "notes": []}
    if root in ("installed", "pip", "package"):
        found = locate_installed(python)
        if not found:
            f["problems"].append(f"no installed flag-scale package in {python} "
                                 "(pip install flag-scale, or give a FlagScale checkout)")
            return f
        root = f["root"] = found
    r = Path(root).resolve()
    root = f["root"] = str(r)
    if not r.is_dir():
        f["problems"].append(f"{root} is not a directory")
        return f
    # version: display only
    m = re.search(r"FLAGSCALE_VERSION\s*=\s*['\"]([^'\"]+)", _read(r / "version.py"))
    if not m:
        m = re.search(r"^version\s*=\s*['\"]([^'\"]+)", _read(r / "pyproject.toml"), re.M)
    f["version"] = m.group(1) if m else None
    # the runner entry point: a hydra main that takes action=run|stop
    run_py = r / "run.py"
    text = _read(run_py)
    if text:
        f["runner"] = "run.py"
        f["actions"] = sorted(set(re.findall(r"action\s*==\s*['\"](\w+)['\"]", text)))
        if "hydra" not in text:
            f["problems"].append("run.py is not a hydra entry point (no 'hydra' in it)")
    cli = r / "flagscale" / "cli.py"
    if re.search(r"def train\(", _read(cli)):
        f["cli"] = "flagscale train <model>"
    if not f["runner"]:
        f["problems"].append(f"no run.py in {root}: not a FlagScale checkout or flag_scale package"
                             + (" (it has a flagscale CLI, which containerctl does not drive)"
                                if f["cli"] else ""))
    elif "stop" not in f["actions"]:
        f["problems"].append("run.py has no action=stop: containerctl could not stop the job")
    # the train runner: where the job's output and pid file go
    for cand in ("flagscale/runner/runner_train.py", "flagscale/launcher/runner.py"):
        src = _read(r / cand)
        if src:
            f["train_runner"] = cand
            if "host_{node_rank}_{host}.output" in src:
                f["log_file"] = "logs/host_{node_rank}_{host}.output"
            if re.search(r"host_\{node_rank\}_\{host\}\.pid", src):
                f["pid_file"] = "logs/pids/host_{node_rank}_{host}.pid"
            break
    if not f["train_runner"]:
        f["problems"].append("no train runner (flagscale/runner/runner_train.py or "
                             "flagscale/launcher/runner.py)")
    elif not f["log_file"]:
        f["problems"].append(f"{f['train_runner']} does not name host_<rank>_<host>.output: "
                             "containerctl does not know where this runner writes the job's log")
    # the example config
    models = [model] if model else list(MODELS)
    for mdl in models:
        conf = r / "examples" / mdl / "conf"
        # the top config: the one whose defaults pick a `train:` group (train.yaml in the
        # runbook's FlagScale, config.yaml before it)
        tops = [p for p in sorted(conf.glob("*.yaml"), key=lambda p: (p.stem not in
                ("train", "config"), p.stem != "train", p.name))
                if re.search(r"^defaults:[ \t]*\n(?:[ \t]*-.*\n)*?[ \t]*-\s*train:", _read(p), re.M)]
        if tops and (conf / "train").is_dir():
            f["conf"] = str(conf.relative_to(r))
            f["config_name"] = tops[0].stem
            f["model_files"] = sorted(p.stem for p in (conf / "train").glob("*.yaml"))
            tt = _read(tops[0])
            dm = re.search(r"^defaults:[ \t]*\n((?:[ \t]*-.*\n)+)", tt, re.M)
            if dm:
                items = re.findall(r"-\s*(\S.*)", dm.group(1))
                f["defaults_self_first"] = bool(items) and items[0].strip() == "_self_"
            em = re.search(r"^\s+entrypoint:\s*(\S+)", tt, re.M)
            if em:
                f["entrypoint"] = em.group(1)
                if not (r / em.group(1)).is_file():
                    f["problems"].append(f"the example's entrypoint {em.group(1)} is not in "
                                         f"{root}")
            break
    if not f["conf"]:
        f["problems"].append("no examples/" + "|".join(models) + "/conf with a top config "
                             "(defaults: - train: …) and a train/ folder: containerctl has no "
                             "LLaMA config to start from")
    # Megatron: vendored, a (patched or not) submodule, or a Python package
    cands = [("third_party", r / "third_party" / "Megatron-LM"), ("vendored", r / "megatron")]
    patches = r / "flagscale" / "backends" / "Megatron-LM"
    if (r / "tools" / "patch" / "unpatch.py").is_file():
        f["unpatch"] = "tools/patch/unpatch.py"
    seen = []
    for kind, tree in cands:
        if not tree.exists():
            continue
        mf = _megatron_facts(tree)
        seen.append(f"{tree.relative_to(r)}: " + (
            "megatron/training with distributed-backend choices "
            + ",".join(mf.get("choices") or ["?"]) if mf["training"] else
            ("empty (a submodule not checked out)" if not any(tree.iterdir()) else
             "no megatron/training")))
        if mf["training"]:
            f["megatron"] = mf
            f["megatron_source"] = kind if mf["flagcx"] else f"{kind}-unpatched"
            break
    if f["megatron"] is None:
        # a Megatron on the interpreter's path: megatron-core alone has no megatron.training
        code = ("import importlib.util as u; s = u.find_spec('megatron'); "
                "import os; print(os.path.dirname(list(s.submodule_search_locations)[0]) "
                "if s and s.submodule_search_locations else '')")
        try:
            out = subprocess.run([python, "-c", code], capture_output=True, text=True,
                                 timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        if out:
            mf = _megatron_facts(Path(out))
            if mf["training"]:
                f["megatron"] = mf
                f["megatron_source"] = "python" if mf["flagcx"] else "python-unpatched"
            else:
                seen.append(f"{out}/megatron: megatron.core only (the megatron-core package has "
                            "no megatron.training, which FlagScale's train entry imports)")
    f["notes"] += seen
    if f["megatron"] is None:
        how = ("; ".join(seen) or "no third_party/Megatron-LM, megatron/ or importable megatron")
        fix = ("run tools/patch/unpatch.py --backend Megatron-LM where the submodule can be "
               "fetched (it needs git and network), or use the flag-scale package"
               if patches.is_dir() else "use a FlagScale checkout with its Megatron")
        f["problems"].append(f"no Megatron with megatron/training: {how}; fix: {fix}")
    elif not f["megatron"]["flagcx"]:
        if patches.is_dir() and f["unpatch"]:
            f["notes"].append("Megatron is not patched yet: tools/patch/unpatch.py applies "
                              "flagscale/backends/Megatron-LM")
        else:
            f["problems"].append(f"Megatron at {f['megatron']['path']} offers distributed "
                                 f"backends {f['megatron'].get('choices')}: no flagcx")
    # how the flagcx backend is selected
    for cand in ("flagscale/train/arguments.py", "flagscale/train/train.py"):
        t = _read(r / cand)
        if "cuda:flagcx" in t:
            f["backend_selection"] = (f"system.distributed_backend: flagcx -> {cand} "
                                      "init_process_group(backend='cpu:gloo,cuda:flagcx'), "
                                      "importing the flagcx torch plugin")
            break
        if re.search(r"distributed_backend\s*==\s*['\"]flagcx", t):
            f["backend_selection"] = f"system.distributed_backend: flagcx ({cand})"
            break
    if not f["backend_selection"] and f["megatron"] and f["megatron"]["flagcx"]:
        f["backend_selection"] = "system.distributed_backend: flagcx (Megatron's own choice)"
    # layout name
    if (r / "__init__.py").is_file() and r.name == "flag_scale":
        f["layout"] = "package"
    elif f["megatron_source"] and f["megatron_source"].startswith("vendored"):
        f["layout"] = "vendored"
    elif (r / "third_party").is_dir():
        f["layout"] = "submodule"
    elif f["megatron_source"] and f["megatron_source"].startswith("python"):
        f["layout"] = "python-megatron"
    return f


def model_file(facts: dict, size: str) -> str | None:
    """The model config for `size` (8b: `8b` in the runbook's FlagScale, `train_llama3_8b`
    before it), or None."""
    files = facts.get("model_files") or []
    if size in files:
        return size
    ends = [m for m in files if m.endswith("_" + size)]
    ends.sort(key=lambda m: ("llama3" not in m, len(m)))
    return ends[0] if ends else None


def main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--model")
    a = ap.parse_args(argv)
    print(json.dumps(probe(a.root, a.model, os.environ.get("CCTL_PYTHON") or sys.executable),
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
