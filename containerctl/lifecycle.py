"""up / down / ps / restart, converging like docker compose: containers carry io.containerctl.*
labels (profile, config hash); the same config is a no-op, a changed one is recreated (the
workspace volume is kept), and a failed `up` leaves nothing behind."""
from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from . import paths
from .engine import LABEL_PREFIX as LABEL
from .engine import MANAGED, ContainerInfo, Engine
from .errors import HostError, NotFound, UsageError
from .names import check_name

if TYPE_CHECKING:
    from .profiles import Profile
    from .runspec import ContainerSpec

# profiles (pydantic), runspec and hostcheck are imported where they are used: `status` and
# `exec-stage` go through resolve_target / require_running and need none of them


@dataclass
class UpResult:
    action: str          # noop | started | created | recreated | dry-run
    name: str
    spec: ContainerSpec
    container_id: str | None = None
    reason: str = ""


@contextlib.contextmanager
def name_lock(name: str) -> Iterator[None]:
    """Serialise lifecycle operations on one container name across processes."""
    paths.require_writable_home()
    fd = os.open(str(paths.lock_file(name)), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def is_image_spec(name: str) -> bool:
    """A profile's `image:` names a spec in images/ (built by containerctl), or is a literal
    reference of an image already on the host."""
    from . import images
    if "/" in name or ":" in name:
        return False
    return any((Path(d) / f"{name}{ext}").is_file()
               for d in images.image_dirs() for ext in (".yaml", ".yml"))


def _image_files() -> list[str]:
    """The files an image spec's tag is computed from (specs and block templates)."""
    from . import images
    out: list[str] = []
    for d in list(images.image_dirs()) + list(images.template_dirs()):
        out.append(str(d))
        if Path(d).is_dir():
            out += [str(f) for f in sorted(Path(d).rglob("*")) if f.is_file()]
    return out


def _base_ref(profile: Profile) -> str | None:
    """The base image a spec builds on, when its tag may be remembered: not when the profile
    overrides the base, nor when a block takes files from outside the spec and templates (a
    FlagCX checkout moves on without any of those files changing)."""
    from . import images
    if any(str(k).startswith("base") for k in profile.image_args):
        return None
    spec = images.load_image(profile.image)
    if any(b.use == "flagcx" for b in spec.blocks):
        return None
    return spec.base.tag or spec.base.image


def resolve_image(engine: Engine | None, profile: Profile, build: bool = True,
                  on_line: Callable[[str], None] | None = None) -> str:
    """The image reference a profile's container runs: a built-in image spec is built when
    missing (tagged by content hash); a literal reference must already be on the host."""
    if not is_image_spec(profile.image):
        if engine is not None and build and not engine.image_exists(profile.image):
            raise HostError(f"image {profile.image} (profile {profile.name}) is not on this host "
                            "and no registry is used", "`docker load` it or build it, or set "
                            "`image:` to a built-in image from `containerctl image list`")
        return profile.image
    from . import images, upcache
    base_ref = _base_ref(profile) if engine is not None else None
    base_id = engine.image_id(base_ref) if base_ref else None
    if base_id:   # the tag is known without rendering when no input changed since last time
        tag = upcache.image_tag_lookup(profile.image, profile.image_args, base_id, _image_files())
        if tag and engine.image_exists(tag):
            return tag
    if not build or engine is None:
        try:
            return images.image_tag(images.load_image(profile.image), profile.image_args, engine)
        except Exception:
            return f"containerctl/{profile.image}:<built-at-up>"
    tag = images.ensure_image(engine, profile.image, overrides=profile.image_args, on_line=on_line)
    base_id = engine.image_id(base_ref) if base_ref else None
    if base_id:
        upcache.image_tag_record(profile.image, profile.image_args, base_id, _image_files(), tag)
    return tag


def plan(profile: Profile, name: str | None = None, engine: Engine | None = None,
         build: bool = False, on_line=None, check_devices: bool = True) -> ContainerSpec:
    from .runspec import build_spec
    image = resolve_image(engine, profile, build=build, on_line=on_line)
    return build_spec(profile, image, name=name, check_devices=check_devices)


def up(engine: Engine, profile: Profile, name: str | None = None, force_recreate: bool = False,
       on_line: Callable[[str], None] | None = None, on_status: Callable[[str], None] | None = None,
       extra_labels: dict[str, str] | None = None) -> UpResult:
    """Converge the container. `extra_labels` (e.g. a cluster's) must match too, or it is
    recreated with them."""
    from .hostcheck import check_spec, raise_first
    from .runspec import build_spec, default_name
    name = check_name(name, "container name (--name)") if name is not None else \
        check_name(default_name(profile), f"container name from profile {profile.name}")
    status = on_status or (lambda _m: None)
    extra = dict(extra_labels or {})

    def labelled(spec: ContainerSpec) -> ContainerSpec:
        spec.labels.update(extra)
        return spec
    with name_lock(name):
        existing = engine.find(name)
        if existing is not None:
            _refuse_unmanaged(existing)
        if existing is not None and not force_recreate:
            # fast path: compare the hash without building anything when the image is a literal
            spec = plan(profile, name, engine, build=False, check_devices=False)
            if spec.image.endswith("<built-at-up>") or not engine.image_exists(spec.image):
                spec = plan(profile, name, engine, build=True, on_line=on_line)
            spec = labelled(spec)
            if existing.labels.get(LABEL + "config-hash") == spec.config_hash and \
                    all(existing.labels.get(k) == v for k, v in extra.items()):
                if existing.running:
                    return UpResult("noop", name, spec, existing.id, "configuration unchanged")
                status(f"starting {name}")
                engine.start(name)
                return UpResult("started", name, spec, existing.id, "was " + existing.status)
        # what the host lacks is said before anything is built or created
        raise_first(check_spec(engine, build_spec(profile, profile.image, name=name),
                               probes=False), profile.name)
        spec = labelled(plan(profile, name, engine, build=True, on_line=on_line))
        raise_first(check_spec(engine, spec), profile.name)
        action = "created"
        reason = ""
        if existing is not None:
            reason = "forced" if force_recreate else "configuration changed"
            status(f"recreating {name} ({reason}); the workspace volume is kept")
            engine.remove(name, force=True)
            action = "recreated"
        status(f"creating {name} from {spec.image}")
        cid = engine.create_and_start(spec)
        return UpResult(action, name, spec, cid, reason)


def remember(profile_arg: str, name: str | None, sets, profile: Profile, res: UpResult) -> None:
    """Record what this `up` was resolved from, for the no-op fast path (upcache)."""
    from . import upcache
    from .profiles import input_files
    files = input_files(profile_arg)
    globs = [d.split(":")[0] for d in profile.container.devices
             if any(ch in d.split(":")[0] for ch in "*?[")]
    if is_image_spec(profile.image):
        files += _image_files()
    upcache.record(profile_arg, name, sets, files, globs, res.name, res.spec.config_hash,
                   warnings=res.spec.warnings)


def down(engine: Engine, name: str, volumes: bool = False) -> list[str]:
    """Remove the container; the workspace volume and results stay unless volumes=True."""
    removed = []
    check_name(name, "container name")
    with name_lock(name):
        if volumes and engine.find(name) is None:
            # the container went earlier (`down` without --volumes): its workspace volume can
            # still be asked for, by the name containerctl gave it
            from .runspec import workspace_volume_name
            vol = workspace_volume_name(name)
            if engine.volume_exists(vol):
                engine.remove_volume(vol)
                return [f"volume {vol}"]
        c = require_managed(engine, name)
        vol = c.labels.get(LABEL + "workspace-volume")
        engine.remove(name, force=True)
        removed.append(name)
        if volumes and vol:
            engine.remove_volume(vol)
            removed.append(f"volume {vol}")
    return removed


def ps(engine: Engine) -> list[ContainerInfo]:
    return engine.list()


def resolve_target(engine: Engine, name: str | None = None, profile: str | None = None) -> str:
    """Which container a command means: --name, --profile's default name, or the only one."""
    if name is not None:
        require_managed(engine, check_name(name, "container name (--name)"))
        return name
    if profile:
        from .profiles import load_profile
        from .runspec import default_name
        target = default_name(load_profile(profile))
        require_managed(engine, check_name(target, f"container name from profile {profile}"))
        return target
    rows = engine.list()
    if len(rows) == 1:
        return rows[0].name
    if not rows:
        raise NotFound("no containerctl container exists", "start one: containerctl up --profile P")
    raise UsageError("several containers exist: " + ", ".join(r.name for r in rows),
                     "say which with --name N or --profile P")


def _refuse_unmanaged(c: ContainerInfo) -> None:
    if MANAGED not in c.labels:
        raise UsageError(f"container {c.name} exists but was not created by containerctl "
                         f"(it has no {MANAGED} label); containerctl leaves it alone",
                         f"name another container (`containerctl ps` lists containerctl's), or "
                         f"remove/rename this one yourself (`docker rm -f {c.name}`)")


def require_managed(engine: Engine, name: str) -> ContainerInfo:
    """The container `name` if containerctl created it: every verb that acts on an existing
    container goes through here (up, down, restart, exec, logs, status, exec-stage, …), so a
    container someone else made is never stopped, restarted, exec'd into or reported on.
    NotFound when there is none; UsageError (exit 2) when it is not containerctl's."""
    check_name(name, "container name")
    c = engine.find(name)
    if c is None:
        raise NotFound(f"no container named {name}",
                       "create it: containerctl up --profile P (see `containerctl ps`)")
    _refuse_unmanaged(c)
    return c


def require_running(engine: Engine, name: str) -> ContainerInfo:
    c = require_managed(engine, name)
    if not c.running:
        raise UsageError(f"container {name} is {c.status}, not running",
                         f"start it: containerctl up --name {name} --profile "
                         f"{c.labels.get(LABEL + 'profile', 'P')}")
    return c
