"""The plain forms of `up`, `exec-stage` and `status`, answered without the CLI framework: typer
(and the click it vendors) costs ~0.2 s to import and to parse, more than the rest of a trivial
stage or a no-op `up`. parse reads the same option tables (cli.options) the typer commands are
generated from; anything it doubts — --help, `--`, an option it does not know, a value given
twice, a --timeout out of bounds — returns None and the full CLI decides (and words any error).

* `up` with nothing but --profile/--name/--set, whose inputs have not changed since the last
  `up` (upcache) and whose container runs with that config: answered here, before even the
  engine SDK is imported; any doubt goes to the full `up`.
* `exec-stage` and `status`: handed to the same command bodies the CLI calls
  (cli.stages.exec_stage_cmd / status_cmd), errors printed by cli.failure as the CLI prints
  them. CONTAINERCTL_NO_FASTPATH=1 sends them through the full CLI."""
from __future__ import annotations

import os
import sys

from .options import COMMANDS, defaults


def parse(argv: list[str]) -> tuple[str, dict] | None:
    """(command, every option of its table as a keyword argument, defaults filled in) for the
    plain forms of the fast-path commands; None for anything the full CLI should decide."""
    if not argv or argv[0] not in COMMANDS:
        return None
    cmd, table = argv[0], COMMANDS[argv[0]]
    values = {d: o for o in table if o.kind not in ("arg", "flag") for d in o.decls}
    switches = {s: (o, v) for o in table if o.kind == "flag" for s, v in o.switches().items()}
    positional = [o for o in table if o.kind == "arg"]
    kw, seen, pos = defaults(table), set(), []
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
            o = values[key]
            if o.kind == "list":
                kw[o.dest] = (kw[o.dest] or []) + [val]
            elif o.dest in seen:
                return None          # given twice: let the CLI's rules apply
            elif o.kind == "int":
                if not (val.isdigit() and (o.min is None or int(val) >= o.min) and
                        (o.max is None or int(val) <= o.max)):
                    return None
                kw[o.dest] = int(val)
            else:
                kw[o.dest] = val
            seen.add(o.dest)
        elif key in switches and not eq:
            o, v = switches[key]
            kw[o.dest] = v
        elif not a.startswith("-") and len(pos) < len(positional):
            pos.append(a)
        else:
            return None              # --help, -h, `--`, unknown options, an extra argument
        i += 1
    if len(pos) != len(positional):
        return None
    kw.update((o.dest, v) for o, v in zip(positional, pos))
    return cmd, kw


def noop_up(profile: str, name: str | None, set_: list[str] | None, force_recreate: bool,
            dry_run: bool) -> bool:
    """True when it printed that a plain `up` has nothing to change (the full `up` would say
    the same); False when the full `up` must decide."""
    if force_recreate or dry_run:
        return False
    if name is not None:
        from ..names import NAME_RE
        if not NAME_RE.match(name) or len(name) > 128:
            return False     # the full path says what is wrong with it
    try:
        from .. import upcache
        from ..engine import Engine
        from ..labels import CONFIG_HASH
        hit = upcache.lookup(profile, name, set_ or None)
        if not hit:
            return False
        state = Engine().quick_state(hit["name"])
    except Exception:
        return False      # any doubt: the full path decides
    if state is None or state[0] != "running" or \
            state[1].get(CONFIG_HASH) != hit["config_hash"]:
        return False
    for w in hit.get("warnings") or []:   # the same warnings the full path gives
        sys.stderr.write(f"warning: {w}\n")
    sys.stdout.write(f"{hit['name']}: up to date, nothing changed (config {hit['config_hash']})\n")
    return True


def answer(argv: list[str]) -> int | None:
    """The exit code of a command answered here, or None for the full CLI to handle."""
    parsed = parse(argv)
    if parsed is None:
        return None
    cmd, kw = parsed
    if cmd == "up":
        return 0 if noop_up(**kw) else None
    if os.environ.get("CONTAINERCTL_NO_FASTPATH"):
        return None
    from .failure import exit_code
    try:
        from . import stages
        if cmd == "exec-stage":
            return stages.exec_stage_cmd(**kw)
        return stages.status_cmd(**kw)
    except (Exception, KeyboardInterrupt) as exc:
        return exit_code(exc)
