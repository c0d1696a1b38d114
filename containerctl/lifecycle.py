"""up / down / ps / restart, converging like docker compose: containers carry io.containerctl.*
labels (labels.py: profile, config hash, creation id, the --set overrides); the same config is a
no-op, a changed one is recreated (the workspace volume is kept), and a failed `up` leaves
nothing behind.

Ownership is read from the engine, never from the home: one engine serves several people and
several CONTAINERCTL_HOMEs. Only objects whose labels say containerctl made them are removed or
recreated; a container or workspace volume of the wanted name without those labels is refused
(exit 2), never adopted. Every check that can refuse a command (ownership, a stage running in
the container) runs before anything is created, recreated or removed.

The settings a container was brought up with (labels) and last *run* with (LAST_RUN_FILE inside
the container, written by `run`) are read back by later commands from any home (kept_settings,
settings_profile)."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from . import labels as L
from . import paths, upcache
from .engine import ContainerInfo, Engine
from .errors import ContainerctlError, EngineError, HostError, NotFound, UsageError
from .names import check_name

if TYPE_CHECKING:
    from .profiles import Profile
    from .runspec import ContainerSpec

# start-up: images and profiles (pydantic, yaml), runspec and hostcheck (they import profiles),
# stages.locks (uuid, 3 ms) and stages.runner are imported where they are used: a no-op `up`,
# `status` and `exec-stage` go through the upcache / resolve_target / require_running and need
# none of them


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
    from . import images   # start-up: images imports pydantic and yaml
    if "/" in name or ":" in name:
        return False
    return any((Path(d) / f"{name}{ext}").is_file()
               for d in images.image_dirs() for ext in (".yaml", ".yml"))


def _image_files() -> list[str]:
    """The files an image spec's tag is computed from (specs and block templates)."""
    from . import images   # start-up: images imports pydantic and yaml
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
    from . import images   # start-up: images imports pydantic and yaml
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
    from . import images   # start-up: images imports pydantic and yaml
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
         build: bool = False, on_line=None, check_devices: bool = True,
         sets: list[str] | None = None) -> ContainerSpec:
    from .runspec import build_spec   # start-up: runspec imports profiles (pydantic)
    image = resolve_image(engine, profile, build=build, on_line=on_line)
    return build_spec(profile, image, name=name, check_devices=check_devices, sets=sets)


def up(engine: Engine, profile: Profile, name: str | None = None, force_recreate: bool = False,
       on_line: Callable[[str], None] | None = None, on_status: Callable[[str], None] | None = None,
       extra_labels: dict[str, str] | None = None, sets: list[str] | None = None) -> UpResult:
    """Converge the container. `extra_labels` (e.g. a cluster's) must match too, or it is
    recreated with them. `sets` (the --set overrides the profile was loaded with) are kept in a
    label of a container this call creates (not compared: they are in the profile already)."""
    from .hostcheck import check_spec, raise_first   # start-up: hostcheck imports runspec (pydantic)
    from .runspec import build_spec, default_name   # start-up: runspec imports profiles (pydantic)
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
            spec = plan(profile, name, engine, build=False, check_devices=False, sets=sets)
            if spec.image.endswith("<built-at-up>") or not engine.image_exists(spec.image):
                spec = plan(profile, name, engine, build=True, on_line=on_line, sets=sets)
            spec = labelled(spec)
            if _same_config(existing, spec, extra):
                if existing.running:
                    return UpResult("noop", name, spec, existing.id, "configuration unchanged")
                status(f"starting {name}")
                engine.start(existing.id)
                return UpResult("started", name, spec, existing.id, "was " + existing.status)
        # everything that can refuse is said before anything is built, created or removed:
        # a volume of the workspace's name that is not ours, a stage running in the container
        # a recreate would kill, what the host lacks
        pure = build_spec(profile, profile.image, name=name, check_devices=False)
        if pure.workspace_volume:
            check_workspace_volume(engine, pure.workspace_volume, name, existing)
        if existing is not None:
            refuse_busy(engine, name, "recreating it")
        raise_first(check_spec(engine, build_spec(profile, profile.image, name=name),
                               probes=False), profile.name)
        spec = labelled(plan(profile, name, engine, build=True, on_line=on_line, sets=sets))
        raise_first(check_spec(engine, spec), profile.name)
        action = "created"
        reason = ""
        if existing is not None:
            reason = "forced" if force_recreate else "configuration changed"
            refuse_busy(engine, name, "recreating it")    # again: the build may have taken long
            status(f"recreating {name} ({reason}); the workspace volume is kept")
            engine.remove(existing.id, force=True)     # that container, not whatever has its name
            action = "recreated"
        status(f"creating {name} from {spec.image}")
        try:
            cid = engine.create_and_start(spec)
        except EngineError as exc:
            if "already in use" not in exc.message:
                raise
            # another containerctl (another home) created it between our look and our create
            return _converged(engine, name, spec, extra, status)
        return UpResult(action, name, spec, cid, reason)


