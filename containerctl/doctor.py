"""`containerctl doctor`, `profile detect` and `profile new`.

doctor: every check that decides whether a profile can run on this host, each a
hostcheck.Finding (pass | warn | fail, detail, fix). Host checks read the machine; engine checks
ask the engine; the risky options (privileged, memlock, --gpus) are probed fresh with a throwaway
container, so the table says what the engine does today, not what it once did.

detect: which built-in profile fits the devices in /dev and the vendor tools on PATH (both
injectable for tests).

new_profile: a starter site profile that `extends:` another, validated by loading it.
"""
from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional

from . import paths
from .engine import START_HINT, explain_refusal, get_engine, host_is_local
from .errors import ContainerctlError, UsageError
from .hostcheck import Finding, dockerd_memlock_hard, gpu_runtime_available, probe
from .lifecycle import is_image_spec, resolve_image
from .profiles import Profile, find_profile_file, host_mount_warnings, load_profile, parse_ulimit
from .runspec import expand_devices
from .sizes import GiB, approx_size, parse_size

VENDOR_TOOLS = ["nvidia-smi", "xpu-smi", "mx-smi", "cnmon", "npu-smi", "ixsmi", "mthreads-gmi",
                "hy-smi", "rocm-smi"]


# ---------------------------------------------------------------------------------------------
# doctor

def _mem_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _free(path: str | Path) -> int | None:
    try:
        return shutil.disk_usage(str(path)).free
    except OSError:
        return None


def _space_finding(name: str, what: str, path: str | Path, warn_below: int, fail_below: int,
                   fix: str) -> Finding:
    free = _free(path)
    if free is None:
        return Finding(name, "warn", f"cannot read the free space of {what} ({path})",
                       "check that the path exists and is readable")
    detail = f"{approx_size(free)} free in {what} ({path})"
    if free < fail_below:
        return Finding(name, "fail", detail, fix)
    if free < warn_below:
        return Finding(name, "warn", detail + f"; under {approx_size(warn_below)}", fix)
    return Finding(name, "pass", detail)


def _engine_finding(engine_factory) -> tuple[object | None, Finding]:
    try:
        engine = engine_factory()
        ver = engine.version()
    except ContainerctlError as exc:
        return None, Finding("engine", "fail", exc.message, exc.hint or START_HINT)
    server = ver.get("Version", "?")
    api = ver.get("ApiVersion", "?")
    detail = f"Docker {server} (API {api}, {ver.get('Os', '?')}/{ver.get('Arch', '?')}) at " \
             f"{engine.base_url}"
    try:
        api_t = tuple(int(x) for x in str(api).split(".")[:2])
    except ValueError:
        api_t = (0, 0)
    if api_t < (1, 40):
        return engine, Finding("engine", "warn", detail + "; API older than 1.40 (Docker 19.03) "
                               "has no device requests (--gpus)", "upgrade the Docker engine")
    return engine, Finding("engine", "pass", detail)


def _storage_finding(engine) -> Finding:
    info = engine.info()
    driver = info.get("Driver", "?")
    root = info.get("DockerRootDir", "")
    fix = "free space (`docker system prune`, `docker image prune`) or move Docker's data-root"
    if not host_is_local(engine) or not root or not os.path.exists(root):
        return Finding("storage", "pass" if driver != "vfs" else "warn",
                       f"driver {driver}; root dir {root or '?'} not readable from here "
                       "(remote engine or another mount namespace)",
                       "" if driver != "vfs" else "use overlay2 (vfs copies every layer)")
    f = _space_finding("storage", "Docker's root dir", root, 20 * GiB, 5 * GiB, fix)
    f.detail = f"driver {driver}; " + f.detail
    if driver == "vfs" and f.status == "pass":
        f.status, f.fix = "warn", "use the overlay2 storage driver (vfs copies every layer)"
    return f


