"""Drive one FlagScale training run the way the probed FlagScale expects (runbook §三.3), inside
the container (train stage) or on a bare host: probe -> size to the devices -> write a config of
our own (the user's example files are read, never edited) -> run.py action=run -> poll the job's
log -> action=stop (always) -> check nothing is left -> print the evidence.

Needs Python 3 and PyYAML. Every fact is printed as `CCTL_TRAIN <what> key=value …`; the log
lines the verdict reads follow `=== containerctl train log ===` (containerctl/results/train.py).
"""
from __future__ import annotations

import argparse
import copy
import glob
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flagscale_probe as FP  # noqa: E402

ITER_RE = re.compile(r"iteration\s+(\d+)\s*/\s*(\d+)\s*\|")
# FlagCX's own logger (`host:pid:tid [dev] FLAGCX INFO …`): only its lines are evidence. A bare
# "flagcx" matched the run directory's name (run-…-flagcx) and the argument dump on the first
# real GPU run, which would have counted for an NCCL run too. results/train.py has the same.
FLAGCX_RE = re.compile(r"\bFLAGCX (?:INFO|WARN|WARNING|TRACE|ERROR|ABORT)\b")
MEM_RE = re.compile(r"memory \(MB\)\s*\|")

# the small preset: a model one GPU trains in seconds, on Megatron's mock data
SMALL_MODEL = {"num_layers": 4, "hidden_size": 256, "ffn_hidden_size": 1024,
               "num_attention_heads": 8, "num_query_groups": 4, "seq_length": 256,
               "max_position_embeddings": 256, "micro_batch_size": 4}
DROP_MODEL = ("transformer_impl", "use_flash_attn", "rotary_interleaved_patch")


def say(what: str, **kv) -> None:
    vals = " ".join(f"{k}={_v(v)}" for k, v in kv.items())
    print(f"CCTL_TRAIN {what} {vals}".rstrip(), flush=True)


def _v(v) -> str:
    s = str(v)
    return s.replace(" ", "_") if s else "-"


def count_devices(visible_env: str) -> tuple[int, str]:
    """Devices this process can use: the visible-devices variable when set, else device nodes,
    else the vendor tool."""
    vis = os.environ.get(visible_env)
    if vis:
        return len([x for x in vis.split(",") if x.strip()]), visible_env
    nodes = [p for p in glob.glob("/dev/nvidia[0-9]*") if re.search(r"nvidia\d+$", p)]
    if nodes:
        return len(nodes), "/dev/nvidia*"
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        n = len([ln for ln in out.stdout.splitlines() if ln.startswith("GPU ")])
        if n:
            return n, "nvidia-smi"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return 0, "none"


def size_parallel(nproc: int, want_tp, want_pp, ex_tp: int, ex_pp: int, heads: int,
                  layers: int) -> tuple[int, int, str]:
    """TP and PP within the devices: asked values are taken as given (refused when they do not
    fit), `auto` keeps the example's where they fit and shrinks them where not."""
    if want_tp not in (None, "auto") or want_pp not in (None, "auto"):
        tp = int(want_tp) if want_tp not in (None, "auto") else 1
        pp = int(want_pp) if want_pp not in (None, "auto") else 1
        return tp, pp, "asked"
    tp, pp = ex_tp, ex_pp
    why = "the example's"
    while tp * pp > nproc or nproc % (tp * pp) or heads % tp or layers % pp:
        if pp > 1:
            pp //= 2
        elif tp > 1:
            tp //= 2
        else:
            break
        why = f"shrunk from the example's TP{ex_tp} PP{ex_pp} to fit {nproc} device(s)"
    return max(tp, 1), max(pp, 1), why


