"""The FlagCX source a stage builds: where it comes from (a host directory, a git URL, the
stand-in), its fingerprint, and bringing it into the container's flagcx.dir."""
from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import paths
from ..errors import StageError, UsageError

if TYPE_CHECKING:
    from ..engine import Engine
    from ..profiles import Profile



def _tree_fingerprint(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith(("build/", ".git/")) or "/build/" in rel or p.is_dir():
            continue
        h.update(rel.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def resolve_source(profile: Profile, override: str | None = None) -> tuple[str, str | None, str]:
    """(kind, location, ref): kind is 'dir' (a host directory copied in) or 'git'."""
    src = override or profile.flagcx.source
    if src == "selftest":
        return "dir", str(paths.data_dir("workloads") / "flagcx-selftest"), ""
    p = Path(src).expanduser()
    if p.is_dir():
        return "dir", str(p.resolve()), ""
    if "://" in src or src.startswith("git@") or src.endswith(".git") or "@" in src:
        url, ref = src, profile.flagcx.ref or ""
        if "@" in src.rsplit("/", 1)[-1] and not src.startswith("git@"):
            url, _, ref = src.rpartition("@")
        return "git", url, ref
    raise UsageError(f"FlagCX source {src!r} is neither a directory here nor a git URL",
                     "set flagcx.source to a path, a URL (URL@ref), or `selftest`")


def source_identity(kind: str, loc: str | None, ref: str) -> str:
    """What the build's inputs hash sees of the source: for a directory, its content."""
    ident = f"{kind}:{loc}@{ref}"
    if kind == "dir":
        from ..engine import refuse_special_files
        refuse_special_files(Path(loc))   # a FIFO would hang the fingerprint and the copy
    return ident + ":" + _tree_fingerprint(Path(loc)) if kind == "dir" else ident


def prepare_source(engine: Engine, container: str, profile: Profile, log: Callable[[str], None],
                   source: tuple[str, str | None, str], identity: str) -> str:
    """Copy or clone FlagCX (as resolve_source gave it) into flagcx.dir. Returns a fingerprint
    of the source."""
    kind, loc, ref = source
    dest = profile.flagcx.dir.rstrip("/")
    parent, base = dest.rsplit("/", 1)
    if kind == "dir":
        root = Path(loc)
        fp = identity.rsplit(":", 1)[-1]
        log(f"copying {root} into {container}:{dest} (source fingerprint {fp})")
        # another source than the last copy's: start from an empty checkout (a file gone from
        # the source, or its objects in build/, must not survive: a stale fault file made a
        # correct tree FAIL, a stale source file was built into libflagcx)
        code = engine.exec(container, ["bash", "-c", 'mkdir -p "$1" && { [ "$(cat "$1/'
                                       '.containerctl-source" 2>/dev/null)" = "$2" ] || find '
                                       '"$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; }',
                                       "clean", dest, fp])
        if code != 0:
            raise StageError(f"could not empty {dest} in {container} before the copy "
                             f"(exit {code})", "check the container's filesystem")
        engine.put_dir(container, root, parent, arcname=base,
                       exclude=lambda n: n.split("/")[1:2] == ["build"])
        engine.put_file(container, dest, ".containerctl-source", f"{fp}\n".encode())
        return f"dir:{fp}"
    script = f"""set -e
if [ -d {shlex.quote(dest)}/.git ]; then cd {shlex.quote(dest)}; git fetch --all --tags -q || true
else mkdir -p {shlex.quote(parent)}; git clone -q {shlex.quote(loc)} {shlex.quote(dest)}; cd {shlex.quote(dest)}; fi
{"git checkout -q " + shlex.quote(ref) if ref else ""}
git submodule update --init --recursive -q
git rev-parse HEAD"""
    buf = bytearray()
    code = engine.exec(container, ["bash", "-c", script], on_output=buf.extend)
    out = buf.decode("utf-8", "replace")
    log(out)
    if code != 0:
        raise StageError(f"could not fetch FlagCX from {loc}{'@' + ref if ref else ''} "
                         f"(exit {code}): {out.strip().splitlines()[-1] if out.strip() else ''}",
                         "check the URL/ref and the container's network, or give a local path")
    return f"git:{out.strip().splitlines()[-1]}"


MARKER = ".containerctl-source"


def read_marker(engine: "Engine", container: str, dest: str) -> str | None:
    """The fingerprint in the marker containerctl wrote into `dest` inside the container when
    it filled it (the first word of its first line), or None when there is no marker: the
    source a stage really runs against, whichever home copied it."""
    import shlex as _sh
    code, out = engine.exec_capture(container, ["sh", "-c", f"head -n1 {_sh.quote(dest)}/{MARKER} 2>/dev/null"])
    words = out.split()
    return words[0] if code == 0 and words else None
