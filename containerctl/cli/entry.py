"""The console entry point (`containerctl`, `python -m containerctl`): the plain forms of `up`,
`exec-stage` and `status` are answered by cli.fast before the CLI framework is even imported
(that import alone costs more than a no-op `up`); everything else goes to cli.app.main."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from .fast import answer
    rc = answer(args)
    if rc is not None:
        return rc
    from .app import main as cli_main
    return cli_main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
