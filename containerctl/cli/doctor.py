"""CLI: `containerctl doctor`. Thin: load the profile, call doctor.run_doctor, render.
Only typer at module top: `containerctl --help` imports this module."""
from __future__ import annotations

from typing import Optional

import typer

_COLOURS = {"pass": "green", "warn": "yellow", "fail": "red"}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(profile: Optional[str] = typer.Option(
                   None, "--profile", "-p", help="Also check what this profile needs (devices, "
                   "volumes, image, memlock, shm, vendor tool)."),
               json_out: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
               set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a profile "
                                                        "key, as for `up`.")):
        """Check the host and its engine: engine version, storage, memlock, privileged, --gpus,
        devices, vendor tool, shm, disk, image, offline bootstrap. Each check passes, warns or
        fails and says the fix. Exit status: 0 when nothing fails, 1 when any check fails,
        2 for bad input (e.g. an unknown profile). Probes start throwaway containers."""
        from ..doctor import run_doctor
        from ..engine import get_engine
        p = None
        if profile:
            from ..profiles import load_profile
            p = load_profile(profile, set_)
        findings = run_doctor(get_engine, p, fresh=True)
        failed = any(f.status == "fail" for f in findings)
        if json_out:
            import json
            from dataclasses import asdict
            typer.echo(json.dumps([asdict(f) for f in findings], indent=1))
            raise typer.Exit(1 if failed else 0)
        from rich.table import Table
        from rich.markup import escape
        from .common import console
        t = Table("check", "status", "detail", "fix", box=None,
                  title=f"containerctl doctor{' --profile ' + p.name if p else ''}")
        for f in findings:
            c = _COLOURS.get(f.status, "white")
            t.add_row(f.name, f"[{c}]{f.status}[/{c}]", escape(f.detail), escape(f.fix or ""))
        con = console()
        con.print(t)
        n = {s: sum(1 for f in findings if f.status == s) for s in ("pass", "warn", "fail")}
        con.print(f"{n['pass']} passed, {n['warn']} warnings, {n['fail']} failed")
        raise typer.Exit(1 if failed else 0)