def _probe_images(engine, profile: Profile | None) -> list[tuple[str, str]]:
    """Images to probe with, best first: the profile's when it is on the host, then the local
    ones, smallest first (they start fastest)."""
    out = []
    if profile is not None:
        ref = _profile_image_ref(engine, profile)
        if ref and engine.image_exists(ref):
            out.append((ref, f"the profile's image {ref}"))
    try:
        imgs = engine.images()
    except ContainerctlError:
        imgs = []
    tagged = sorted((i.get("Size") or 0, t) for i in imgs for t in (i.get("RepoTags") or [])
                    if t and t != "<none>:<none>")
    out += [(t, f"local image {t}") for _size, t in tagged if t not in [o[0] for o in out]]
    return out


def _probe_image(engine, profile: Profile | None) -> tuple[str | None, str]:
    found = _probe_images(engine, profile)
    return found[0] if found else (None, "")


def _profile_image_ref(engine, profile: Profile) -> str | None:
    try:
        ref = resolve_image(engine, profile, build=False)
    except ContainerctlError:
        return None
    return None if ref.endswith("<built-at-up>") else ref


def _image_finding(engine, profile: Profile) -> Finding:
    ref = _profile_image_ref(engine, profile)
    if is_image_spec(profile.image):
        if ref and engine.image_exists(ref):
            return Finding("image", "pass", f"built-in image {profile.image} is built ({ref})")
        return Finding("image", "warn", f"built-in image {profile.image} is not built yet; the "
                       "first `up` builds it (minutes)",
                       f"build it now: containerctl image build {profile.image}")
    if engine.image_exists(profile.image):
        return Finding("image", "pass", f"{profile.image} is on this host")
    return Finding("image", "fail", f"image {profile.image} is not on this host (no registry is "
                   "used)", "`docker load -i <tarball>` it, or set `image:` to a built-in image "
                   "(`containerctl image list`)")


def _memlock_finding(engine, profile: Profile | None, image: str | None, fresh: bool) -> Finding:
    want = None
    if profile is not None and "memlock" in profile.container.ulimits:
        want = parse_ulimit("memlock", profile.container.ulimits["memlock"])[1]
    want_s = None if want is None else ("unlimited (-1)" if want == -1 else approx_size(want))
    limit = dockerd_memlock_hard() if engine is None or host_is_local(engine) else None
    probed = ""
    refused = None
    if engine is not None and image:
        ok, _msg = probe(engine, image, "ulimit memlock=-1:-1",
                         {"ulimits": [{"name": "memlock", "soft": -1, "hard": -1}]}, fresh=fresh)
        refused = not ok
        probed = "; a probe with --ulimit memlock=-1 was " + ("refused" if refused else "allowed")
    fix_raise = ("raise dockerd's limit: LimitMEMLOCK=infinity in its systemd unit (or "
                 "`ulimit -l unlimited` before starting dockerd)")
    if limit is None:
        if refused:
            return Finding("memlock", "fail" if want == -1 else "warn",
                           "dockerd's memlock hard limit is unknown here" + probed, fix_raise)
        return Finding("memlock", "pass" if refused is False else "warn",
                       "dockerd's memlock hard limit is not readable from here (remote engine or "
                       "no permission)" + probed,
                       "" if refused is False else "run doctor on the engine's host")
    if limit == -1:
        return Finding("memlock", "pass" if not refused else "warn",
                       "dockerd's memlock hard limit is unlimited" + probed,
                       "" if not refused else "see `containerctl doctor --json` for the probe")
    detail = f"dockerd's memlock hard limit is {approx_size(limit)} ({limit} bytes){probed}"
    if want is not None and (want == -1 or want > limit):
        return Finding("memlock", "fail", f"profile {profile.name} asks memlock {want_s}, but "
                       + detail, fix_raise + f", or `--set container.ulimits.memlock={limit}`")
    if want is not None:
        return Finding("memlock", "warn", detail + f"; the profile asks {want_s}, which fits, "
                       "but RDMA/pinned buffers want unlimited", fix_raise)
    return Finding("memlock", "warn", detail + "; profiles asking memlock=-1 (most accelerator "
                   "profiles) cannot start here", fix_raise)


