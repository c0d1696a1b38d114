"""CLI for the pipeline: run, exec-stage, status, stages. Thin: parse, call stages.runner, show
through containerctl.ui (a live view on a terminal, timestamped plain lines elsewhere, -q one
verdict per stage, -v the raw output).

The command bodies (run_cmd, exec_stage_cmd, status_cmd, stages_cmd) take plain arguments and
return the exit code, so containerctl.cli.fast can call them without the CLI framework; typer is
imported only by register(). exec-stage and status are registered from their option tables in
cli.options (the fast parser reads the same tables), every option passed as a keyword."""
from __future__ import annotations

from typing import List, Optional

from ..bounds import MAX_TIMEOUT_S


def echo_factory(quiet: bool, verbose: bool = False):
    """A bare echo(stage, line) for callers without a view (cluster): protocol lines and bash
    traces stay in the stage log unless verbose."""
    import sys
    from ..ui.filters import is_protocol_line
    if quiet:
        return lambda stage, line: None

    def plain(stage: str, line: str):
        if verbose or not is_protocol_line(line):
            sys.stdout.write(f"{stage:>6} | {line}\n")
            sys.stdout.flush()
    return plain


def _say(line: str) -> None:
    import sys
    sys.stderr.write(line + "\n")


class _Guarded:
    """A text stream whose writes never raise: a reader that went away (EPIPE: `containerctl
    run … | head -1`) or a terminal that closed (EIO after SIGHUP) must not end or change the
    run. From the first failed write on, the stream's descriptor points at /dev/null (so the
    interpreter's last flush cannot complain either)."""

    def __init__(self, stream):
        self._s = stream

    def _lost(self) -> None:
        import os
        try:
            nul = os.open(os.devnull, os.O_WRONLY)
            os.dup2(nul, self._s.fileno())
            os.close(nul)
        except (OSError, ValueError, AttributeError):
            pass

    def write(self, text):
        try:
            return self._s.write(text)
        except OSError:
            self._lost()
            return len(text)

    def flush(self):
        try:
            self._s.flush()
        except OSError:
            self._lost()
            try:
                self._s.flush()
            except OSError:
                pass

    def __getattr__(self, name):
        return getattr(self._s, name)


def _guard_streams() -> None:
    import sys
    for n in ("stdout", "stderr"):
        s = getattr(sys, n)
        if s is not None and not isinstance(s, _Guarded):
            setattr(sys, n, _Guarded(s))


def _interrupted(view) -> int:
    import sys
    view.close()
    sys.stderr.write("interrupted: the stage's processes in the container were stopped\n")
    return 130


def _pipe_run(view, pipe, stages, **kw) -> int:
    from ..stages.executor import interrupt_signals
    from ..ui.session import plan
    plan(view, pipe, stages)
    try:
        with interrupt_signals(), view:    # SIGTERM/SIGHUP: as Ctrl-C
            run_id, outcomes = pipe.run(stages, **kw)
    except KeyboardInterrupt:
        return _interrupted(view)
    return view.finish(run_id, outcomes)


def _opts(coll, all_colls, source, timeout, command: str, variant=None) -> dict:
    return {"colls": coll, "all_colls": all_colls, "source": source, "timeout": timeout,
            "command": command, "variants": list(variant or [])}


