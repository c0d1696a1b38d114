"""`exec-stage` and `status` answered without the CLI framework: typer (and the click it
vendors) costs ~0.2 s to import and to parse, more than the rest of a trivial stage. The plain
forms of the two commands are parsed here and handed to the same command bodies the CLI uses
(cli.stages.exec_stage_cmd / status_cmd); anything else — --help, an option this parser does
not know, a value it doubts — returns None and the full CLI decides (and words any error).

entry.main calls fast_command(argv) after the no-op `up` fast path."""
from __future__ import annotations

import os
import sys

from ..bounds import MAX_TIMEOUT_S

_EXEC_VALUES = {"--profile": "profile", "-p": "profile", "--name": "name", "--coll": "coll",
                "--source": "source", "--timeout": "timeout", "--set": "set_",
                "--variant": "variant"}
_EXEC_FLAGS = {"--force": ("force", True), "--no-force": ("force", False),
               "--all": ("all_colls", True), "--quiet": ("quiet", True), "-q": ("quiet", True),
               "--verbose": ("verbose", True), "-v": ("verbose", True)}
_STATUS_VALUES = {"--profile": "profile", "-p": "profile", "--name": "name"}
_STATUS_FLAGS = {"--json": ("json_out", True)}
_REPEAT = ("coll", "set_", "variant")


def parse(argv: list[str]) -> tuple[str, dict] | None:
    """(command, keyword arguments) for the plain forms of exec-stage and status, else None."""
    if not argv or argv[0] not in ("exec-stage", "status"):
        return None
    cmd = argv[0]
    values, flags = (_EXEC_VALUES, _EXEC_FLAGS) if cmd == "exec-stage" else \
        (_STATUS_VALUES, _STATUS_FLAGS)
    kw: dict = {}
    pos: list[str] = []
    i = 1
    while i < len(argv):
        a = argv[i]
        key, eq, val = a.partition("=") if a.startswith("--") else (a, "", "")
        if key in values:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                i += 1
                val = argv[i]
            dest = values[key]
            if dest in _REPEAT:
                kw.setdefault(dest, []).append(val)
            elif dest in kw:
                return None          # given twice: let the CLI's rules apply
            else:
                kw[dest] = val
        elif key in flags and not eq:
            dest, v = flags[key]
            kw[dest] = v
        elif not a.startswith("-") and cmd == "exec-stage" and not pos:
            pos.append(a)
        else:
            return None              # --help, -h, `--`, unknown options, a second argument
        i += 1
    if cmd == "exec-stage":
        if len(pos) != 1:
            return None
        kw["stage"] = pos[0]
        if "timeout" in kw:
            t = kw["timeout"]
            if not (t.isdigit() and 0 < int(t) <= MAX_TIMEOUT_S):
                return None
            kw["timeout"] = int(t)
    return cmd, kw


def fast_command(argv: list[str]) -> int | None:
    """The exit code of a plain exec-stage / status, or None for the full CLI to handle."""
    if os.environ.get("CONTAINERCTL_NO_FASTPATH"):
        return None
    parsed = parse(argv)
    if parsed is None:
        return None
    cmd, kw = parsed
    from ..errors import ContainerctlError
    try:
        from . import stages as cli_stages
        if cmd == "exec-stage":
            return cli_stages.exec_stage_cmd(**kw)
        return cli_stages.status_cmd(**kw)
    except ContainerctlError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        if exc.hint:
            sys.stderr.write(f"  fix: {exc.hint}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:
        if os.environ.get("CONTAINERCTL_DEBUG"):
            raise
        sys.stderr.write(f"internal error: {type(exc).__name__}: {exc}\n"
                         "  fix: this is a containerctl bug; rerun with CONTAINERCTL_DEBUG=1 for "
                         "the traceback and report it\n")
        return 70
