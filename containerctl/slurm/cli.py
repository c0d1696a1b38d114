"""The cluster commands for a `scheduler: slurm` inventory (cli/cluster.py routes here)."""
from __future__ import annotations

import sys


def is_slurm(hosts: str) -> bool:
    from .inventory import scheduler_of
    return scheduler_of(hosts) is not None


def load(hosts: str):
    from .backend import SlurmCluster
    from .inventory import load as load_inv
    inv = load_inv(hosts)
    return SlurmCluster(inv, say=lambda m: (sys.stderr.write(m + "\n"), sys.stderr.flush()))


def default_stages(cl) -> list[str]:
    """What `cluster run` runs on Slurm: the profile's host stages that apply, in order."""
    from ..profiles import load_profile
    from ..stages.context import make_context
    from ..stages.catalog import load_defs
    from ..stages.render import applies
    prof = load_profile(cl.s.profile, list(cl.s.set))
    ctx = make_context(prof, {})
    only = prof.stages.only
    return [d.name for d in load_defs() if d.scope == "host" and not getattr(d, "internal", False)
            and (only is None or d.name in only) and applies(d, ctx)]


def run(hosts: str, stages: list[str] | None, options: dict, echo) -> int:
    """Allocate, run the stages as steps, print one line per stage and the job's end; the exit
    code: 0 passed, 130 interrupted, 1 otherwise."""
    cl = load(hosts)
    from ..stages.catalog import get_def
    for st in stages or []:
        if get_def(st).scope == "cluster":
            from ..errors import UsageError
            raise UsageError(f"stage {st} is the ssh-mesh cluster's launch across hosts; on "
                             "Slurm the perf stage already runs its ranks across the nodes "
                             f"(srun --mpi={cl.s.mpi})",
                             f"containerctl cluster exec-stage perf --hosts {hosts}")
    stages = stages or default_stages(cl)
    try:
        run_id, meta, outcomes = cl.run(stages, options, echo)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: the Slurm job was cancelled (scancel)\n")
        return 130
    from ..results import store
    sl = meta["slurm"]
    print(f"slurm job {sl.get('job')} on {sl.get('nodelist')}: {sl.get('job_state')}")
    for s in sl.get("steps", []):
        print(f"  step {s['id']:<8} {s['name']:<16} {s.get('state', '?'):<10} {s['nodes']}")
    for o in outcomes:
        print(f"{o.name}: {o.status} — {o.message}")
    print(f"run {run_id}: {meta['status']}   results: {store.run_dir(run_id)}")
    return {"passed": 0, "interrupted": 130}.get(meta["status"], 1)


def ps(hosts: str, as_json: bool) -> int:
    cl = load(hosts)
    cl.check()
    rows = cl.ps()
    if as_json:
        import json
        print(json.dumps(rows, indent=1))
    else:
        for r in rows or []:
            print(f"{r['job']:>8} {r['state']:<10} {r['nodes'] or r['reason']:<20} {r['name']}")
        if not rows:
            print(f"no job of cluster {cl.name} in squeue")
    return 0


def no_up_down(hosts: str, what: str):
    from ..errors import UsageError
    raise UsageError(f"cluster {what}: {hosts} is a Slurm inventory; the scheduler owns the "
                     "nodes (containerctl allocates them for each run and releases them)",
                     "start or stop the CI cluster with scripts/slurm-cluster.sh up|down; "
                     "run with containerctl cluster run --hosts " + hosts)
