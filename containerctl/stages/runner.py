"""Run stages in order inside a container: render → (host prepare) → exec in a fresh session
whose id is recorded, stream output to a log file, parse, check, record; keep per-container
state so a rerun skips what already passed with the same inputs. A timeout or Ctrl-C kills
the stage's whole session inside the container (mpirun and its ranks included)."""
from __future__ import annotations

import hashlib
import json
import shlex
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import __version__, paths
from ..engine import LABEL_PREFIX as LABEL
from ..engine import Engine
from ..errors import StageError, UsageError
from ..logread import LineSplitter, LogFile, ParseBuffer, log_error
from . import checks as C
from ..flagcx import DEFAULT_COLLS, PROBE_SCRIPT, FlagCXInterface, parse_probe
from ..flagcx.interface import WORD_RE
from ..flagscale import driver_args as flagscale_driver_args
from ..profiles.devices import visible_devices, visible_devices_env   # no pydantic
from .defs import DEFS_DIR, SHELL_NAME, Opts, applies, load_defs, render

if TYPE_CHECKING:   # annotations only: these are pydantic models (validated.Frozen stand in)
    from ..profiles import Profile
    from .stagedef import StageDef

IN_CONTAINER_DIR = "/var/tmp/containerctl"
ALWAYS_EXPORT = ["PATH", "LD_LIBRARY_PATH", "FLAGCX_DEBUG", "FLAGCX_DEBUG_SUBSYS", "FLAGCX_IB_HCA",
                 "FLAGCX_ENABLE_TOPO_DETECT", "FLAGCX_SOCKET_IFNAME", "FLAGCX_USE_HOST_COMM",
                 "NCCL_DEBUG", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST",
                 "NVSHMEM_DISABLE_NVLS", "OMPI_MCA_btl_vader_single_copy_mechanism"]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# state

def state_file(container: str) -> Path:
    return paths.state_file(container)


def _valid_state(st) -> bool:
    return (isinstance(st, dict) and isinstance(st.get("container_id"), str)
            and isinstance(st.get("stages"), dict)
            and all(isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("status"), str)
                    for k, v in st["stages"].items()))


def load_state(container: str, container_id: str, warn: Callable[[str], None] | None = None
               ) -> dict:
    """Which stages passed in this container, with which inputs. A state file that is not
    JSON of the right shape is dropped with a warning (the stages simply run again)."""
    f = state_file(container)
    fresh = {"container_id": container_id, "stages": {}}
    if not f.is_file():
        return fresh
    try:
        st = json.loads(f.read_text())
    except (OSError, ValueError, RecursionError) as exc:   # nested 5000 deep: not a state
        st, why = None, f"not JSON ({type(exc).__name__ if isinstance(exc, RecursionError) else exc})"
    else:
        why = "not a containerctl state file (wrong shape)"
    if not _valid_state(st):
        (warn or (lambda m: None))(f"warning: ignoring the stage state {f}: {why}; stages will "
                                   "run again")
        return fresh
    return st if st["container_id"] == container_id else fresh


def save_state(container: str, st: dict) -> None:
    paths.atomic_write(state_file(container), json.dumps(st, indent=1))


CONTAINER_STATE = "state.json"      # in IN_CONTAINER_DIR: the same shape, written by any home


def parse_container_state(text: str, container_id: str) -> dict | None:
    try:
        st = json.loads(text)
    except ValueError:
        return None
    if not _valid_state(st) or st.get("container_id") != container_id:
        return None
    return st


def load_container_state(engine: Engine, container: str, container_id: str) -> dict | None:
    """The stage state kept inside the container (written by whichever home ran a stage
    there last), or None when there is none or it is damaged: the truth about what passed in
    this container, which a home's own state file only caches."""
    return container_view(engine, container, container_id, "")[0]


def container_view(engine: Engine, container: str, container_id: str, flagcx_dir: str
                   ) -> tuple[dict | None, str | None]:
    """(the container's stage state, the fingerprint in flagcx_dir's source marker — the
    first word of its first line, as source.read_marker reads it) in one exec."""
    sep = "\n--cctl-source-marker--\n"
    try:
        code, out = engine.exec_capture(container, [
            "sh", "-c", 'cat "$1" 2>/dev/null; printf "$3"; [ -z "$2" ] || '
            'head -n1 "$2/.containerctl-source" 2>/dev/null; exit 0', "view",
            f"{IN_CONTAINER_DIR}/{CONTAINER_STATE}", flagcx_dir, sep.replace("\n", "\\n")])
    except Exception:
        return None, None
    if code != 0 or sep not in out:
        return None, None
    st_text, _, marker = out.rpartition(sep)
    words = marker.split()
    return parse_container_state(st_text, container_id), (words[0] if words else None)


def save_container_state(engine: Engine, container: str, st: dict) -> None:
    engine.put_file(container, IN_CONTAINER_DIR, CONTAINER_STATE, json.dumps(st).encode())


def _fp_word(source: str | None) -> str:
    """`dir:abc` / `git:abc` / `abc` -> `abc` (the marker holds the bare fingerprint)."""
    s = (source or "").strip()
    return s.split(":", 1)[1] if s.startswith(("dir:", "git:")) else s


# ---------------------------------------------------------------------------------------------
# context



def as_lines(values, what: str) -> str:
    """A list for a stage script: one element per line (the script reads it with mapfile), so
    an element may hold spaces, quotes or `$` but not a newline."""
    out = []
    for v in values:
        v = str(v)
        if "\n" in v or "\0" in v:
            raise UsageError(f"{what}: {v!r} contains a newline",
                             "remove the newline from the value")
        out.append(v)
    return "\n".join(out)


