"""Where Slurm commands run (the submit host: the login node's container, reached through the
Docker engine), every command bounded by a timeout, and the pure readers of what Slurm prints
(sbatch --parsable, scontrol -o, squeue, sacct -P, srun's error lines)."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ..errors import ContainerctlError, HostError


@dataclass
class Answer:
    code: int
    out: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class SubmitHost:
    """`docker://CONTAINER`: slurm commands are `docker exec`s into the login container, each
    under coreutils `timeout` there (a hung slurmctld cannot hang containerctl)."""

    def __init__(self, engine, container: str):
        self.engine = engine
        self.container = container

    def __str__(self) -> str:
        return f"docker://{self.container}"

    def run(self, argv: list[str], timeout: int = 30) -> Answer:
        cmd = ["timeout", "-k", "2", str(timeout), *argv]
        try:
            code, out = self.engine.exec_capture(self.container, cmd)
        except ContainerctlError as exc:
            raise HostError(f"submit host {self}: {exc.message}",
                            "start the Slurm cluster (scripts/slurm-cluster.sh up) or fix "
                            "`slurm.submit` in the inventory") from None
        if code == 124:
            out = f"{argv[0]} did not answer within {timeout}s\n" + out
        return Answer(code, out)

    def sh(self, script: str, *args: str, timeout: int = 30) -> Answer:
        return self.run(["bash", "-c", script, "cctl-slurm", *args], timeout)


# ---------------------------------------------------------------------------------------------
# readers (pure)

def parse_sbatch(out: str) -> str | None:
    """`sbatch --parsable` prints `JOBID` or `JOBID;CLUSTER`."""
    for ln in out.splitlines():
        m = re.match(r"^(\d+)(;\S+)?$", ln.strip())
        if m:
            return m.group(1)
    return None


def parse_kv(line: str) -> dict[str, str]:
    """One `scontrol show … -o` line: Key=Value pairs (a value may hold spaces only where the
    next token has no '='; such tokens are joined to the value before them)."""
    out: dict[str, str] = {}
    last = None
    for tok in line.split():
        if "=" in tok and re.match(r"^[A-Za-z][A-Za-z0-9:/_]*=", tok):
            k, _, v = tok.partition("=")
            out[k] = v
            last = k
        elif last is not None:
            out[last] += " " + tok
    return out


def expand_nodelist(expr: str) -> list[str]:
    """Slurm's hostlist `n[1-3,5],x` → [n1, n2, n3, n5, x] (one bracket level, like Slurm's
    short form; zero padding kept)."""
    names: list[str] = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,]*", expr or ""):
        m = re.match(r"^(.*)\[([^\]]*)\](.*)$", part)
        if not m:
            if part and part != "(null)":
                names.append(part)
            continue
        pre, body, post = m.groups()
        for rng in body.split(","):
            a, _, b = rng.partition("-")
            if b:
                for i in range(int(a), int(b) + 1):
                    names.append(f"{pre}{str(i).zfill(len(a))}{post}")
            else:
                names.append(f"{pre}{a}{post}")
    return names


_SRUN_ERR = re.compile(r"^srun: error: (?P<node>[^:\s]+): tasks? (?P<tasks>[\d,-]+): "
                       r"(?P<what>.+)$")
_NODE_FAIL = re.compile(r"(?:Node failure on|node failure on|on node) (?P<node>[A-Za-z0-9_.-]+)")


def srun_failures(text: str) -> list[dict]:
    """srun's own error lines: which node's tasks ended how (exit code, signal, node failure)."""
    out = []
    for ln in text.splitlines():
        m = _SRUN_ERR.match(ln.strip())
        if m:
            out.append({"node": m["node"], "tasks": m["tasks"], "what": m["what"].strip()})
            continue
        if ln.startswith(("srun:", "slurmstepd")) and ("ode fail" in ln or "NODE_FAIL" in ln):
            n = _NODE_FAIL.search(ln)
            out.append({"node": n["node"] if n else "?", "tasks": "", "what": ln.strip()})
    return out


def quote(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