def _privileged_finding(engine, profile: Profile | None, image: str, fresh: bool) -> Finding:
    ok, msg = probe(engine, image, "privileged", {"privileged": True}, fresh=fresh)
    needs = profile is not None and profile.container.privileged
    if ok:
        return Finding("privileged", "pass", "the engine allows --privileged")
    cause, _fix = explain_refusal(msg)
    detail = f"--privileged is refused: {cause}"
    if profile is not None and not needs:
        detail += f" (profile {profile.name} does not ask for it)"
    # a limit of the host, a failure only for a profile that needs it
    return Finding("privileged", "fail" if needs else "warn", detail,
                   "use a device-mode profile (e.g. kunlunxin-p800-devices) or "
                   "`--set container.privileged=false` with the devices listed in "
                   "container.devices")


def _cap_all_finding(engine, image: str, fresh: bool) -> Finding:
    ok, msg = probe(engine, image, "cap_add=ALL", {"cap_add": ["ALL"]}, fresh=fresh)
    if ok:
        return Finding("cap_add=ALL", "pass", "the engine allows --cap-add ALL")
    cause, _ = explain_refusal(msg)
    return Finding("cap_add=ALL", "fail", f"--cap-add ALL is refused: {cause}",
                   "drop ALL from container.cap_add and list the capabilities needed "
                   "(e.g. `--set container.cap_add=[SYS_PTRACE]`)")


_GPU_REQ = {"device_requests": [{"Driver": "", "Count": -1, "DeviceIDs": None,
                                 "Capabilities": [["gpu"]], "Options": {}}]}


def _gpus_finding(engine, profile: Profile | None, image: str | None, fresh: bool) -> Finding:
    needs = profile is not None and profile.container.gpus is not None
    runtime = gpu_runtime_available(engine)
    ok, msg = (False, "")
    if image:
        ok, msg = probe(engine, image, "gpus", _GPU_REQ, fresh=fresh)
    if ok:
        return Finding("gpus", "pass", "`--gpus all` works (NVIDIA container runtime)")
    if not runtime:
        detail = "`--gpus` does not work: the engine has no NVIDIA container runtime"
    else:
        detail = "the NVIDIA runtime is registered but `--gpus all` was refused" + \
                 (f": {explain_refusal(msg)[0]}" if msg else " (not probed: no image)")
    if profile is not None and not needs:
        detail += f" (profile {profile.name} does not use it)"
    return Finding("gpus", "fail" if needs else "warn", detail,
                   "install nvidia-container-toolkit and register its runtime, or use device "
                   "nodes and driver mounts instead (profile nvidia-h200 does)")


def _devices_findings(profile: Profile) -> list[Finding]:
    c = profile.container
    out = []
    if not c.devices:
        out.append(Finding("devices", "pass", f"profile {profile.name} maps no device nodes" +
                           (" (it mounts /dev or runs privileged)" if c.privileged or any(
                               v.split(":")[1].rstrip("/") == "/dev" for v in c.volumes) else "")))
    else:
        found, problems = expand_devices(c.devices, False)
        missing = [d for d in c.devices if not any(ch in d.split(":")[0] for ch in "*?[")
                   and not os.path.exists(d.split(":")[0])]
        problems += [f"{m.split(':')[0]} does not exist" for m in missing]
        if problems:
            out.append(Finding("devices", "warn" if c.optional_devices else "fail",
                               "; ".join(problems),
                               "load the accelerator driver (`ls /dev`), or pick this host's "
                               "profile: `containerctl profile detect`"))
        else:
            names = [d.split(":")[0] for d in found]
            shown = ", ".join(names[:6]) + (f", … ({len(names)} in all)" if len(names) > 6 else "")
            out.append(Finding("devices", "pass", f"present: {shown}"))
    missing_src = [v.split(":")[0] for v in c.volumes
                   if v.startswith("/") and not os.path.exists(v.split(":")[0])]
    if missing_src:
        out.append(Finding("volumes", "fail", "volume source(s) missing on this host: " +
                           ", ".join(missing_src),
                           "create them, or fix container.volumes (profile or site overlay)"))
    elif c.volumes:
        out.append(Finding("volumes", "pass", f"all {len(c.volumes)} volume source(s) exist"))
    for w in host_mount_warnings(profile):
        out.append(Finding("host mounts", "warn", w, "mount only what the stages need, or set "
                           "container.allow_host_mounts: true in the profile if it is meant"))
    return out


