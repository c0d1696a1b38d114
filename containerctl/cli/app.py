"""The command line: parse → call the core → render. No Docker here; heavy modules are imported
inside commands so `containerctl --help` stays fast."""
from __future__ import annotations

import os
import sys
from typing import List, Optional

# typer's rich help formatter costs ~0.15 s per start; plain help keeps `--help` and the no-op
# `up` fast. TYPER_USE_RICH=1 brings the boxed help back.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402

from .. import __version__
from ..errors import ContainerctlError
from .options import SET_HELP, UP, typer_command

app = typer.Typer(
    name="containerctl",
    help="Bring up accelerator containers from platform profiles and run the FlagCX test "
         "stages (deps → build → perf → torch → train → hetero).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
profile_app = typer.Typer(help="Platform profiles: list, show, validate, schema, detect, new.",
                          no_args_is_help=True)
app.add_typer(profile_app, name="profile")


def _console(stderr: bool = False):
    from rich.console import Console
    return Console(stderr=stderr, highlight=False)


def _engine():
    from ..engine import get_engine
    return get_engine()


def _version(value: bool):
    if value:
        typer.echo(f"containerctl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print the version and exit.")):
    """containerctl: replace the FlagCX test runbook with software."""


SetOpt = typer.Option(None, "--set", help=SET_HELP)


# --------------------------------------------------------------------------------------------
# profiles

@profile_app.command("list")
def profile_list(json_out: bool = typer.Option(False, "--json", help="Machine-readable.")):
    """List the profiles on the search path (./profiles, $CONTAINERCTL_PROFILE_PATH,
    ~/.config/containerctl/profiles, built-ins)."""
    from ..profiles import list_profiles
    rows = list_profiles()
    if json_out:
        import json
        typer.echo(json.dumps([{"name": n, "file": str(f), "platform": p.platform if p else None,
                                "error": e} for n, f, p, e in rows], indent=1))
        return
    from ..ui.tables import print_table
    print_table(["profile", "platform", "image", "description / problem"],
                [[n, p.platform if p else "-", p.image if p else "-",
                  (p.description if p else f"invalid: {e}")] for n, f, p, e in rows])


@profile_app.command("show")
def profile_show(name: str, set_: Optional[List[str]] = SetOpt):
    """Print a profile fully resolved (extends, site overlay and --set applied)."""
    from ..profiles import load_profile, profile_yaml
    p = load_profile(name, set_)
    typer.echo(f"# {p.source_file}")
    typer.echo(profile_yaml(p), nl=False)


@profile_app.command("validate")
def profile_validate(files: List[str] = typer.Argument(..., help="Profile files or names.")):
    """Validate profile files; errors name file:line and the key."""
    from ..profiles import validate_file, load_profile
    from pathlib import Path
    for f in files:
        p = validate_file(f) if Path(f).exists() else load_profile(f, site=False)
        from ..profiles import host_mount_warnings
        for w in host_mount_warnings(p):
            sys.stderr.write(f"warning: {w}\n")
        typer.echo(f"{f}: ok ({p.name}, platform {p.platform})")


@profile_app.command("schema")
def profile_schema():
    """Print the JSON Schema of a profile (for editors)."""
    import json
    from ..profiles import json_schema
    typer.echo(json.dumps(json_schema(), indent=2))


@profile_app.command("detect")
def profile_detect(json_out: bool = typer.Option(False, "--json")):
    """Suggest a profile from the devices and vendor tools present on this host."""
    from ..doctor import detect
    res = detect()
    if json_out:
        import json
        typer.echo(json.dumps(res, indent=1))
        return
    typer.echo(f"suggested profile: {res['profile']}  ({res['reason']})")