def build_config(a, facts: dict, nproc: int, visible: str, out_conf: Path) -> dict:
    import yaml
    root = Path(facts["root"])
    conf = root / facts["conf"]
    top = yaml.safe_load((conf / f"{facts['config_name']}.yaml").read_text()) or {}
    mf = FP.model_file(facts, a.size)
    if not mf:
        raise SystemExit(f"error: no model config for size {a.size} in {conf}/train "
                         f"(it has {', '.join(facts['model_files'])}); fix: set "
                         "stages.train.size to one of them")
    model = yaml.safe_load((conf / "train" / f"{mf}.yaml").read_text()) or {}
    top = copy.deepcopy(top)
    # our model file replaces the example's in the `train` group, in the example's order
    orig = [d for d in (top.get("defaults") or []) if not (isinstance(d, dict) and "train" in d)]
    top["defaults"] = (orig + [{"train": "cctl"}]) if facts.get("defaults_self_first") \
        else ([{"train": "cctl"}] + orig)
    exp = top.setdefault("experiment", {})
    exp["exp_dir"] = str(a.run_dir)
    runner = exp.setdefault("runner", {})
    runner.pop("hostfile", None)
    runner["nnodes"] = int(a.nnodes)
    runner["nproc_per_node"] = int(nproc)
    envs = exp.setdefault("envs", {}) or {}
    exp["envs"] = envs
    envs[a.visible_env] = visible
    for kv in a.env or []:
        k, _, v = kv.partition("=")
        envs[k] = v
    if a.backend == "flagcx":
        envs.setdefault("FLAGCX_DEBUG", "INFO")
    for k in ("NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS"):
        if k in os.environ:
            envs.setdefault(k, os.environ[k])
    system = model.setdefault("system", {})
    mdl = model.setdefault("model", {})
    data = model.setdefault("data", {})
    system["distributed_backend"] = a.backend
    heads = int(SMALL_MODEL["num_attention_heads"] if a.preset == "small"
                else mdl.get("num_attention_heads", 1))
    layers = int(SMALL_MODEL["num_layers"] if a.preset == "small" else mdl.get("num_layers", 1))
    tp, pp, why = size_parallel(nproc * int(a.nnodes), a.tp, a.pp,
                                int(system.get("tensor_model_parallel_size", 1)),
                                int(system.get("pipeline_model_parallel_size", 1)), heads, layers)
    if tp * pp > nproc * int(a.nnodes):
        raise SystemExit(f"error: TP{tp} x PP{pp} = {tp * pp} needs more than the "
                         f"{nproc * int(a.nnodes)} device(s) present; fix: set stages.train.tp/pp "
                         "to auto or to a product that divides the device count")
    system["tensor_model_parallel_size"] = tp
    system["pipeline_model_parallel_size"] = pp
    if tp == 1:
        system.pop("sequence_parallel", None)
    dp = max(nproc * int(a.nnodes) // (tp * pp), 1)
    logging_ = system.setdefault("logging", {}) or {}
    system["logging"] = logging_
    logging_["log_interval"] = 1
    mg = facts.get("megatron") or {}
    if mg.get("log_throughput"):
        logging_["log_throughput"] = True
    if a.preset == "small":
        for k in [k for k in logging_ if k.startswith("wandb")]:
            logging_.pop(k)
        ck = system.setdefault("checkpoint", {}) or {}
        for k in ("load", "finetune", "pretrained_checkpoint"):
            ck.pop(k, None)
        ck["save_interval"] = 100000
        ck["no_save_optim"] = True
        ck["no_save_rng"] = True
        system["checkpoint"] = ck
        for k in DROP_MODEL:   # TE, flash-attn: a small model on any image needs neither
            mdl.pop(k, None)
            system.pop(k, None)
        mdl["transformer_impl"] = "local"
        mdl.update(SMALL_MODEL)
        if "group_query_attention" not in mdl:
            mdl.pop("num_query_groups", None)
        for flag in mg.get("no_flags") or []:      # only the switches this Megatron has
            if flag != "no-gradient-reduce-div-fusion":
                system[flag.replace("-", "_")] = True
        mdl["eval_iters"] = 0
        mdl["eval_interval"] = 100000
        opt = mdl.setdefault("optimizer", {}) or {}
        mdl["optimizer"] = opt
        sched = opt.setdefault("lr_scheduler", {}) or {}
        opt["lr_scheduler"] = sched
        sched.update({"lr": float(a.lr), "min_lr": float(a.lr) / 10,
                      "lr_warmup_fraction": 0.1, "lr_decay_style": "cosine"})
        gbs = int(a.global_batch_size or 0) or int(mdl["micro_batch_size"]) * dp * 2
        mdl["global_batch_size"] = gbs
        mdl["train_samples"] = gbs * int(a.iterations)
        mdl.pop("train_iters", None)
        for k in ("data_path", "split", "train_data_path", "valid_data_path", "test_data_path"):
            data.pop(k, None)
        data["mock_data"] = True
        data["split"] = "1"
        tok = {"tokenizer_type": "NullTokenizer", "vocab_size": 4096}
        data["tokenizer"] = tok
        # dataloader workers off: mock data is made in-process
        data["num_workers"] = 1
    else:
        if a.data_path:
            data["data_path"] = a.data_path
        if a.tokenizer_path:
            data.setdefault("tokenizer", {})["tokenizer_path"] = a.tokenizer_path
        if a.train_samples:
            mdl["train_samples"] = int(a.train_samples)
        if a.global_batch_size:
            mdl["global_batch_size"] = int(a.global_batch_size)
        if a.checkpoint_load is not None:
            system.setdefault("checkpoint", {})["load"] = a.checkpoint_load or None
    (out_conf / "train").mkdir(parents=True, exist_ok=True)
    (out_conf / "train.yaml").write_text(yaml.safe_dump(top, sort_keys=False))
    (out_conf / "train" / "cctl.yaml").write_text(yaml.safe_dump(model, sort_keys=False))
    gbs = mdl.get("global_batch_size")
    steps = (int(mdl["train_samples"]) // int(gbs)) if mdl.get("train_samples") and gbs else None
    say("sized", devices=nproc, nnodes=a.nnodes, nproc_per_node=nproc, tp=tp, pp=pp, dp=dp,
        why=why, visible=f"{a.visible_env}={visible}")
    say("config", preset=a.preset, base=f"{facts['conf']}/train/{mf}.yaml", backend=a.backend,
        conf=out_conf, global_batch_size=gbs, steps=steps)
    return {"tp": tp, "pp": pp, "dp": dp, "steps": steps}


def job_pids(marker: str) -> list[int]:
    """Processes whose command line names this run's directory (the job and its ranks)."""
    me = os.getpid()
    out = []
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            pid = int(p.split("/")[2])
            if pid == me:
                continue
            cmd = Path(p).read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if marker in cmd and "flagscale_train.py" not in cmd:
            out.append(pid)
    return out


def gpu_pids() -> set[int] | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return {int(x) for x in out.stdout.split() if x.strip().isdigit()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flagscale", required=True, help="checkout, package dir, or 'installed'")
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", default="8b")
    ap.add_argument("--preset", choices=["small", "runbook"], default="small")
    ap.add_argument("--backend", choices=["flagcx", "nccl"], default="flagcx")
    ap.add_argument("--devices", default="auto")
    ap.add_argument("--nnodes", default="1")
    ap.add_argument("--visible-env", default="CUDA_VISIBLE_DEVICES")
    ap.add_argument("--visible-devices", default="auto")
    ap.add_argument("--tp", default="auto")
    ap.add_argument("--pp", default="auto")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--global-batch-size", type=int, default=0)
    ap.add_argument("--train-samples", type=int, default=0)
    ap.add_argument("--lr", default="1e-3")
    ap.add_argument("--data-path", default="")
    ap.add_argument("--tokenizer-path", default="")
    ap.add_argument("--checkpoint-load", default=None)
    ap.add_argument("--exp-dir", default="./outputs_cctl_train")
    ap.add_argument("--unpatch", choices=["auto", "yes", "no"], default="auto")
    ap.add_argument("--poll", type=float, default=5)
    ap.add_argument("--startup", type=float, default=900, help="seconds to the first iteration")
    ap.add_argument("--stall", type=float, default=300, help="seconds between iterations")
    ap.add_argument("--time-limit", type=float, default=3600)
    ap.add_argument("--python", default=os.environ.get("CCTL_PYTHON") or sys.executable)
    ap.add_argument("--pythonpath", action="append", default=[])
    ap.add_argument("--ld-library-path", action="append", default=[])
    ap.add_argument("--env", action="append", default=[])
    a = ap.parse_args(argv)

    facts = FP.probe(a.flagscale, a.model, a.python)
    for k in ("root", "layout", "version", "runner", "config_name", "conf", "entrypoint",
              "megatron_source", "unpatch", "cli", "log_file"):
        say("probe", **{k: facts.get(k)})
    if facts.get("megatron"):
        say("probe", megatron=facts["megatron"]["path"],
            backends=",".join(facts["megatron"].get("choices") or []))
    say("probe", backend_selection=facts.get("backend_selection"))
    for n in facts["notes"]:
        print(f"CCTL_TRAIN found {n}")
    if facts["megatron_source"] and facts["megatron_source"].endswith("-unpatched") and \
            a.unpatch != "no" and facts["unpatch"]:
        cmd = [a.python, facts["unpatch"], "--backend", "Megatron-LM"]
        print("+ " + " ".join(cmd), flush=True)
        rc = subprocess.run(cmd, cwd=facts["root"]).returncode
        say("unpatch", rc=rc)
        facts = FP.probe(facts["root"], a.model, a.python)
    if facts["megatron"] and not facts["megatron"]["flagcx"] and a.backend == "flagcx":
        facts["problems"].append(f"Megatron at {facts['megatron']['path']} has no flagcx "
                                 "distributed backend (patches not applied)")
    if a.backend == "flagcx" and not facts.get("backend_selection") and not facts["problems"]:
        facts["problems"].append("nothing in this FlagScale selects a flagcx backend")
    if facts["problems"]:
        for p in facts["problems"]:
            print(f"error: {p}", flush=True)
        say("result", verdict="unusable")
        return 5
    root = Path(facts["root"])

    nvis = None
    if a.visible_devices not in ("auto", ""):
        nvis = len(a.visible_devices.split(","))
    ndev, src = count_devices(a.visible_env)
    if a.devices not in ("auto", ""):
        nproc = int(a.devices)
        if ndev and nproc > ndev:
            print(f"error: {nproc} devices asked, {ndev} present ({src}); fix: "
                  "stages.train.devices: auto", flush=True)
            return 2
    else:
        nproc = nvis or ndev
    if nproc < 1:
        print("error: no device found (/dev/nvidia*, nvidia-smi, $" + a.visible_env + "); "
              "fix: run where the accelerators are visible, or set stages.train.devices", flush=True)
        return 5
    visible = a.visible_devices if nvis else (os.environ.get(a.visible_env) or
                                              ",".join(str(i) for i in range(nproc)))
    say("devices", found=ndev, source=src, using=nproc)

    run_dir = Path(a.exp_dir).resolve() / time.strftime(f"run-%Y%m%d-%H%M%S-{a.backend}")
    run_dir.mkdir(parents=True, exist_ok=False)
    a.run_dir = run_dir
    conf = run_dir / "conf"
    plan = build_config(a, facts, nproc, visible, conf)
    target = int(a.iterations if a.preset == "small" else (a.iterations or plan["steps"] or 10))
    say("asked", iterations=target, stall_s=int(a.stall), startup_s=int(a.startup))

    env = dict(os.environ)
    # the runner starts `torchrun`: the one beside this interpreter
    env["PATH"] = os.path.dirname(os.path.abspath(a.python)) + ":" + env.get("PATH", "")
    pp_parts = a.pythonpath + [str(root)]
    if facts["megatron"] and facts["megatron_source"] != "python":
        pp_parts.append(facts["megatron"]["path"])
    env["PYTHONPATH"] = ":".join(pp_parts + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if a.ld_library_path:
        env["LD_LIBRARY_PATH"] = ":".join(a.ld_library_path + (
            [env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else []))
    base = [a.python, "run.py", "--config-path", str(conf), "--config-name", "train"]
    log = run_dir / "logs" / "host_0_localhost.output"
    pidf = run_dir / "logs" / "pids" / "host_0_localhost.pid"
    say("paths", log=log, pid_file=pidf, run_dir=run_dir)

    state = {"stopped": False}

    def stop(reason: str) -> None:
        if state["stopped"]:
            return
        state["stopped"] = True
        cmd = base + ["action=stop"]
        print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
        try:
            rc = subprocess.run(cmd, cwd=root, env=env, timeout=120).returncode
        except subprocess.TimeoutExpired:
            rc = 124
        deadline = time.time() + 30
        left = job_pids(str(run_dir))
        while left and time.time() < deadline:
            time.sleep(1)
            left = job_pids(str(run_dir))
        killed = 0
        for pid in left:      # ours: their command lines name this run's own directory
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(2 if killed else 0)
        gp = gpu_pids()
        ours_on_gpu = sorted(gp & set(state.get("seen", set()))) if gp is not None else None
        say("stop", reason=reason, rc=rc, left_after_stop=len(left), killed=killed,
            gpu_left=("unknown" if ours_on_gpu is None else len(ours_on_gpu)))

    class Terminated(Exception):
        pass

    def on_term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    cmd = base + ["action=run"]
    print("+ cd " + str(root) + " && " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.time()
    outcome = "unknown"
    try:
        lp = subprocess.run(cmd, cwd=root, env=env, timeout=600, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
        print(lp.stdout, end="", flush=True)
        rc = lp.returncode
        say("launch", rc=rc)
        if rc != 0:
            outcome = "launch-failed"
            state["launch_tail"] = lp.stdout.splitlines()[-40:]
            return_code = 1
        else:
            seen: set[int] = set()
            state["seen"] = seen
            n, last_n, last_t = 0, 0, time.time()
            first_t = None
            while True:
                time.sleep(a.poll)
                text = log.read_text(errors="replace") if log.is_file() else ""
                n = len({int(m.group(1)) for m in ITER_RE.finditer(text)})
                seen.update(job_pids(str(run_dir)))
                now = time.time()
                if n != last_n:
                    say("progress", iterations=n, seconds=int(now - t0))
                    last_n, last_t = n, now
                    first_t = first_t or now
                if n >= target:
                    outcome = "reached"
                    break
                alive = bool(job_pids(str(run_dir)))
                if pidf.is_file():
                    try:
                        os.kill(int(pidf.read_text().strip()), 0)
                        alive = True
                    except (ValueError, ProcessLookupError, PermissionError):
                        pass
                if not alive and now - t0 > 3 * a.poll:
                    outcome = "exited"
                    say("exited", iterations=n, seconds=int(now - t0))
                    break
                bound = a.stall if first_t else a.startup
                if now - last_t > bound:
                    outcome = "stalled"
                    say("stalled", iterations=n, silent_s=int(now - last_t), bound_s=int(bound))
                    break
                if now - t0 > a.time_limit:
                    outcome = "time-limit"
                    say("time_limit", iterations=n, seconds=int(now - t0))
                    break
            return_code = 0
    except Terminated as e:       # the stage's timeout or Ctrl-C: stop the job, say what was seen
        outcome = f"terminated-by-signal-{e.args[0]}"
        return_code = 128 + int(e.args[0])
    finally:
        stop(outcome)
    say("result", outcome=outcome, seconds=round(time.time() - t0, 1))
    text = log.read_text(errors="replace") if log.is_file() else ""
    print("=== containerctl train log ===", flush=True)
    fx = [ln for ln in text.splitlines() if FLAGCX_RE.search(ln) and not ITER_RE.search(ln)]
    for ln in fx[:40]:
        print(f"CCTL_FLAGCX| {ln}")
    say("flagcx_lines", count=len(fx))
    for ln in text.splitlines():
        if ITER_RE.search(ln) or MEM_RE.search(ln):
            print(ln)
    if outcome != "reached":
        print("=== containerctl train log tail ===")
        for ln in (state.get("launch_tail") or []) + text.splitlines()[-120:]:
            print(f"CCTL_TAIL| {ln}")
    return return_code


if __name__ == "__main__":
    sys.exit(main())
