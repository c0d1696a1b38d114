"""Where things live: built-in data (works from a source checkout and from an installed wheel),
user config, and the state/results directory."""
from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

from .errors import HostError
from .names import safe_filename

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


_FULL = (errno.ENOSPC, errno.EDQUOT)


def _kind(mode: int) -> str:
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or
            stat.S_ISBLK(mode) else "not a regular file")


def regular_or_absent(p: Path, what: str = "file") -> Path:
    """`p` when it is a regular file or does not exist; HostError (exit 2) when something else
    (a directory, a FIFO that would block every open, a socket) sits where containerctl keeps
    its file. That thing is the user's: it is named, never removed."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return p
    except OSError as exc:
        raise _unwritable(p, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise HostError(f"containerctl's {what} {p} is {_kind(st.st_mode)}, not a file",
                        "move it out of the way (containerctl never removes it), or set "
                        "CONTAINERCTL_HOME to another directory")
    return p


def _full(p: Path, exc: OSError):
    return HostError(f"cannot write {p}: {exc.strerror or exc} (the disk holding "
                     f"containerctl's home is full)", f"free space there (df -h {p.parent}) or "
                     "set CONTAINERCTL_HOME to a disk with room")


def atomic_write(path: Path, text: str) -> None:
    """Write-then-rename so a reader never sees half a file and a crash loses nothing old.
    A failed write leaves no temporary file and says why in one line (HostError, exit 2). On
    a full disk the old file is overwritten in place as a last resort (its blocks are already
    allocated: a run's final `error` status still lands instead of `running` forever)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise (_full(path, exc) if exc.errno in _FULL else _unwritable(path.parent, exc)) \
            from None
    regular_or_absent(path)
    data = text.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if exc.errno not in _FULL:
            raise _unwritable(path, exc) from None
        if not _overwrite_in_place(path, data):
            raise _full(path, exc) from None


def _overwrite_in_place(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def lock_file(name: str) -> Path:
    """The lock file that serialises lifecycle operations on container `name`; always inside
    <home>/locks, whatever the name holds; never a directory or a FIFO (HostError)."""
    return regular_or_absent(ensure(home() / "locks") / f"{safe_filename(name)}.lock",
                             "lock file")


def state_file(container: str) -> Path:
    """The stage-state file of container `container`; always inside <home>/state; never a
    directory or a FIFO (HostError)."""
    return regular_or_absent(home() / "state" / f"{safe_filename(container)}.json",
                             "state file")
