"""`containerctl image list | render | build | tag | blocks`: a thin front over the images package.

Heavy imports (containerctl.images with pydantic and jinja2, the engine) happen inside the commands so
that `containerctl --help` stays fast. Failures are containerctl.errors exceptions; the main CLI
prints them and exits 2.
"""
from __future__ import annotations

import re
from typing import List, Optional

import typer

from ..errors import UsageError

SET_HELP = ("override an image argument: base_image=REF, base_pkg=dnf, <block>.<option>=VALUE "
            "(e.g. flagcx.ref=v0.12.0, sshd.port=2222); repeatable")


def parse_sets(items: Optional[List[str]]) -> dict:
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE", "e.g. --set flagcx.ref=v0.12.0")
        out[key.strip()] = value
    return out


def _image_args(name: Optional[str], profile: Optional[str], sets: Optional[List[str]]):
    """(image name, overrides) from a NAME and/or a profile plus --set."""
    overrides: dict = {}
    if profile:
        from containerctl.profiles import load_profile  # lazily: profiles are the lead's module

        prof = load_profile(profile)
        if name and name != prof.image:
            raise UsageError(f"profile {profile} uses image {prof.image}, not {name}",
                             "give either NAME or --profile, or make them agree")
        from containerctl import images

        specs = sorted(s.name for s in images.list_images())
        if prof.image not in specs:
            raise UsageError(f"profile {profile} runs image {prof.image}, a literal reference, "
                             "not an image spec: containerctl does not build it",
                             f"set the profile's `image:` to a spec ({', '.join(specs)}) to "
                             "build it, or `docker load` that image")
        name = name or prof.image
        overrides.update(dict(prof.image_args or {}))
    if not name:
        raise UsageError("no image named", "give NAME (see `containerctl image list`) or "
                         "--profile P")
    overrides.update(parse_sets(sets))
    return name, overrides