@profile_app.command("new")
def profile_new(name: str, from_: str = typer.Option(..., "--from", help="Profile to extend."),
                directory: Optional[str] = typer.Option(None, "--dir", help="Where to write it "
                                                        "(default ~/.config/containerctl/profiles)."),
                force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")):
    """Write a starter site profile that extends another."""
    from ..doctor import new_profile
    path = new_profile(name, from_, directory, force)
    typer.echo(f"wrote {path}; edit it, then: containerctl up --profile {name}")


# --------------------------------------------------------------------------------------------
# lifecycle

def up_cmd(*, profile: str, name: Optional[str], force_recreate: bool, dry_run: bool,
           set_: Optional[List[str]]) -> None:
    """Create (or converge) the profile's container: same config → no-op, changed → recreate."""
    from ..profiles import load_profile
    from .. import lifecycle
    p = load_profile(profile, set_)
    if dry_run:
        engine = None
        try:
            e = _engine()
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
    engine = _engine()
    with _progress() as prog:
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


# up has a fast path (cli.fast): one option table (cli.options) for both
typer_command(app, "up", UP, lambda **kw: up_cmd(**kw), up_cmd.__doc__)


class _progress:
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
            self._console = _console(stderr=True)
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


@app.command()
def down(name: Optional[str] = typer.Option(None, "--name"),
         profile: Optional[str] = typer.Option(None, "--profile", "-p"),
         volumes: bool = typer.Option(False, "--volumes", help="Also delete the workspace "
                                      "volume (results on the host are always kept).")):
    """Remove the container. The workspace volume and all results are kept unless --volumes."""
    from .. import lifecycle
    engine = _engine()
    if volumes and name is not None:
        target = name      # its container may be gone already; down --volumes still removes
    else:                  # the workspace volume it left
        target = lifecycle.resolve_target(engine, name, profile)
    removed = lifecycle.down(engine, target, volumes)
    typer.echo("removed " + ", ".join(removed) +
               ("" if volumes else "; workspace volume and results kept"))


@app.command()
def ps(json_out: bool = typer.Option(False, "--json")):
    """List containerctl's containers."""
    from .. import lifecycle
    from ..labels import CONFIG_HASH, PROFILE
    rows = lifecycle.ps(_engine())
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


@app.command()
def logs(name: Optional[str] = typer.Option(None, "--name"),
         profile: Optional[str] = typer.Option(None, "--profile", "-p"),
         follow: bool = typer.Option(False, "--follow", "-f"),
         tail: str = typer.Option("all", "--tail")):
    """The container's own output (stage logs: `containerctl status`, `results show`)."""
    from .. import lifecycle
    engine = _engine()
    target = lifecycle.resolve_target(engine, name, profile)
    try:
        for chunk in engine.logs(target, follow=follow, tail=tail):
            sys.stdout.write(chunk.decode("utf-8", "replace"))
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(ctx: typer.Context, name: Optional[str] = typer.Option(None, "--name"),
          profile: Optional[str] = typer.Option(None, "--profile", "-p"),
          workdir: Optional[str] = typer.Option(None, "--workdir", "-w")):
    """Run a command in the container: containerctl exec -- CMD ARGS. Exit code propagates."""
    from .. import lifecycle
    from ..errors import UsageError
    cmd = list(ctx.args)
    if not cmd:
        raise UsageError("no command given", "write: containerctl exec -- CMD ARGS")
    engine = _engine()
    target = lifecycle.resolve_target(engine, name, profile)
    lifecycle.require_running(engine, target)
    out = sys.stdout.buffer

    def w(b: bytes):
        out.write(b)
        out.flush()
    code = engine.exec(target, cmd, workdir=workdir, on_output=w)
    raise typer.Exit(code)


@app.command()
def shell(name: Optional[str] = typer.Option(None, "--name"),
          profile: Optional[str] = typer.Option(None, "--profile", "-p")):
    """An interactive shell in the container (uses the docker CLI when present)."""
    import os
    import shutil
    from .. import lifecycle
    engine = _engine()
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


@app.command()
def restart(name: Optional[str] = typer.Option(None, "--name"),
            profile: Optional[str] = typer.Option(None, "--profile", "-p")):
    """Restart the container (processes inside are stopped; volumes kept)."""
    from .. import lifecycle
    engine = _engine()
    target = lifecycle.resolve_target(engine, name, profile)
    lifecycle.refuse_busy(engine, target, "restarting it")
    engine.restart(target)
    typer.echo(f"{target}: restarted")


# --------------------------------------------------------------------------------------------
# other command groups live in their own thin modules

def _register_optional():
    import importlib
    for mod in ("image", "stages", "report", "doctor", "cluster"):
        try:
            m = importlib.import_module(f"containerctl.cli.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name == f"containerctl.cli.{mod}":
                continue
            raise
        m.register(app)


_register_optional()


def main(argv: list[str] | None = None) -> int:
    from .failure import exit_code
    try:
        rv = app(args=argv, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # typer/click may raise it
        return exc.code if isinstance(exc.code, int) else 1
    except (Exception, KeyboardInterrupt) as exc:
        return exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