def _same_config(c: ContainerInfo, spec: ContainerSpec, extra: dict[str, str]) -> bool:
    return c.labels.get(L.CONFIG_HASH) == spec.config_hash and \
        all(c.labels.get(k) == v for k, v in extra.items())


def _converged(engine: Engine, name: str, spec: ContainerSpec, extra: dict[str, str],
               status: Callable[[str], None]) -> UpResult:
    """Our create lost the race for the name: the winner's container is left alone. Same
    configuration: converged (exit 0), once the winner started it; else refused (exit 2)."""
    t0 = time.monotonic()
    while True:
        c = engine.find(name)
        if c is None and time.monotonic() - t0 < 15:
            time.sleep(0.2)     # the winner's create holds the name before it can be inspected
            continue
        if c is None or not L.is_managed(c.labels) or not _same_config(c, spec, extra):
            what = "another program" if c is not None and not L.is_managed(c.labels) else \
                "another containerctl command" + (" with another configuration" if c else "")
            raise UsageError(f"container {name} was created by {what} at the same time; this "
                             "command left it alone and changed nothing",
                             "run the command again once the other one finished "
                             "(`containerctl ps` shows the container)")
        if c.running or time.monotonic() - t0 > 30:
            break
        status(f"waiting for {name} to start (created by another containerctl command)")
        time.sleep(0.3)
    return UpResult("noop", name, spec, c.id, "created at the same time by another command")


def check_workspace_volume(engine: Engine, vol: str, name: str,
                           existing: ContainerInfo | None) -> None:
    """Refuse (exit 2) a volume of the workspace volume's name that containerctl did not make
    for this container: it is never mounted, emptied or deleted."""
    labels = engine.volume_labels(vol)
    if labels is None:
        return
    if L.is_managed(labels):
        owner = labels.get(L.VOLUME_OF)
        if owner and owner != name:
            raise UsageError(f"volume {vol} was made by containerctl for container {owner}, "
                             f"not {name}; containerctl leaves it alone",
                             "use another container name (--name N)")
        return
    if existing is not None and existing.labels.get(L.WORKSPACE_VOLUME) == vol:
        return      # made by the engine for this container by an older containerctl
    raise UsageError(f"volume {vol} exists but was not made by containerctl (it has no "
                     f"{L.MANAGED} label); containerctl will not mount, empty or delete it",
                     "use another container name (--name N), or move the volume's data "
                     f"elsewhere and remove it yourself (`docker volume rm {vol}`)")


def own_volume(engine: Engine, vol: str, name: str, c: ContainerInfo | None) -> bool | None:
    """Whether `down --volumes` may delete `vol`: None when it does not exist."""
    labels = engine.volume_labels(vol)
    if labels is None:
        return None
    if L.is_managed(labels):
        return labels.get(L.VOLUME_OF) in (None, name)
    return c is not None and c.labels.get(L.WORKSPACE_VOLUME) == vol   # an older containerctl's


def refuse_busy(engine: Engine, name: str, doing: str) -> None:
    """UsageError (exit 2) naming who runs a stage in `name` (from the lock held inside the
    container: any home, any machine) — before `doing` would kill it."""
    from .stages.locks import busy_holder   # start-up: uuid, 3 ms on no-op up and status
    holder = busy_holder(engine, name)
    if holder:
        raise UsageError(f"container {name} is busy: {holder}; {doing} would kill it, so "
                         "nothing was changed",
                         "wait for it to finish (or stop it with Ctrl-C where it runs), then "
                         "run the command again")


def remember(profile_arg: str, name: str | None, sets, profile: Profile, res: UpResult) -> None:
    """Record what this `up` was resolved from, for the no-op fast path (upcache)."""
    from .profiles import input_files   # start-up: pydantic
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
        c = engine.find(name)
        if c is not None:
            _refuse_unmanaged(c)
        vol = c.labels.get(L.WORKSPACE_VOLUME) if c is not None else None
        own = None
        if volumes:
            # the container may have gone earlier (`down` without --volumes): its workspace
            # volume can still be asked for, by the name containerctl gave it
            from .runspec import workspace_volume_name   # start-up: runspec imports profiles (pydantic)
            vol = vol or workspace_volume_name(name)
            own = own_volume(engine, vol, name, c)
            if own is False:       # refused before anything is removed
                raise UsageError(f"volume {vol} was not made by containerctl for {name}; "
                                 "containerctl never deletes it" +
                                 ("" if c is None else ", so nothing was removed"),
                                 f"run `containerctl down --name {name}` without --volumes, "
                                 f"and remove the volume yourself if it is yours "
                                 f"(`docker volume rm {vol}`)")
            if c is None and own:
                engine.remove_volume(vol)
                return [f"volume {vol}"]
        c = require_managed(engine, name)
        refuse_busy(engine, name, "removing it")
        engine.remove(c.id, force=True)
        removed.append(name)
        if volumes and vol and own:
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
        from .profiles import load_profile   # start-up: pydantic
        from .runspec import default_name   # start-up: runspec imports profiles (pydantic)
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
    if not L.is_managed(c.labels):
        raise UsageError(f"container {c.name} exists but was not created by containerctl "
                         f"(it has no {L.MANAGED} label); containerctl leaves it alone",
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
                         f"{c.labels.get(L.PROFILE, 'P')}")
    return c


