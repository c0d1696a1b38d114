"""The same MPICH at the same path on every host (runbook §4.1(3)): copied from the PyPI `mpich`
wheel (`mpich_install: wheel`, downloaded once on this machine and cached) where it is missing or
another version, or only checked (`mpich_install: image`). Hosts are checked and filled at once."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

from ..errors import HostError, NotFound
from .inventory import ClusterOpts, Host
from .parallel import each, since


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "containerctl"


def extract_wheel_data(wheel: Path, root: Path) -> None:
    """A wheel's `<name>.data/data/` tree (bin/, include/, lib/) into root, modes kept."""
    with zipfile.ZipFile(wheel) as z:
        n = 0
        for info in z.infolist():
            parts = info.filename.split("/")
            if len(parts) < 3 or not parts[0].endswith(".data") or parts[1] != "data" \
                    or info.is_dir():
                continue
            rel = Path(*parts[2:])
            if rel.is_absolute() or ".." in rel.parts:
                continue
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(z.read(info))
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(dst, mode or 0o644)
            n += 1
    if not n:
        raise HostError(f"{wheel.name} has no .data/data tree (not an MPICH wheel?)",
                        "give the PyPI `mpich` wheel")


def installed_version(h: Host, home: str) -> str:
    """The MPICH version at `home` in the host's container ('' when there is none)."""
    q = shlex.quote(home)
    code, out = h.engine.exec_capture(h.container, ["bash", "-c",
                                      f"[ -x {q}/bin/mpirun ] && [ -f {q}/include/mpi.h ]"
                                      f" && {q}/bin/mpichversion 2>/dev/null"])
    for ln in out.splitlines():
        if ln.startswith("MPICH Version:"):
            return ln.split(":", 1)[1].strip()
    return ""


MPICH_MARKER = ".containerctl-mpich"     # in mpi_home when containerctl copied MPICH there
# exit 0: mpi_home is absent, empty or containerctl's (marker); 3: someone else's files
_OURS = r'''h=$1
[ -L "$h" ] && exit 3
[ -e "$h" ] || exit 0
[ -d "$h" ] || exit 3
[ -z "$(ls -A -- "$h" 2>/dev/null | head -n 1)" ] && exit 0
[ -f "$h/.containerctl-mpich" ] && [ ! -L "$h/.containerctl-mpich" ] && exit 0
exit 3'''
_CLEAR = r'''h=$1
[ -L "$h" ] && exit 3
if [ -e "$h" ] && [ -n "$(ls -A -- "$h" 2>/dev/null | head -n 1)" ]; then
  [ -d "$h" ] && [ -f "$h/.containerctl-mpich" ] && [ ! -L "$h/.containerctl-mpich" ] || exit 3
  rm -rf -- "$h" || exit 5
fi
mkdir -p -- "$2"'''


def _mpich_home_ours(h: Host, home: str, ver: str, c: ClusterOpts) -> None:
    """HostError (exit 2) when mpi_home holds files containerctl did not put there: they are
    never removed to make room for the wheel's MPICH."""
    if h.engine.exec(h.container, ["sh", "-c", _OURS, "ours", home]) == 0:
        return
    have = f"MPICH {ver}" if ver else "no MPICH"
    raise HostError(f"host {h.name}: cluster.mpi_home {home} in {h.container} holds files "
                    f"containerctl did not put there ({have}, no {MPICH_MARKER} marker): it "
                    f"never removes them to copy MPICH {c.mpich_version} in",
                    f"set cluster.mpi_home to a new directory (e.g. {home}-cctl), or "
                    "`mpich_install: image` if that MPICH is the one to use", exit_code=2)


