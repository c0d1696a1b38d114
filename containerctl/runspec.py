"""Pure: a validated Profile → the container spec (Engine API create kwargs), its config hash,
and the equivalent `docker run …` line for --dry-run. No Docker calls here; device globs are
expanded against the local /dev (the `expand` function is injectable for tests)."""
from __future__ import annotations

import glob as _glob
import hashlib
import json
import shlex
from dataclasses import dataclass, field
from typing import Callable

from . import __version__
from .errors import HostError
from .names import check_name
from .profiles import Profile, host_mount_warnings, parse_ulimit
from .profiles.devices import visible_devices_env
from .sizes import parse_size

from . import labels as L
from .labels import PREFIX as LABEL  # noqa: F401  (older importers: cluster, runner)


@dataclass
class ContainerSpec:
    name: str
    image: str
    command: list[str]
    labels: dict[str, str]
    env: dict[str, str]
    workdir: str | None
    hostname: str | None
    host_config: dict = field(default_factory=dict)
    run_args: list[str] = field(default_factory=list)   # the docker CLI flags, same content
    warnings: list[str] = field(default_factory=list)
    workspace_volume: str | None = None

    @property
    def config_hash(self) -> str:
        return self.labels[L.CONFIG_HASH]

    def docker_volume_line(self) -> str | None:
        """`docker volume create` for the workspace volume, labelled as `up` makes it (a volume
        `docker run` made by itself has no labels, and `up` refuses such a volume)."""
        if not self.workspace_volume:
            return None
        return " ".join(["docker", "volume", "create", "--label", f"{L.MANAGED}=1", "--label",
                         shlex.quote(f"{L.VOLUME_OF}={self.name}"),
                         shlex.quote(self.workspace_volume)])

    def docker_run_line(self) -> str:
        parts = ["docker", "run", "-itd"] + self.run_args + [self.image] + self.command
        return " ".join(shlex.quote(p) if not p.startswith("--") or " " in p else p for p in parts)


def default_name(profile: Profile) -> str:
    return f"cctl-{profile.name}"


def workspace_volume_name(container_name: str) -> str:
    return f"{container_name}-workspace"


def expand_devices(entries: list[str], optional: bool,
                   expand: Callable[[str], list[str]] | None = None) -> tuple[list[str], list[str]]:
    """/dev/xpu* → every match. Returns (device specs src:dst:rwm, problems)."""
    expand = expand or (lambda pat: sorted(_glob.glob(pat)))
    out, problems = [], []
    for entry in entries:
        src, _, rest = entry.partition(":")
        if any(ch in src for ch in "*?["):
            matches = expand(src)
            if not matches:
                problems.append(f"no device matches {src}")
            for m in matches:
                out.append(f"{m}:{m}:rwm")
        else:
            dst, _, perms = rest.partition(":")
            out.append(f"{src}:{dst or src}:{perms or 'rwm'}")
    if optional:
        return out, []
    return out, problems


def _cap(name: str) -> str:
    """The docker CLI normalises capability names to CAP_X (ALL stays ALL); so do we, so that
    `up` and the printed `docker run` line give the same HostConfig."""
    n = name.upper()
    return n if n == "ALL" or n.startswith("CAP_") else f"CAP_{n}"


def _ulimit_flag(name: str, soft: int, hard: int) -> str:
    return f"{name}={soft}" if soft == hard else f"{name}={soft}:{hard}"


