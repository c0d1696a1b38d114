"""`containerctl report` and `containerctl results …`: thin CLI over containerctl.report and
containerctl.results.store. Only typer is imported at module level (`containerctl --help` must
stay fast); everything else is imported inside the commands."""
from __future__ import annotations

import os
from typing import List, Optional

import typer

from ..errors import UsageError

MAX_NRANKS = 4096   # as profiles' flagcx.nranks: 100000000 made import take 7 GB

_FORMATS = ("table", "md", "html", "json", "junit")


def _check_format(fmt: str, allowed: tuple[str, ...]) -> str:
    f = fmt.strip().lower()
    if f == "markdown":
        f = "md"
    if f not in allowed:
        raise UsageError(f"unknown format {fmt!r}", hint="one of: " + ", ".join(allowed))
    return f


def _write(output: str, text: str) -> None:
    from pathlib import Path

    from ..paths import atomic_write

    p = Path(output).expanduser()
    if p.exists() and not p.is_file():
        raise UsageError(f"--output {output} is not a regular file",
                         hint="give a file path, or leave --output out to print to stdout")
    try:
        atomic_write(p, text)
    except OSError as e:
        raise UsageError(f"cannot write {output}: {e.strerror}", hint="pick a writable --output path") from None
    typer.echo(f"wrote {p}", err=True)


def _show_tables(rep, runs, coll) -> None:
    """Tables on stdout: rich on a terminal (light rules, cells folded, never `…`), aligned
    plain columns anywhere else. Two runs also get the comparison with deltas per size."""
    from ..ui.mode import interactive

    from ..textsafe import printable    # labels, messages, details: nothing acts on the terminal

    if not interactive():
        typer.echo(printable(rep.render_plain(runs, coll)), nl=False)
        return
    from rich.text import Text

    from .common import console
    con = console()
    for run in runs:
        con.print(Text(printable(rep.run_heading(run)), style="bold"))
        for sec in rep.run_sections(run, coll):
            con.print(rep.rich_table(sec))
        for p in run.get("problems") or []:
            con.print(Text(printable(f"warning: {p}"), style="yellow"))
    for sec in rep.compare_sections(runs, coll):
        con.print(rep.rich_table(sec))


def _notes(notes: list[str]) -> None:
    from ..textsafe import printable
    for n in notes:
        typer.echo(printable(f"note: {n}"), err=True)


def _strict_exit(runs) -> None:
    from ..report import all_checks
    from ..results.verdict import strict_failures

    # strict (results/verdict.py): a run passes only when its record says passed, every stage's
    # own checks support its status (no pass without evidence), no check failed, all files read
    bad = [(r["run_id"], why) for r in runs if (why := strict_failures(r, all_checks(r)))]
    if bad:
        for rid, why in bad:
            from ..textsafe import printable
            typer.echo(printable(f"failed: {rid}: {'; '.join(why)[:400]}"), err=True)
        raise typer.Exit(1)


