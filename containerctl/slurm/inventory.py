"""The Slurm inventory: the same `--hosts FILE` the cluster commands take, saying
`scheduler: slurm` instead of listing hosts (see examples/slurm-*.yaml):

    scheduler: slurm
    name: ci                        # job names are cctl-<name>-<run>
    slurm:
      submit: docker://cctl-slurm-ctl   # where slurm commands run (the login node's container)
      profile: cpu-selftest         # the stage scripts' profile (as for a single host)
      partition: debug
      nodes: 2
      tasks_per_node: 2
      gpus_per_node: 0
      time_limit: "00:20:00"
      account: null
      mpi: pmix                     # srun --mpi=pmix | pmi2
      runtime: none                 # none: the nodes carry the stack; pyxis: --container-image
      image: null                   # pyxis: the image every step runs in
      mounts: []                    # pyxis: --container-mounts SRC:DST
      pending_limit: 300            # seconds the allocation may pend before it is cancelled
      workspace: /workspace         # the filesystem every node shares
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, \
    model_validator

from ..errors import NotFound, UsageError

HINT = "see examples/slurm-ci.yaml for the shape of a Slurm inventory"
_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,39}$")
_TIME = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$|^\d+$")
_SLURM_WORD = re.compile(r"^[A-Za-z0-9_.,\[\]-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlurmOpts(_Strict):
    submit: str
    profile: str = "cpu-selftest"
    set: list[str] = []
    partition: Optional[str] = None
    nodes: int = Field(2, ge=1, le=4096)
    tasks_per_node: int = Field(1, ge=1, le=1024)
    gpus_per_node: int = Field(0, ge=0, le=64)
    time_limit: str = "00:30:00"
    account: Optional[str] = None
    mpi: Literal["pmix", "pmi2"] = "pmix"
    runtime: Literal["none", "pyxis"] = "none"
    image: Optional[str] = None
    mounts: list[str] = []
    pending_limit: int = Field(300, ge=1, le=7 * 86400)
    workspace: str = "/workspace"

    @field_validator("submit")
    @classmethod
    def _submit(cls, v: str) -> str:
        if v.startswith("docker://") and re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", v[9:]):
            return v
        if v.startswith("ssh://"):
            raise ValueError(f"submit {v!r}: ssh:// submit hosts are not supported yet; run "
                             "containerctl where a container on the login node is reachable "
                             "(docker://CONTAINER)")
        raise ValueError(f"submit {v!r}: write docker://CONTAINER (the login node's container "
                         "where sbatch/srun run)")

    @field_validator("partition", "account")
    @classmethod
    def _word(cls, v):
        if v is not None and not _SLURM_WORD.match(v):
            raise ValueError(f"{v!r}: letters, digits, '_', '.', ',' or '-' only")
        return v

    @field_validator("time_limit")
    @classmethod
    def _time(cls, v: str) -> str:
        v = str(v)
        if not _TIME.match(v):
            raise ValueError(f"time_limit {v!r}: use Slurm's forms (minutes, MM:SS, HH:MM:SS, "
                             "D-HH:MM:SS)")
        return v

    @field_validator("workspace")
    @classmethod
    def _abs(cls, v: str) -> str:
        if not v.startswith("/") or "'" in v or "\n" in v:
            raise ValueError(f"workspace {v!r}: an absolute path (no quotes)")
        return v.rstrip("/") or "/"

    @model_validator(mode="after")
    def _runtime(self):
        if self.runtime == "pyxis" and not self.image:
            raise ValueError("runtime pyxis needs `image` (the image every step runs in, as "
                             "srun --container-image takes it)")
        if self.runtime == "none" and (self.image or self.mounts):
            raise ValueError("`image`/`mounts` are for runtime pyxis; with runtime none the "
                             "nodes already carry the stack: remove them or set runtime: pyxis")
        for m in self.mounts:
            if ":" not in m or "," in m:
                raise ValueError(f"mount {m!r}: write SRC:DST[:FLAGS] (no commas)")
        return self

    @property
    def container(self) -> str:
        return self.submit[len("docker://"):]

    @property
    def ntasks(self) -> int:
        return self.nodes * self.tasks_per_node


class SlurmInventory(_Strict):
    scheduler: Literal["slurm"]
    name: str
    slurm: SlurmOpts
    source_file: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"name {v!r}: lowercase letters, digits, '-' or '.' (at most 40)")
        return v


def scheduler_of(path: str | Path) -> str | None:
    """The `scheduler:` an inventory names (None: the ssh-mesh inventory), read cheaply so that
    the cluster commands can route before validating either shape."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    m = re.search(r"^scheduler:\s*['\"]?([A-Za-z0-9_-]+)", text, re.M)
    return m.group(1) if m else None


def load(path: str | Path) -> SlurmInventory:
    from ..profiles import load_located
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"inventory {p} does not exist", f"write one ({HINT})")

    def slurm_only(data: dict) -> None:
        if data.get("scheduler") != "slurm":
            raise UsageError(f"{p}: scheduler {data.get('scheduler')!r} is not supported",
                             "write `scheduler: slurm`, or leave `scheduler` out for an ssh-mesh "
                             "inventory (examples/hosts-*.yaml)")
    return load_located(SlurmInventory, p, HINT, slurm_only)
