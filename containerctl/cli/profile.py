"""`containerctl profile …`: list, show, validate, schema, detect, new (registered on the app by
cli.app)."""
from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .options import SET_HELP

profile_app = typer.Typer(help="Platform profiles: list, show, validate, schema, detect, new.",
                          no_args_is_help=True)

SetOpt = typer.Option(None, "--set", help=SET_HELP)


def register(app: typer.Typer) -> None:
    app.add_typer(profile_app, name="profile")


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
