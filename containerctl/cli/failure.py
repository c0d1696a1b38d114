"""The one error printer, for the typer app (cli.app.main) and the fast paths (cli.fast): what
went wrong as `error: <cause>` and `  fix: <what to do>` on stderr, the exit code returned, never
a traceback (unless CONTAINERCTL_DEBUG=1 for an internal error). Every text goes through
textsafe.printable: a name or a value the user typed cannot act on the terminal.

  ContainerctlError   its message and hint; its exit code (2 bad input, 1 a stage failed, …)
  a click usage error its message, `see \\`<command> --help\\``; click's code (2)
  Ctrl-C / Abort      `interrupted` / `aborted`; 130
  anything else       `internal error: <type>: <text>` and how to report it; 70"""
from __future__ import annotations

import os
import sys

from ..textsafe import printable


def say(cause: str, fix: str | None = None, head: str = "error") -> None:
    sys.stderr.write(f"{head}: {printable(cause)}\n")
    if fix:
        sys.stderr.write(f"  fix: {printable(fix)}\n")


def exit_code(exc: BaseException) -> int:
    """Print `exc` as above and return the exit code it gets."""
    from ..errors import ContainerctlError
    if isinstance(exc, ContainerctlError):
        say(exc.message, exc.hint)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("interrupted\n")
        return 130
    # click (vendored by newer typer) usage errors carry format_message() and exit_code
    if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
        path = getattr(getattr(exc, "ctx", None), "command_path", None) or "containerctl"
        say(" ".join(exc.format_message().split()), f"see `{path} --help`")
        return exc.exit_code
    if type(exc).__name__ == "Abort":
        sys.stderr.write("aborted\n")
        return 130
    if os.environ.get("CONTAINERCTL_DEBUG"):
        raise exc
    say(f"{type(exc).__name__}: {exc}", "this is a containerctl bug; rerun with "
        "CONTAINERCTL_DEBUG=1 for the traceback and report it", head="internal error")
    return 70