def register(app: typer.Typer) -> None:
    image_app = typer.Typer(help="Images from images/*.yaml: render, build (cached by content "
                                 "hash), list.", no_args_is_help=True)

    @image_app.command("list")
    def list_cmd(
        status: bool = typer.Option(True, "--status/--no-status",
                                    help="ask the engine which images are built"),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable."),
    ) -> None:
        """List the image specs (built-in and ~/.config/containerctl/images)."""
        from rich.console import Console
        from rich.table import Table

        from containerctl import images

        if json_out:   # (H5) the same rows as the table, for scripts
            import json
            eng = None
            if status:
                from containerctl.engine import get_engine
                eng = get_engine()
                eng = eng if eng.ping() else None
            out = []
            for s in images.list_images():
                tag = images.current_tag(s, None, eng) if eng else None
                out.append({"name": s.name, "base": s.base.image or s.base.tag,
                            "blocks": [b.key for b in s.blocks],
                            "built": (tag if tag and eng.image_exists(tag) else None) if eng else None})
            typer.echo(json.dumps(out, indent=1))
            return

        specs = images.list_images()
        engine = None
        if status:
            from containerctl.engine import get_engine

            engine = get_engine()
            if not engine.ping():
                engine = None
        table = Table(box=None, pad_edge=False)
        table.add_column("IMAGE", no_wrap=True)
        table.add_column("BASE", overflow="fold")
        table.add_column("BLOCKS", overflow="fold")
        if engine:
            table.add_column("BUILT", no_wrap=True)
        for s in specs:
            base = s.base.image or (f"{s.base.bootstrap.suite} ({s.base.bootstrap.tool}) as "
                                    f"{s.base.tag}")
            row = [s.name, base, " ".join(b.key for b in s.blocks)]
            if engine:
                tag = images.current_tag(s, None, engine)
                row.append(tag.rpartition(":")[2] if tag and engine.image_exists(tag) else "-")
            table.add_row(*row)
        console = Console()
        console.print(table)
        console.print("`containerctl image render NAME` shows one; `image blocks` lists the "
                      "building blocks and their options.", style="dim", highlight=False)

    @image_app.command("render")
    def render_cmd(
        name: Optional[str] = typer.Argument(None, help="image name (or path of a spec .yaml); "
                                                        "default: the profile's image"),
        set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
        profile: Optional[str] = typer.Option(None, "--profile", "-p",
                                              help="take the profile's image_args"),
    ) -> None:
        """Print the Dockerfile an image renders to."""
        from containerctl import images

        name, overrides = _image_args(name, profile, set_)
        typer.echo(images.render(name, overrides), nl=False)

    @image_app.command("build")
    def build_cmd(
        name: Optional[str] = typer.Argument(None, help="image name (or path of a spec .yaml); "
                                                        "default: the profile's image"),
        profile: Optional[str] = typer.Option(None, "--profile", "-p",
                                              help="build the profile's image with its "
                                                   "image_args"),
        no_cache: bool = typer.Option(False, "--no-cache", help="rebuild every layer"),
        force: bool = typer.Option(False, "--force", help="build even if the tag exists "
                                                          "(Docker's layer cache still applies)"),
        set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="show steps only, not their "
                                                                "output"),
    ) -> None:
        """Build an image unless its content-hash tag already exists; prints the tag."""
        from containerctl.engine import get_engine

        name, overrides = _image_args(name, profile, set_)
        tag = build_with_progress(get_engine(), name, overrides, nocache=no_cache, force=force,
                                  quiet=quiet)
        typer.echo(tag)

    @image_app.command("tag")
    def tag_cmd(
        name: Optional[str] = typer.Argument(None, help="image name (or path of a spec .yaml); "
                                                        "default: the profile's image"),
        set_: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
        profile: Optional[str] = typer.Option(None, "--profile", "-p"),
    ) -> None:
        """Print the tag (content hash) the image has or would get on this engine."""
        from containerctl import images
        from containerctl.engine import get_engine

        name, overrides = _image_args(name, profile, set_)
        typer.echo(images.image_tag(name, overrides, get_engine()))

    @image_app.command("blocks")
    def blocks_cmd(
        block: Optional[str] = typer.Argument(None, help="one block's options"),
    ) -> None:
        """List the building blocks (Dockerfile.templates/*.j2) and their options."""
        from rich.console import Console
        from rich.table import Table

        from containerctl import images
        from containerctl.errors import ImageError

        names = images.block_names()
        if block and block not in names:
            raise ImageError(f"no block '{block}'", images.suggest(block, names))
        console = Console()
        for n in [block] if block else names:
            d = images.block_def(n)
            console.print(f"[bold]{n}[/bold]  ({d.source})", highlight=False)
            if d.doc:
                console.print("  " + d.doc, highlight=False, markup=False)
            table = Table(box=None, pad_edge=False, show_header=False)
            for col in ("option", "default", "doc"):
                table.add_column(col, overflow="fold")
            for o in d.options.values():
                default = repr(o.default) if o.choices is None else \
                    f"{o.default!r} ({' | '.join(map(str, o.choices))})"
                table.add_row("  " + o.name, default, o.doc)
            console.print(table)

    app.add_typer(image_app, name="image")


# the classic builder's bookkeeping lines; "---> Using cache" is kept
_NOISE = re.compile(r"^ ---> (Running in |[0-9a-f]{12}$)|^Removing intermediate container ")


def build_with_progress(engine, name: str, overrides: dict | None = None, *, nocache: bool = False,
                        force: bool = False, quiet: bool = False) -> str:
    """ensure_image with a rich spinner showing the current step and a log of output lines
    (on stderr, so that stdout carries only the tag). Reusable by `up`."""
    from rich.console import Console
    from rich.markup import escape

    from containerctl import images

    console = Console(stderr=True)
    with console.status(f"image {name}: checking", spinner="dots") as status:
        def on_line(line: str) -> None:
            if line.startswith("Step ") or line.startswith("[bootstrap]") or \
                    line.startswith("building ") or line.startswith("built ") or \
                    line.startswith("image "):
                status.update(f"image {name}: {escape(line[:120])}")
                console.print(escape(line), style="bold" if line.startswith("Step ") else None,
                              highlight=False)
            elif not quiet and not _NOISE.match(line):
                console.print(escape(line), style="dim", highlight=False)

        return images.ensure_image(engine, name, overrides, nocache=nocache, on_line=on_line,
                                   force=force)