def _vendor_tool_finding(profile: Profile | None, which: Callable[[str], Optional[str]]
                         ) -> Finding:
    present = [t for t in VENDOR_TOOLS if which(t)]
    if profile is not None and profile.vendor_tool:
        path = which(profile.vendor_tool)
        if path:
            return Finding("vendor tool", "pass", f"{profile.vendor_tool} at {path}")
        other = f"; found instead: {', '.join(present)}" if present else ""
        return Finding("vendor tool", "warn", f"{profile.vendor_tool} (platform "
                       f"{profile.platform}) is not on PATH{other}",
                       "install the vendor driver/SDK on the host, or pick this host's profile: "
                       "`containerctl profile detect`")
    if present:
        return Finding("vendor tool", "pass", "on PATH: " + ", ".join(present) +
                       (f" (profile {profile.name} needs none)" if profile is not None else ""))
    if profile is not None:
        return Finding("vendor tool", "pass", f"profile {profile.name} needs no vendor tool; none "
                       "on PATH (" + ", ".join(VENDOR_TOOLS) + ")")
    return Finding("vendor tool", "warn", "no vendor tool on PATH (" + ", ".join(VENDOR_TOOLS) +
                   "): no accelerator driver is installed, or it is not on PATH",
                   "CPU-only hosts use profile cpu-selftest; otherwise install the driver")


def _shm_finding(profile: Profile | None) -> Finding:
    host_shm = None
    try:
        st = os.statvfs("/dev/shm")
        host_shm = st.f_blocks * st.f_frsize
    except OSError:
        pass
    mem = _mem_total()
    host = f"host /dev/shm {approx_size(host_shm)}" if host_shm else "host /dev/shm unreadable"
    if mem:
        host += f", RAM {approx_size(mem)}"
    if profile is None or profile.container.shm_size is None:
        what = "Docker's default 64 MiB" if profile is not None and \
            profile.container.ipc_mode != "host" else None
        if profile is not None and profile.container.ipc_mode == "host":
            return Finding("shm", "pass", f"--ipc=host: the container shares the {host}")
        if what:
            return Finding("shm", "warn", f"profile sets no shm_size: {what} ({host})",
                           "set container.shm_size (NCCL/MPI shared memory wants several GiB)")
        return Finding("shm", "pass", host)
    want = parse_size(profile.container.shm_size, "shm_size")
    detail = f"shm_size {profile.container.shm_size} ({approx_size(want)}); {host}"
    if profile.container.ipc_mode == "host":
        detail += "; --ipc=host shares the host's /dev/shm, so shm_size does not apply"
        if host_shm and host_shm < min(want, 1 * GiB):
            return Finding("shm", "warn", detail, "enlarge the host's /dev/shm "
                           "(mount -o remount,size=…) or drop ipc_mode=host")
        return Finding("shm", "pass", detail)
    if mem and want > mem:
        return Finding("shm", "warn", detail + "; larger than RAM (tmpfs is not reserved, but "
                       "filling it would swap or OOM)",
                       f"lower it: `--set container.shm_size={max(1, mem // GiB // 2)}G` or in a "
                       "site overlay")
    return Finding("shm", "pass", detail)


def _bootstrap_finding(which: Callable[[str], Optional[str]]) -> Finding:
    tools = [t for t in ("mmdebstrap", "debootstrap") if which(t)]
    if tools:
        return Finding("bootstrap", "pass", "offline base bootstrap possible: " +
                       ", ".join(f"{t} ({which(t)})" for t in tools))
    return Finding("bootstrap", "warn", "neither mmdebstrap nor debootstrap is installed: a base "
                   "image cannot be bootstrapped here (only `docker load`ed ones can be used)",
                   "apt-get install mmdebstrap (or debootstrap), or load a base image tarball")


