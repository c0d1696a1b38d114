"""Builds: the build context (the Dockerfile plus each block's copied files, a git ref exported
offline), its content hash (with the base image id) and the tag it gives,
containerctl/<name>:<hash12>; ensure_image builds only when that tag is missing."""
from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from ..errors import ImageError
from ..labels import HASH as HASH_LABEL, IMAGE as IMAGE_LABEL
from .bootstrap import OnLine, build_lock, ensure_base
from .render import Plan, plan
from .spec import ImageSpec

REPO_PREFIX = "containerctl/"
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # the classic builder colours stderr lines


# ---------------------------------------------------------------------------------------------
# build context and hash

def _git(args: list[str], cwd: Path) -> bytes:
    try:
        r = subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, check=False)
    except FileNotFoundError:
        raise ImageError("git is not installed on this host", "install git, or use a plain "
                         "directory (ref empty)") from None
    if r.returncode != 0:
        raise ImageError(f"git {' '.join(args)} in {cwd} failed: "
                         f"{r.stderr.decode(errors='replace').strip().splitlines()[-1:] or ['?']}",
                         "check the checkout and the ref")
    return r.stdout


def _extract(data: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        try:
            tar.extractall(dest, filter="tar")
        except TypeError:  # Python without extraction filters
            tar.extractall(dest)


def _export_git(repo: Path, ref: str, dest: Path, submodules: bool, label: str) -> str:
    """`git archive` the commit `ref` of `repo` (and, recursively, its submodules from their
    checkouts inside `repo`) into `dest`: offline, deterministic, without .git."""
    sha = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo).decode().strip()
    dest.mkdir(parents=True, exist_ok=True)
    _extract(_git(["archive", "--format=tar", sha], repo), dest)
    if submodules:
        for line in _git(["ls-tree", "-r", sha], repo).decode().splitlines():
            meta, _, subpath = line.partition("\t")
            mode, kind, subsha = meta.split()
            if kind != "commit":
                continue
            sub = repo / subpath
            ok = (sub / ".git").exists() and subprocess.run(
                ["git", "cat-file", "-e", f"{subsha}^{{commit}}"], cwd=str(sub),
                capture_output=True).returncode == 0
            if not ok:
                raise ImageError(f"{label}: submodule {subpath} at {subsha[:12]} is not checked "
                                 f"out in {repo}", "run `git submodule update --init "
                                 "--recursive` there (offline builds take submodules from the "
                                 "checkout), or set submodules: false")
            _export_git(sub, subsha, dest / subpath, True, label)
    return sha


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", "__pycache__"), dirs_exist_ok=True)


def materialize(p: Plan, ctx: Path) -> None:
    """Write the build context: Dockerfile plus each block's copied files."""
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(p.dockerfile, encoding="utf-8")
    for item in p.context:
        dest = ctx / item.dest
        label = f"{p.spec.source}: block {item.block}"
        if item.kind == "git":
            sha = _export_git(item.src, item.ref, dest, item.submodules, label)
            (dest / ".containerctl-source").write_text(f"{item.src} {item.ref} {sha}\n")
        else:
            _copy_tree(item.src, dest)


