"""`containerctl up`, down, ps, logs, exec, shell, restart: a container's lifecycle (registered
on the app by cli.app; `up` from its option table in cli.options, which the fast path reads)."""
from __future__ import annotations

import sys
from typing import List, Optional

import typer

from ..errors import ContainerctlError
from .common import console as make_console, engine as open_engine
from .options import UP, typer_command


def up_cmd(*, profile: str, name: Optional[str], force_recreate: bool, dry_run: bool,
           set_: Optional[List[str]]) -> None:
    """Create (or converge) the profile's container: same config → no-op, changed → recreate."""
    from ..profiles import load_profile
    from .. import lifecycle
    p = load_profile(profile, set_)
    if dry_run:
        engine = None
        try:
            e = open_engine()
            engine = e if e.ping() else None
        except ContainerctlError:
            engine = None
        spec = lifecycle.plan(p, name, engine, build=False, check_devices=False, sets=set_)
        if spec.docker_volume_line():
            typer.echo(spec.docker_volume_line())
        typer.echo(spec.docker_run_line())
        from ..runspec import expand_devices
        _, problems = expand_devices(p.container.devices, False)
        for prob in problems:
            sys.stderr.write(f"note: {prob} on this host; `up` would stop here\n")
        return
    engine = open_engine()
    with Progress() as prog:
        res = lifecycle.up(engine, p, name, force_recreate, on_line=prog.line,
                           on_status=prog.status, sets=set_)
    for w in res.spec.warnings:
        sys.stderr.write(f"warning: {w}\n")
    lifecycle.remember(profile, name, set_, p, res)
    if res.action == "noop":
        typer.echo(f"{res.name}: up to date, nothing changed (config {res.spec.config_hash})")
    else:
        typer.echo(f"{res.name}: {res.action}{' (' + res.reason + ')' if res.reason else ''} "
                   f"from {res.spec.image}")


class Progress:
    """A one-line live status for long work (image builds) on a terminal; elsewhere build steps
    are printed as plain lines and nothing else, so the error rule (two lines) holds. rich is
    only imported when something is shown."""

    def __init__(self, console=None):
        self._console = console
        self._status = None
        self._tty = sys.stderr.isatty()

    @property
    def console(self):
        if self._console is None:
            self._console = make_console(stderr=True)
        return self._console

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._status is not None:
            self._status.stop()

    def status(self, msg: str):
        if not self._tty:
            return
        if self._status is None:
            self._status = self.console.status(msg)
            self._status.start()
        else:
            self._status.update(msg)

    def line(self, text: str):
        if text.startswith("Step ") or text.startswith("==>"):
            if self._tty:
                self.status(text[:120])
            else:
                sys.stderr.write(text[:200] + "\n")


def down(name: Optional[str] = typer.Option(None, "--name"),
         profile: Optional[str] = typer.Option(None, "--profile", "-p"),
         volumes: bool = typer.Option(False, "--volumes", help="Also delete the workspace "
                                      "volume (results on the host are always kept).")):
    """Remove the container. The workspace volume and all results are kept unless --volumes."""
    from .. import lifecycle
    engine = open_engine()
    if volumes and name is not None:
        target = name      # its container may be gone already; down --volumes still removes
    else:                  # the workspace volume it left
        target = lifecycle.resolve_target(engine, name, profile)
    removed = lifecycle.down(engine, target, volumes)
    typer.echo("removed " + ", ".join(removed) +
               ("" if volumes else "; workspace volume and results kept"))


def ps(json_out: bool = typer.Option(False, "--json")):
    """List containerctl's containers."""
    from .. import lifecycle
    from ..labels import CONFIG_HASH, PROFILE
    rows = lifecycle.ps(open_engine())
    if json_out:
        import json
        typer.echo(json.dumps([{"name": r.name, "id": r.id[:12], "status": r.status,
                                "image": r.image, "profile": r.labels.get(PROFILE),
                                "config_hash": r.labels.get(CONFIG_HASH)}
                               for r in rows], indent=1))
        return
    from ..ui.tables import print_table
    print_table(["name", "profile", "status", "image", "config"],
                [[r.name, r.labels.get(PROFILE, "?"), r.status, r.image,
                  r.labels.get(CONFIG_HASH, "")] for r in rows])


def logs(name: Optional[str] = typer.Option(None, "--name"),
         profile: Optional[str] = typer.Option(None, "--profile", "-p"),
         follow: bool = typer.Option(False, "--follow", "-f"),
         tail: str = typer.Option("all", "--tail")):
    """The container's own output (stage logs: `containerctl status`, `results show`)."""
    from .. import lifecycle
    engine = open_engine()
    target = lifecycle.resolve_target(engine, name, profile)
    try:
        for chunk in engine.logs(target, follow=follow, tail=tail):
            sys.stdout.write(chunk.decode("utf-8", "replace"))
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def exec_(ctx: typer.Context, name: Optional[str] = typer.Option(None, "--name"),
          profile: Optional[str] = typer.Option(None, "--profile", "-p"),
          workdir: Optional[str] = typer.Option(None, "--workdir", "-w")):
    """Run a command in the container: containerctl exec -- CMD ARGS. Exit code propagates."""
    from .. import lifecycle
    from ..errors import UsageError
    cmd = list(ctx.args)
    if not cmd:
        raise UsageError("no command given", "write: containerctl exec -- CMD ARGS")
    engine = open_engine()
    target = lifecycle.resolve_target(engine, name, profile)
    lifecycle.require_running(engine, target)
    out = sys.stdout.buffer

    def w(b: bytes):
        out.write(b)
        out.flush()
    code = engine.exec(target, cmd, workdir=workdir, on_output=w)
    raise typer.Exit(code)


def shell(name: Optional[str] = typer.Option(None, "--name"),
          profile: Optional[str] = typer.Option(None, "--profile", "-p")):
    """An interactive shell in the container (uses the docker CLI when present)."""
    import os
    import shutil
    from .. import lifecycle
    engine = open_engine()
    target = lifecycle.resolve_target(engine, name, profile)
    lifecycle.require_running(engine, target)
    docker = shutil.which("docker")
    tty = sys.stdin.isatty()
    if docker:
        args = [docker, "exec", "-i"] + (["-t"] if tty else []) + [target, "bash", "-l"]
        os.execv(docker, args)
    code = engine.exec(target, ["bash", "-c", sys.stdin.read() if not tty else "bash -l"],
                       on_output=lambda b: (sys.stdout.buffer.write(b), sys.stdout.flush()))
    raise typer.Exit(code)


def restart(name: Optional[str] = typer.Option(None, "--name"),
            profile: Optional[str] = typer.Option(None, "--profile", "-p")):
    """Restart the container (processes inside are stopped; volumes kept)."""
    from .. import lifecycle
    engine = open_engine()
    target = lifecycle.resolve_target(engine, name, profile)
    lifecycle.refuse_busy(engine, target, "restarting it")
    engine.restart(target)
    typer.echo(f"{target}: restarted")


def register(app: typer.Typer) -> None:
    # up has a fast path (cli.fast): one option table (cli.options) for both
    typer_command(app, "up", UP, lambda **kw: up_cmd(**kw), up_cmd.__doc__)
    app.command()(down)
    app.command()(ps)
    app.command()(logs)
    app.command("exec", context_settings={"allow_extra_args": True,
                                          "ignore_unknown_options": True})(exec_)
    app.command()(shell)
    app.command()(restart)