def run_doctor(engine_factory: Callable[[], object], profile: Profile | None,
               fresh: bool = True, which: Callable[[str], Optional[str]] = shutil.which
               ) -> list[Finding]:
    """Every check, in table order. Engine checks are skipped (said as such) if the engine does
    not answer; host checks run regardless."""
    findings: list[Finding] = []
    engine, f = _engine_finding(engine_factory)
    findings.append(f)
    image = None
    if engine is not None:
        try:
            findings.append(_storage_finding(engine))
        except ContainerctlError as exc:
            findings.append(Finding("storage", "warn", exc.message, exc.hint or ""))
        candidates = _probe_images(engine, profile)
        tried = []
        for ref, what in candidates[:3]:
            # a plain container must start from it, else a refusal would say nothing
            ok, msg = probe(engine, ref, f"baseline {ref}", {}, fresh=fresh)
            if ok:
                image = ref
                break
            tried.append(f"{what}: {msg.strip()[:100]}")
        if candidates and image is None:
            findings.append(Finding("probes", "warn", "no plain container starts from the local "
                                    "images tried (" + "; ".join(tried) + "), so privileged, "
                                    "memlock and --gpus were not probed",
                                    "give the probes a working image: `containerctl image "
                                    "build cpu-selftest`"))
        elif not candidates:
            findings.append(Finding("probes", "warn", "no local image to probe the engine with: "
                                    "privileged, memlock and --gpus were not tried",
                                    "probes need an image: `containerctl image build "
                                    "cpu-selftest` (or `docker load` any image), then rerun"))
    findings.append(_memlock_finding(engine, profile, image, fresh))
    if engine is not None and image:
        findings.append(_privileged_finding(engine, profile, image, fresh))
        if profile is not None and "ALL" in [c.upper() for c in profile.container.cap_add]:
            findings.append(_cap_all_finding(engine, image, fresh))
    if engine is not None:
        try:
            findings.append(_gpus_finding(engine, profile, image, fresh))
        except ContainerctlError as exc:
            findings.append(Finding("gpus", "warn", exc.message, exc.hint or ""))
    if profile is not None:
        findings += _devices_findings(profile)
    findings.append(_vendor_tool_finding(profile, which))
    findings.append(_shm_finding(profile))
    findings.append(_space_finding("disk", "the results dir", _existing_parent(paths.home()),
                                   5 * GiB, 1 * GiB, "free space there, or point "
                                   "CONTAINERCTL_HOME at a larger disk"))
    if profile is not None and engine is not None:
        try:
            findings.append(_image_finding(engine, profile))
        except ContainerctlError as exc:
            findings.append(Finding("image", "warn", exc.message, exc.hint or ""))
    findings.append(_bootstrap_finding(which))
    if profile is None:
        try:
            priv = next((f.status == "pass" for f in findings if f.name == "privileged"), None)
            gpus = next((f.status == "pass" for f in findings if f.name == "gpus"), None)
            d = detect(which=which, gpu_runtime=lambda: gpus, privileged_ok=lambda: priv)
            findings.append(Finding("profile", "pass", f"no --profile given; this host looks like "
                                    f"{d['profile']} ({d['reason']})",
                                    f"check it: containerctl doctor --profile {d['profile']}"))
        except ContainerctlError:
            pass
    return findings


def _existing_parent(p: Path) -> Path:
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


# ---------------------------------------------------------------------------------------------
# detect

# vendor → (device-name patterns, vendor tool, profile)
_SIGNS: list[tuple[str, list[str], str, str]] = [
    ("nvidia", [r"nvidia\d+", r"nvidiactl", r"nvidia-uvm"], "nvidia-smi", "nvidia-h200"),
    ("kunlunxin", [r"xpu\d+", r"xpuctrl"], "xpu-smi", "kunlunxin-p800"),
    ("metax", [r"mxcd"], "mx-smi", "metax-c550"),
    ("cambricon", [r"cambricon_ctl", r"cambricon_dev\d+"], "cnmon", "cambricon-mlu"),
    ("ascend", [r"davinci\d+", r"davinci_manager", r"devmm_svm", r"hisi_hdc"], "npu-smi",
     "ascend-910"),
    ("iluvatar", [r"iluvatar\d+"], "ixsmi", "iluvatar-corex"),
    ("musa", [r"mtgpu.*", r"musa\d*"], "mthreads-gmi", "mthreads-musa"),
    ("du", [r"mkfd"], "hy-smi", "hygon-dcu"),
    ("amd", [], "rocm-smi", "amd-rocm"),
]