def make_context(profile: Profile, options: dict | None = None,
                 flagcx: "FlagCXInterface | None" = None) -> dict:
    """What a stage script is rendered from. User-given VALUES travel only in ctx["env"]: the
    renderer exports each one quoted (defs.render), and the built-in scripts read them as "$CCTL_…"
    — so no value is ever spliced into bash text. The remaining keys are structure (which branch
    of a script applies) and the legacy fragments the hetero launch still uses."""
    options = options or {}
    fx = profile.flagcx
    perf = profile.stages.perf.model_dump()
    if options.get("colls"):
        perf["colls"] = options["colls"]
    for k in ("begin", "end", "factor", "warmup", "iters"):
        if options.get(k) is not None:
            perf[k] = options[k]
    colls = list(perf["colls"])
    if options.get("all_colls"):
        colls = list(DEFAULT_COLLS)
        if flagcx is not None and flagcx.perf_colls:
            colls = [c for c in DEFAULT_COLLS if c in flagcx.perf_colls] or colls
    for c in colls:
        if not WORD_RE.match(str(c)):
            raise UsageError(f"collective {c!r} is not a FlagCX perf test name",
                             "use names such as allreduce, allgather, broadcast")
    plan = options.get("device_plan") or {}     # flagcx/variants.device_plan: auto resolved
    nranks = int(options.get("nranks") or plan.get("nranks") or
                 (fx.nranks if fx.nranks != "auto" else 1))
    visible = visible_devices(fx, nranks, plan)   # auto: 0..nranks-1
    stage_env = dict(fx.env)
    for k, v in visible_devices_env(fx, nranks, plan).items():
        stage_env.setdefault(k, v)
    export = list(dict.fromkeys(ALWAYS_EXPORT + list(profile.container.env) + list(stage_env)))
    for k in list(stage_env) + export:
        if not SHELL_NAME.match(k):
            raise UsageError(f"environment variable name {k!r} is not a shell identifier",
                             "use letters, digits and _ (no '=', spaces or quotes)")
    cctl_dir = f"{fx.dir.rstrip('/')}/../.containerctl"
    tr, train = profile.stages.torch, profile.stages.train  # typed, defaults in profiles/model.py
    ut = profile.stages.unittest
    env: dict[str, str] = {
        "CCTL_DIR": cctl_dir, "CCTL_FLAGCX_DIR": fx.dir.rstrip("/") or "/",
        "CCTL_NRANKS": str(nranks), "CCTL_PLATFORM": profile.platform,
        "CCTL_MAKE_FLAGS": as_lines(fx.make_flags, "flagcx.make_flags"),
        "CCTL_DEVICE_HOME": fx.device_home or "",
        "CCTL_PROFILE_CCL_HOME": fx.ccl_home or "",
        "CCTL_PROFILE_MPI_HOME": fx.mpi_home or "",
        "CCTL_PROFILE_MPI_LINK": fx.mpi_link or "",
        "CCTL_INSTALL_MISSING": "1" if options.get("install_missing", True) else "0",
        "CCTL_EXPORT_NAMES": " ".join(export),
        "CCTL_MPIRUN_ARGS": as_lines(profile.stages.perf.mpirun_args, "stages.perf.mpirun_args"),
        "CCTL_COLLS": " ".join(colls),
        "CCTL_TORCH_INDEX_URL": tr.index_url or "",
        "CCTL_TORCH_ADAPTOR": fx.torch_adaptor or "",
        "CCTL_TORCH_EXAMPLE_ARGS": as_lines(tr.example_args, "stages.torch.example_args"),
        "CCTL_TORCH_MASTER_PORT": str(tr.master_port),
        "CCTL_TORCH_DEBUG": "1" if tr.debug else "",
        "CCTL_UT_TIMEOUT": str(ut.timeout_per_binary),
        "CCTL_UT_COMPONENTS": " ".join(ut.components or []),
        "CCTL_UT_FILTER": ("-" + ":".join(ut.exclude)) if ut.exclude else "",
        "CCTL_UT_SKIP_BINS": " ".join(getattr(ut, "skip_binaries", None) or []),
        # the train driver's argv, from stages.train (checked there: cause + fix, exit 2)
        "CCTL_TRAIN_ARGS": as_lines(flagscale_driver_args(
            train.model_dump(), fx.visible_devices_env, visible),
            "stages.train"),
        "CCTL_TRAIN_CONDA_ENV": train.conda_env or "",
    }
    if flagcx is not None:
        env.update(flagcx_env(flagcx, perf, options))
        if fx.torch_adaptor:
            # the adaptor one way only, the way this checkout reads it
            t_env, t_argv = flagcx.torch_install(fx.torch_adaptor)
            env["CCTL_TORCH_ADAPTOR_ENV"] = t_env.get("FLAGCX_ADAPTOR", "")
            env["CCTL_TORCH_SETUP_ARGS"] = as_lines(t_argv, "torch setup arguments")
        if fx.compile_kernel and "COMPILE_KERNEL" in (flagcx.make_vars_read or []):
            # FlagCX's CI builds with COMPILE_KERNEL=1; only where this checkout's Makefiles read it
            env["CCTL_BUILD_MAKE_VARS"] = "\n".join(
                x for x in (env.get("CCTL_BUILD_MAKE_VARS", ""), "COMPILE_KERNEL=1") if x)
    env.update(stage_env)
    make_flags = " ".join(shlex.quote(f) for f in fx.make_flags)
    path_vars = []
    if fx.device_home:
        path_vars.append(f"DEVICE_HOME={shlex.quote(fx.device_home)}")
    path_vars.append('${CCL_HOME:+CCL_HOME="$CCL_HOME"}')
    path_vars.append('${MPI_HOME:+MPI_HOME="$MPI_HOME"}')
    return {
        "profile": profile, "platform": profile.platform, "nranks": nranks, "env": env,
        "flagcx": flagcx, "perf": Opts(perf), "torch": Opts(tr.model_dump()),
        "train": Opts(train.model_dump()),
        "print_buffer": bool(perf.get("print_buffer", True)),
        "references": profile.references, "platform_key": profile.name,
        "known_failures": list(ut.known_failures),
        "known_build_failures": list(ut.known_build_failures),
        "excluded_tests": list(ut.exclude),
        # legacy fragments, used only by the hetero launch (cluster) until it moves onto env
        "fx": fx, "colls": " ".join(colls), "make_flags": make_flags,
        "path_vars": " ".join(path_vars), "export_names": " ".join(export),
        "cctl_dir": cctl_dir, "stage_env": {},
    }