# --------------------------------------------------------------------------------------------
# settings kept with the container: what it was brought up with (labels) and last run with
# (a file inside it), read back by any later command on it, from any home

LAST_RUN_FILE = "/var/tmp/containerctl/last-run.json"


@dataclass
class Kept:
    profile: str | None        # what to load: the profile's file when known, else its name
    profile_name: str | None
    sets: list[str]
    origin: str                # "last run (run …)" | "creation"
    run_id: str | None = None


def set_key(expr: str) -> str:
    return str(expr).split("=", 1)[0].rstrip("+").strip()


class Prefetch:
    """LAST_RUN_FILE of container `name`, read in a thread while the command imports and loads
    what it needs: the engine's archive call costs about what an exec costs (dockerd spawns a
    process for it), so `exec-stage` starts it first and waits for it only when it needs it."""

    def __init__(self, engine: Engine, name: str):
        self.name = name
        self._box: dict = {}
        self._t = threading.Thread(target=self._read, args=(engine,), daemon=True)
        self._t.start()

    def _read(self, engine: Engine) -> None:
        try:
            self._box["raw"] = engine.read_file(self.name, LAST_RUN_FILE)
        except BaseException as exc:  # noqa: BLE001 - given to the reader
            self._box["error"] = exc

    def result(self) -> bytes | None:
        self._t.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box.get("raw")


def kept_settings(engine: Engine, c: ContainerInfo, prefetch: Prefetch | None = None) -> Kept:
    """The container's settings: its last `run`'s (LAST_RUN_FILE, gone with a recreate) or,
    without one, those it was created with (labels). One engine round trip, no exec."""
    try:
        raw = prefetch.result() if prefetch is not None and prefetch.name in (c.name, c.id) \
            else engine.read_file(c.id, LAST_RUN_FILE)
        d = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError, EngineError):
        d = None
    if isinstance(d, dict) and isinstance(d.get("sets"), list) and \
            all(isinstance(x, str) for x in d["sets"]) and isinstance(d.get("profile"), str):
        rid = d.get("run_id") if isinstance(d.get("run_id"), str) else None
        return Kept(d.get("profile_file") or d["profile"], d["profile"], list(d["sets"]),
                    f"last run (run {rid})" if rid else "last run", rid)
    try:
        sets = json.loads(c.labels.get(L.SETS) or "[]")
    except ValueError:
        sets = []
    if not isinstance(sets, list) or not all(isinstance(x, str) for x in sets):
        sets = []
    return Kept(c.labels.get(L.PROFILE_FILE) or c.labels.get(L.PROFILE),
                c.labels.get(L.PROFILE), sets, "creation")


def merge_sets(kept: list[str], given: list[str] | None) -> tuple[list[str], list[str]]:
    """(effective, inherited): the container's overrides whose key the command does not give,
    then the command's own (which win)."""
    keys = {set_key(x) for x in given or []}
    inherited = [x for x in kept if set_key(x) not in keys]
    return inherited + list(given or []), inherited


def _value_of(profile, key: str) -> str:
    obj = profile
    for part in key.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part)
    return str(obj)