def _list_dev() -> list[str]:
    try:
        return sorted(os.listdir("/dev"))
    except OSError:
        return []


def _engine_gpu_runtime() -> bool | None:
    try:
        e = get_engine()
        return gpu_runtime_available(e) if e.ping() else None
    except ContainerctlError:
        return None


def _engine_privileged() -> bool | None:
    """Whether the engine allows --privileged (cached probe; None when it cannot be told)."""
    try:
        e = get_engine()
        if not e.ping():
            return None
        img, _ = _probe_image(e, None)
        if not img:
            return None
        ok, _msg = probe(e, img, "privileged", {"privileged": True}, fresh=False)
        return ok
    except ContainerctlError:
        return None


def detect(devs: Iterable[str] | None = None,
           which: Callable[[str], Optional[str]] = shutil.which,
           gpu_runtime: Callable[[], Optional[bool]] | None = None,
           privileged_ok: Callable[[], Optional[bool]] | None = None) -> dict:
    """Suggest a built-in profile from /dev entries (`devs`: names under /dev) and vendor tools
    (`which`). For NVIDIA and Kunlunxin the engine decides between two profiles: `gpu_runtime()`
    (does `--gpus` work) and `privileged_ok()` (is --privileged allowed); each may return None
    for "cannot tell". Returns {"profile", "reason", "candidates": [{profile, platform,
    evidence, score}]}, best first."""
    names = set(_list_dev() if devs is None else (d.removeprefix("/dev/") for d in devs))
    cands = []
    for platform, pats, tool, prof in _SIGNS:
        evidence = []
        for pat in pats:
            hits = sorted(n for n in names if re.fullmatch(pat, n))
            if hits:
                evidence.append("/dev/" + (hits[0] if len(hits) == 1 else
                                           f"{hits[0]}…({len(hits)})"))
        score = 2 * len(evidence)
        if platform in ("amd", "du") and "kfd" in names and "dri" in names:
            # kfd+dri alone reads as AMD; Hygon DCUs show it too, and /dev/mkfd says Hygon
            evidence.append("/dev/kfd+/dev/dri")
            score += 2 if platform == "amd" and "mkfd" not in names else 1
        if which(tool):
            evidence.append(f"{tool} on PATH")
            score += 3
        if evidence:
            cands.append({"profile": prof, "platform": platform, "evidence": evidence,
                          "score": score})
    cands.sort(key=lambda c: -c["score"])
    if not cands:
        return {"profile": "cpu-selftest", "reason": "no accelerator device nodes or vendor "
                "tools found", "candidates": []}
    best = cands[0]
    reason = ", ".join(best["evidence"])
    if best["platform"] == "nvidia":
        rt = (gpu_runtime or _engine_gpu_runtime)()
        if rt:
            best["profile"] = "nvidia-a800"
            reason += "; `--gpus` works (NVIDIA container runtime)"
        else:
            reason += ("; no NVIDIA container runtime, so device nodes + driver mounts"
                       if rt is False else "; engine not reachable, assuming no NVIDIA runtime")
            cands.insert(1, {"profile": "nvidia-a800", "platform": "nvidia",
                             "evidence": ["needs the NVIDIA runtime (`--gpus`)"], "score": 0})
    elif best["platform"] == "kunlunxin":
        priv = (privileged_ok or _engine_privileged)()
        if priv is False:
            best["profile"] = "kunlunxin-p800-devices"
            reason += "; the engine refuses --privileged, so explicit device nodes"
            cands.insert(1, {"profile": "kunlunxin-p800", "platform": "kunlunxin",
                             "evidence": ["needs --privileged"], "score": 0})
        else:
            reason += ("; --privileged allowed" if priv else
                       "; could not probe --privileged (if refused: kunlunxin-p800-devices)")
            cands.insert(1, {"profile": "kunlunxin-p800-devices", "platform": "kunlunxin",
                             "evidence": ["for engines that refuse --privileged"], "score": 0})
    if len(cands) > 1 and cands[1]["score"] == best["score"] and cands[1]["score"] > 0:
        reason += f" (also seen: {cands[1]['platform']})"
    return {"profile": best["profile"], "reason": reason, "candidates": cands}


