"""The multi-host inventory: the hosts YAML (validated with pydantic; errors name file:line like
profiles do), its hosts resolved to profiles, engines and container names (`Host`), the bounded
reachability check of each host's engine, and the pure text a cluster needs: MPICH/OpenMPI
hostfiles, the ssh client config and known_hosts written into each container, and the warnings an
inventory deserves.

    cluster:
      name: demo                 # containers are cctl_<cluster>_<host> (see container_name)
      ssh_port: 8010             # sshd in every container (the runbook's port)
      mpi: mpich
      mpi_home: /opt/mpich-4.2.3 # the same MPICH at the same path on every host
      mpich_install: wheel       # wheel: containerctl copies MPICH there; image: it is in the image
      mpich_version: 4.2.3
      network: cctl-demo         # optional: a Docker network (hosts on one engine)
      workspace: /workspace
    hosts:
      - name: a800
        address: 10.1.15.233     # optional: found from the container's IP on `network`
        docker: ssh://root@10.1.15.233
        profile: nvidia-a800
        set: [flagcx.visible_devices=0,1]
        slots: 2
        env: {CUDA_VISIBLE_DEVICES: "0,1"}
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import NotFound, ProfileError

if TYPE_CHECKING:
    from ..engine import ContainerInfo, Engine
    from ..profiles import Profile

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_CLUSTER_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")     # no '_': it separates cluster and host
CONTAINER_PREFIX = "cctl_"   # single-host containers are cctl-<profile>: never cctl_…
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

INVENTORY_HINT = "see examples/hosts-*.yaml for the shape of an inventory"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClusterOpts(_Strict):
    name: str
    ssh_port: int = Field(8010, ge=1, le=65535)
    mpi: str = "mpich"
    mpi_home: str = "/opt/mpich-4.2.3"
    mpich_install: str = "wheel"
    mpich_version: str = "4.2.3"
    mpich_wheel: Optional[str] = None        # a local mpich-*.whl (sites without a PyPI mirror)
    network: Optional[str] = None
    workspace: Optional[str] = "/workspace"

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not _CLUSTER_NAME.match(v) or len(v) > 40:
            raise ValueError(f"cluster name {v!r}: lowercase letters, digits, '-' or '.' (at most "
                             "40; '_' is reserved: it separates cluster and host in container "
                             "names)")
        return _checked(v, "cluster name")

    @field_validator("mpi")
    @classmethod
    def _mpi(cls, v):
        if v != "mpich":
            raise ValueError(f"mpi {v!r}: heterogeneous runs use MPICH (the runbook's launcher, "
                             "with per-host -env); write `mpi: mpich`")
        return v

    @field_validator("mpich_install")
    @classmethod
    def _install(cls, v):
        if v not in ("wheel", "image"):
            raise ValueError(f"mpich_install {v!r}: `wheel` (containerctl copies the PyPI mpich "
                             "wheel's MPICH to mpi_home on every host) or `image` (it is there)")
        return v

    @field_validator("mpi_home", "workspace")
    @classmethod
    def _abs(cls, v):
        if v is not None and not v.startswith("/"):
            raise ValueError(f"{v!r} must be an absolute path in the containers")
        return v.rstrip("/") or "/" if v else v


class HostEntry(_Strict):
    name: str
    address: Optional[str] = None
    docker: str = "unix:///var/run/docker.sock"
    profile: str
    set: list[str] = Field(default_factory=list)
    slots: Optional[int] = Field(None, ge=1, le=1024)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not _NAME.match(v) or len(v) > 40:
            raise ValueError(f"host name {v!r}: lowercase letters, digits, '-', '_' or '.' "
                             "(at most 40)")
        return _checked(v, "host name")

    @field_validator("docker")
    @classmethod
    def _docker(cls, v):
        from ..engineurl import check
        from ..errors import UsageError
        try:
            return check(v)      # the one strict parser (engineurl.py)
        except UsageError as exc:
            raise ValueError(f"docker: {exc.message}; {exc.hint}") from None

    @field_validator("address")
    @classmethod
    def _addr(cls, v):
        if v is not None and (not re.match(r"^[A-Za-z0-9_.:-]+$", v) or v.startswith("-")):
            raise ValueError(f"address {v!r} is not a host name or IP address")
        return v

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, v):
        if isinstance(v, dict):
            out = {}
            for k, val in v.items():
                if not _ENV_NAME.match(str(k)):
                    raise ValueError(f"environment variable name {k!r} is not a shell name")
                out[str(k)] = "" if val is None else str(val)
            return out
        return v

    @field_validator("set", mode="before")
    @classmethod
    def _set(cls, v):
        if isinstance(v, str):
            return [v]
        return v


class Inventory(_Strict):
    cluster: ClusterOpts
    hosts: list[HostEntry] = Field(min_length=1)
    source_file: Optional[str] = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique(self):
        seen: set[str] = set()
        for h in self.hosts:
            if h.name in seen:
                raise ValueError(f"host name {h.name!r} appears twice")
            seen.add(h.name)
        addrs = [h.address for h in self.hosts if h.address]
        dup = {a for a in addrs if addrs.count(a) > 1}
        if dup:
            raise ValueError(f"address {sorted(dup)[0]} is given to two hosts")
        return self

    def host(self, name: str) -> HostEntry:
        for h in self.hosts:
            if h.name == name:
                return h
        near = difflib.get_close_matches(name, [h.name for h in self.hosts], n=1)
        raise NotFound(f"no host named {name} in {self.source_file or 'the inventory'}",
                       f"did you mean `{near[0]}`?" if near else
                       "hosts: " + ", ".join(h.name for h in self.hosts))

    def container_name(self, host: HostEntry) -> str:
        return container_name(self.cluster.name, host.name)


def _checked(value: str, what: str) -> str:
    """names.check_name (Docker's rule), as a validation error that keeps file:line."""
    from ..errors import UsageError
    from ..names import check_name
    try:
        return check_name(value, what)
    except UsageError as exc:
        raise ValueError(exc.message) from None


def container_name(cluster: str, host: str) -> str:
    """`cctl_<cluster>_<host>`. Cluster names may not contain '_', so the first '_' after the
    prefix ends the cluster name: two (cluster, host) pairs never share a container (nor, through
    runspec's `<container>-workspace`, a volume) — cluster `x` with host `a-b` and cluster `x-a`
    with host `b` are cctl_x_a-b and cctl_x-a_b. Single-host default names are `cctl-<profile>`,
    so they never meet a cluster's either."""
    from ..names import check_name
    return check_name(f"{CONTAINER_PREFIX}{cluster}_{host}", "container name")


# ---------------------------------------------------------------------------------------------
# loading

def load_inventory(path: str | Path) -> Inventory:
    """Read and validate a hosts file. A missing file is NotFound (exit 2) with a fix."""
    from ..profiles import load_located
    p = Path(path)
    if not p.is_file():
        if p.exists():
            raise ProfileError(f"{p}: not a file", "give the path of a hosts YAML file")
        raise NotFound(f"hosts file {p} does not exist",
                       f"write one ({INVENTORY_HINT}) and pass it with --hosts FILE")
    return load_located(Inventory, p, INVENTORY_HINT)


# ---------------------------------------------------------------------------------------------
# text a cluster writes

def mpich_hostfile(entries: list[tuple[str, int]]) -> str:
    """MPICH/Hydra hostfile: `host:slots` per line."""
    return "".join(f"{addr}:{slots}\n" for addr, slots in entries)


def openmpi_hostfile(entries: list[tuple[str, int]]) -> str:
    """OpenMPI hostfile: `host slots=N` per line."""
    return "".join(f"{addr} slots={slots}\n" for addr, slots in entries)


def ssh_client_config(addresses: list[str], port: int, identity: str, known_hosts: str) -> str:
    """The client config each container gets: only the cluster's addresses are affected, so the
    container's other ssh use (git over ssh …) is left alone."""
    pats = " ".join(dict.fromkeys(addresses))
    return (f"# written by containerctl cluster: the mesh between this cluster's containers\n"
            f"Host {pats}\n"
            f"    Port {port}\n"
            f"    User root\n"
            f"    IdentityFile {identity}\n"
            f"    IdentitiesOnly yes\n"
            f"    StrictHostKeyChecking yes\n"
            f"    UserKnownHostsFile {known_hosts}\n"
            f"    BatchMode yes\n"
            f"    ConnectTimeout 10\n"
            f"    LogLevel ERROR\n")


def known_hosts(entries: list[tuple[str, int, str]]) -> str:
    """known_hosts lines for (address, port, 'type base64-key') of every container."""
    out = []
    for addr, port, key in entries:
        parts = key.split()
        if len(parts) < 2:
            continue
        host = addr if port == 22 else f"[{addr}]:{port}"
        out.append(f"{host} {parts[0]} {parts[1]}")
    return "\n".join(out) + ("\n" if out else "")


SINGLE_DEVICE_ADVICE = ("FlagCX then has one rank per device type and falls back to host "
                        "communication for C2C allreduce (the runbook §4 advises 2+2: two devices "
                        "on each host)")


def single_device_warnings(slots: dict[str, int]) -> list[str]:
    return [f"host {name} has a single device (slots: 1): {SINGLE_DEVICE_ADVICE}"
            for name, n in slots.items() if n == 1]


# ---------------------------------------------------------------------------------------------
# the inventory's hosts, resolved: profile, engine, container

from ..labels import CLUSTER as CLUSTER_LABEL, CLUSTER_HOST as HOST_LABEL  # noqa: E402
REACH_BOUND_S = 10.0     # an engine that has not answered by then is reported, naming the host


@dataclass
class Host:
    """One inventory host, resolved: its profile (with the cluster's overrides), its own engine
    (one per host, so hosts can be driven from threads) and container name; the address, MPICH
    version, rank environment and perf binaries once known."""
    entry: HostEntry
    profile: "Profile"
    engine: "Engine"
    container: str
    address: Optional[str] = None
    mpich: Optional[str] = None
    env: dict[str, str] = field(default_factory=dict)      # what its ranks get (-env)
    bins: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # coll → (layout, wdir, path)
    stdbuf: Optional[str] = None       # coreutils stdbuf on this host, for line-buffered ranks
    rankout: Optional[str] = None      # the per-rank output wrapper hetero-build wrote
    iface: Optional[object] = None     # the FlagCXInterface its build stage probed, when known

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def docker(self) -> str:
        return self.entry.docker

    @property
    def slots(self) -> int:
        n = self.entry.slots or self.profile.flagcx.nranks
        if n == "auto":   # a host's device count is known only on that host
            from ..errors import UsageError
            raise UsageError(f"host {self.name}: profile {self.profile.name} has flagcx.nranks: "
                             "auto, and the inventory gives no slots for it",
                             "give the host `slots: N` (its device count) in the hosts file")
        return int(n)

    def labels(self, cluster: str) -> dict[str, str]:
        return {CLUSTER_LABEL: cluster, HOST_LABEL: self.name}


def host_sets(inv: Inventory, entry: HostEntry) -> list[str]:
    """The `--set`s a host's profile gets: the cluster's network, workspace and MPI home, then
    the host's own."""
    c = inv.cluster
    sets = []
    if c.network:
        sets.append(f"container.network_mode={c.network}")
    if c.workspace:
        sets.append(f"container.workspace={c.workspace}")
    sets.append(f"flagcx.mpi_home={c.mpi_home}")
    return sets + list(entry.set)


def resolve_hosts(inv: Inventory) -> list[Host]:
    from ..engine import Engine
    from ..errors import ContainerctlError
    from ..profiles import load_profile
    out = []
    for e in inv.hosts:
        try:
            prof = load_profile(e.profile, host_sets(inv, e))
        except ContainerctlError as exc:
            raise type(exc)(f"host {e.name} ({inv.source_file}): {exc.message}",
                            exc.hint) from None
        out.append(Host(e, prof, Engine(e.docker), inv.container_name(e), address=e.address))
    return out


def _ssh_preflight(h: Host, bound: float) -> None:
    """`ssh -o ConnectTimeout=5 -o BatchMode=yes` to an ssh:// engine's host, killed at `bound`:
    the Docker SDK's own ssh has no connect timeout, so an unreachable host would hang it."""
    import shutil
    import subprocess
    from ..engineurl import parse
    from ..errors import HostError
    u = parse(h.docker)       # strict: no user or host that ssh could read as an option
    exe = shutil.which("ssh")
    if not exe or not u.host:
        return    # the engine's own error says it
    argv = u.ssh_argv("-o", "ConnectTimeout=5", "-o", "BatchMode=yes") + ["true"]
    argv[0] = exe
    fix = (f"check that the host is up and that `ssh {' '.join(argv[5:-1])} docker version` works "
           "from here without a password, or fix `docker:` in the inventory")
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=bound)
    except subprocess.TimeoutExpired:
        raise HostError(f"host {h.name}: no ssh answer from {h.docker} within {bound:.0f} s",
                        fix) from None
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1][:200]
        raise HostError(f"host {h.name}: cannot ssh to {h.docker}: {why}", fix)


