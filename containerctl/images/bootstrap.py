"""Offline bases: a `base.bootstrap` recipe is made with mmdebstrap (or debootstrap) into a
tarball under the home's cache and imported under `base.tag`, labelled with the recipe's key so
that a changed recipe makes a new base. Also the host-wide build lock both kinds of build take."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from .. import paths
from ..errors import ImageError
# BASE_LABEL: the bootstrap recipe key of an imported base
from ..labels import BASE as BASE_LABEL
from .spec import BaseSpec, Bootstrap

# Part of every bootstrap key: bump it when the bootstrap command line below changes meaning.
BOOTSTRAP_RECIPE = "containerctl-bootstrap-2"

OnLine = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# offline bases

@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """A host-wide lock (one build of an image or base at a time, across processes)."""
    d = Path(tempfile.gettempdir()) / f"containerctl-locks-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def bootstrap_key(b: Bootstrap) -> str:
    blob = json.dumps([BOOTSTRAP_RECIPE, b.model_dump()], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# Like Debian's official images: dpkg skips fsync (a container layer is written once)
_CONTAINER_DPKG = ["force-unsafe-io"]
_SLIM_DPKG = ["path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*",
              "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/info/*",
              "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias"]


def _stream(cmd: list[str], say: OnLine, prefix: str) -> tuple[int, list[str]]:
    tail: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-20:]
        say(f"{prefix}{line}")
    return proc.wait(), tail


def _remove_rootfs(root: Path) -> None:
    """Delete a debootstrap tree, unless something is still mounted inside it (rmtree would
    descend into a bind-mounted /dev or /sys)."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts", encoding="utf-8") as fh:
        busy = [ln.split()[1] for ln in fh if ln.split()[1].startswith(prefix)]
    if busy:
        raise ImageError(f"{busy[0]} is still mounted inside the bootstrap tree {root}",
                         f"umount it (and {len(busy) - 1} more), then delete {root}")
    shutil.rmtree(root, ignore_errors=True)


def _bootstrap_tarball(b: Bootstrap, out: Path, say: OnLine) -> None:
    tool = b.tool if shutil.which(b.tool) else next(
        (t for t in ("mmdebstrap", "debootstrap") if shutil.which(t)), None)
    if tool is None:
        raise ImageError("cannot bootstrap a base: neither mmdebstrap nor debootstrap is installed",
                         "apt-get install mmdebstrap (or debootstrap), or load a base image and "
                         "name it in base.image")
    out.parent.mkdir(parents=True, exist_ok=True)
    # mmdebstrap picks its output format from the file name: keep ".tar" last, and say it too
    partial = out.with_name(f".{out.stem}.{os.getpid()}.partial.tar")
    started = time.monotonic()
    if tool == "mmdebstrap":
        cmd = ["mmdebstrap", "--format=tar", f"--variant={b.variant}",
               f"--components={','.join(b.components)}",
               '--aptopt=Acquire::Languages "none"']
        if b.include:
            cmd.append(f"--include={','.join(b.include)}")
        if b.architecture:
            cmd.append(f"--architectures={b.architecture}")
        cmd += [f"--dpkgopt={o}" for o in _CONTAINER_DPKG + (_SLIM_DPKG if b.slim else [])]
        cmd += [b.suite, str(partial), b.mirror]
        say(f"[bootstrap] {' '.join(cmd)}")
        rc, tail = _stream(cmd, say, "[mmdebstrap] ")
    else:
        if os.geteuid() != 0:
            raise ImageError("debootstrap needs root", "run as root, or install mmdebstrap "
                             "(it works unprivileged)")
        root = Path(tempfile.mkdtemp(prefix="containerctl-rootfs-", dir=out.parent))
        try:
            cmd = ["debootstrap", f"--variant={b.variant}",
                   f"--components={','.join(b.components)}"]
            if b.include:
                cmd.append(f"--include={','.join(b.include)}")
            if b.architecture:
                cmd.append(f"--arch={b.architecture}")
            cmd += [b.suite, str(root), b.mirror]
            say(f"[bootstrap] {' '.join(cmd)}")
            rc, tail = _stream(cmd, say, "[debootstrap] ")
            if rc == 0:
                subprocess.run(["chroot", str(root), "apt-get", "clean"], check=False,
                               capture_output=True)
                cfg = root / "etc/dpkg/dpkg.cfg.d/containerctl"
                cfg.write_text("".join(o + "\n" for o in
                                       _CONTAINER_DPKG + (_SLIM_DPKG if b.slim else [])))
                for d in ("var/lib/apt/lists",):
                    shutil.rmtree(root / d, ignore_errors=True)
                    (root / d).mkdir(parents=True, exist_ok=True)
                rc, tail = _stream(["tar", "-C", str(root), "--numeric-owner", "-cf",
                                    str(partial), "."], say, "[tar] ")
        finally:
            _remove_rootfs(root)
    if rc != 0 or not partial.is_file():
        if partial.is_file():
            partial.unlink()
        last = next((t for t in reversed(tail) if t.strip()), "no output")
        raise ImageError(f"{tool} {b.suite} failed (exit {rc}): {last}",
                         f"check that {b.mirror} is reachable from this host (or set "
                         "base.bootstrap.mirror to a local mirror)")
    os.replace(partial, out)
    say(f"[bootstrap] {out.name}: {out.stat().st_size / 2**20:.0f} MiB in "
        f"{time.monotonic() - started:.0f}s")


def ensure_base(engine, base: BaseSpec, on_line: OnLine | None = None) -> str | None:
    """The base's image id. A bootstrapped base is made and imported when its tag is missing
    (or was made from another recipe); an image reference is only looked up (None if absent:
    the build's FROM pulls it)."""
    say = on_line or (lambda _line: None)
    if base.bootstrap is None:
        return engine.image_id(base.ref)
    key = bootstrap_key(base.bootstrap)
    tag = base.ref
    with build_lock(f"base-{tag}"):
        iid = engine.image_id(tag)
        if iid:
            labels = (engine.image_inspect(tag).get("Config") or {}).get("Labels") or {}
            have = labels.get(BASE_LABEL)
            if have is None or have == key:
                return iid
            say(f"[bootstrap] {tag} was made from another recipe ({have}); making {key}")
        cache = paths.home() / "cache" / "base"
        tarball = cache / f"{re.sub(r'[^A-Za-z0-9._-]', '_', tag)}-{key}.tar"
        if tarball.is_file():
            say(f"[bootstrap] using cached {tarball}")
        else:
            _bootstrap_tarball(base.bootstrap, tarball, say)
        say(f"[bootstrap] importing {tarball.name} as {tag}")
        changes = [f"LABEL {BASE_LABEL}={key}",
                   "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]']
        return engine.import_image(tarball, tag, changes=changes)
