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
from typing import Callable

from .. import __version__, paths
from ..engine import Engine
from ..errors import StageError, UsageError
from ..profiles import Profile
from ..runspec import LABEL
from . import checks as C
from .defs import Opts, StageDef, applies, load_defs, render

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
    return paths.home() / "state" / f"{container}.json"


def load_state(container: str, container_id: str) -> dict:
    f = state_file(container)
    if f.is_file():
        try:
            st = json.loads(f.read_text())
            if st.get("container_id") == container_id:
                return st
        except (OSError, ValueError):
            pass
    return {"container_id": container_id, "stages": {}}


def save_state(container: str, st: dict) -> None:
    paths.atomic_write(state_file(container), json.dumps(st, indent=1))


# ---------------------------------------------------------------------------------------------
# context

def make_context(profile: Profile, options: dict | None = None) -> dict:
    options = options or {}
    fx = profile.flagcx
    perf = profile.stages.perf.model_dump()
    if options.get("colls"):
        perf["colls"] = options["colls"]
    for k in ("begin", "end", "factor", "warmup", "iters"):
        if options.get(k) is not None:
            perf[k] = options[k]
    colls = perf["colls"]
    if options.get("all_colls"):
        colls = ["allreduce", "allgather", "reducescatter", "alltoall", "broadcast", "reduce",
                 "sendrecv", "gather", "scatter"]
    nranks = int(options.get("nranks") or fx.nranks)
    stage_env = dict(fx.env)
    if fx.visible_devices_env and fx.visible_devices is not None:
        stage_env.setdefault(fx.visible_devices_env, fx.visible_devices)
    export = list(dict.fromkeys(ALWAYS_EXPORT + list(profile.container.env) + list(stage_env)))
    make_flags = " ".join(shlex.quote(f) for f in fx.make_flags)
    path_vars = []
    if fx.device_home:
        path_vars.append(f"DEVICE_HOME={shlex.quote(fx.device_home)}")
    path_vars.append('${CCL_HOME:+CCL_HOME="$CCL_HOME"}')
    path_vars.append('${MPI_HOME:+MPI_HOME="$MPI_HOME"}')
    return {
        "profile": profile, "fx": fx, "perf": Opts(perf), "nranks": nranks,
        "colls": " ".join(shlex.quote(c) for c in colls),
        "torch": Opts(profile.stages.torch), "train": Opts(profile.stages.train),
        "make_flags": make_flags, "path_vars": " ".join(path_vars),
        "export_names": " ".join(export),
        "mpirun_args": " ".join(shlex.quote(a) for a in profile.stages.perf.mpirun_args),
        "perf_extra": " ".join(shlex.quote(a) for a in profile.stages.perf.extra_args),
        "stage_env": stage_env, "cctl_dir": f"{fx.dir.rstrip('/')}/../.containerctl",
        "install_missing": bool(options.get("install_missing", True)),
        "references": profile.references, "platform_key": profile.name,
        "fetch": None,
    }


# ---------------------------------------------------------------------------------------------
# host-side preparation: bring the FlagCX source into the container