def digest_dir(ctx: Path, base_id: str) -> str:
    h = hashlib.sha256()
    h.update(f"base\0{base_id}\0".encode())
    for root, dirs, files in os.walk(ctx):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if (Path(root) / d).is_symlink()]):
            f = Path(root) / name
            rel = f.relative_to(ctx).as_posix()
            st = f.lstat()
            if stat.S_ISLNK(st.st_mode):
                h.update(f"link\0{rel}\0{os.readlink(f)}\0".encode())
            else:
                h.update(f"file\0{rel}\0{stat.S_IMODE(st.st_mode) & 0o111:o}\0{st.st_size}\0"
                         .encode())
                with open(f, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# tags and builds

def _say_clean(say: OnLine, line: str) -> None:
    line = _ANSI_RE.sub("", line).rstrip()
    if line.strip():
        say(line)


def _tag_for(name: str, digest: str) -> str:
    return f"{REPO_PREFIX}{name}:{digest[:12]}"


def _digest(p: Plan, base_id: str) -> str:
    with tempfile.TemporaryDirectory(prefix="containerctl-ctx-") as tmp:
        materialize(p, Path(tmp))
        return digest_dir(Path(tmp), base_id)


def image_tag(spec: ImageSpec | str, overrides: dict | None, engine) -> str:
    """The tag this image has (or will have) on `engine`: containerctl/<name>:<hash12>.
    The base must be present (its id is part of the hash); ensure_image makes it."""
    p = plan(spec, overrides)
    base_id = engine.image_id(p.base_ref) if engine is not None else None
    if not base_id:
        raise ImageError(f"image {p.spec.name}: base {p.base_ref} is not on this engine yet, so "
                         "the image's tag is not known", f"`containerctl image build "
                         f"{p.spec.name}` makes the base and the image")
    return _tag_for(p.spec.name, _digest(p, base_id))


def current_tag(spec: ImageSpec | str, overrides: dict | None, engine) -> str | None:
    """image_tag, or None when the base is not there yet."""
    try:
        return image_tag(spec, overrides, engine)
    except ImageError:
        return None


def ensure_image(engine, name: ImageSpec | str, overrides: dict | None = None,
                 nocache: bool = False, on_line: OnLine | None = None,
                 force: bool = False) -> str:
    """Make sure the image exists and return its tag. Cache hit (the tag exists): no build at
    all. Otherwise bootstrap/import the base if needed and build, streaming progress lines to
    `on_line`. `force` rebuilds (Docker's layer cache still applies); `nocache` also bypasses it."""
    say = on_line or (lambda _line: None)
    p = plan(name, overrides)
    spec = p.spec
    with build_lock(f"image-{spec.name}"):
        base_id = ensure_base(engine, p.base, say)
        with tempfile.TemporaryDirectory(prefix="containerctl-build-") as tmp:
            ctx = Path(tmp)
            materialize(p, ctx)
            digest = digest_dir(ctx, base_id or f"ref:{p.base_ref}")
            tag = _tag_for(spec.name, digest)
            if base_id and not (force or nocache) and engine.image_exists(tag):
                say(f"image {tag} is up to date")
                return tag
            say(f"building {tag} from {spec.source} on {p.base_ref}")
            started = time.monotonic()
            try:
                iid = engine.build_image(ctx, tag,
                                         labels={IMAGE_LABEL: spec.name, HASH_LABEL: digest},
                                         nocache=nocache,
                                         on_line=lambda line: _say_clean(say, line))
            except ImageError as exc:
                if base_id or engine.image_id(p.base_ref):
                    raise
                raise ImageError(f"image {spec.name}: base {p.base_ref} is not on this host and "
                                 f"the build could not pull it ({exc.message})",
                                 f"`docker load` {p.base_ref} here (docker save it where a "
                                 "registry is reachable), or pass base_image=<a local image>")\
                    from None
        if not base_id:  # the build pulled the base: name the image by the base it got
            base_id = engine.image_id(p.base_ref)
            if base_id:
                final = _tag_for(spec.name, _digest(p, base_id))
                if final != tag:
                    repo, _, t = final.rpartition(":")
                    engine.tag(iid or tag, repo, t)
                    engine.remove_image(tag)
                    tag = final
        say(f"built {tag} in {time.monotonic() - started:.0f}s")
        return tag


def built_tags(engine, name: str) -> list[str]:
    """Tags of this image's builds present on the engine (any hash)."""
    out = []
    for img in engine.images(label=f"{IMAGE_LABEL}={name}"):
        out += [t for t in (img.get("RepoTags") or []) if t.startswith(f"{REPO_PREFIX}{name}:")]
    return sorted(out)
