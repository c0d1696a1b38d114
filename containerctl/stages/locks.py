"""Who is running a stage in a container, found from the container itself (any
CONTAINERCTL_HOME, any machine that reaches the engine sees the same answer)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Engine


def busy_holder(engine: "Engine", container: str) -> str | None:
    """A one-line description of the run or stage holding `container`'s stage lock (command,
    stage, host, pid, home, since), or None when no stage runs there. Every command that could
    disturb a running stage (recreate, remove, another run) asks this first."""
    return None   # filled in with the lock held inside the container
