"""Live terminal or plain lines: one decision for every command."""
from __future__ import annotations

import os
import sys


def interactive(stream=None) -> bool:
    """A person at a capable terminal: the stream is a TTY, TERM is not `dumb`, NO_COLOR and CI
    are unset. Everything else (pipes, files, CI logs) gets plain, line-oriented output."""
    stream = stream if stream is not None else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    if not tty:
        return False
    if os.environ.get("TERM", "") == "dumb" or "NO_COLOR" in os.environ:
        return False
    return not os.environ.get("CI")


def colour(stream=None) -> bool:
    return interactive(stream)
