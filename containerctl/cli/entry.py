"""The console entry point. A repeated `up` whose inputs have not changed is answered here,
before the CLI framework is even imported (that import alone costs more than the whole answer);
everything else goes to cli.app.main."""
from __future__ import annotations

import sys


def _simple_up_args(argv: list[str]) -> tuple[str, str | None, list[str]] | None:
    """`up [--profile P] [--name N] [--set K=V]...` and nothing else, or None."""
    if not argv or argv[0] != "up":
        return None
    profile, name, sets = "cpu-selftest", None, []
    i = 1
    while i < len(argv):
        a = argv[i]
        key, eq, val = a.partition("=")
        if key in ("--profile", "-p", "--name", "--set") and not eq:
            if i + 1 >= len(argv):
                return None
            val = argv[i + 1]
            i += 1
        elif key not in ("--profile", "--name", "--set") or not eq:
            return None     # anything else (--dry-run, --help, …) takes the full path
        if key in ("--profile", "-p"):
            profile = val
        elif key == "--name":
            name = val
        else:
            sets.append(val)
        i += 1
    return profile, name, sets


def fast_noop_up(argv: list[str]) -> bool:
    parsed = _simple_up_args(argv)
    if parsed is None:
        return False
    profile, name, sets = parsed
    if name is not None:
        from ..names import NAME_RE
        if not NAME_RE.match(name) or len(name) > 128:
            return False     # the full path says what is wrong with it
    try:
        from .. import upcache
        from ..engine import Engine
        from ..labels import CONFIG_HASH
        hit = upcache.lookup(profile, name, sets or None)
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


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if fast_noop_up(args):
        return 0
    from .fast import fast_command        # plain exec-stage / status: no CLI framework
    rc = fast_command(args)
    if rc is not None:
        return rc
    from .app import main as cli_main
    return cli_main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
