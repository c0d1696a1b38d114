"""Multi-host launch lines as pure functions returning argv lists: nothing here runs anything,
so every launcher is unit-tested by looking at its argv.

MPICH (Hydra), runbook §4.1(5): `mpirun -f HOSTFILE -genvnone` then one `:`-separated MPMD
segment per host, in hostfile order (Hydra places segment i on host i), each carrying that host's
`-n`, `-wdir`, `-env K V` and perf binary + arguments. Slurm: `srun --mpi=pmi2|pmix` with one
`:`-separated heterogeneous-job component per host (pyxis image, workdir, `env K=V … binary`)."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Segment:
    """What one host runs: `slots` ranks of `binary args` in `wdir` with `env`."""
    host: str
    slots: int
    binary: str
    args: tuple[str, ...] = ()
    wdir: str = ""
    env: dict[str, str] = field(default_factory=dict)
    image: str = ""                  # srun/pyxis only


def mpich_mpmd(mpirun: str, hostfile: str, segments: list[Segment],
               genvnone: bool = True) -> list[str]:
    """`mpirun -f hostfile [-genvnone] -n N -wdir D -env K V … bin args : -n … `."""
    if not segments:
        raise ValueError("an MPMD launch needs at least one segment")
    argv = [mpirun, "-f", hostfile] + (["-genvnone"] if genvnone else [])
    for i, s in enumerate(segments):
        if s.slots < 1:
            raise ValueError(f"host {s.host}: slots must be at least 1")
        if i:
            argv.append(":")
        argv += ["-n", str(s.slots)]
        if s.wdir:
            argv += ["-wdir", s.wdir]
        for k, v in s.env.items():
            argv += ["-env", k, v]
        argv += [s.binary, *s.args]
    return argv


def srun_mpmd(segments: list[Segment], mpi: str = "pmi2") -> list[str]:
    """`srun --mpi=… --container-image=… --container-workdir=… --export=ALL env K=V … bin args
    : …` — one heterogeneous-job component per segment (pyxis runs the containers, Slurm's PMI
    wires the ranks: no sshd, no hostfile)."""
    if mpi not in ("pmi2", "pmix"):
        raise ValueError(f"srun --mpi {mpi!r}: MPICH under srun uses pmi2 or pmix")
    if not segments:
        raise ValueError("an srun launch needs at least one component")
    argv = ["srun", f"--mpi={mpi}"]
    for i, s in enumerate(segments):
        if i:
            argv.append(":")
        if s.image:
            argv.append(f"--container-image={s.image}")
        if s.wdir:
            argv.append(f"--container-workdir={s.wdir}")
        argv += ["--export=ALL", "env"] + [f"{k}={v}" for k, v in s.env.items()]
        argv += [s.binary, *s.args]
    return argv


def hetero_runs(mpirun: str, hostfile: str, per_coll: dict[str, list[Segment]],
                run_id: str) -> list[dict]:
    """One MPICH MPMD launch per collective for the hetero stage (segments in hostfile order).
    Every rank also gets CCTL_HETERO_RUN=<run id>, the marker the cleanup finds leftovers by.
    Returns [{"coll", "argv", "command", "display"}]."""
    runs = []
    for coll, segs in per_coll.items():
        marked = [Segment(s.host, s.slots, s.binary, s.args, s.wdir,
                          {**s.env, "CCTL_HETERO_RUN": run_id}, s.image) for s in segs]
        argv = mpich_mpmd(mpirun, hostfile, marked)
        line = shlex.join(argv)
        runs.append({"coll": coll, "argv": argv, "command": line, "display": line})
    return runs
