"""The FlagCX source a stage builds: where it comes from (a host directory, a git URL, the
stand-in), its fingerprint, and bringing it into the container's flagcx.dir.

Safety rules (issue 18):
- a source tree is checked before anything reads or copies it (`check_tree`): FIFOs, sockets
  and device files, and symlinks that leave the tree, lead to such a file, dangle, loop or
  point at a directory containing them are refused (exit 2) naming the path; the tree's size
  and file count are bounded; nothing ever follows a link out of the tree;
- containerctl empties flagcx.dir only when its marker `.containerctl-source` is there (it
  wrote it when it filled the directory). A non-empty directory without the marker is the
  user's: the run is refused with the fix, whatever filesystem it lives on;
- when the source is the very host directory bind-mounted at flagcx.dir, it is built in place:
  nothing copied, nothing removed.

The marker: its first line's first word is the source fingerprint (the part of
`prepare_source`'s result after `dir:` / `git:`); more words may follow (`in-place` when the
directory is the user's own checkout, built where it is)."""
from __future__ import annotations

import errno
import hashlib
import os
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import paths
from ..errors import StageError, UsageError

if TYPE_CHECKING:
    from ..engine import Engine
    from ..profiles import Profile

MARKER = ".containerctl-source"
INCOMPLETE = "incomplete"          # the marker's word while containerctl is (re)filling a directory
IN_PLACE = "in-place"              # the marker's second word for a user's checkout built where it is
CHUNK = 1 << 20
MAX_BYTES_ENV = "CONTAINERCTL_SOURCE_MAX_BYTES"
MAX_FILES_ENV = "CONTAINERCTL_SOURCE_MAX_FILES"
DEFAULT_MAX_BYTES = 8 << 30
DEFAULT_MAX_FILES = 1_000_000
MAX_DEPTH = 128                    # directories deep (tarfile and os.walk recurse)


# ---------------------------------------------------------------------------------------------
# the tree on the host

def _limit(env: str, default: int) -> int:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"{env}={raw!r} is not a positive whole number",
                         f"unset {env} or give e.g. {env}={default}")
    return int(raw)


def copy_excluded(rel: str) -> bool:
    """What a copy of a source tree leaves out (a path relative to the tree): the top-level
    build/ (the container builds its own) and a marker the tree may carry."""
    return rel == "build" or rel.startswith("build/") or rel == MARKER


def _fingerprint_excluded(rel: str) -> bool:
    return rel.startswith(("build/", ".git/")) or "/build/" in rel or rel == MARKER


def _kind(mode: int) -> str:
    return ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")


def _refuse(path: Path, what: str, fix: str | None = None) -> UsageError:
    return UsageError(f"FlagCX source: {path} {what}",
                      fix or f"remove it (rm {shlex.quote(str(path))}) or give a source tree "
                      "without it: the tree is copied into the container, so it may hold only "
                      "regular files, directories and links to them inside the tree")


def _link_problem(link: Path, rel_dir: str, root_real: str) -> str | None:
    """Why the symlink `link` (in the tree directory `rel_dir`) cannot be copied, or None.
    Nothing is opened: the target is only resolved and stat'ed."""
    try:
        target = os.readlink(link)
    except OSError as exc:
        return f"is a symlink that cannot be read ({exc.strerror})"
    if not os.path.isabs(target):
        lexical = os.path.normpath(os.path.join(rel_dir, target))
        if lexical == ".." or lexical.startswith("../"):
            return f"is a symlink to {target}, which leaves the source tree"
    try:
        real = os.path.realpath(link, strict=True)
    except FileNotFoundError:
        return f"is a dangling symlink (its target {target} does not exist)"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"is a symlink loop (following {target} leads back to it)"
        return f"is a symlink that cannot be followed ({exc.strerror})"
    inside = real == root_real or real.startswith(root_real + os.sep)
    try:
        mode = os.stat(real).st_mode      # `real` holds no link: nothing loops, nothing opens
    except OSError as exc:
        return f"is a symlink whose target cannot be read ({exc.strerror})"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return f"is a symlink to {real}, {_kind(mode)}" + ("" if inside else
                                                           ", outside the source tree")
    if not inside:
        return f"is a symlink to {target}, which resolves to {real}, outside the source tree"
    if os.path.isabs(target):
        return (f"is a symlink to the absolute path {target}: in the container it would point "
                "elsewhere; make it relative")
    if stat.S_ISDIR(mode):
        here = os.path.realpath(link.parent)
        if here == real or here.startswith(real + os.sep):
            return (f"is a symlink to {target}, a directory that contains the link (a "
                    "directory loop: anything that follows links would never end)")
    return None


