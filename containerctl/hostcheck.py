"""What the host and its engine can do, checked before anything is created.

Static checks read the host (device nodes, dockerd's memlock hard limit, the NVIDIA runtime);
probes start a throwaway container with one risky option (privileged, cap_add ALL, a ulimit) and
remember the answer per engine in the state directory, so a no-op `up` never pays for them.
`containerctl doctor` runs them all fresh.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .engine import Engine, explain_refusal, host_is_local
from .errors import HostError
from .runspec import ContainerSpec
from .upcache import load_checked


@dataclass
class Finding:
    name: str
    status: str  # pass | warn | fail
    detail: str
    fix: str = ""


def dockerd_memlock_hard() -> int | None:
    """The memlock hard limit of the local dockerd (what containers may ask for), or None."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm != "dockerd":
                continue
            for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
                if line.startswith("Max locked memory"):
                    hard = line.split()[4]
                    return -1 if hard == "unlimited" else int(hard)
        except (OSError, ValueError, IndexError):
            continue
    return None


def own_memlock_hard() -> int:
    h = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    return -1 if h == resource.RLIM_INFINITY else h


def gpu_runtime_available(engine: Engine) -> bool:
    info = engine.info()
    runtimes = info.get("Runtimes") or {}
    if "nvidia" in runtimes:
        return True
    if host_is_local(engine) and shutil.which("nvidia-container-cli") \
            and shutil.which("nvidia-container-runtime-hook"):
        return True
    return False


# ---------------------------------------------------------------------------------------------
# probes (cached per engine)

def _cache_file() -> Path:
    return paths.home() / "probes.json"


def _engine_key(engine: Engine) -> str:
    info = engine.info()
    return f"{info.get('ID', '?')}|{info.get('ServerVersion', '?')}|{info.get('KernelVersion', '?')}"


def probe(engine: Engine, image: str, option: str, host_config: dict, fresh: bool = False
          ) -> tuple[bool, str]:
    key = f"{_engine_key(engine)}|{option}"
    f = _cache_file()
    cache = load_checked(f, lambda e: isinstance(e, dict) and isinstance(e.get("ok"), bool)
                         and isinstance(e.get("msg"), str), warn=True)
    if not fresh and key in cache:
        return bool(cache[key]["ok"]), cache[key]["msg"]
    ok, msg = engine.probe(image, host_config)
    cache[key] = {"ok": ok, "msg": msg}
    try:
        paths.atomic_write(f, json.dumps(cache, indent=1))
    except OSError:
        pass
    return ok, msg


def risky_options(spec: ContainerSpec) -> list[tuple[str, dict]]:
    """The options in a spec that hosts are known to refuse, each as a probe host-config."""
    hc = spec.host_config
    out = []
    if hc.get("privileged"):
        out.append(("privileged", {"privileged": True}))
    caps = [c.upper() for c in hc.get("cap_add", [])]
    if "ALL" in caps:
        out.append(("cap_add=ALL", {"cap_add": ["ALL"], "cap_drop": hc.get("cap_drop", [])}))
    for ul in hc.get("ulimits", []):
        if ul["name"] in ("memlock", "nofile", "stack", "nproc"):
            out.append((f"ulimit {ul['name']}={ul['soft']}:{ul['hard']}", {"ulimits": [ul]}))
    return out


_FIXES = {
    "privileged": "use the device-mode settings instead: `--set container.privileged=false` "
                  "(the profile's container.devices then carry the accelerators)",
    "cap_add=ALL": "drop ALL from container.cap_add (e.g. `--set container.cap_add=[SYS_PTRACE]`)",
}


def check_spec(engine: Engine, spec: ContainerSpec, fresh: bool = False, probes: bool = True
               ) -> list[Finding]:
    """Everything the engine would refuse for this spec, without creating the real container."""
    findings: list[Finding] = []
    hc = spec.host_config
    for req in hc.get("device_requests", []):
        if req.get("Capabilities") == [["gpu"]] and not gpu_runtime_available(engine):
            findings.append(Finding(
                "gpus", "fail", "`--gpus` needs the NVIDIA container runtime, which this engine "
                "lacks", "use device nodes and driver library mounts instead (profile "
                "nvidia-h200 shows how), or install nvidia-container-toolkit"))
    if host_is_local(engine):
        for d in hc.get("devices", []):
            src = d.split(":")[0]
            if not os.path.exists(src):
                findings.append(Finding("devices", "fail", f"device {src} does not exist on this "
                                        "host", "load the driver, or pick this host's profile "
                                        "(`containerctl profile detect`)"))
        for b in hc.get("binds", []):
            src = b.split(":")[0]
            if src.startswith("/") and not os.path.exists(src):
                findings.append(Finding("volumes", "fail", f"volume source {src} does not exist "
                                        "on this host", "create it, or fix container.volumes "
                                        "(profile or site overlay)"))
        limit = dockerd_memlock_hard()
        for ul in hc.get("ulimits", []):
            if ul["name"] == "memlock" and limit is not None and limit != -1 and \
                    (ul["hard"] == -1 or ul["hard"] > limit):
                findings.append(Finding(
                    "memlock", "fail", f"memlock {ul['hard']} asked, but dockerd's hard limit "
                    f"is {limit} bytes", "raise dockerd's limit (LimitMEMLOCK=infinity in its "
                    f"unit, or `ulimit -l unlimited` before starting it) or "
                    f"`--set container.ulimits.memlock={limit}`"))
    if findings or not probes:
        return findings
    for option, probe_hc in risky_options(spec):
        ok, msg = probe(engine, spec.image, option, probe_hc, fresh=fresh)
        if not ok:
            cause, fix = explain_refusal(msg)
            findings.append(Finding(option, "fail", f"this engine refuses {option}: "
                                    f"{cause}", _FIXES.get(option, fix)))
    return findings


def raise_first(findings: list[Finding], profile_name: str) -> None:
    for f in findings:
        if f.status == "fail":
            raise HostError(f"cannot start profile {profile_name} here: {f.detail}", f.fix)
