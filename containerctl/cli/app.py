"""The typer app: the command groups registered in order, and main() (every failure printed by
cli.failure). Parse → call the core → render; no Docker here, heavy modules are imported inside
commands so `containerctl --help` stays fast. The console script is cli.entry, which answers the
plain up / exec-stage / status through cli.fast before this module is imported."""
from __future__ import annotations

import os
import sys

# typer's rich help formatter costs ~0.15 s per start; plain help keeps `--help` and the no-op
# `up` fast. TYPER_USE_RICH=1 brings the boxed help back.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402

from .. import __version__
from . import cluster, doctor, image, lifecycle, profile, report, stages

app = typer.Typer(
    name="containerctl",
    help="Bring up accelerator containers from platform profiles and run the FlagCX test "
         "stages (deps → build → perf → torch → train → hetero).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool):
    if value:
        typer.echo(f"containerctl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print the version and exit.")):
    """containerctl: replace the FlagCX test runbook with software."""


# --------------------------------------------------------------------------------------------
# the command groups live in their own thin modules, registered in this order

for _group in (profile, lifecycle, image, stages, report, doctor, cluster):
    _group.register(app)


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
