"""Where things live: built-in data (works from a source checkout and from an installed wheel),
user config, and the state/results directory."""
from __future__ import annotations

import os
import threading
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Built-in data directory: profiles, images, Dockerfile.templates, workloads."""
    installed = _PKG / "_data" / name
    if installed.is_dir():
        return installed
    return _PKG.parent / name


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "containerctl"


def home() -> Path:
    """State, logs and results. CONTAINERCTL_HOME overrides (tests use a temp dir)."""
    env = os.environ.get("CONTAINERCTL_HOME")
    if env:
        p = Path(env)
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        p = Path(base) / "containerctl"
    return p


def ensure(p: Path) -> Path:
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(p, exc) from None
    return p


def _unwritable(p: Path, exc: OSError):
    from .errors import HostError
    return HostError(f"cannot write containerctl's state/results directory {p}: "
                     f"{exc.strerror or exc}", "fix its permissions, or set CONTAINERCTL_HOME "
                     "to a writable directory (nothing was started)")


def require_writable_home() -> Path:
    """Fail early, before any container or stage is touched, when results could not be kept."""
    h = home()
    ensure(h)
    for d in [h] + [h / sub for sub in ("results", "state", "locks", "cache")]:
        if d != h and not d.exists():
            ensure(d)
        probe = d / f".write-test-{os.getpid()}-{threading.get_ident()}"   # threads: cluster up
        try:
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise _unwritable(d, exc) from None
    return h


def atomic_write(path: Path, text: str) -> None:
    """Write-then-rename so a reader never sees half a file and a crash loses nothing old."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def lock_file(name: str) -> Path:
    """The lock file that serialises lifecycle operations on container `name`; always inside
    <home>/locks, whatever the name holds."""
    from .names import safe_filename
    return ensure(home() / "locks") / f"{safe_filename(name)}.lock"


def state_file(container: str) -> Path:
    """The stage-state file of container `container`; always inside <home>/state."""
    from .names import safe_filename
    return home() / "state" / f"{safe_filename(container)}.json"
