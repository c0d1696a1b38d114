"""CLI for the pipeline: run, exec-stage, status, stages. Thin: parse, call stages.runner, render."""
from __future__ import annotations

from typing import List, Optional

import typer


def _echo_factory(quiet: bool):
    import sys
    if quiet:
        return lambda stage, line: None
    if not sys.stdout.isatty():
        def plain(stage: str, line: str):
            sys.stdout.write(f"{stage:>6} | {line}\n")
        return plain
    from rich.console import Console
    con = Console(highlight=False)

    def echo(stage: str, line: str):
        con.print(f"[dim]{stage:>6} │[/dim] {line}", markup=True, highlight=False, soft_wrap=True)
    return echo


def _summary(run_id: str, outcomes) -> int:
    """The run as `containerctl report` shows it: stages, per-size tables, checks."""
    from rich.console import Console
    from .report import load_runs, table_renderables
    from .results import store
    con = Console(highlight=False)
    for r in table_renderables(load_runs([run_id])):
        con.print(r)
    con.print(f"results: {store.run_dir(run_id)}   (containerctl report {run_id})")
    bad = [o for o in outcomes if o.status not in ("passed", "skipped")]
    return 0 if not bad else (130 if bad[0].status == "interrupted" else 1)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(profile: str = typer.Option("cpu-selftest", "--profile", "-p"),
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
                                                  help="Per-stage timeout (s)."),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="Don't stream stage output."),
            set_: Optional[List[str]] = typer.Option(None, "--set")):
        """Bring the profile's container up and run the stages in order
        (deps → build → perf → torch → train → hetero), skipping those already passed."""
        from . import lifecycle
        from .cli import _progress
        from .engine import get_engine
        from .profiles import load_profile
        from .stages.runner import Pipeline
        from .stages.defs import get_def
        for n in [from_, until] + list(only or []):
            if n:
                get_def(n)   # an unknown stage is said before anything is created
        p = load_profile(profile, set_)
        engine = get_engine()
        with _progress() as prog:
            res = lifecycle.up(engine, p, name, on_line=prog.line, on_status=prog.status)
        typer.echo(f"{res.name}: {'up to date' if res.action == 'noop' else res.action}")
        opts = {"colls": coll, "all_colls": all_colls, "source": source, "timeout": timeout}
        pipe = Pipeline(engine, p, res.name, opts, echo=_echo_factory(quiet))
        stages = pipe.select(from_, until, only)
        try:
            run_id, outcomes = pipe.run(stages, force=force)
        except KeyboardInterrupt:
            typer.echo("interrupted: the stage's processes in the container were stopped", err=True)
            raise typer.Exit(130)
        raise typer.Exit(_summary(run_id, outcomes))

    @app.command("exec-stage")
    def exec_stage(stage: str = typer.Argument(..., help="deps, build, perf, torch, train, …"),
                   profile: Optional[str] = typer.Option(None, "--profile", "-p"),
                   name: Optional[str] = typer.Option(None, "--name"),
                   force: bool = typer.Option(True, "--force/--no-force", help="Run even if it "
                                              "passed before with the same inputs."),
                   coll: Optional[List[str]] = typer.Option(None, "--coll"),
                   all_colls: bool = typer.Option(False, "--all"),
                   source: Optional[str] = typer.Option(None, "--source"),
                   timeout: Optional[int] = typer.Option(None, "--timeout", min=1),
                   quiet: bool = typer.Option(False, "--quiet", "-q"),
                   set_: Optional[List[str]] = typer.Option(None, "--set")):
        """Run one stage in the existing container (its prerequisites must have passed)."""
        from . import lifecycle
        from .engine import get_engine
        from .profiles import load_profile
        from .runspec import LABEL
        from .stages.defs import get_def
        from .stages.runner import Pipeline
        sd = get_def(stage)
        engine = get_engine()
        target = lifecycle.resolve_target(engine, name, profile)
        c = lifecycle.require_running(engine, target)
        p = load_profile(profile or c.labels.get(LABEL + "profile-file") or
                         c.labels.get(LABEL + "profile"), set_)
        opts = {"colls": coll, "all_colls": all_colls, "source": source, "timeout": timeout}
        pipe = Pipeline(engine, p, target, opts, echo=_echo_factory(quiet))
        try:
            run_id, outcomes = pipe.run([sd], force=force, explicit=True)
        except KeyboardInterrupt:
            typer.echo("interrupted: the stage's processes in the container were stopped", err=True)
            raise typer.Exit(130)
        raise typer.Exit(_summary(run_id, outcomes))

    @app.command("status")
    def status(profile: Optional[str] = typer.Option(None, "--profile", "-p"),
               name: Optional[str] = typer.Option(None, "--name"),
               json_out: bool = typer.Option(False, "--json")):
        """Which stages passed in a container, when, and in which run."""
        import json
        from . import lifecycle
        from .engine import get_engine
        from .stages.defs import stage_names
        from .stages.runner import load_state
        engine = get_engine()
        target = lifecycle.resolve_target(engine, name, profile)
        info = engine.inspect(target)
        st = load_state(target, info["Id"])
        if json_out:
            typer.echo(json.dumps(st, indent=1))
            return
        from rich.table import Table
        from .cli import _console
        t = Table("stage", "status", "run", "finished", title=target, box=None)
        for n in stage_names():
            s = st["stages"].get(n, {})
            t.add_row(n, s.get("status", "-"), s.get("run_id", ""), s.get("finished", ""))
        _console().print(t)

    @app.command("stages")
    def stages():
        """List the stages in order, with what each needs."""
        from rich.table import Table
        from .cli import _console
        from .stages.defs import load_defs
        t = Table("stage", "needs", "timeout", "description", box=None)
        for d in load_defs():
            t.add_row(d.name, ", ".join(d.requires) or "-", f"{d.timeout}s", d.description)
        _console().print(t)