def build_spec(profile: Profile, image_ref: str, name: str | None = None,
               expand: Callable[[str], list[str]] | None = None, check_devices: bool = True,
               sets: list[str] | None = None) -> ContainerSpec:
    """`sets`: the --set overrides `profile` was loaded with, kept in a label (io.containerctl.
    sets, JSON) so that later commands from any home know them; not part of the config hash
    (their effect on the container is in it already)."""
    c = profile.container
    name = check_name(name, "container name (--name)") if name is not None else \
        check_name(default_name(profile), f"container name from profile {profile.name}")
    hc: dict = {}
    args: list[str] = ["--name", name]
    warnings: list[str] = list(host_mount_warnings(profile))

    if c.init:
        hc["init"] = True
        args.append("--init")
    if c.privileged:
        hc["privileged"] = True
        args.append("--privileged")
    if c.network_mode:
        hc["network_mode"] = c.network_mode
        args.append(f"--net={c.network_mode}")
    if c.pid_mode:
        hc["pid_mode"] = c.pid_mode
        args.append(f"--pid={c.pid_mode}")
    if c.ipc_mode:
        hc["ipc_mode"] = c.ipc_mode
        args.append(f"--ipc={c.ipc_mode}")
    if c.cap_add:
        hc["cap_add"] = [_cap(x) for x in c.cap_add]
        args += [f"--cap-add={x}" for x in c.cap_add]
    if c.cap_drop:
        hc["cap_drop"] = [_cap(x) for x in c.cap_drop]
        args += [f"--cap-drop={x}" for x in c.cap_drop]
    for s in c.security_opt:
        hc.setdefault("security_opt", []).append(s)
        args += ["--security-opt", s]
    if c.shm_size is not None:
        hc["shm_size"] = parse_size(c.shm_size, "shm_size")
        args += ["--shm-size", str(c.shm_size)]
    if c.ulimits:
        uls = []
        for k, v in c.ulimits.items():
            soft, hard = parse_ulimit(k, v)
            uls.append({"name": k, "soft": soft, "hard": hard})
            args += ["--ulimit", _ulimit_flag(k, soft, hard)]
        hc["ulimits"] = uls
    if c.group_add:
        hc["group_add"] = list(c.group_add)
        for g in c.group_add:
            args += ["--group-add", g]
    devices, problems = expand_devices(c.devices, c.optional_devices, expand)
    if problems and check_devices:
        raise HostError(f"profile {profile.name}: {problems[0]} on this host",
                        "check the driver is loaded (`ls /dev`), pick the profile for this host "
                        "(`containerctl profile detect`), or set container.optional_devices=true")
    warnings += problems
    if devices:
        hc["devices"] = devices
        for d in devices:
            src, dst, perms = d.split(":")
            args += ["--device", src if (src == dst and perms == "rwm") else d]
    reqs = []
    if c.gpus is not None:
        count = -1 if str(c.gpus) == "all" else int(c.gpus)
        reqs.append({"Driver": "", "Count": count, "DeviceIDs": None,
                     "Capabilities": [["gpu"]], "Options": {}})
        args += ["--gpus", str(c.gpus)]
    if c.cdi_devices:
        reqs.append({"Driver": "cdi", "Count": 0, "DeviceIDs": list(c.cdi_devices),
                     "Capabilities": None, "Options": {}})
        for d in c.cdi_devices:
            args += ["--device", d]
    if reqs:
        hc["device_requests"] = reqs

    binds = []
    targets = set()
    for v in c.volumes:
        parts = v.split(":")
        binds.append(v)   # exactly what `-v` gives the engine
        targets.add(parts[1].rstrip("/") or "/")
        args += ["-v", v]
    ws_vol = None
    if c.workspace and c.workspace.rstrip("/") not in targets:
        ws_vol = check_name(workspace_volume_name(name), "workspace volume name "
                            "(<container name>-workspace)")
        binds.append(f"{ws_vol}:{c.workspace}")
        args += ["-v", f"{ws_vol}:{c.workspace}"]
    if binds:
        hc["binds"] = binds

    env = dict(c.env)
    fx = profile.flagcx
    for k, v in visible_devices_env(fx).items():   # auto: counted when a stage runs
        env.setdefault(k, v)
    env.update({k: v for k, v in fx.env.items() if k not in env})
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    if c.workdir:
        args += ["-w", c.workdir]
    if c.hostname:
        args += ["--hostname", c.hostname]

    labels = {
        L.MANAGED: "1",
        L.PROFILE: profile.name,
        L.NAME: name,
        L.VERSION: __version__,
    }
    if profile.source_file:
        labels[L.PROFILE_FILE] = profile.source_file
    if ws_vol:
        labels[L.WORKSPACE_VOLUME] = ws_vol
    if sets:
        labels[L.SETS] = json.dumps([str(x) for x in sets])
    payload = {"image": image_ref, "command": c.command, "env": env, "workdir": c.workdir,
               "hostname": c.hostname, "host_config": hc, "name": name}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    labels[L.CONFIG_HASH] = digest
    for k in sorted(labels):
        args += ["--label", f"{k}={labels[k]}"]
    return ContainerSpec(name=name, image=image_ref, command=list(c.command), labels=labels,
                         env=env, workdir=c.workdir, hostname=c.hostname, host_config=hc,
                         run_args=args, warnings=warnings, workspace_volume=ws_vol)