def _tree_fingerprint(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith(("build/", ".git/")) or "/build/" in rel or p.is_dir():
            continue
        h.update(rel.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def resolve_source(profile: Profile, override: str | None = None) -> tuple[str, str | None, str]:
    """(kind, location, ref): kind is 'dir' (a host directory copied in) or 'git'."""
    src = override or profile.flagcx.source
    if src == "selftest":
        return "dir", str(paths.data_dir("workloads") / "flagcx-selftest"), ""
    p = Path(src).expanduser()
    if p.is_dir():
        return "dir", str(p.resolve()), ""
    if "://" in src or src.startswith("git@") or src.endswith(".git") or "@" in src:
        url, ref = src, profile.flagcx.ref or ""
        if "@" in src.rsplit("/", 1)[-1] and not src.startswith("git@"):
            url, _, ref = src.rpartition("@")
        return "git", url, ref
    raise UsageError(f"FlagCX source {src!r} is neither a directory here nor a git URL",
                     "set flagcx.source to a path, a URL (URL@ref), or `selftest`")


def source_identity(kind: str, loc: str | None, ref: str) -> str:
    """What the build's inputs hash sees of the source: for a directory, its content."""
    ident = f"{kind}:{loc}@{ref}"
    return ident + ":" + _tree_fingerprint(Path(loc)) if kind == "dir" else ident


def prepare_source(engine: Engine, container: str, profile: Profile, log: Callable[[str], None],
                   source: tuple[str, str | None, str], identity: str) -> str:
    """Copy or clone FlagCX (as resolve_source gave it) into flagcx.dir. Returns a fingerprint
    of the source."""
    kind, loc, ref = source
    dest = profile.flagcx.dir.rstrip("/")
    parent, base = dest.rsplit("/", 1)
    if kind == "dir":
        root = Path(loc)
        fp = identity.rsplit(":", 1)[-1]
        log(f"copying {root} into {container}:{dest} (source fingerprint {fp})")
        engine.exec(container, ["mkdir", "-p", dest])
        engine.put_dir(container, root, parent, arcname=base,
                       exclude=lambda n: n.split("/")[1:2] == ["build"])
        engine.put_file(container, dest, ".containerctl-source", f"{fp}\n".encode())
        return f"dir:{fp}"
    script = f"""set -e
if [ -d {shlex.quote(dest)}/.git ]; then cd {shlex.quote(dest)}; git fetch --all --tags -q || true
else mkdir -p {shlex.quote(parent)}; git clone -q {shlex.quote(loc)} {shlex.quote(dest)}; cd {shlex.quote(dest)}; fi
{"git checkout -q " + shlex.quote(ref) if ref else ""}
git submodule update --init --recursive -q
git rev-parse HEAD"""
    buf = bytearray()
    code = engine.exec(container, ["bash", "-c", script], on_output=buf.extend)
    out = buf.decode("utf-8", "replace")
    log(out)
    if code != 0:
        raise StageError(f"could not fetch FlagCX from {loc}{'@' + ref if ref else ''} "
                         f"(exit {code}): {out.strip().splitlines()[-1] if out.strip() else ''}",
                         "check the URL/ref and the container's network, or give a local path")
    return f"git:{out.strip().splitlines()[-1]}"


# ---------------------------------------------------------------------------------------------
# execution with kill-on-interrupt

KILL_SCRIPT = r"""sid=$(cat "$1" 2>/dev/null) || exit 0
[ -n "$sid" ] || exit 0
for sig in TERM KILL; do
  for p in /proc/[0-9]*; do
    s=$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f4)
    [ "$s" = "$sid" ] && kill -$sig "${p#/proc/}" 2>/dev/null
  done
  [ $sig = TERM ] && sleep 2
done
exit 0"""


def session_alive(engine: Engine, container: str, pidfile: str) -> list[str]:
    """Live processes still in the stage's session (zombies are dead: not counted)."""
    code, out = engine.exec_capture(container, ["bash", "-c", f"""sid=$(cat {pidfile} 2>/dev/null) || exit 0
for p in /proc/[0-9]*; do f=$(sed 's/.*) //' "$p/stat" 2>/dev/null); set -- $f
[ "$4" = "$sid" ] && [ "$1" != Z ] && echo "${{p#/proc/}} $(cat $p/comm 2>/dev/null)"; done; exit 0"""])
    return [ln for ln in out.splitlines() if ln.strip()]


def exec_stage_script(engine: Engine, container: str, script: str, stage: str, timeout: int,
                      on_output: Callable[[bytes], None]) -> tuple[int, str]:
    """Returns (exit code, outcome) with outcome in ok | timeout | interrupted."""
    d = f"{IN_CONTAINER_DIR}/{stage}"
    engine.put_files(container, "/", {f"{d.lstrip('/')}/script.sh": (script.encode(), 0o755),
                                      f"{d.lstrip('/')}/kill.sh": (KILL_SCRIPT.encode(), 0o755)})
    pidfile = f"{d}/session"
    # setsid makes the stage a session of its own; its id (= the shell's pid) is written first
    cmd = ["setsid", "-w", "bash", "-c", f'echo $$ > {pidfile}; exec bash {d}/script.sh']
    result: dict = {}

    def target():
        try:
            result["code"] = engine.exec(container, cmd, on_output=on_output)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            result["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    outcome = "ok"
    old_term = signal.getsignal(signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while t.is_alive():
            t.join(0.2)
            if time.monotonic() > deadline:
                outcome = "timeout"
                break
    except KeyboardInterrupt:
        outcome = "interrupted"
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_term)
    if outcome != "ok":
        try:
            engine.exec(container, ["bash", f"{d}/kill.sh", pidfile])
        except Exception:
            pass
        t.join(15)
        return (124 if outcome == "timeout" else 130), outcome
    if "error" in result:
        raise result["error"]
    return int(result.get("code", 1)), "ok"


# ---------------------------------------------------------------------------------------------
# the pipeline

@dataclass
class StageOutcome:
    name: str
    status: str          # passed failed timeout interrupted skipped
    message: str = ""
    record: dict = field(default_factory=dict)


class Pipeline:
    def __init__(self, engine: Engine, profile: Profile, container: str, options: dict | None = None,
                 echo: Callable[[str, str], None] | None = None,
                 status: Callable[[str], None] | None = None):
        paths.require_writable_home()
        self.engine = engine
        self.profile = profile
        self.container = container
        self.options = options or {}
        self.echo = echo or (lambda stage, line: None)
        self.status = status or (lambda msg: None)
        info = engine.inspect(container)
        self.container_id = info["Id"]
        self.image_id = info["Image"]
        self.config_hash = (info["Config"].get("Labels") or {}).get(LABEL + "config-hash", "")
        self.container_env = info["Config"].get("Env") or []
        self.defs = load_defs()
        self.ctx = make_context(profile, self.options)
        self.state = load_state(container, self.container_id)

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
            if until:
                sel = sel[:[d.name for d in sel].index(until) + 1] if until in [d.name for d in sel] \
                    else []
        return sel

    def not_applicable(self, sd: StageDef) -> str | None:
        if sd.scope != "host":
            return sd.not_applicable
        only = self.profile.stages.only
        if only is not None and sd.name not in only:
            return f"profile {self.profile.name} lists stages.only = {only}"
        if not applies(sd, self.ctx):
            return sd.not_applicable
        return None

    def inputs_hash(self, sd: StageDef, script: str, extra: str = "") -> str:
        h = hashlib.sha256()
        h.update(script.encode())
        h.update(self.config_hash.encode())
        h.update(extra.encode())
        for r in sd.requires:
            h.update(self.state["stages"].get(r, {}).get("inputs", "").encode())
        return h.hexdigest()[:16]

    def run(self, stages: list[StageDef], force: bool = False, run_id: str | None = None,
            explicit: bool = False) -> tuple[str, list[StageOutcome]]:
        from ..results import store
        run_id = run_id or store.new_run_id(self.profile.name)
        meta = {"schema": "containerctl.run/1", "run_id": run_id, "profile": self.profile.name,
                "platform": self.profile.platform, "container": self.container,
                "started": now(), "finished": None, "status": "running",
                "stages": [s.name for s in stages]}
        store.write_run(meta)
        outcomes: list[StageOutcome] = []
        selected = {s.name for s in stages}
        try:
            for sd in stages:
                na = self.not_applicable(sd)
                if na:
                    if explicit:
                        raise UsageError(f"stage {sd.name} does not apply: {na}",
                                         "choose another stage or change the profile")
                    oc = StageOutcome(sd.name, "skipped", f"not applicable: {na}")
                    self._record(run_id, sd, oc, 0.0, None)
                    outcomes.append(oc)
                    continue
                for req in sd.requires:
                    rd = next((d for d in self.defs if d.name == req), None)
                    done = self.state["stages"].get(req, {}).get("status") == "passed"
                    if not done and not (req in selected and any(
                            o.name == req and o.status in ("passed", "skipped") for o in outcomes)):
                        if rd is not None and self.not_applicable(rd):
                            continue
                        raise UsageError(
                            f"stage {sd.name} needs {req}, which has not passed in {self.container}",
                            f"run it first: containerctl exec-stage {req} (or containerctl run)")
                oc = self.run_one(sd, run_id, force)
                outcomes.append(oc)
                if oc.status != "passed" and oc.status != "skipped":
                    break
        finally:
            bad = [o for o in outcomes if o.status not in ("passed", "skipped")]
            meta["finished"] = now()
            meta["status"] = bad[0].status if bad else "passed"
            store.write_run(meta)
        return run_id, outcomes

    def run_one(self, sd: StageDef, run_id: str, force: bool) -> StageOutcome:
        from ..results import store
        log_path = store.run_dir(run_id) / "logs" / f"{sd.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started, t0 = now(), time.monotonic()
        with open(log_path, "ab") as logf:
            def log_text(s: str):
                logf.write((s if s.endswith("\n") else s + "\n").encode())
                logf.flush()
                for ln in s.splitlines():
                    self.echo(sd.name, ln)

            extra, source = "", None
            if sd.host_prepare == "flagcx_source":
                source = resolve_source(self.profile, self.options.get("source"))
                extra = source_identity(*source)
            script = render(sd, self.ctx)
            inputs = self.inputs_hash(sd, script, extra)
            prev = self.state["stages"].get(sd.name, {})
            if not force and prev.get("status") == "passed" and prev.get("inputs") == inputs:
                oc = StageOutcome(sd.name, "skipped",
                                  f"already passed in run {prev.get('run_id')} with the same "
                                  "inputs (--force to rerun)")
                self._record(run_id, sd, oc, 0.0, None, previous=prev.get("run_id"))
                return oc
            self.status(f"{sd.name}: running (log {log_path})")
            buf = bytearray()
            pending = bytearray()

            def on_output(chunk: bytes):
                buf.extend(chunk)
                logf.write(chunk)
                logf.flush()
                pending.extend(chunk)
                while b"\n" in pending:
                    i = pending.index(b"\n")
                    self.echo(sd.name, pending[:i].decode("utf-8", "replace"))
                    del pending[:i + 1]

            fp = ""
            try:
                if sd.assets:
                    self._copy_assets(sd)
                if sd.host_prepare == "flagcx_source":
                    fp = prepare_source(self.engine, self.container, self.profile, log_text,
                                        source, extra)
                timeout = int(self.options.get("timeout") or
                              self.profile.stages.timeouts.get(sd.name, sd.timeout))
                code, outcome = exec_stage_script(self.engine, self.container, script, sd.name,
                                                  timeout, on_output)
            except KeyboardInterrupt:
                code, outcome = 130, "interrupted"
            except StageError as exc:
                code, outcome = 1, "ok"
                log_text(f"error: {exc.message}")
                buf.extend(f"error: {exc.message}\n".encode())
            if pending:
                self.echo(sd.name, pending.decode("utf-8", "replace"))
        text = buf.decode("utf-8", "replace")
        try:
            metrics, checks, repro = C.run_parser(sd.parse, text, self.ctx)
        except Exception as exc:  # a parser bug must not lose the run
            metrics, checks, repro = {}, [{"name": "parse", "ok": False,
                                           "detail": f"parser {sd.parse} failed: {exc}"}], {}
        if outcome == "timeout":
            status, msg = "timeout", f"timed out after {timeout}s; the stage's processes were killed"
        elif outcome == "interrupted":
            status, msg = "interrupted", "interrupted; the stage's processes were killed"
        elif code != 0:
            status = "failed"
            tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or [""]
            msg = f"exit code {code}: {tail[0][:200]}"
            bad = [c for c in checks if c.get("ok") is False]
            if bad:
                msg = f"{bad[0]['name']}: {bad[0]['detail']} (exit code {code})"
            gone = self._container_gone(wait=2.0 if code in (137, 143, 255) else 0.0)
            if gone:
                msg = f"{gone} during the stage (exit code {code}); {msg}"
        else:
            bad = [c for c in checks if c.get("ok") is False]
            status = "failed" if bad else "passed"
            msg = (f"{bad[0]['name']}: {bad[0]['detail']}" if bad else
                   f"{sum(1 for c in checks if c.get('ok'))} checks passed")
        oc = StageOutcome(sd.name, status, msg)
        rec = self._record(run_id, sd, oc, time.monotonic() - t0, code, metrics=metrics,
                           checks=checks, repro=repro, started=started, source=fp)
        oc.record = rec
        st = {"status": status, "inputs": inputs, "run_id": run_id, "finished": now()}
        if fp:
            st["source"] = fp
        self.state["stages"][sd.name] = st
        if status != "passed":
            # a failed stage invalidates what came after it
            order = [d.name for d in self.defs]
            for later in order[order.index(sd.name) + 1:]:
                self.state["stages"].pop(later, None)
        save_state(self.container, self.state)
        if outcome == "interrupted":
            raise KeyboardInterrupt
        return oc

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
        rec = {
            "schema": "containerctl.stage/1", "run_id": run_id, "stage": sd.name,
            "status": oc.status, "started": started or now(), "finished": now(),
            "duration_s": round(duration, 3), "exit_code": code, "message": oc.message,
            "profile": self.profile.name, "platform": self.profile.platform,
            "container": self.container, "metrics": metrics or {}, "checks": checks or [],
            "repro": self._repro(repro or {}, source), "log": f"logs/{sd.name}.log",
        }
        if previous:
            rec["previous_run"] = previous
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