@dataclass
class Entry:
    rel: str          # path relative to the tree, '/' separated
    kind: str         # file | dir | link
    size: int = 0


def scan_tree(root: Path, exclude: Callable[[str], bool] | None = copy_excluded) -> list[Entry]:
    """Every entry of the tree (sorted as pathlib sorts paths), checked: UsageError (exit 2)
    naming the first special file or bad symlink, or a tree over the size/count/depth bounds.
    Links are never followed; only lstat/readlink/realpath. Iterative (no recursion limit)."""
    root = Path(root)
    root_real = os.path.realpath(root)
    max_bytes = _limit(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)
    max_files = _limit(MAX_FILES_ENV, DEFAULT_MAX_FILES)
    out: list[Entry] = []
    total = 0
    stack = [""]                        # directories to read, relative to the tree
    while stack:
        rel_dir = stack.pop()
        dirpath = os.path.join(root_real, rel_dir) if rel_dir else root_real
        if rel_dir.count("/") >= MAX_DEPTH - 1:
            raise _refuse(Path(dirpath), f"is nested more than {MAX_DEPTH} directories deep",
                          "give the checkout alone: a source tree is a few levels deep")
        try:
            with os.scandir(dirpath) as it:
                names = sorted(e.name for e in it)
        except OSError as exc:
            raise _refuse(Path(dirpath), f"cannot be read ({exc.strerror})",
                          "make it readable by this user, or give another source tree") from None
        subdirs = []
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if exclude and exclude(rel):
                continue
            p = Path(dirpath) / name
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue                   # gone while we looked
            except OSError as exc:
                raise _refuse(p, f"cannot be read ({exc.strerror})") from None
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                why = _link_problem(p, rel_dir, root_real)
                if why:
                    raise _refuse(p, why)
                out.append(Entry(rel, "link"))
            elif stat.S_ISDIR(mode):
                out.append(Entry(rel, "dir"))
                subdirs.append(rel)
            elif stat.S_ISREG(mode):
                if not os.access(p, os.R_OK):     # found now, not mid-run by the fingerprint
                    raise _refuse(p, "cannot be read (permission denied)",
                                  "make it readable by this user, or give another source tree")
                total += st.st_size
                out.append(Entry(rel, "file", st.st_size))
                if total > max_bytes:
                    raise _refuse(root, f"holds more than {max_bytes} bytes of files (at {rel})",
                                  "give the checkout alone (build outputs and data elsewhere), "
                                  f"or raise the bound: {MAX_BYTES_ENV}=<bytes>")
            else:
                raise _refuse(p, f"is {_kind(mode)}")
            if len(out) > max_files:
                raise _refuse(root, f"holds more than {max_files} entries",
                              "give the checkout alone, or raise the bound: "
                              f"{MAX_FILES_ENV}=<count>")
        stack.extend(reversed(subdirs))
    out.sort(key=lambda e: tuple(e.rel.split("/")))
    return out


def check_tree(root: Path) -> None:
    """Refuse (exit 2, the path named) a tree that cannot be fingerprinted and copied safely."""
    scan_tree(root)


