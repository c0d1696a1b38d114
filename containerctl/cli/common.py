"""What the command modules share: a rich console (rich is imported only when one is made) and
the engine (the docker SDK only when a command needs it)."""
from __future__ import annotations


def console(stderr: bool = False):
    from rich.console import Console
    return Console(stderr=stderr, highlight=False)


def engine():
    from ..engine import get_engine
    return get_engine()