def report(
    runs: Optional[List[str]] = typer.Argument(None, help="Run ids, unique prefixes, `latest` (default), or paths to run directories / stage JSON files."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | md | html | json | junit"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report to FILE instead of stdout."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Also write busbw vs message size as a PNG (one line per run)."),
    coll: Optional[str] = typer.Option(None, "--coll", help="Only this collective (allreduce, allgather, …)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when a stage or a check of the reported runs failed."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable (same as --format json)."),
):
    """Report stored runs: tables in the runbook's shape (size, time, algbw, busbw), Markdown, a
    self-contained HTML page with the plot, JSON, or JUnit XML for CI. `latest` (the default)
    is the newest run holding what was asked: perf results for --plot, the collective for
    --coll. Two runs also show busbw per size side by side with the delta."""
    from .. import report as rep

    fmt = _check_format("json" if json_out else fmt, _FORMATS)
    notes: list[str] = []
    loaded = rep.load_runs(runs, need_perf=bool(plot), coll=coll, notes=notes)
    _notes(notes)
    if fmt == "table" and output is None:
        _show_tables(rep, loaded, coll)
    else:
        try:
            text = rep.render(loaded, fmt, coll)
        except ImportError as e:  # pragma: no cover - matplotlib is optional
            raise UsageError(f"{fmt} report needs {e.name}", hint="pip install 'containerctl[plot]'") from None
        if output:
            _write(output, text)
        else:
            typer.echo(text, nl=False)
    if plot:
        try:
            n = rep.plot_busbw(loaded, plot, coll)
        except ImportError:
            raise UsageError("--plot needs matplotlib", hint="pip install 'containerctl[plot]'") from None
        except OSError as e:
            raise UsageError(f"cannot write {plot}: {e.strerror}", hint="pick a writable --plot path") from None
        typer.echo(f"wrote {plot} ({n} line{'s' if n != 1 else ''})", err=True)
    if strict:
        _strict_exit(loaded)


def results_list(json_out: bool = typer.Option(False, "--json", help="Machine-readable.")):
    """List stored runs, newest first."""
    from ..results import store

    runs = store.list_runs()
    if json_out:
        import json

        from ..textsafe import json_text
        typer.echo(json_text(json.dumps(runs, indent=2, ensure_ascii=False)))
        return
    if not runs:
        typer.echo(f"no runs in {store.results_dir()}", err=True)
        return
    from ..ui.tables import print_table

    print_table(["run", "label", "platform", "status", "started", "stages"],
                [[r["run_id"], str(r.get("label") or r.get("profile") or ""), str(r.get("platform") or ""),
                  str(r.get("status") or "?"), str(r.get("started") or ""),
                  " ".join(f"{s}:{st}" for s, st in r.get("stage_status", {}).items())] for r in runs])


def results_show(
    run: str = typer.Argument(..., help="Run id, unique prefix, `latest`, or path."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | md | json"),
    coll: Optional[str] = typer.Option(None, "--coll", help="Only this collective."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable (same as --format json)."),
):
    """Show one run: stages, perf tables, checks."""
    from .. import report as rep

    fmt = _check_format("json" if json_out else fmt, ("table", "md", "json"))
    notes: list[str] = []
    runs = rep.load_runs([run], coll=coll, notes=notes)
    _notes(notes)
    if fmt == "table":
        _show_tables(rep, runs, coll)
    else:
        typer.echo(rep.render(runs, fmt, coll), nl=False)


def results_compare(
    a: str = typer.Argument(..., help="Baseline run (A)."),
    b: str = typer.Argument(..., help="Run to compare (B)."),
    coll: str = typer.Option("allreduce", "--coll", help="Collective to compare."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | md | json"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable (same as --format json)."),
):
    """busbw per message size of run B against run A, with the ratio B/A and the delta B − A."""
    from .. import report as rep

    fmt = _check_format("json" if json_out else fmt, ("table", "md", "json"))
    ra, rb = rep.load_runs([a])[0], rep.load_runs([b])[0]
    text = rep.render_compare(rep.compare(ra, rb, coll), fmt)
    if output:
        _write(output, text)
    else:
        typer.echo(text, nl=False)


def results_import(
    file: str = typer.Argument(..., help="A saved raw output: FlagCX perf, nccl-tests, torch example.py, or a FlagScale log."),
    label: Optional[str] = typer.Option(None, "--label", "-l", help="Name shown in reports and plots (e.g. A800)."),
    platform: Optional[str] = typer.Option(None, "--platform", "-p", help="Platform/profile name (nvidia-a800, metax-c550, kunlunxin-p800, …): selects the reference values."),
    coll: str = typer.Option("allreduce", "--coll", help="Collective the perf output measured."),
    nranks: int = typer.Option(2, "--nranks", "-n", min=1, max=MAX_NRANKS, help="Number of ranks the run used (bus factor, buffer check): 1 to 4096."),
    kind: str = typer.Option("flagcx-perf", "--kind", help="flagcx-perf | nccl-tests | torch-example | flagscale"),
):
    """Import a raw output file as a run (prints the new run id)."""
    from ..logread import parse_limit
    from ..results import store

    try:
        size = os.stat(os.path.expanduser(file)).st_size
    except OSError:
        size = 0          # import_text names a missing or unreadable file
    if size > parse_limit():
        raise UsageError(f"{file} is {size / 2**20:.0f} MiB; containerctl imports at most "
                         f"{parse_limit() >> 20} MiB of output",
                         "import the part that holds the results (e.g. grep the perf lines into "
                         "a new file), or raise CONTAINERCTL_PARSE_LIMIT_MB")
    run_id = store.import_text(file, kind=kind, label=label, platform=platform, coll=coll, nranks=nranks)
    run = store.load_run(run_id)
    checks = [c for rec in run["records"].values() for c in rec.get("checks", [])]
    npass = sum(c["ok"] is True for c in checks)
    nfail = sum(c["ok"] is False for c in checks)
    st = ", ".join(f"{s}: {r['status']}" for s, r in run["records"].items())
    from ..textsafe import printable
    typer.echo(printable(f"imported {file} as {run_id} ({st}; checks {npass} pass, {nfail} fail, "
                         f"{len(checks) - npass - nfail} skipped)"), err=True)
    typer.echo(run_id)


def register(app: typer.Typer) -> None:
    """Add `report` and the `results` group to the main app."""
    app.command("report")(report)
    results = typer.Typer(help="Stored runs: list, show, compare, import.", no_args_is_help=True)
    results.command("list")(results_list)
    results.command("show")(results_show)
    results.command("compare")(results_compare)
    results.command("import")(results_import)
    app.add_typer(results, name="results")