# ---------------------------------------------------------------------------------------------
# profile new

def _starter(name: str, base: str, basep: Profile | None, user: str) -> str:
    c = basep.container if basep else None
    fx = basep.flagcx if basep else None
    shm = c.shm_size if c and c.shm_size is not None else "64G"
    vis_env = fx.visible_devices_env if fx and fx.visible_devices_env else "CUDA_VISIBLE_DEVICES"
    vis = fx.visible_devices if fx and fx.visible_devices is not None else "0,1"
    return "\n".join([
        f"# Site profile {name}: everything from `{base}` (`containerctl profile show {base}`),",
        "# changed by the keys below. A key replaces the base's value; a key written `key+:`",
        "# appends to the base's list. Uncomment what this site needs (a section header such as",
        "# `container:` together with its keys), then check it with:",
        f"#   containerctl profile show {name}    containerctl doctor --profile {name}",
        f"name: {name}",
        f"extends: {base}",
        f"description: {_yaml_str(base + ' at this site')}",
        "",
        "# container:",
        "#   # site storage, added to the base's volumes (the source must exist on the host):",
        "#   volumes+:",
        f"#     - /nfs/{user}:/workspace",
        f"#   # shared memory (base: {shm}):",
        f"#   shm_size: {shm}",
        "#   env:",
        "#     FLAGCX_SOCKET_IFNAME: eth0",
        "",
        "# flagcx:",
        f"#   # which devices the stages use ({vis_env}; base: {vis!r}):",
        f"#   visible_devices: {_yaml_str(vis)}",
        f"#   nranks: {fx.nranks if fx else 2}",
        "",
    ])


def _yaml_str(s: str) -> str:
    return json.dumps(s)


def new_profile(name: str, base: str, directory: str | os.PathLike | None = None,
                force: bool = False) -> Path:
    """Write <directory or ~/.config/containerctl/profiles>/<name>.yaml extending `base`;
    validate it by loading it; refuse to overwrite without force."""
    if not re.match(r"^[a-z0-9][a-z0-9_.-]*$", name or ""):
        raise UsageError(f"profile name {name!r}: use lowercase letters, digits, '-', '_' or '.'",
                         "e.g. containerctl profile new mysite-a800 --from nvidia-a800")
    base_file = find_profile_file(base)          # NotFound with a suggestion
    ref = base if not (Path(base).suffix in (".yaml", ".yml") or os.sep in base) \
        else str(base_file.resolve())
    if base_file.stem == name and ref == base:
        raise UsageError(f"profile {name} cannot extend itself",
                         "give the new profile another name")
    d = Path(directory).expanduser() if directory else paths.config_dir() / "profiles"
    target = d / f"{name}.yaml"
    if target.exists() and not force:
        raise UsageError(f"{target} already exists", "pass --force to overwrite it, or choose "
                         "another name")
    if d.exists() and not d.is_dir():
        raise UsageError(f"{d} is not a directory", "give --dir an existing or new directory")
    try:
        basep = load_profile(ref, site=False)
    except ContainerctlError as exc:
        raise UsageError(f"base profile {base} does not load: {exc.message}",
                         exc.hint or f"fix it: containerctl profile validate {base}") from None
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = os.environ.get("USER", "me")
    text = _starter(name, ref, basep, re.sub(r"[^A-Za-z0-9_.-]", "", user) or "me")
    with tempfile.TemporaryDirectory(prefix="cctl-new-") as tmp:
        probe_file = Path(tmp) / f"{name}.yaml"
        probe_file.write_text(text, encoding="utf-8")
        load_profile(str(probe_file), site=False)   # the starter itself must be valid
    try:
        paths.atomic_write(target, text)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}",
                         "choose a writable directory with --dir") from None
    return target