def run_cmd(profile: Optional[str] = None, name: Optional[str] = None,
            from_: Optional[str] = None, until: Optional[str] = None,
            only: Optional[List[str]] = None, force: bool = False,
            coll: Optional[List[str]] = None, all_colls: bool = False,
            source: Optional[str] = None, timeout: Optional[int] = None, quiet: bool = False,
            verbose: bool = False, set_: Optional[List[str]] = None,
            variant: Optional[List[str]] = None) -> int:
    from .. import lifecycle
    from ..engine import get_engine
    from ..stages.catalog import get_def
    from ..stages.runner import Pipeline
    from ..ui.session import make_view, pipeline_callbacks
    _guard_streams()
    for n in [from_, until] + list(only or []):
        if n:
            get_def(n)   # an unknown stage is said before anything is created
    engine = get_engine()
    # the container's kept settings (its last run's, else its creation's) under the given ones
    p, set_ = lifecycle.run_settings(engine, profile, name, set_, _say)
    if variant:
        from ..flagcx.variants import check_asked
        from ..stages.catalog import stage_names
        check_asked(p, list(only or stage_names()), variant)   # refused before anything is made
    if source:   # a --source tree that cannot be read and copied safely: before any container
        from ..stages.source import check_source_tree
        check_source_tree(p, source)
    old = lifecycle.would_recreate(engine, p, name, set_)
    if old is not None:
        # what would refuse this run after the recreate refuses it before: the stages'
        # checks against the state a new container starts with (none passed)
        pre = Pipeline(engine, p, old.name, _opts(coll, all_colls, source, timeout, "run"))
        pre.state = {"stages": {}}
        pre.reconciled = True      # that state, not the old container's (nor saved anywhere)
        pre.preflight(pre.select(from_, until, only))
    view = make_view(quiet, verbose, title=f"containerctl run · {p.name}")
    with view:          # one live view from the image build to the last stage
        res = lifecycle.up(engine, p, name, on_line=view.up_line, on_status=view.up_status,
                           sets=set_)
        if quiet:
            import sys
            if res.action != "noop":
                sys.stderr.write(f"{res.name}: {res.action}\n")
        else:
            view.up_done(f"{res.name}: {'up to date' if res.action == 'noop' else res.action}")
        view.title = f"containerctl run · {p.name} → {res.name}"
        pipe = Pipeline(engine, p, res.name, _opts(coll, all_colls, source, timeout, "run",
                                                   variant),
                        **pipeline_callbacks(Pipeline, view))
        stages = pipe.select(from_, until, only)
        # what can refuse the run is asked before its settings are recorded in the container
        pipe.preflight(stages)
        from ..errors import UsageError
        from ..results.store import new_run_id
        from ..stages.locks import busy_holder
        holder = busy_holder(engine, res.name)
        if holder:
            raise UsageError(f"container {res.name} is busy: {holder}",
                             "wait for it to finish, then try again")
        run_id = new_run_id(p.name)
        lifecycle.record_last_run(engine, res.name, p, set_ or [], run_id)
        return _pipe_run(view, pipe, stages, force=force, run_id=run_id)


def exec_stage_cmd(*, stage: str, profile: Optional[str], name: Optional[str], force: bool,
                   coll: Optional[List[str]], all_colls: bool, source: Optional[str],
                   timeout: Optional[int], quiet: bool, verbose: bool,
                   set_: Optional[List[str]], variant: Optional[List[str]]) -> int:
    """Run one stage in the existing container (its prerequisites must have passed)."""
    from .. import lifecycle
    from ..engine import get_engine
    # the container's last-run settings, read while the rest is imported and loaded
    early = lifecycle.Prefetch(get_engine(), name) if name else None
    from ..stages.catalog import get_def
    from ..stages.runner import Pipeline
    from ..ui.session import make_view, pipeline_callbacks
    from ..validated import load_profile    # the same profile; pydantic only when it changed
    _guard_streams()
    sd = get_def(stage)
    engine = get_engine()
    target = lifecycle.resolve_target(engine, name, profile)
    c = lifecycle.require_running(engine, target)
    # the settings the container was last run (or brought up) with, the command's on top
    p, _ = lifecycle.settings_profile(engine, c, profile, set_, load_profile, _say,
                                      prefetch=early)
    if variant:
        from ..flagcx.variants import check_asked
        check_asked(p, [stage], variant)
    view = make_view(quiet, verbose, title=f"containerctl exec-stage {stage} · {target}")
    pipe = Pipeline(engine, p, target, _opts(coll, all_colls, source, timeout, "exec-stage",
                                             variant),
                    **pipeline_callbacks(Pipeline, view))
    return _pipe_run(view, pipe, [sd], force=force, explicit=True)