def flagcx_env(fxi: "FlagCXInterface", perf: dict, options: dict) -> dict[str, str]:
    """What the probed checkout tells the perf, torch and unittest scripts."""
    env = {"CCTL_PERF_LAYOUT": fxi.perf_layout or "", "CCTL_PERF_DIR": fxi.perf_dir or "",
           "CCTL_PERF_BIN_DIR": fxi.perf_bin_dir or "",
           "CCTL_PERF_PREFIX": fxi.perf_bin_prefix or ""}
    if fxi.perf_layout:
        env["CCTL_PERF_ARGS"] = as_lines(fxi.perf_args(
            begin=perf["begin"], end=perf["end"], factor=perf["factor"], warmup=perf["warmup"],
            iters=perf["iters"], print_buffer=perf.get("print_buffer", True),
            dtype=perf.get("dtype"), op=perf.get("op"),
            extra=perf.get("extra_args") or []), "stages.perf.extra_args")
    env["CCTL_BUILD_MAKE_VARS"] = as_lines(
        [f"{k}={v}" for k, v in fxi.build_make_vars().items()], "make variables")
    env["CCTL_UT_LAYOUT"] = fxi.unittest_layout
    if not env.get("CCTL_UT_COMPONENTS"):
        env["CCTL_UT_COMPONENTS_PROBED"] = " ".join(fxi.unittest_components)
    env["CCTL_UT_MAKE_VARS"] = as_lines(
        [f"{k}={v}" for k, v in fxi.unittest_make_vars().items()], "make variables")
    env["CCTL_TORCH_DIR"] = fxi.torch_dir or ""
    env["CCTL_TORCH_EXAMPLE"] = fxi.torch_example or ""
    return env


from .source import check_source, prepare_source, resolve_source, source_identity  # noqa: E402,F401


# ---------------------------------------------------------------------------------------------
# execution with kill-on-interrupt

KILL_SCRIPT = r"""sid=$(cat "$1" 2>/dev/null)
tok=$2
spare=${3:-}
# every process of the stage: its session, and anything that carries the stage's token in its
# environment (a process that started a session of its own still inherits the token). $3: pids
# to spare (the stage's own wrapper and its setsid, when it sweeps up after its script ended).
# TERM, then KILL for what is still alive after up to 2 s (no wait when nothing was found).
# (bash builtins only, no process per process looked at: a sweep ends every stage)
match() {
  local st envs IFS
  read -r st 2>/dev/null < "$1/stat" || return 1
  set -- "$1" ${st##*) }           # $2 state, $3 ppid, $4 pgrp, $5 session
  [ "$2" != Z ] || return 1
  [ -n "$sid" ] && [ "$5" = "$sid" ] && return 0
  [ -n "$tok" ] || return 1
  mapfile -d '' -t envs 2>/dev/null < "$1/environ" || return 1
  IFS=$'\1'
  [[ "$IFS${envs[*]}$IFS" == *"${IFS}CCTL_STAGE_TOKEN=$tok$IFS"* ]]
}
for sig in TERM KILL; do
  n=0
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    case " $$ $spare " in *" $pid "*) continue ;; esac
    match "$p" && kill -$sig "$pid" 2>/dev/null && n=$((n+1))
  done
  [ $n = 0 ] && break
  if [ $sig = TERM ]; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      sleep 0.2; left=0
      for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        case " $$ $spare " in *" $pid "*) continue ;; esac
        match "$p" && { left=1; break; }
      done
      [ $left = 0 ] && break 2
    done
  fi
done
exit 0"""


def session_alive(engine: Engine, container: str, pidfile: str) -> list[str]:
    """Live processes still in the stage's session (zombies are dead: not counted)."""
    code, out = engine.exec_capture(container, ["bash", "-c", f"""sid=$(cat {pidfile} 2>/dev/null) || exit 0
for p in /proc/[0-9]*; do f=$(sed 's/.*) //' "$p/stat" 2>/dev/null); set -- $f
[ "$4" = "$sid" ] && [ "$1" != Z ] && echo "${{p#/proc/}} $(cat $p/comm 2>/dev/null)"; done; exit 0"""])
    return [ln for ln in out.splitlines() if ln.strip()]


