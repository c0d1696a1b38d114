"""The Pipeline: which stages run, in which order (select, preflight), and running them inside a
container (run, run_one, a stage's variants): render → (host prepare) → execute → parse, check,
record; the per-container state lets a rerun skip what already passed with the same inputs.
Its parts are modules of their own: state.py (what passed in a container), context.py (what a
script is rendered from), catalog.py (which stages exist: defs/*.yaml and the user's),
render.py (a definition + context -> its bash script), executor.py (exec in a session of its
own, kill it whole on timeout or Ctrl-C), locks.py (one run per container, whichever home
asks)."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import __version__, paths
from ..engine import LABEL_PREFIX as LABEL
from ..engine import Engine
from ..errors import StageError, UsageError
from ..flagcx import PROBE_SCRIPT, FlagCXInterface, parse_probe
from ..logread import LineSplitter, LogFile, ParseBuffer, log_error
from ..results.verdict import run_status   # the one rule: results/verdict.py
from . import checks as C
from .context import as_lines, make_context
from .catalog import DEFS_DIR, load_defs
from .executor import exec_stage_script, failure_cause
from .render import applies, render
from .source import check_source, prepare_source, resolve_source, source_identity
from .state import (container_view, fp_word, load_state, now, parse_container_state,
                    save_container_state, save_state)

if TYPE_CHECKING:   # annotations only: these are pydantic models (validated.Frozen stand in)
    from ..profiles import Profile
    from .stagedef import StageDef


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
                from .catalog import get_def
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
        if had and build.get("status") == "passed" and fp_word(had) != marker:
            gone = {"build"}
            for d in self.defs:
                if any(r in gone for r in d.requires):
                    gone.add(d.name)
            dropped = [n for n in self.state["stages"] if n in gone]
            for n in dropped:
                self.state["stages"].pop(n, None)
            now_is = f"is source {marker}" if marker else "has no containerctl source marker"
            self.status(f"note: the FlagCX tree in {self.container}:{self.profile.flagcx.dir} "
                        f"{now_is}, not {fp_word(had)} that build passed with here "
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
            explicit: bool = False, lock=None) -> tuple[str, list[StageOutcome]]:
        """`lock`: the container's lock, already taken by the caller (the cluster takes every
        host's in one order before anything runs) and released by it; else taken here."""
        from ..results import store
        if not stages:
            raise UsageError("no stage to run", "name a stage: containerctl stages")
        from contextlib import nullcontext
        from .locks import ContainerLock
        # the lock lives in the container (any home sees it) and is held for the whole run;
        # its holder reads the container's stage state and source marker on the way
        held = lock is not None
        lock = lock or ContainerLock(self.engine, self.container,
                                     self.options.get("command", "run"),
                                     ",".join(s.name for s in stages), on_note=self.status,
                                     flagcx_dir=self.profile.flagcx.dir.rstrip("/"))
        with (nullcontext(lock) if held else lock):
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
                vocs = self.run_variants(sd, run_id)
                oc = self.run_one(sd, run_id, force) if vocs is None else \
                    next((o for o in vocs if o.status not in ("passed", "skipped")), vocs[-1])
                outcomes.extend(vocs or [oc])
                if oc.status == "failed":
                    failed.add(sd.name)
                elif oc.status not in ("passed", "skipped"):
                    break
        return run_id, outcomes

    def run_variants(self, sd: StageDef, run_id: str) -> list[StageOutcome] | None:
        """Run stage `sd` once per asked variant (each its own record `<stage>-<variant>`, its own
        verdict and log); None when no variant applies to this stage (the plain run happens)."""
        from ..flagcx.variants import resolve, select, variant_table
        asked = list(self.options.get("variants") or [])
        table = variant_table(self.profile, sd.name)
        if not asked or not table:
            return None
        chosen = [(n, v) for n, v in select(sd.name, table, ["all"]) if "all" in asked or n in asked]
        if not chosen:
            return None
        try:
            fxi = self.probe_flagcx()
        except StageError:
            return None          # the plain run records why there is no checkout
        self.interface = fxi
        base = make_context(self.profile, self.options, fxi)
        perf = base["perf"]
        out = []
        for name, v in chosen:
            rname = f"{sd.name}-{name}"
            r = resolve(sd.name, name, v, fxi, str(base["env"].get("CCTL_COLLS", "")).split(),
                        int(base["nranks"]))
            info = {"name": name, "of": sd.name, "description": v.description, "ci": v.ci,
                    "env": dict(v.env), "extra_args": list(v.extra_args), "nranks": r.nranks,
                    "colls": r.colls, "notes": r.notes, "expect_hybrid": v.expect_hybrid,
                    "hosts": v.hosts}
            if r.skip:
                oc = StageOutcome(rname, "skipped", f"variant {name} not applicable: {r.skip}")
                self._record(run_id, sd, oc, 0.0, None, metrics={"variant": info},
                             repro={"variant": info})
                self.events("stage-end", rname, status="skipped", message=oc.message, duration=0.0)
                self.status(f"{rname}: skipped ({r.skip})")
                out.append(oc)
                continue
            export = list(dict.fromkeys(base["env"].get("CCTL_EXPORT_NAMES", "").split() + list(v.env)))
            env = dict(v.env)
            env.update({"CCTL_NRANKS": str(r.nranks), "CCTL_EXPORT_NAMES": " ".join(export)})
            if v.make_vars:
                mv = [x for x in str(base["env"].get("CCTL_BUILD_MAKE_VARS", "")).split("\n") if x]
                mv = [x for x in mv if x.split("=", 1)[0] not in
                      {m.split("=", 1)[0] for m in v.make_vars}]
                env["CCTL_BUILD_MAKE_VARS"] = as_lines(mv + list(v.make_vars), "make variables")
            if sd.name == "perf":
                env["CCTL_COLLS"] = " ".join(r.colls)
                env["CCTL_VARIANT_HOSTS"] = str(v.hosts or 0)
                if fxi.perf_layout:
                    env["CCTL_PERF_ARGS"] = as_lines(fxi.perf_args(
                        begin=v.begin or perf["begin"], end=v.end or perf["end"],
                        factor=perf["factor"], warmup=perf["warmup"], iters=v.iters or perf["iters"],
                        print_buffer=perf.get("print_buffer", True), dtype=perf.get("dtype"),
                        op=perf.get("op"), root=v.root,
                        extra=list(perf.get("extra_args") or []) + list(v.extra_args)),
                        f"variant {name} extra_args")
            elif sd.name == "unittest" and v.components:
                env["CCTL_UT_COMPONENTS"] = " ".join(v.components)
            for n in r.notes:
                self.status(f"{rname}: {n}")
            plug = StagePlug(name=rname, ctx={"nranks": r.nranks, "variant": name,
                                              "expect_hybrid": v.expect_hybrid},
                             env=env, metrics={"variant": info}, repro={"variant": info})
            out.append(self.run_one(sd, run_id, True, plug=plug))
            if out[-1].status in ("interrupted", "timeout"):
                break
        # the stage as asked for: its variants' worst verdict (the run's status rule reads it)
        st = [o.status for o in out]
        worst = next((s for s in ("interrupted", "timeout", "failed") if s in st),
                     "passed" if "passed" in st else "skipped")
        summary = ", ".join(f"{o.name[len(sd.name) + 1:]} {o.status}" for o in out)
        out.append(StageOutcome(sd.name, worst, f"variants: {summary}"))
        return out

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
        from .catalog import ASSETS_DIR
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