def reach(h: Host, bound: float = REACH_BOUND_S) -> str:
    """The host's engine answers within `bound` seconds (its version), or HostError naming the
    host. ssh:// endpoints get an ssh preflight first; every engine call is then made in a
    thread, so a hung connection cannot hold the caller past the bound."""
    import threading
    import time
    from ..errors import ContainerctlError, HostError
    t0 = time.monotonic()
    if h.docker.startswith("ssh://"):
        _ssh_preflight(h, bound)
    box: dict = {}

    def ask():
        try:
            box["v"] = h.engine.version().get("Version", "?")
        except BaseException as exc:   # noqa: BLE001 - handed to the caller
            box["e"] = exc
    t = threading.Thread(target=ask, daemon=True, name=f"cctl-reach-{h.name}")
    t.start()
    t.join(max(0.5, bound - (time.monotonic() - t0)))
    if t.is_alive():
        raise HostError(f"host {h.name}: the Docker engine at {h.docker} did not answer within "
                        f"{bound:.0f} s", "check that dockerd runs there and that the endpoint "
                        "in the inventory's `docker:` is right")
    if "e" in box:
        exc = box["e"]
        if isinstance(exc, ContainerctlError):
            raise type(exc)(f"host {h.name}: {exc.message}", exc.hint) from None
        raise exc
    return box["v"]


