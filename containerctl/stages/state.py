"""What passed in a container, with which inputs: the per-container stage state. The truth is
the copy kept inside the container ($IN_CONTAINER_DIR/state.json, written by whichever home ran
a stage there last); a home's own file ($CONTAINERCTL_HOME, paths.state_file) only caches it.
Both have one shape: {"container_id", "stages": {name: {"status", "inputs", "run_id", …}},
"seq"}. Light on purpose: `status` imports this module and nothing of the runner."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import paths

if TYPE_CHECKING:
    from ..engine import Engine

IN_CONTAINER_DIR = "/var/tmp/containerctl"   # containerctl's files in a container
CONTAINER_STATE = "state.json"      # in IN_CONTAINER_DIR: the same shape, written by any home


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def state_file(container: str) -> Path:
    return paths.state_file(container)


def _valid_state(st) -> bool:
    return (isinstance(st, dict) and isinstance(st.get("container_id"), str)
            and isinstance(st.get("stages"), dict)
            and all(isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("status"), str)
                    for k, v in st["stages"].items()))


def load_state(container: str, container_id: str, warn: Callable[[str], None] | None = None
               ) -> dict:
    """Which stages passed in this container, with which inputs. A state file that is not
    JSON of the right shape is dropped with a warning (the stages simply run again)."""
    f = state_file(container)
    fresh = {"container_id": container_id, "stages": {}}
    if not f.is_file():
        return fresh
    try:
        st = json.loads(f.read_text())
    except (OSError, ValueError, RecursionError) as exc:   # nested 5000 deep: not a state
        st, why = None, f"not JSON ({type(exc).__name__ if isinstance(exc, RecursionError) else exc})"
    else:
        why = "not a containerctl state file (wrong shape)"
    if not _valid_state(st):
        (warn or (lambda m: None))(f"warning: ignoring the stage state {f}: {why}; stages will "
                                   "run again")
        return fresh
    return st if st["container_id"] == container_id else fresh


def save_state(container: str, st: dict) -> None:
    paths.atomic_write(state_file(container), json.dumps(st, indent=1))


def parse_container_state(text: str, container_id: str) -> dict | None:
    try:
        st = json.loads(text)
    except ValueError:
        return None
    if not _valid_state(st) or st.get("container_id") != container_id:
        return None
    return st


def load_container_state(engine: Engine, container: str, container_id: str) -> dict | None:
    """The stage state kept inside the container (written by whichever home ran a stage
    there last), or None when there is none or it is damaged: the truth about what passed in
    this container, which a home's own state file only caches."""
    return container_view(engine, container, container_id, "")[0]


def container_view(engine: Engine, container: str, container_id: str, flagcx_dir: str
                   ) -> tuple[dict | None, str | None]:
    """(the container's stage state, the fingerprint in flagcx_dir's source marker — the
    first word of its first line, as source.read_marker reads it) in one exec."""
    sep = "\n--cctl-source-marker--\n"
    try:
        code, out = engine.exec_capture(container, [
            "sh", "-c", 'cat "$1" 2>/dev/null; printf "$3"; [ -z "$2" ] || '
            'head -n1 "$2/.containerctl-source" 2>/dev/null; exit 0', "view",
            f"{IN_CONTAINER_DIR}/{CONTAINER_STATE}", flagcx_dir, sep.replace("\n", "\\n")])
    except Exception:
        return None, None
    if code != 0 or sep not in out:
        return None, None
    st_text, _, marker = out.rpartition(sep)
    words = marker.split()
    return parse_container_state(st_text, container_id), (words[0] if words else None)


def save_container_state(engine: Engine, container: str, st: dict) -> None:
    engine.put_file(container, IN_CONTAINER_DIR, CONTAINER_STATE, json.dumps(st).encode())


def fp_word(source: str | None) -> str:
    """`dir:abc` / `git:abc` / `abc` -> `abc` (the marker holds the bare fingerprint)."""
    s = (source or "").strip()
    return s.split(":", 1)[1] if s.startswith(("dir:", "git:")) else s