def wheel_for(c: ClusterOpts, source_file: str | None, arch: str,
              say: Callable[[str], None]) -> Path:
    """cluster.mpich_wheel, or the cached `mpich==<version>` wheel for `arch` (pip download)."""
    if c.mpich_wheel:
        p = Path(c.mpich_wheel).expanduser()
        if not p.is_absolute() and source_file:
            p = Path(source_file).parent / p
        if not p.is_file():
            raise NotFound(f"cluster.mpich_wheel {p} does not exist", "fix the path")
        return p
    d = cache_dir() / "mpich"
    d.mkdir(parents=True, exist_ok=True)
    have = sorted(d.glob(f"mpich-{c.mpich_version}-*{arch}*.whl"))
    if have:
        return have[0]
    say(f"downloading the mpich=={c.mpich_version} wheel ({arch}) with pip")
    cmd = [sys.executable, "-m", "pip", "download", f"mpich=={c.mpich_version}", "--no-deps",
           "--only-binary=:all:", "--platform", f"manylinux_2_28_{arch}", "-d", str(d), "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    have = sorted(d.glob(f"mpich-{c.mpich_version}-*{arch}*.whl"))
    if r.returncode != 0 or not have:
        tail = [ln for ln in (r.stderr or r.stdout).splitlines() if "ERROR" in ln][-1:]
        raise HostError(f"could not download mpich=={c.mpich_version} for {arch} with pip"
                        f"{': ' + tail[0] if tail else ''}",
                        "download the wheel where PyPI is reachable and set "
                        "cluster.mpich_wheel: PATH, or use `mpich_install: image`")
    return have[0]


def ensure(hosts: list[Host], c: ClusterOpts, source_file: str | None,
           say: Callable[[str, str], None], line: Callable[[str], None]) -> dict[str, str]:
    """Every host's MPICH version at c.mpi_home, installing from the wheel where needed.
    Different versions across hosts are an error."""
    home = c.mpi_home.rstrip("/")

    def look(h: Host) -> tuple[str, str]:
        ver = installed_version(h, home)
        arch = ""
        if ver != c.mpich_version and c.mpich_install == "wheel":
            _mpich_home_ours(h, home, ver, c)     # refused before any host is changed
            _code, arch = h.engine.exec_capture(h.container, ["uname", "-m"])
        return ver, arch.strip() or "x86_64"
    seen = dict(zip((h.name for h in hosts), each(hosts, look, what="checking MPICH")))
    need = [h for h in hosts if seen[h.name][0] != c.mpich_version and c.mpich_install == "wheel"]
    with tempfile.TemporaryDirectory(prefix="cctl-mpich-") as tmp:
        roots: dict[str, Path] = {}
        for arch in dict.fromkeys(seen[h.name][1] for h in need):   # one wheel per arch
            wheel = wheel_for(c, source_file, arch, line)
            roots[arch] = Path(tmp) / arch / home.rsplit("/", 1)[1]
            extract_wheel_data(wheel, roots[arch])
            line(f"MPICH {c.mpich_version} from {wheel.name} for {arch}")

        def install(h: Host) -> None:
            t0 = time.monotonic()
            parent, base = home.rsplit("/", 1)
            # only a directory containerctl filled (its marker) is removed, checked again in
            # the shell that removes it
            if h.engine.exec(h.container, ["sh", "-c", _CLEAR, "clear", home, parent or "/"]):
                _mpich_home_ours(h, home, seen[h.name][0], c)
                raise HostError(f"host {h.name}: could not clear {home} in {h.container}",
                                "check the container's filesystem")
            h.engine.put_dir(h.container, roots[seen[h.name][1]], parent or "/", arcname=base)
            h.engine.put_file(h.container, home, MPICH_MARKER, f"{c.mpich_version}\n".encode())
            ver = installed_version(h, home)
            seen[h.name] = (ver, seen[h.name][1])
            say(h.name, f"MPICH {ver or '?'} copied to {home} {since(t0)}")
        each(need, install, what="copying MPICH")
    found: dict[str, str] = {}
    for h in hosts:
        ver = seen[h.name][0]
        if not ver:
            raise HostError(f"host {h.name}: no MPICH at {c.mpi_home} in {h.container}",
                            "set cluster.mpi_home to where the image has MPICH, or "
                            "`mpich_install: wheel`")
        h.mpich = ver
        found[h.name] = ver
    if len(set(found.values())) > 1:
        raise HostError("the hosts run different MPICH versions: " +
                        ", ".join(f"{k} {v}" for k, v in found.items()),
                        "every host needs the same MPICH (runbook §4): set `mpich_install: "
                        "wheel` or fix the images")
    line("MPICH " + next(iter(found.values()), "?") + f" at {c.mpi_home} on " + ", ".join(found))
    return found