def require(h: Host, source_file: str | None) -> "ContainerInfo":
    """The host's container, running; else NotFound / UsageError saying how to bring it up."""
    from ..errors import UsageError
    c = h.engine.find(h.container)
    if c is None:
        raise NotFound(f"host {h.name}: no container {h.container} on {h.docker}",
                       f"bring the cluster up: containerctl cluster up --hosts {source_file}")
    if not c.running:
        raise UsageError(f"host {h.name}: {h.container} is {c.status}",
                         f"containerctl cluster up --hosts {source_file}")
    return c


def discover(h: Host, network: str | None) -> str:
    """The host's address: `address:` from the inventory, else its container's IP on the
    cluster's network (or its only network)."""
    from ..errors import HostError
    if h.entry.address:
        return h.entry.address
    info = h.engine.inspect(h.container)
    nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
    if network:
        ip = (nets.get(network) or {}).get("IPAddress")
        if not ip:
            raise HostError(f"host {h.name}: {h.container} has no address on network {network}",
                            "check `cluster.network`, or give the host an `address:`")
        return ip
    ips = [(n, v.get("IPAddress")) for n, v in nets.items() if v.get("IPAddress")]
    if len(ips) == 1:
        return ips[0][1]
    raise HostError(f"host {h.name}: cannot tell its address ({h.container} is on "
                    f"{', '.join(nets) or 'no network'})",
                    "give the host an `address:` (with network_mode host: the host's IP), "
                    "or set `cluster.network`")
