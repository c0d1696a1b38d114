"""The multi-host inventory (hosts YAML), validated with pydantic; errors name file:line like
profiles do. Also the pure text a cluster needs: MPICH/OpenMPI hostfiles, the ssh client config
and known_hosts written into each container, and the warnings an inventory deserves.

    cluster:
      name: demo                 # containers are cctl-<cluster>-<host>
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
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import NotFound, ProfileError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
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
        if not _NAME.match(v) or len(v) > 40:
            raise ValueError(f"cluster name {v!r}: lowercase letters, digits, '-', '_' or '.' "
                             "(at most 40)")
        return v

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
            raise ValueError(f"host name {v!r}: lowercase letters, digits, '-', '_' or '.'")
        return v

    @field_validator("docker")
    @classmethod
    def _docker(cls, v):
        if not re.match(r"^(unix|ssh|tcp|npipe)://\S+$", v):
            raise ValueError(f"docker endpoint {v!r}: write unix:///var/run/docker.sock, "
                             "ssh://user@host[:port] or tcp://host:2376")
        return v

    @field_validator("address")
    @classmethod
    def _addr(cls, v):
        if v is not None and not re.match(r"^[A-Za-z0-9_.:-]+$", v):
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
        return f"cctl-{self.cluster.name}-{host.name}"


# ---------------------------------------------------------------------------------------------
# loading

def load_inventory(path: str | Path) -> Inventory:
    """Read and validate a hosts file. A missing file is NotFound (exit 2) with a fix."""
    from ..profiles import read_yaml
    p = Path(path)
    if not p.is_file():
        if p.exists():
            raise ProfileError(f"{p}: not a file", "give the path of a hosts YAML file")
        raise NotFound(f"hosts file {p} does not exist",
                       f"write one ({INVENTORY_HINT}) and pass it with --hosts FILE")
    data, loc = read_yaml(p)
    data = {k: v for k, v in data.items() if k != "source_file"}
    try:
        inv = Inventory.model_validate(data)
    except ValidationError as exc:
        from ..profiles import _format_validation
        raise _format_validation(exc, loc, None, root=Inventory, missing_hint=f"({INVENTORY_HINT})",
                                 type_hint=INVENTORY_HINT) from None
    inv.source_file = str(p)
    return inv


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