def _hash_file(h, path: Path) -> None:
    """Stream a regular file into `h` in chunks; O_NOFOLLOW|O_NONBLOCK and an fstat check, so a
    file swapped for a link or a FIFO after the scan is neither followed nor waited on."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _refuse(path, "changed into something other than a regular file while read")
        while True:
            b = os.read(fd, CHUNK)
            if not b:
                break
            h.update(b)
    finally:
        os.close(fd)


def _tree_fingerprint(root: Path, entries: list[Entry] | None = None) -> str:
    """sha256 over the tree's files (path and content, in chunks) and links (path and target
    text, never followed); build/ and .git/ are left out. A tree of regular files hashes as
    before links were considered."""
    root = Path(os.path.realpath(root))
    h = hashlib.sha256()
    for e in entries if entries is not None else scan_tree(root):
        if e.kind == "dir" or _fingerprint_excluded(e.rel):
            continue
        h.update(e.rel.encode())
        if e.kind == "link":
            h.update(b"\0symlink\0" + os.fsencode(os.readlink(root / e.rel)))
        else:
            _hash_file(h, root / e.rel)
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
    """What the build's inputs hash sees of the source: for a directory, its content (the tree
    is checked first: a bad link or a FIFO is exit 2 naming it, before anything is read)."""
    ident = f"{kind}:{loc}@{ref}"
    if kind != "dir":
        return ident
    return ident + ":" + _tree_fingerprint(Path(loc))


# ---------------------------------------------------------------------------------------------
# flagcx.dir in the container

_PROBE = r'''d=$1; m=$d/.containerctl-source
real=$(readlink -f -- "$d" 2>/dev/null || echo "$d")
if [ -L "$d" ] || { [ -e "$d" ] && [ "$real" != "$d" ]; }; then echo "link $real"
elif [ ! -e "$d" ]; then echo absent
elif [ ! -d "$d" ]; then echo notdir
elif [ -z "$(ls -A -- "$d" 2>/dev/null | head -n 1)" ]; then echo empty
elif [ -f "$m" ] && [ ! -L "$m" ]; then printf 'marked '; head -n 1 -- "$m"; echo
else echo unmarked; fi
[ -d "$d/.git" ] && echo git
exit 0'''

# empty a directory containerctl filled: only while its marker is there (checked in the same
# shell that removes); the marker stays (saying `incomplete`) until the new copy is complete
_EMPTY = r'''d=$1; m=$d/.containerctl-source
if [ ! -e "$d" ]; then mkdir -p -- "$d" && printf 'incomplete\n' > "$m"; exit $?; fi
[ -d "$d" ] && [ ! -L "$d" ] || exit 3
if [ -z "$(ls -A -- "$d" | head -n 1)" ]; then printf 'incomplete\n' > "$m"; exit $?; fi
[ -f "$m" ] && [ ! -L "$m" ] || exit 3
read -r first rest < "$m" || true
case " $rest " in *" in-place "*) exit 4;; esac
printf 'incomplete\n' > "$m" || exit 5
find "$d" -mindepth 1 -maxdepth 1 ! -name .containerctl-source -exec rm -rf -- {} + || exit 5'''


@dataclass
class Dest:
    """What flagcx.dir is in the container, and where it lives."""
    path: str
    state: str                 # absent | empty | marked | unmarked | notdir | link
    marker: list[str]          # the marker's first line's words (marked only)
    git: bool = False
    resolved: str = ""         # link: where it leads
    host: str | None = None    # the host path when it sits on a bind mount
    mount: str | None = None   # that bind mount's destination in the container
    in_place: bool = False     # the source is that very host directory
    inner: list[str] = field(default_factory=list)   # mounts below it

    @property
    def ours(self) -> bool:
        return self.state in ("absent", "empty") or (
            self.state == "marked" and IN_PLACE not in self.marker[1:])

    def where(self) -> str:
        if self.host:
            return (f" (it is the host directory {self.host}, bind-mounted at {self.mount}: "
                    "the user's own files)")
        return ""


def _mount_facts(info: dict, dest: str) -> tuple[str | None, str | None, list[str]]:
    """(host path, mount destination) when `dest` sits on a bind mount, else (None, None); and
    the container's mounts below `dest` (emptying it would reach into them). `info`: the
    container's inspect."""
    mounts = info.get("Mounts") or []
    best, inner = None, []
    for m in mounts:
        d = (m.get("Destination") or "").rstrip("/") or "/"
        if dest == d or dest.startswith(d.rstrip("/") + "/"):
            if best is None or len(d) > len(best[0]):
                best = (d, m)
        elif d.startswith(dest + "/"):
            inner.append(d)
    if best is None or best[1].get("Type") != "bind" or not best[1].get("Source"):
        return None, None, inner
    d, m = best
    rest = dest[len(d):].lstrip("/") if d != "/" else dest.lstrip("/")
    return (m["Source"].rstrip("/") + ("/" + rest if rest else "")) or "/", d, inner


def inspect_dest(engine: Engine, container: str, dest: str) -> Dest:
    """What `dest` is in the container (state `unknown` while the container does not run:
    nothing can be looked at, nor changed)."""
    info = engine.inspect(container)
    if not (info.get("State") or {}).get("Running"):
        return Dest(dest, "unknown", [])
    code, out = engine.exec_capture(container, ["sh", "-c", _PROBE, "probe", dest])
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if code != 0 or not lines:
        raise StageError(f"could not look at {dest} in {container} (exit {code})",
                         "check that the container runs and has a shell")
    head = lines[0].split()
    d = Dest(dest, head[0], head[1:] if head[0] == "marked" else [],
             git="git" in lines[1:], resolved=" ".join(head[1:]) if head[0] == "link" else "")
    d.host, d.mount, d.inner = _mount_facts(info, dest)
    return d