def exec_stage_script(engine: Engine, container: str, script: str, stage: str, timeout: int,
                      on_output: Callable[[bytes], None], run_token: str = "",
                      run: Callable[[str], str] | None = None) -> tuple[int, str]:
    """Returns (exit code, outcome) with outcome in ok | timeout | interrupted. Whatever the
    script returned, what it left behind (a daemon that setsid'd away, a background job) is
    killed when it ends. `run_token` marks every process of the stage for the run's watchdog
    (stages.locks), which kills them if this process goes away."""
    import uuid
    token = uuid.uuid4().hex
    d = f"{IN_CONTAINER_DIR}/{stage}"
    pidfile = f"{d}/session"
    env = {"CCTL_STAGE_TOKEN": token}
    if run_token:
        env["CCTL_RUN_TOKEN"] = run_token
    # the scripts travel in the exec's environment and the shell that becomes the stage writes
    # them (kill.sh before the session id): one engine round trip instead of a copy and an
    # exec. A script too big for one environment string (or holding a NUL) is copied first.
    if len(script.encode()) < 100_000 and "\0" not in script:
        env.update(CCTL_SCRIPT_SH=script, CCTL_KILL_SH=KILL_SCRIPT)
        write = (f'mkdir -p {d} && printf %s "$CCTL_SCRIPT_SH" > {d}/script.sh && printf %s '
                 f'"$CCTL_KILL_SH" > {d}/kill.sh && chmod 755 {d}/script.sh {d}/kill.sh || '
                 f'{{ echo "containerctl: cannot write the stage script in {d}" >&2; exit 125; }}'
                 '; unset CCTL_SCRIPT_SH CCTL_KILL_SH; ')
    else:
        engine.put_files(container, "/", {
            f"{d.lstrip('/')}/script.sh": (script.encode(), 0o755),
            f"{d.lstrip('/')}/kill.sh": (KILL_SCRIPT.encode(), 0o755)})
        write = ""
    # setsid makes the stage a session of its own; its id (= the shell's pid) is written first.
    # After the script, the shell sweeps up what the stage left (sparing itself and setsid).
    # `run` (a scheduler's plug) turns the script's path into the command that runs it
    launch = run(f"{d}/script.sh") if run else f"bash {d}/script.sh"
    cmd = ["setsid", "-w", "bash", "-c", write + f'echo $$ > {pidfile}; {launch}; '
           f'rc=$?; bash {d}/kill.sh {pidfile} "$CCTL_STAGE_TOKEN" "$$ $PPID"; exit $rc']
    result: dict = {}

    def target():
        try:
            result["code"] = engine.exec(container, cmd, on_output=on_output, env=env)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            result["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    outcome = "ok"
    try:
        with interrupt_signals():
            while t.is_alive():
                t.join(0.2)
                if time.monotonic() > deadline:
                    outcome = "timeout"
                    break
    except KeyboardInterrupt:
        outcome = "interrupted"
    if outcome != "ok":
        try:
            # the kill script inline: it works even before the stage's shell wrote kill.sh
            engine.exec(container, ["bash", "-c", KILL_SCRIPT, "kill", pidfile, token])
        except Exception:
            pass
        t.join(15)
        return (124 if outcome == "timeout" else 130), outcome
    if "error" in result:
        raise result["error"]
    return int(result.get("code", 1)), "ok"


# ---------------------------------------------------------------------------------------------
# the pipeline

def failure_cause(text: str, ctx: dict | None = None) -> str:
    """The first real error line of a failed stage's output (compiler, setuptools, traceback,
    mpirun …), with the NCCL-mismatch fix where FlagCX's adaptor and the NCCL found disagree."""
    try:
        from ..results import logerrors as LE
    except ImportError:  # pragma: no cover - the extractor ships with the package
        LE = None
    if LE is not None:
        err = LE.first_error(text)
        if err is not None:
            line = err.line.strip()[:300]
            from .markers import first_value   # the build stage's `cctl_mark nccl …`
            ver = first_value("nccl", text) or (ctx or {}).get("nccl_version")
            fix = LE.nccl_api_mismatch(text, ver) if hasattr(LE, "nccl_api_mismatch") else None
            return line + (f" — {fix}" if fix else "")
    tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return tail[0][:300]




from ..results.verdict import run_status  # noqa: E402,F401  (the one rule: results/verdict.py)


class interrupt_signals:
    """SIGTERM and SIGHUP (a closed terminal or ssh session) end a run as Ctrl-C does: the
    stage's processes are killed and the run is recorded `interrupted`. Only the first signal
    interrupts: a second one during that cleanup is ignored. Installed in the main thread only,
    and not over a handler that someone else installed."""
    fired = False

    def __init__(self):
        self.old: dict = {}

    @staticmethod
    def _handler(signum, frame):
        if interrupt_signals.fired:
            return
        interrupt_signals.fired = True
        raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
                if sig is None:
                    continue
                cur = signal.getsignal(sig)
                if cur in (signal.SIG_DFL, None):
                    self.old[sig] = cur
                    signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self.old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self.old = {}
        return False


@dataclass
class StagePlug:
    """How a multi-host launcher (the cluster's hetero stage) plugs into the one executor: the
    record's name, extra template structure and script values, the rank count, and what it adds
    to the record. The executor still renders, execs, streams, classifies and records."""
    name: str | None = None                 # record / log name (default: the stage's)
    ctx: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    checks_first: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    repro: dict = field(default_factory=dict)
    keep_state: bool = False                # cluster stages are not part of a host's state
    # a scheduler's hooks (containerctl/slurm): `run` makes the shell command that runs the
    # script (a job step); `finish(code, outcome, text)` returns what the scheduler says about
    # it ({"checks", "metrics", "repro"}), judged with the stage's own checks
    run: Callable[[str], str] | None = None
    finish: Callable[[int, str, str], dict] | None = None


@dataclass
class StageOutcome:
    name: str
    status: str          # passed failed timeout interrupted skipped
    message: str = ""
    record: dict = field(default_factory=dict)


class Pipeline:
    def __init__(self, engine: Engine, profile: Profile, container: str, options: dict | None = None,
                 echo: Callable[[str, str], None] | None = None,
                 status: Callable[[str], None] | None = None,
                 events: Callable[..., None] | None = None):
        paths.require_writable_home()
        self.engine = engine
        self.profile = profile
        self.container = container
        self.options = options or {}
        self.echo = echo or (lambda stage, line: None)
        self.status = status or (lambda msg: None)
        self._events = events
        info = engine.inspect(container)
        self.container_id = info["Id"]
        self.image_id = info["Image"]
        self.config_hash = (info["Config"].get("Labels") or {}).get(LABEL + "config-hash", "")
        self.container_env = info["Config"].get("Env") or []
        self.defs = load_defs()
        from ..flagcx.variants import count_devices
        self.device_plan = count_devices(engine, container, profile, self.options, self.status)
        if self.device_plan:
            self.options["device_plan"] = self.device_plan
        self.ctx = make_context(profile, self.options)
        self.state = load_state(container, self.container_id,
                                warn=lambda m: self.status(m))
        self.interface: FlagCXInterface | None = None
        self.lock = None
        self.reconciled = False    # what passed here is the container's word, not this home's
        self.push_state = False

    # which stages, in which order
    def select(self, from_: str | None = None, until: str | None = None,
               only: list[str] | None = None) -> list[StageDef]:
        names = [d.name for d in self.defs]
        for n in [from_, until] + list(only or []):
            if n and n not in names:
                from .defs import get_def
                get_def(n)  # raises with a suggestion
        sel = list(self.defs)
        if only:
            sel = [d for d in sel if d.name in only]
        else:
            if from_:
                sel = sel[names.index(from_):]
            sel = [d for d in sel if not getattr(d, "internal", False) or d.name in (from_, until)]
            if until:
                sel = sel[:[d.name for d in sel].index(until) + 1] if until in [d.name for d in sel] \
                    else []
        if not sel:
            raise UsageError(f"no stage lies between --from {from_} and --until {until}",
                             "stages run in the order " + " → ".join(names))
        return sel

    def not_applicable(self, sd: StageDef) -> str | None:
        if sd.scope != "host":
            return sd.not_applicable
        only = self.profile.stages.only
        builtin = sd.file is None or Path(sd.file).parent == DEFS_DIR
        if only is not None and sd.name not in only and builtin:
            return f"profile {self.profile.name} lists stages.only = {only}"
        if not applies(sd, self.ctx):
            return sd.not_applicable
        return None

    def reconcile_state(self, view: tuple[dict | None, str | None] | None = None) -> None:
        """Check this home's view of the container against the container itself: the stage
        state written there (by whichever home ran last) replaces the home's copy, and a build
        whose source is not the tree the container's flagcx.dir marker names (another home
        rebuilt it) no longer counts as passed, nor does anything that needs it. `view`: the
        (state, marker) the run lock's holder read, else they are read here (one exec)."""
        cst, marker = view or container_view(self.engine, self.container, self.container_id,
                                             self.profile.flagcx.dir.rstrip("/"))
        self.reconciled = True
        # every write numbers the state (seq): a home that knows more than the container (its
        # last write never reached it: the container was killed mid-stage) keeps its own
        self.push_state = cst is not None and \
            int(self.state.get("seq") or 0) > int(cst.get("seq") or 0)
        if cst is not None and not self.push_state:
            self.state = cst
        self.container_source = marker
        build = self.state["stages"].get("build", {})
        had = build.get("source")
        if had and build.get("status") == "passed" and _fp_word(had) != marker:
            gone = {"build"}
            for d in self.defs:
                if any(r in gone for r in d.requires):
                    gone.add(d.name)
            dropped = [n for n in self.state["stages"] if n in gone]
            for n in dropped:
                self.state["stages"].pop(n, None)
            now_is = f"is source {marker}" if marker else "has no containerctl source marker"
            self.status(f"note: the FlagCX tree in {self.container}:{self.profile.flagcx.dir} "
                        f"{now_is}, not {_fp_word(had)} that build passed with here "
                        f"(rebuilt from another home?): {', '.join(dropped)} must run again")
        if cst is not None or had:
            save_state(self.container, self.state)

    def inputs_hash(self, sd: StageDef, script: str, extra: str = "") -> str:
        h = hashlib.sha256()
        h.update(script.encode())
        h.update(self.config_hash.encode())
        h.update(extra.encode())
        for r in sd.requires:
            h.update(self.state["stages"].get(r, {}).get("inputs", "").encode())
        return h.hexdigest()[:16]

    def preflight(self, stages: list[StageDef], explicit: bool = False) -> None:
        """Everything that can refuse a run before any stage starts: an explicitly asked stage
        that does not apply, a prerequisite that has not passed and is not in this run, a
        template that does not render, a --source that does not resolve. A refused run stores
        nothing."""
        selected = [s.name for s in stages]
        if not self.reconciled:
            self.reconcile_state()     # the prerequisites that passed are the container's word
        if self.options.get("source") and not any(s.host_prepare == "flagcx_source"
                                                   for s in stages):
            raise UsageError("--source is read by the build stage, which this run does not "
                             f"include ({', '.join(selected)}): the tree already built would be "
                             "used", "add the build stage (e.g. --only build --only perf) or drop "
                             "--source")
        na_all = [(sd.name, self.not_applicable(sd)) for sd in stages]
        if all(why for _, why in na_all):
            name, why = na_all[0]
            raise UsageError(f"stage {name} does not apply: {why}" if len(stages) == 1 else
                             "none of the stages asked for applies to profile "
                             f"{self.profile.name} ({', '.join(n for n, _ in na_all)})",
                             "choose another stage or change the profile")
        for i, sd in enumerate(stages):
            na = self.not_applicable(sd)
            if na:
                if explicit:
                    raise UsageError(f"stage {sd.name} does not apply: {na}",
                                     "choose another stage or change the profile")
                continue
            for req in sd.requires:
                rd = next((d for d in self.defs if d.name == req), None)
                if self.state["stages"].get(req, {}).get("status") == "passed":
                    continue
                if req in selected[:i]:
                    continue
                if rd is not None and self.not_applicable(rd):
                    continue
                raise UsageError(
                    f"stage {sd.name} needs {req}, which has not passed in {self.container}",
                    f"run it first: containerctl exec-stage {req} (or containerctl run)")
            render(sd, self.ctx)  # a template error is a refusal, not a failed run
            if sd.host_prepare == "flagcx_source":   # resolves, tree safe, flagcx.dir fillable
                check_source(self.engine, self.container, self.profile,
                             self.options.get("source"))

    def run(self, stages: list[StageDef], force: bool = False, run_id: str | None = None,
            explicit: bool = False) -> tuple[str, list[StageOutcome]]:
        from ..results import store
        if not stages:
            raise UsageError("no stage to run", "name a stage: containerctl stages")
        from .locks import ContainerLock
        # the lock lives in the container (any home sees it) and is held for the whole run;
        # its holder reads the container's stage state and source marker on the way
        lock = ContainerLock(self.engine, self.container, self.options.get("command", "run"),
                             ",".join(s.name for s in stages), on_note=self.status,
                             flagcx_dir=self.profile.flagcx.dir.rstrip("/"))
        with lock:
            self.run_token, self.lock = lock.token, lock
            try:
                self.reconcile_state((parse_container_state(lock.state_text, self.container_id),
                                      lock.marker))
                if self.push_state:
                    lock.save_state(json.dumps(self.state))
                self.preflight(stages, explicit)     # refused: nothing stored, lock released
                return self._run_locked(stages, force, run_id, store, lock)
            finally:
                self.lock = None

    def _run_locked(self, stages, force, run_id, store, lock=None
                    ) -> tuple[str, list[StageOutcome]]:
        run_id = run_id or store.new_run_id(self.profile.name)
        if lock is not None:
            lock.mark(run_id, str(store.run_dir(run_id)))
        from ..results.model import Status
        meta = store.run_record(run_id, status=Status.RUNNING, profile=self.profile.name,
                                platform=self.profile.platform, container=self.container,
                                started=now(), stages=[s.name for s in stages])
        if self.device_plan:
            meta["devices"] = self.device_plan
        store.write_run(meta)
        outcomes: list[StageOutcome] = []
        failed: set[str] = set()

        def finish(crash: "store.Crash") -> None:
            if crash.error:
                meta["error"] = crash.error
            store.end_run(meta, Status(run_status(outcomes, [s.name for s in stages], crash.status)),
                          now(), outcomes={o.name: o.status for o in outcomes})
        with store.crash_status(finish):
            for sd in stages:
                na = self.not_applicable(sd)
                if na:
                    oc = StageOutcome(sd.name, "skipped", f"not applicable: {na}")
                    self._record(run_id, sd, oc, 0.0, None)
                    self.events("stage-end", sd.name, status="skipped", message=oc.message,
                                duration=0.0)
                    outcomes.append(oc)
                    continue
                blocked = [r for r in sd.requires if r in failed]
                if blocked:
                    # like make -k: a failed stage stops only the stages that need it
                    oc = StageOutcome(sd.name, "failed",
                                      f"not run: it needs {blocked[0]}, which failed in this run")
                    self._record(run_id, sd, oc, 0.0, None)
                    self.events("stage-end", sd.name, status="failed", message=oc.message,
                                duration=0.0)
                    outcomes.append(oc)
                    failed.add(sd.name)
                    continue
                from ..flagcx.variants import run_variants
                vocs = run_variants(self, sd, run_id)
                oc = self.run_one(sd, run_id, force) if vocs is None else \
                    next((o for o in vocs if o.status not in ("passed", "skipped")), vocs[-1])
                outcomes.extend(vocs or [oc])
                if oc.status == "failed":
                    failed.add(sd.name)
                elif oc.status not in ("passed", "skipped"):
                    break
        return run_id, outcomes

    def events(self, kind: str, stage: str, **data) -> None:
        """stage-start / stage-end for a live view; a broken view never breaks a run."""
        if self._events is not None:
            try:
                self._events(kind, stage, **data)
            except Exception:
                pass

    def probe_flagcx(self) -> FlagCXInterface:
        """Ask the checkout in the container what it offers (flagcx/probe.sh reads its files)."""
        d = self.ctx["env"]["CCTL_DIR"]
        src = self.ctx["env"]["CCTL_FLAGCX_DIR"]
        self.engine.exec(self.container, ["mkdir", "-p", d])
        self.engine.put_file(self.container, d, "probe.sh", PROBE_SCRIPT.read_bytes(), mode=0o755)
        code, out = self.engine.exec_capture(self.container, ["bash", f"{d}/probe.sh", src])
        fxi = parse_probe(out)
        if code != 0 or fxi.errors:
            raise StageError(f"no FlagCX checkout at {src} in {self.container}"
                             + (f" ({fxi.errors[0]})" if fxi.errors else ""),
                             "run the build stage first: containerctl exec-stage build")
        return fxi

    def _context(self, plug: StagePlug | None, flagcx: FlagCXInterface | None = None) -> dict:
        if plug is None and flagcx is None:
            return self.ctx
        ctx = make_context(self.profile, self.options, flagcx)
        if plug is not None:
            ctx.update(plug.ctx)
            ctx["env"] = {**ctx["env"], **{k: str(v) for k, v in plug.env.items()}}
            ctx["env_keep"] = set(plug.env)   # read by indirect names (CCTL_RUN_${i}_…)
        if flagcx is not None:
            # the MPI launch line (launch.py), from the final values and the deps stage's facts
            from ..launch import read_facts, stage_launch_env
            srun = ctx.get("srun")
            facts = None if srun else read_facts(self.engine, self.container,
                                                 ctx["env"]["CCTL_DIR"])
            ctx["env"].update(stage_launch_env(ctx["env"], facts, srun))
        return ctx

    def run_one(self, sd: StageDef, run_id: str, force: bool,
                plug: StagePlug | None = None) -> StageOutcome:
        from ..results import store
        name = (plug.name if plug and plug.name else None) or sd.name
        log_path = store.run_dir(run_id) / "logs" / f"{name}.log"
        started, t0 = now(), time.monotonic()
        ctx = self._context(plug)
        with LogFile(log_path) as logf:
            def log_text(s: str):
                logf.write((s if s.endswith("\n") else s + "\n").encode())
                logf.flush()
                for ln in s.splitlines():
                    self.echo(name, ln)

            extra, source = "", None
            if sd.host_prepare == "flagcx_source":
                source = resolve_source(self.profile, self.options.get("source"))
                extra = source_identity(*source)
            early_error: StageError | None = None
            if sd.needs_flagcx and not sd.host_prepare:
                try:
                    self.interface = self.probe_flagcx()
                    ctx = self._context(plug, self.interface)
                except StageError as exc:
                    early_error = exc
            script = render(sd, ctx)
            inputs = self.inputs_hash(sd, script, extra)
            prev = self.state["stages"].get(sd.name, {})
            if not force and plug is None and early_error is None \
                    and prev.get("status") == "passed" and prev.get("inputs") == inputs \
                    and self._passed_record(sd.name, prev.get("run_id")):
                oc = StageOutcome(sd.name, "skipped",
                                  f"already passed in run {prev.get('run_id')} with the same "
                                  "inputs (--force to rerun)")
                self._record(run_id, sd, oc, 0.0, None, previous=prev.get("run_id"))
                self.events("stage-end", sd.name, status="skipped", message=oc.message,
                            duration=0.0)
                return oc
            self.status(f"{name}: running (log {log_path})")
            # memory bounded whatever the stage prints (logread.py): the log gets all of it,
            # the parser its head and tail, the screen whole lines cut at MAX_LINE
            buf = ParseBuffer()
            pending = LineSplitter()

            def on_output(chunk: bytes):
                buf.extend(chunk)
                logf.write(chunk)     # LogFile: a full disk is kept in logf.error, said below
                logf.flush()
                for ln in pending.feed(chunk):
                    self.echo(name, ln)

            fp = ""
            timeout = int(self.options.get("timeout") or
                          self.profile.stages.timeouts.get(sd.name, sd.timeout))
            extra_checks: list[dict] = []
            self.events("stage-start", name, timeout=timeout, log=str(log_path))
            try:
                if early_error is not None:
                    raise early_error
                if sd.assets:
                    self._copy_assets(sd)
                if sd.host_prepare == "flagcx_source":
                    fp = prepare_source(self.engine, self.container, self.profile, log_text,
                                        source, extra)
                    if sd.needs_flagcx:
                        self.interface = self.probe_flagcx()
                        extra_checks = self._offline_substitutions(log_text)
                        ctx = self._context(plug, self.interface)
                        script = render(sd, ctx)
                if self.interface is not None and sd.needs_flagcx:
                    for ln in self.interface.describe():
                        log_text(f"probe: {ln}")
                code, outcome = exec_stage_script(self.engine, self.container, script, name,
                                                  timeout, on_output,
                                                  getattr(self, "run_token", ""),
                                                  run=plug.run if plug else None)
            except KeyboardInterrupt:
                code, outcome = 130, "interrupted"
            except StageError as exc:
                code, outcome = 1, "ok"
                log_text(f"error: {exc.message}")
                if exc.hint:
                    log_text(f"  fix: {exc.hint}")
                buf.extend(f"error: {exc.message}\n".encode())
            rest = pending.rest()
            if rest:
                self.echo(name, rest)
        if logf.error is not None:
            raise log_error(log_path, logf.error)
        text = buf.text()
        if buf.dropped and sd.parse:     # what nothing parses loses nothing when cut
            extra_checks = extra_checks + [{
                "name": "output read", "ok": False,
                "detail": f"the stage printed {buf.total} bytes; containerctl parsed the first "
                          f"and last {buf.limit // 2 >> 20} MiB (CONTAINERCTL_PARSE_LIMIT_MB "
                          f"raises it) — the full output is in {log_path}"}]
        try:
            metrics, checks, repro = C.run_parser(sd.parse, text, ctx)
        except Exception as exc:  # a parser bug must not lose the run
            metrics, checks, repro = {}, [{"name": "parse", "ok": False,
                                           "detail": f"parser {sd.parse} failed: {exc}"}], {}
        checks = extra_checks + checks
        if plug is not None and plug.finish is not None:
            said = plug.finish(code, outcome, text) or {}
            checks = list(said.get("checks") or []) + checks
            metrics = {**metrics, **(said.get("metrics") or {})}
            repro = {**repro, **(said.get("repro") or {})}
        if plug is not None:
            checks = list(plug.checks_first) + checks
            metrics = {**metrics, **plug.metrics}
            repro = {**repro, **plug.repro}
        if self.interface is not None and sd.needs_flagcx:
            repro = dict(repro, flagcx_version=self.interface.version,
                         flagcx_commit=self.interface.commit)
            if sd.host_prepare:
                metrics["flagcx_interface"] = self.interface.to_dict()
        from ..results.verdict import stage_verdict   # the one verdict rule (no pass without evidence)
        failed_exit = outcome == "ok" and code != 0
        status, msg = stage_verdict(checks, exit_code=code, outcome=outcome, timeout_s=timeout,
                                    cause=failure_cause(text, ctx) if failed_exit else "",
                                    expect_evidence=bool(sd.parse))
        if failed_exit:
            gone = self._container_gone(wait=2.0 if code in (137, 143, 255) else 0.0)
            if gone:
                msg = f"{gone} during the stage (exit code {code}); {msg}"
        oc = StageOutcome(name, status, msg)
        rec = self._record(run_id, sd, oc, time.monotonic() - t0, code, metrics=metrics,
                           checks=checks, repro=repro, started=started, source=fp)
        oc.record = rec
        self.events("stage-end", name, status=status, message=msg,
                    duration=rec["duration_s"])
        if plug is not None and not plug.keep_state:
            if outcome == "interrupted":
                raise KeyboardInterrupt
            return oc
        st = {"status": status, "inputs": inputs, "run_id": run_id, "finished": now()}
        if fp:
            st["source"] = fp
        if sd.host_prepare and self.interface is not None:
            st["interface"] = self.interface.to_dict()
        self.state["stages"][sd.name] = st
        self.state["seq"] = int(self.state.get("seq") or 0) + 1
        if status != "passed":
            # a failed stage invalidates the stages that need it, directly or through others
            gone = {sd.name}
            for d in self.defs:
                if any(r in gone for r in d.requires):
                    gone.add(d.name)
                    self.state["stages"].pop(d.name, None)
        save_state(self.container, self.state)
        try:
            if self.lock is not None:
                self.lock.save_state(json.dumps(self.state))   # its holder writes it
            else:
                save_container_state(self.engine, self.container, self.state)
        except Exception as exc:   # the container went away: the record says what happened
            self.status(f"warning: could not write the stage state into {self.container}: {exc}")
        if outcome == "interrupted":
            raise KeyboardInterrupt
        return oc

    def _passed_record(self, stage: str, run_id) -> bool:
        """A skip as "already passed" leans on evidence this home can show: that run's record
        of the stage, in this home's results, says passed. (A pass another home recorded counts
        as a prerequisite — the container says so — but this home runs the stage itself.)"""
        from ..results import store
        try:
            rec = json.loads((store.run_dir(str(run_id)) / f"{stage}.json").read_text())
        except (OSError, ValueError, UsageError):
            return False
        return isinstance(rec, dict) and rec.get("status") == "passed"

    def _offline_substitutions(self, log_text) -> list[dict]:
        """Empty submodules of a release tarball, filled from the system, or a clear error."""
        subs, problems = self.interface.substitutions()
        checks = []
        src = self.ctx["env"]["CCTL_FLAGCX_DIR"]
        for sub in subs:
            log_text(f"offline checkout: {sub['submodule']} is empty here; using {sub['with']}")
            for rel, target in (sub.get("links") or {}).items():
                dest = f"{src}/{rel}"
                code, out = self.engine.exec_capture(self.container, [
                    "bash", "-c", 'mkdir -p "$(dirname "$1")" && ln -sfn "$2" "$1"', "link",
                    dest, target])
                if code != 0:
                    raise StageError(f"could not link {dest} -> {target}: {out.strip()[-200:]}",
                                     f"fill {sub['submodule']} in the checkout yourself")
                log_text(f"  {rel} -> {target}")
            checks.append({"name": f"{sub['submodule']} substituted", "ok": True,
                           "detail": f"empty in this checkout; built with {sub['with']}"})
        if problems:
            raise StageError(problems[0], "see the build log for the probe's findings")
        want = [f.split("=", 1)[0] for f in self.profile.flagcx.make_flags]
        known = set(self.interface.make_flags)
        unknown = [w for w in want if known and w.startswith("USE_") and w not in known]
        if unknown:
            log_text(f"warning: this checkout's Makefile does not mention {', '.join(unknown)} "
                     f"(it knows {' '.join(sorted(known))})")
        return checks

    def _container_gone(self, wait: float = 0.0) -> str | None:
        """Why the stage's container is no longer running, if it is not. A killed exec can end
        a moment before the engine marks its container stopped: `wait` allows for that."""
        deadline = time.monotonic() + wait
        while True:
            try:
                c = self.engine.find(self.container)
            except Exception:
                return "the Docker engine stopped answering"
            if c is None:
                return f"container {self.container} was removed"
            if not c.running:
                return f"container {self.container} stopped ({c.status})"
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)

    def _copy_assets(self, sd: StageDef) -> None:
        from .defs import ASSETS_DIR
        dest = f"{self.ctx['cctl_dir']}/assets"
        self.engine.exec(self.container, ["mkdir", "-p", dest])
        for name in sd.assets:
            src = ASSETS_DIR / name
            if not src.is_file():
                raise UsageError(f"stage {sd.name} names asset {name}, which does not exist",
                                 f"put it in {ASSETS_DIR}")
            self.engine.put_file(self.container, dest, name, src.read_bytes())

    def _record(self, run_id: str, sd: StageDef, oc: StageOutcome, duration: float,
                code: int | None, metrics=None, checks=None, repro=None, started=None,
                previous=None, source: str = "") -> dict:
        from ..results import store
        from ..results.model import Status
        rec = store.stage_record(
            run_id, oc.name, status=Status(oc.status), started=started or now(), finished=now(),
            duration_s=round(duration, 3), exit_code=code, message=oc.message,
            profile=self.profile.name, platform=self.profile.platform, container=self.container,
            metrics=metrics, checks=checks, repro=self._repro(repro or {}, source),
            **({"previous_run": previous} if previous else {}))
        store.write_stage(run_id, rec)
        return rec

    def _repro(self, extra: dict, source: str) -> dict:
        build = self.state["stages"].get("build", {})
        r = {"containerctl": __version__, "image_id": self.image_id,
             "container_id": self.container_id[:12], "config_hash": self.config_hash,
             "profile_file": self.profile.source_file,
             "profile_hash": hashlib.sha256(self.profile.model_dump_json().encode()).hexdigest()[:16],
             "environment": {k: v for k, v in (e.split("=", 1) for e in self.container_env
                                                if "=" in e)},
             "flagcx_build_run": build.get("run_id")}
        if source or build.get("source"):
            r["flagcx_source"] = source or build.get("source")
        r.update({k: v for k, v in extra.items() if v is not None})
        return r