def settings_profile(engine: Engine, c: ContainerInfo, profile_arg: str | None,
                     sets: list[str] | None, load: Callable, say: Callable[[str], None],
                     kept: Kept | None = None, prefetch: Prefetch | None = None
                     ) -> tuple[Profile, list[str]]:
    """The profile a command on container `c` runs with, and the --set list that made it: the
    container's kept settings, with the command's own --set (and --profile, when it names
    another profile: then nothing is inherited) on top. One line through `say` when the
    container's settings differ from what the command was given."""
    kept = kept or kept_settings(engine, c, prefetch)
    given = list(sets or [])
    if profile_arg is not None:
        p = load(profile_arg, given or None)
        if kept.profile_name and p.name != kept.profile_name:
            say(f"note: {c.name} was {'last run' if kept.run_id else 'brought up'} with "
                f"profile {kept.profile_name}; using profile {p.name} as asked")
            return p, given
    eff, inherited = merge_sets(kept.sets, given)
    if profile_arg is None:
        target = kept.profile
        if not target:
            raise UsageError(f"container {c.name} does not say which profile it was made from",
                             "name it: --profile P")
        try:
            p = load(target, eff or None)
        except NotFound:
            if not kept.profile_name or kept.profile_name == target:
                raise
            p = load(kept.profile_name, eff or None)   # its file is not on this machine
    elif inherited:
        p = load(profile_arg, eff)
    if inherited:
        try:
            base = load(profile_arg or kept.profile, None)
            fixes = " ".join(f"--set {set_key(x)}={_value_of(base, set_key(x))}"
                             for x in inherited)
        except Exception:
            fixes = " ".join(f"--set {set_key(x)}=VALUE" for x in inherited)
        say(f"using {', '.join(inherited)} from this container's {kept.origin}: pass {fixes} "
            "to override")
    return p, eff


def record_last_run(engine: Engine, container: str, profile: Profile, sets: list[str],
                    run_id: str) -> None:
    """Write LAST_RUN_FILE in the container (atomically: a rename inside it)."""
    from .stages.state import now
    data = json.dumps({"schema": "containerctl.last-run/1", "profile": profile.name,
                       "profile_file": profile.source_file, "sets": list(sets),
                       "run_id": run_id, "at": now(), "host": socket.gethostname(),
                       "home": str(paths.home())})
    d = LAST_RUN_FILE.rsplit("/", 1)[0]
    code, out = engine.exec_capture(container, [
        "sh", "-c", f'mkdir -p {d} && printf %s "$CCTL_LAST_RUN" > {LAST_RUN_FILE}.tmp && '
                    f'mv -f {LAST_RUN_FILE}.tmp {LAST_RUN_FILE}'], env={"CCTL_LAST_RUN": data})
    if code != 0:
        raise EngineError(f"could not record this run's settings in {container}: "
                          f"{out.strip()[:200]}", f"check that {d} is writable in the container")


def describe_settings(engine: Engine, info: dict, prefetch: Prefetch | None = None) -> dict:
    """The kept settings of an inspected container, for `status`."""
    c = ContainerInfo(id=info["Id"], name=info["Name"].lstrip("/"),
                      status=info["State"]["Status"], image=info["Config"]["Image"],
                      labels=info["Config"].get("Labels") or {})
    k = kept_settings(engine, c, prefetch)
    return {"profile": k.profile_name, "profile_file": k.profile, "sets": k.sets,
            "from": k.origin, "run_id": k.run_id}


def run_settings(engine: Engine, profile_arg: str | None, name: str | None,
                 sets: list[str] | None, say: Callable[[str], None]) -> tuple[Profile, list[str]]:
    """`run`'s profile and --set list: those given, on top of the settings its container (when
    it exists) was last run or brought up with (settings_profile)."""
    from .profiles import load_profile   # start-up: pydantic
    from .runspec import default_name   # start-up: runspec imports profiles (pydantic)
    if name is None:
        p0 = load_profile(profile_arg or "cpu-selftest", sets)
        target = check_name(default_name(p0), f"container name from profile {p0.name}")
    else:
        p0, target = None, check_name(name, "container name (--name)")
    c = engine.find(target)
    if c is None or not L.is_managed(c.labels):      # `up` creates it, or refuses it
        return (p0 or load_profile(profile_arg or "cpu-selftest", sets)), list(sets or [])
    if profile_arg is None and name is None:
        profile_arg = None      # the default profile's container: its own settings decide
    return settings_profile(engine, c, profile_arg, sets, load_profile, say)


def would_recreate(engine: Engine, profile: Profile, name: str | None,
                   sets: list[str] | None = None) -> ContainerInfo | None:
    """The running container `up` would recreate (its config hash known to differ from the
    profile's), else None — so that a command can ask what would refuse it after the recreate
    before the recreate. None when that cannot be known without building an image."""
    from .runspec import default_name   # start-up: runspec imports profiles (pydantic)
    try:
        target = check_name(name, "container name") if name is not None else \
            check_name(default_name(profile), "container name")
        c = engine.find(target)
        if c is None or not c.running or not L.is_managed(c.labels):
            return None
        spec = plan(profile, target, engine, build=False, check_devices=False, sets=sets)
    except ContainerctlError:
        return None     # `up` says what is wrong
    if spec.image.endswith("<built-at-up>"):
        return None
    # the tag is the image's content hash: one not built yet is the tag `up` will build, so
    # the config hash is known either way
    return c if c.labels.get(L.CONFIG_HASH) != spec.config_hash else None