def check_destination(engine: Engine, container: str, profile: Profile,
                      source: tuple[str, str | None, str]) -> Dest:
    """Refuse (UsageError, exit 2) a flagcx.dir containerctl may not fill: not a directory,
    reached through a symlink, the user's (non-empty, no marker), or overlapping the source
    tree. Returns what it found (in_place set when the source is that very directory)."""
    from ..engine import host_is_local
    kind, loc, _ref = source
    path = profile.flagcx.dir.rstrip("/") or "/"
    d = inspect_dest(engine, container, path)
    if d.state == "unknown":
        return d     # a stopped container (checked before a recreate): looked at once it runs
    alt = f"{path}-cctl"
    if d.state == "link":
        raise UsageError(f"flagcx.dir {path} in {container} is reached through a symlink (it "
                         f"leads to {d.resolved}): containerctl does not fill what a link points "
                         "to", f"set flagcx.dir to a real directory, e.g. --set flagcx.dir={alt}")
    if d.state == "notdir":
        raise UsageError(f"flagcx.dir {path} in {container} exists and is not a directory",
                         f"point flagcx.dir elsewhere, e.g. --set flagcx.dir={alt}")
    if kind == "dir" and loc and d.host and host_is_local(engine):
        src, host = os.path.realpath(loc), os.path.realpath(d.host)
        if src == host:
            d.in_place = True
            return d
        if host.startswith(src + os.sep) or src.startswith(host + os.sep):
            inner = "inside" if host.startswith(src + os.sep) else "around"
            raise UsageError(f"flagcx.dir {path} in {container} is the host directory {host}, "
                             f"{inner} the source {src}: copying one into the other would "
                             "overwrite the source", "build the source in place (set "
                             "flagcx.dir to where the source is mounted in the container) or "
                             "point flagcx.dir to a directory apart from it")
    if d.inner:
        raise UsageError(f"flagcx.dir {path} in {container} has a mount inside it "
                         f"({', '.join(sorted(d.inner))}): emptying or filling it would reach "
                         "into what is mounted there", f"point flagcx.dir elsewhere, e.g. --set "
                         f"flagcx.dir={alt}, or mount that directory outside flagcx.dir")
    if not d.ours:
        what = ("a directory containerctl did not fill (no .containerctl-source marker)"
                if d.state == "unmarked" else "a checkout built in place (the user's own)")
        inplace = (f"; or build this tree in place: --source {shlex.quote(d.host)}"
                   if d.host and kind == "dir" else "")
        raise UsageError(f"flagcx.dir {path} in {container} is {what} and holds files"
                         f"{d.where()}: containerctl never empties it",
                         f"point flagcx.dir elsewhere, e.g. --set flagcx.dir={alt}{inplace}")
    return d