def status_cmd(*, profile: Optional[str], name: Optional[str], json_out: bool) -> int:
    """Which stages passed in a container, when, and in which run."""
    from .. import lifecycle
    from ..engine import get_engine
    early = lifecycle.Prefetch(get_engine(), name) if name else None   # its kept settings
    from ..stages.catalog import stage_names
    from ..stages.state import load_container_state, load_state
    from ..ui.tables import print_json, print_table
    engine = get_engine()
    target = lifecycle.resolve_target(engine, name, profile)
    info = engine.inspect(target)
    # the state kept in the container (any home's last stage) over this home's copy
    running = (info.get("State") or {}).get("Running")
    st = (running and load_container_state(engine, target, info["Id"])) or \
        load_state(target, info["Id"])
    kept = lifecycle.describe_settings(engine, info, early)
    if json_out:
        print_json(dict(st, settings=kept))
        return 0
    rows = []
    for n in stage_names():
        s = st["stages"].get(n, {})
        rows.append([n, s.get("status", "-"), s.get("run_id", ""), s.get("finished", "")])
    print_table(["stage", "status", "run", "finished"], rows, title=f"{target} · profile "
                f"{kept['profile']}" + "".join(f" --set {x}" for x in kept["sets"]) +
                f" (from its {kept['from']})")
    return 0


def stages_cmd(json_out: bool = False) -> int:
    from ..stages.catalog import load_defs
    from ..ui.tables import print_json, print_table
    defs = load_defs()
    if json_out:
        print_json([{"name": d.name, "requires": list(d.requires), "timeout": d.timeout,
                     "description": d.description} for d in defs])
        return 0
    print_table(["stage", "needs", "timeout", "description"],
                [[d.name, ", ".join(d.requires) or "-", f"{d.timeout}s", d.description]
                 for d in defs], "llrl")
    return 0


def register(app) -> None:
    import typer

    from .options import EXEC_STAGE, STATUS, typer_command

    def done(code: int):
        raise typer.Exit(code)

    @app.command("run")
    def run(profile: Optional[str] = typer.Option(
            None, "--profile", "-p", help="Profile name or file (default: the container's own "
            "settings when it exists, else cpu-selftest)."),
            name: Optional[str] = typer.Option(None, "--name"),
            from_: Optional[str] = typer.Option(None, "--from", help="Start at this stage."),
            until: Optional[str] = typer.Option(None, "--until", help="Stop after this stage."),
            only: Optional[List[str]] = typer.Option(None, "--only", help="Run only these."),
            force: bool = typer.Option(False, "--force", help="Rerun stages that already "
                                       "passed with the same inputs."),
            coll: Optional[List[str]] = typer.Option(None, "--coll", help="perf: collective(s)."),
            all_colls: bool = typer.Option(False, "--all", help="perf: every collective."),
            source: Optional[str] = typer.Option(None, "--source", help="FlagCX: a path, a git "
                                                 "URL[@ref], or `selftest`."),
            timeout: Optional[int] = typer.Option(None, "--timeout", min=1,
                                                  max=MAX_TIMEOUT_S,
                                                  help="Per-stage timeout (s)."),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="One verdict line per stage "
                                       "and the results path."),
            verbose: bool = typer.Option(False, "--verbose", "-v", help="Stream the stages' raw "
                                         "output (protocol lines and traces included)."),
            set_: Optional[List[str]] = typer.Option(None, "--set"),
            variant: Optional[List[str]] = typer.Option(None, "--variant", help="Run the perf/"
                                                        "unittest stages under these profile "
                                                        "variants (or all).")):
        """Bring the profile's container up and run the stages in order
        (deps → build → perf → torch → train → hetero), skipping those already passed.
        On a terminal a live view shows each stage; piped, timestamped plain lines."""
        done(run_cmd(profile, name, from_, until, only, force, coll, all_colls, source, timeout,
                     quiet, verbose, set_, variant))

    # exec-stage and status have a fast path (cli.fast): one option table (cli.options) for both
    typer_command(app, "exec-stage", EXEC_STAGE, lambda **kw: exec_stage_cmd(**kw),
                  exec_stage_cmd.__doc__)
    typer_command(app, "status", STATUS, lambda **kw: status_cmd(**kw), status_cmd.__doc__)

    @app.command("stages")
    def stages(json_out: bool = typer.Option(False, "--json", help="Machine-readable.")):
        """List the stages in order, with what each needs."""
        done(stages_cmd(json_out))
