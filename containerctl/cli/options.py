"""The options of the commands that have a fast path (`up`, `exec-stage`, `status`), declared
once. The typer commands are generated from these tables (typer_command) and the fast parser
(cli.fast.parse) reads the same tables, so the two cannot accept different options or give one a
different meaning or default (tests/test_cli_options.py runs every option through both).

Only bounds is imported (it imports nothing): the fast path loads this module before anything
else, and typer only inside typer_command."""
from __future__ import annotations

from ..bounds import MAX_TIMEOUT_S

# kinds: "arg" a required positional; "str" / "int" an option with one value; "list" an option
# that repeats (a list, None when not given); "flag" a switch ("--a/--no-a" declares a pair)
KINDS = ("arg", "str", "int", "list", "flag")


class Opt:
    __slots__ = ("dest", "decls", "kind", "default", "help", "min", "max")

    def __init__(self, dest: str, *decls: str, kind: str = "str", default=None,
                 help: str | None = None, min: int | None = None, max: int | None = None):
        assert kind in KINDS, kind
        self.dest, self.decls, self.kind, self.default = dest, decls, kind, default
        self.help, self.min, self.max = help, min, max

    def switches(self) -> dict[str, bool]:
        """A flag's spellings and the value each sets: {"--force": True, "--no-force": False}."""
        out: dict[str, bool] = {}
        for d in self.decls:
            on, _, off = d.partition("/")
            out[on] = True
            if off:
                out[off] = False
        return out


SET_HELP = ("Override a profile key: --set container.shm_size=64G (repeatable; `key+=[x]` "
            "appends to a list).")

UP = (
    Opt("profile", "--profile", "-p", default="cpu-selftest", help="Profile name or file."),
    Opt("name", "--name", help="Container name (default cctl-<profile>)."),
    Opt("force_recreate", "--force-recreate", kind="flag", default=False),
    Opt("dry_run", "--dry-run", kind="flag", default=False,
        help="Print the equivalent `docker run` line; create nothing."),
    Opt("set_", "--set", kind="list", help=SET_HELP),
)

EXEC_STAGE = (
    Opt("stage", kind="arg", help="deps, build, perf, torch, train, …"),
    Opt("profile", "--profile", "-p"),
    Opt("name", "--name"),
    Opt("force", "--force/--no-force", kind="flag", default=True,
        help="Run even if it passed before with the same inputs."),
    Opt("coll", "--coll", kind="list"),
    Opt("all_colls", "--all", kind="flag", default=False),
    Opt("source", "--source"),
    Opt("timeout", "--timeout", kind="int", min=1, max=MAX_TIMEOUT_S),
    Opt("quiet", "--quiet", "-q", kind="flag", default=False),
    Opt("verbose", "--verbose", "-v", kind="flag", default=False),
    Opt("set_", "--set", kind="list"),
    Opt("variant", "--variant", kind="list",
        help="A variant of the stage from the profile (or all)."),
)

STATUS = (
    Opt("profile", "--profile", "-p"),
    Opt("name", "--name"),
    Opt("json_out", "--json", kind="flag", default=False),
)

COMMANDS: dict[str, tuple[Opt, ...]] = {"up": UP, "exec-stage": EXEC_STAGE, "status": STATUS}


def defaults(table: tuple[Opt, ...]) -> dict:
    """Every option's default (the command bodies take them all, as keywords)."""
    return {o.dest: o.default for o in table if o.kind != "arg"}


def typer_command(app, name: str, table: tuple[Opt, ...], body, doc: str) -> None:
    """Register `name` on the typer app with the table's parameters, in the table's order; the
    command calls body(**parameters) and exits with its code when it returns one."""
    import inspect
    from typing import List, Optional

    import typer
    params = []
    for o in table:
        if o.kind == "arg":
            default, ann = typer.Argument(..., help=o.help), str
        else:
            default = typer.Option(o.default, *o.decls, help=o.help, min=o.min, max=o.max)
            ann = {"flag": bool, "list": Optional[List[str]], "int": Optional[int],
                   "str": Optional[str] if o.default is None else str}[o.kind]
        params.append(inspect.Parameter(o.dest, inspect.Parameter.KEYWORD_ONLY,
                                        default=default, annotation=ann))

    def command(**kw):
        rv = body(**kw)
        if isinstance(rv, int):
            raise typer.Exit(rv)

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    command.__name__ = command.__qualname__ = name.replace("-", "_")
    app.command(name)(command)