def prepare_source(engine: Engine, container: str, profile: Profile, log: Callable[[str], None],
                   source: tuple[str, str | None, str], identity: str) -> str:
    """Copy or clone FlagCX (as resolve_source gave it) into flagcx.dir, or use it in place
    when it is that very directory. Returns a fingerprint of the source."""
    kind, loc, ref = source
    dest = profile.flagcx.dir.rstrip("/")
    parent, base = dest.rsplit("/", 1)
    try:
        d = check_destination(engine, container, profile, source)
    except UsageError as exc:     # the container changed since the run's preflight
        raise StageError(exc.message, exc.hint) from None
    if d.state == "unknown":
        raise StageError(f"{container} stopped before FlagCX could be copied into it",
                         "see `containerctl status` and start it again with `containerctl up`")
    if kind == "dir":
        root = Path(loc)
        fp = identity.rsplit(":", 1)[-1]
        if d.in_place:
            log(f"building in place in {root} (bind-mounted at {dest} in {container}): nothing "
                f"copied, nothing removed; source fingerprint {fp}")
            engine.put_file(container, dest, MARKER, f"{fp} {IN_PLACE}\n".encode())
            return f"dir:{fp}"
        log(f"copying {root} into {container}:{dest} (source fingerprint {fp})")
        if d.state == "marked" and d.marker[:1] == [fp]:
            pass    # the same source as the last copy: copied over, nothing removed
        else:
            # another source than the last copy's: start from an empty checkout (a file gone
            # from the source, or its objects in build/, must not survive: a stale fault file
            # made a correct tree FAIL, a stale source file was built into libflagcx) — but
            # only a directory containerctl filled (its marker is checked again in the shell
            # that empties it)
            _empty(engine, container, dest, d)
        engine.put_dir(container, root, parent or "/", arcname=base,
                       exclude=lambda n: copy_excluded(n.split("/", 1)[1]) if "/" in n else False)
        engine.put_file(container, dest, MARKER, f"{fp}\n".encode())
        return f"dir:{fp}"
    q = shlex.quote
    tmp = f"{parent}/.{base}.cctl-clone"
    if d.state == "marked" and d.git:
        script = f"set -e\ncd {q(dest)}; git fetch --all --tags -q || true\n"
    else:
        if d.state == "marked":
            _empty(engine, container, dest, d)
        # cloned beside, marked, then swapped in: a clone cut short never leaves an unmarked
        # half-checkout at flagcx.dir
        script = (f"set -e\nrm -rf -- {q(tmp)}; mkdir -p -- {q(parent or '/')}\n"
                  f"git clone -q -- {q(loc)} {q(tmp)}\n"
                  f"printf 'incomplete\\n' > {q(tmp)}/{MARKER}\n"
                  f"if [ -e {q(dest)} ]; then rmdir -- {q(dest)} 2>/dev/null || "
                  f"{{ [ \"$(ls -A -- {q(dest)})\" = {MARKER} ] && rm -rf -- {q(dest)}; }}; fi\n"
                  f"mv -T -- {q(tmp)} {q(dest)}\ncd {q(dest)}\n")
    script += (("git checkout -q " + q(ref) + "\n") if ref else "") + \
        "git submodule update --init --recursive -q\ngit rev-parse HEAD"
    buf = bytearray()
    code = engine.exec(container, ["bash", "-c", script], on_output=buf.extend)
    out = buf.decode("utf-8", "replace")
    log(out)
    if code != 0:
        raise StageError(f"could not fetch FlagCX from {loc}{'@' + ref if ref else ''} "
                         f"(exit {code}): {out.strip().splitlines()[-1] if out.strip() else ''}",
                         "check the URL/ref and the container's network, or give a local path")
    sha = out.strip().splitlines()[-1]
    engine.put_file(container, dest, MARKER, f"{sha}\n".encode())
    return f"git:{sha}"


def _empty(engine: Engine, container: str, dest: str, d: Dest) -> None:
    code = engine.exec(container, ["sh", "-c", _EMPTY, "empty", dest])
    if code in (3, 4):
        raise StageError(f"{dest} in {container} lost containerctl's marker before it was "
                         f"emptied{d.where()}: left as it is",
                         f"point flagcx.dir elsewhere, e.g. --set flagcx.dir={dest}-cctl")
    if code != 0:
        raise StageError(f"could not empty {dest} in {container} before the copy "
                         f"(exit {code})", "check the container's filesystem")


def check_source_tree(profile: Profile, override: str | None = None) -> None:
    """The source resolves and, when it is a directory, its tree is safe to read and copy:
    for the CLI, before a container is made for a run."""
    src = resolve_source(profile, override)
    if src[0] == "dir":
        check_tree(Path(src[1]))


def check_source(engine: Engine, container: str, profile: Profile,
                 override: str | None = None) -> tuple[str, str | None, str]:
    """Everything about the source that can refuse a run, before any stage starts: it resolves,
    its tree is safe to read and copy, and flagcx.dir may be filled from it."""
    src = resolve_source(profile, override)
    if src[0] == "dir":
        check_tree(Path(src[1]))
    check_destination(engine, container, profile, src)
    return src


def read_marker(engine: "Engine", container: str, dest: str) -> str | None:
    """The fingerprint in the marker containerctl wrote into `dest` inside the container when
    it filled it (the first word of its first line), or None when there is no marker (or the
    copy into it did not finish): the source a stage really runs against, whichever home
    copied it."""
    code, out = engine.exec_capture(container, ["sh", "-c", f"head -n1 {shlex.quote(dest)}/{MARKER} 2>/dev/null"])
    words = out.split()
    return words[0] if code == 0 and words and words[0] != INCOMPLETE else None
