"""The Slurm backend of `cluster run` / `cluster exec-stage`: allocate once (sbatch of a batch
script that holds the allocation until containerctl releases it), run every stage as a job step
on the allocation (the executor's own script, `srun -N1 -n1 --overlap`), launch ranks inside it
with `srun --mpi=pmix|pmi2` across the nodes (launch.py's srun_line: no ssh mesh,
no hostfile), and judge each stage with what the scheduler says (job and node states from
scontrol, step states from sacct where the site keeps accounting, srun's own error lines), next
to the stage's own checks. Ctrl-C and timeouts scancel the job; a pending job prints squeue's
reason and is cancelled after `pending_limit` seconds."""
from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING, Callable

from ..errors import HostError, StageError, UsageError
from .inventory import SlurmInventory
from .submit import Answer, SubmitHost, expand_nodelist, parse_kv, parse_sbatch, quote, \
    srun_failures

if TYPE_CHECKING:
    from ..engine import Engine

Say = Callable[[str], None]
STATE_DIR = ".containerctl-slurm"      # under the shared workspace: one folder per job
ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
          "RESIZING", "SIGNALING", "STAGE_OUT")
BAD_NODE = ("DOWN", "NOT_RESPONDING", "FAIL", "DRAIN", "POWER")


def pyxis_flags(image: str | None, mounts: list[str], workdir: str | None = None) -> list[str]:
    """The pyxis (enroot) container flags of one srun line."""
    if not image:
        return []
    out = [f"--container-image={image}"]
    if mounts:
        out.append("--container-mounts=" + ",".join(mounts))
    if workdir:
        out.append(f"--container-workdir={workdir}")
    return out


def alloc_argv(s, job_name: str, hold: str) -> list[str]:
    """sbatch for the allocation: the batch script only waits for the release marker `hold`
    (so the job ends COMPLETED when containerctl is done, CANCELLED when it is not)."""
    argv = ["sbatch", "--parsable", f"--job-name={job_name}", f"--nodes={s.nodes}",
            f"--ntasks-per-node={s.tasks_per_node}", f"--time={s.time_limit}",
            f"--output={hold}.out", "--no-requeue"]   # a node failure ends it: NODE_FAIL
    if s.partition:
        argv.append(f"--partition={s.partition}")
    if s.account:
        argv.append(f"--account={s.account}")
    if s.gpus_per_node:
        argv.append(f"--gpus-per-node={s.gpus_per_node}")
    argv.append("--wrap=while [ ! -e " + shlex.quote(hold) + " ]; do sleep 0.5; done")
    return argv


def step_argv(s, job: str, name: str) -> list[str]:
    """One stage script as one job step on the allocation's first node."""
    # --mpi=none: the script's step sets no PMI_RANK of its own (MpiDefault=pmi2 would set
    # PMI_RANK=0, which the ranks launched inside it would inherit and all read as rank 0)
    return ["srun", f"--jobid={job}", "--overlap", "--nodes=1", "--ntasks=1", "--mpi=none",
            f"--job-name={name}", *pyxis_flags(s.image, s.mounts, s.workspace)]


def ranks_argv(s, job: str, name: str) -> list[str]:
    """The ranks' step (launch.srun_line appends -n NRANKS and the wrapper)."""
    argv = ["srun", f"--jobid={job}", "--overlap", f"--mpi={s.mpi}", f"--nodes={s.nodes}",
            f"--ntasks-per-node={s.tasks_per_node}", "--kill-on-bad-exit=1",
            f"--job-name={name}-ranks"]
    if s.gpus_per_node:
        argv.append(f"--gpus-per-node={s.gpus_per_node}")
    return argv + pyxis_flags(s.image, s.mounts, s.workspace)


class SlurmCluster:
    def __init__(self, inv: SlurmInventory, engine: "Engine | None" = None,
                 say: Say | None = None):
        if engine is None:
            from ..engine import get_engine
            engine = get_engine()
        self.inv = inv
        self.s = inv.slurm
        self.engine = engine
        self.host = SubmitHost(engine, self.s.container)
        self.say = say or (lambda m: None)
        self.accounting: bool | None = None
        self.timings: dict[str, float] = {}

    @property
    def name(self) -> str:
        return self.inv.name

    # -- the cluster -------------------------------------------------------------------------
    def check(self) -> dict:
        """The submit host answers, the partition exists and has enough nodes: refused before
        anything is submitted."""
        c = self.engine.find(self.s.container)
        if c is None or not c.running:
            raise HostError(f"submit host {self.host}: container {self.s.container} is "
                            + ("not running" if c else "not there"),
                            "start the cluster: scripts/slurm-cluster.sh up (or fix "
                            f"slurm.submit in {self.inv.source_file})")
        a = self.host.run(["sinfo", "-h", "-o", "%P|%D|%a"], timeout=20)
        if not a.ok:
            raise HostError(f"slurm on {self.host} does not answer: {a.out.strip()[-200:]}",
                            "check slurmctld (scontrol ping) on the submit host")
        parts = {}
        for ln in a.out.splitlines():
            p, _, rest = ln.partition("|")
            n, _, avail = rest.partition("|")
            parts[p.rstrip("*")] = (int(n or 0), avail, p.endswith("*"))
        want = self.s.partition or next((p for p, v in parts.items() if v[2]), None)
        if want not in parts:
            raise UsageError(f"partition {want!r} is not on this cluster (it has "
                             f"{', '.join(parts) or 'none'})",
                             f"set slurm.partition in {self.inv.source_file}")
        if parts[want][0] < self.s.nodes:
            raise UsageError(f"partition {want} has {parts[want][0]} nodes; the inventory asks "
                             f"for {self.s.nodes}", f"lower slurm.nodes in {self.inv.source_file}")
        cfg = self.host.run(["scontrol", "show", "config"], timeout=20)
        self.accounting = "accounting_storage/none" not in cfg.out
        return {"partition": want, "nodes": parts[want][0], "accounting": self.accounting}

    # -- the allocation ------------------------------------------------------------------------
    def state_dir(self, job_name: str) -> str:
        return f"{self.s.workspace}/{STATE_DIR}/{job_name}"

    def allocate(self, job_name: str) -> tuple[str, dict]:
        d = self.state_dir(job_name)
        a = self.host.run(["mkdir", "-p", d])
        if not a.ok:
            raise HostError(f"cannot make {d} on {self.host}: {a.out.strip()}",
                            "slurm.workspace must be the filesystem every node shares")
        t0 = time.monotonic()
        a = self.host.run(alloc_argv(self.s, job_name, f"{d}/release"), timeout=60)
        job = parse_sbatch(a.out) if a.ok else None
        if not job:
            raise StageError(f"sbatch refused the allocation: {a.out.strip()[-300:]}",
                             "check partition, account and limits in the inventory")
        self.say(f"slurm: submitted job {job} ({job_name})")
        last = None
        try:
            while True:
                q = self.host.run(["squeue", "-h", "-j", job, "-o", "%T|%r|%N"], timeout=20)
                state, _, rest = q.out.strip().partition("|")
                reason, _, nodes = rest.partition("|")
                if state == "RUNNING":
                    break
                if q.ok and state and state not in ACTIVE or (q.ok and not state):
                    info = self.job(job)
                    raise StageError(f"job {job} ended before it ran: "
                                     f"{info.get('JobState', state or 'gone')} "
                                     f"({info.get('Reason', reason)})",
                                     "see scontrol show job / the slurmctld log")
                if (state, reason) != last:
                    self.say(f"slurm: job {job} {state or '?'}"
                             + (f" (reason: {reason})" if reason and reason != "None" else ""))
                    last = (state, reason)
                waited = time.monotonic() - t0
                if waited > self.s.pending_limit:
                    self.cancel(job)
                    raise StageError(f"job {job} pended {waited:.0f}s (reason: {reason}), over "
                                     f"slurm.pending_limit ({self.s.pending_limit}s): cancelled",
                                     "free the nodes, ask for fewer, or raise "
                                     "slurm.pending_limit")
                time.sleep(0.3)
        except KeyboardInterrupt:
            self.cancel(job)
            raise
        self.timings["allocate"] = round(time.monotonic() - t0, 3)
        info = self.job(job)
        self.say(f"slurm: job {job} running on {info.get('NodeList')}")
        return job, info

    def job(self, job: str) -> dict:
        a = self.host.run(["scontrol", "show", "job", "-o", job], timeout=20)
        return parse_kv(a.out.strip().splitlines()[0]) if a.ok and a.out.strip() else {}

    def nodes(self, names: list[str]) -> dict[str, dict]:
        if not names:
            return {}
        a = self.host.run(["scontrol", "show", "node", "-o", ",".join(names)], timeout=20)
        out = {}
        for ln in a.out.splitlines():
            kv = parse_kv(ln)
            if kv.get("NodeName"):
                out[kv["NodeName"]] = kv
        return out

    def settle(self, job: str, wait: float = 25.0) -> tuple[dict, dict, list[str]]:
        """The job's state and its nodes' after a step: a job that is no longer RUNNING is
        followed until Slurm has decided (COMPLETING → NODE_FAIL, CANCELLED, TIMEOUT …) and a
        node has been found down, so that the record names the node and the final state."""
        deadline = time.monotonic() + wait
        while True:
            info = self.job(job)
            state = info.get("JobState", "gone")
            alloc = expand_nodelist(info.get("NodeList", ""))
            bad = {n: kv for n, kv in self.nodes(alloc).items()
                   if any(b in kv.get("State", "") for b in BAD_NODE)}
            decided = state in ("RUNNING", "COMPLETED") and not bad or \
                state not in ACTIVE + ("COMPLETING",) and (bad or state != "NODE_FAIL")
            if decided or time.monotonic() > deadline:
                return info, bad, alloc
            time.sleep(0.5)

    def steps_sacct(self, job: str) -> list[dict]:
        if not self.accounting:
            return []
        a = self.host.run(["sacct", "-n", "-P", "-j", job, "-o",
                           "JobID,JobName,State,NodeList,ExitCode"], timeout=20)
        out = []
        for ln in a.out.splitlines() if a.ok else []:
            f = ln.split("|")
            if len(f) == 5 and "." in f[0]:
                out.append({"id": f[0], "name": f[1], "state": f[2], "nodes": f[3],
                            "exit_code": f[4]})
        return out

    def release(self, job: str, job_name: str, wait: float = 30.0) -> str:
        """Let the batch script end (the job ends COMPLETED); its final state."""
        self.host.run(["touch", f"{self.state_dir(job_name)}/release"])
        return self._wait_end(job, wait)

    def cancel(self, job: str, wait: float = 30.0) -> str:
        self.host.run(["scancel", job], timeout=20)
        return self._wait_end(job, wait)

    def _wait_end(self, job: str, wait: float) -> str:
        deadline = time.monotonic() + wait
        state = ""
        while time.monotonic() < deadline:
            q = self.host.run(["squeue", "-h", "-j", job, "-o", "%T"], timeout=20)
            state = q.out.strip()
            if q.ok and not state:
                break
            time.sleep(0.3)
        return self.job(job).get("JobState", state or "gone")

    # -- the stages ----------------------------------------------------------------------------
    def plug(self, job: str, job_name: str, stage: str, steps: list):
        """The executor's plug for one stage on the allocation: the stage script as a step, the
        ranks' srun, and the scheduler's judgement after it."""
        from ..launch import SrunLaunch
        from ..stages.runner import StagePlug
        d = self.state_dir(job_name)
        rank_file = f"{d}/ranks-{stage}"
        wrap = ["bash", "-c", f'echo "$SLURM_JOB_ID.$SLURM_STEP_ID $SLURM_PROCID '
                f'$SLURMD_NODENAME" >> {shlex.quote(rank_file)}; exec "$@"', "cctl-rank"]
        srun = SrunLaunch(tuple(ranks_argv(self.s, job, stage)), self.s.ntasks, tuple(wrap))

        def run(path: str) -> str:
            shared = f"{d}/{stage}.sh"
            step = quote(step_argv(self.s, job, stage))
            return (f"rm -f {shlex.quote(rank_file)}; cp {path} {shlex.quote(shared)} && {step} "
                    "bash -c 'echo \"CCTL_SLURM_STEP $SLURM_JOB_ID.$SLURM_STEP_ID "
                    f"$SLURMD_NODENAME\"; exec bash \"$0\"' {shlex.quote(shared)}")

        def finish(code: int, outcome: str, text: str) -> dict:
            return self.judge(job, stage, code, outcome, text, rank_file, steps)
        return StagePlug(name=stage, ctx={"srun": srun}, run=run, finish=finish, keep_state=True)

    def judge(self, job: str, stage: str, code: int, outcome: str, text: str,
              rank_file: str, steps: list) -> dict:
        info, bad_nodes, alloc = self.settle(job)
        state = info.get("JobState", "gone")
        fails = srun_failures(text)
        ranks: dict[str, str] = {}
        stage_steps: list[dict] = []
        for ln in text.splitlines():
            if ln.startswith("CCTL_SLURM_STEP "):
                f = ln.split()
                if len(f) >= 3:
                    stage_steps.append({"id": f[1], "name": stage, "nodes": f[2]})
        a = self.host.run(["cat", rank_file])
        rank_steps: dict[str, set] = {}
        for ln in (a.out.splitlines() if a.ok else []):
            f = ln.split()
            if len(f) == 3:
                ranks[f[1]] = f[2]
                rank_steps.setdefault(f[0], set()).add(f[2])
        for sid, ns in sorted(rank_steps.items()):
            stage_steps.append({"id": sid, "name": f"{stage}-ranks", "nodes": ",".join(sorted(ns))})
        acct = {s["id"]: s for s in self.steps_sacct(job)}
        for s in stage_steps:
            if s["id"] in acct:
                s.update(state=acct[s["id"]]["state"], exit_code=acct[s["id"]]["exit_code"],
                         source="sacct")
                continue
            s["source"] = "srun exit and scontrol (no accounting)"
            if state not in ("RUNNING", "COMPLETED"):
                s["state"] = state                       # the job ended under the step
            elif outcome == "interrupted" or outcome == "timeout":
                s["state"] = "CANCELLED"
            elif any(f["node"] in s["nodes"].split(",") for f in fails):
                s["state"] = "FAILED"
            elif s["name"] == stage:
                s["state"] = "COMPLETED" if code == 0 else "FAILED"
            else:
                s["state"] = "COMPLETED"
        steps.extend(stage_steps)
        checks = []
        if state != "RUNNING" or bad_nodes:
            where = sorted(bad_nodes) or sorted({f["node"] for f in fails}) or alloc
            why = "; ".join(f"node {n} {kv.get('State')} ({kv.get('Reason') or 'no reason'})"
                            for n, kv in sorted(bad_nodes.items()))
            checks.append({"name": "slurm job", "ok": False,
                           "detail": f"job {job} {state} on {','.join(where)}"
                                     + (f": {why}" if why else
                                        f" ({info.get('Reason', 'None')})")})
        if fails:
            f0 = fails[0]
            checks.append({"name": "slurm step", "ok": False,
                           "detail": f"node {f0['node']}: task {f0['tasks']}: {f0['what']}"
                                     + (f" (+{len(fails) - 1} more)" if len(fails) > 1 else "")})
        if ranks and self.s.nodes > 1:
            used = sorted(set(ranks.values()))
            checks.append({"name": "ranks across nodes", "ok": len(used) >= self.s.nodes,
                           "evidence": False,
                           "detail": f"{len(ranks)} ranks on {len(used)} nodes ("
                                     + ", ".join(f"{n}: {sum(1 for v in ranks.values() if v == n)}"
                                                 for n in used) + ")"})
        metrics = {"slurm": {"job": job, "job_state": state, "nodelist": info.get("NodeList"),
                             "steps": stage_steps,
                             "ranks": {k: ranks[k] for k in sorted(ranks, key=int)},
                             "bad_nodes": {n: {"state": kv.get("State"),
                                               "reason": kv.get("Reason")}
                                           for n, kv in bad_nodes.items()}}}
        return {"checks": checks, "metrics": metrics,
                "repro": {"slurm_job": job, "slurm_submit": str(self.host)}}

    # -- a run ---------------------------------------------------------------------------------
    def run(self, stages: list[str], options: dict | None = None,
            echo: Callable[[str, str], None] | None = None) -> tuple[str, dict, list]:
        """Allocate, run `stages` in order as steps, release (or cancel). Returns
        (run id, run metadata, outcomes)."""
        from ..profiles import load_profile
        from ..stages.runner import Pipeline
        t_start = time.monotonic()
        info = self.check()
        prof = load_profile(self.s.profile, list(self.s.set))
        opts = dict(options or {}, nranks=self.s.ntasks, command="cluster run")
        pipe = Pipeline(self.engine, prof, self.s.container, opts, echo=echo)
        sel = pipe.select(only=stages)
        from ..stages.locks import ContainerLock
        from ..stages.state import parse_container_state
        # the login container's run lock, as a local run takes it (any home sees it): two runs
        # never build into the one shared workspace at once; the stage state lives there too
        lock = ContainerLock(self.engine, self.s.container, "cluster run",
                             ",".join(s.name for s in sel), on_note=self.say,
                             flagcx_dir=prof.flagcx.dir.rstrip("/"))
        with lock:
            pipe.run_token, pipe.lock = lock.token, lock
            try:
                pipe.reconcile_state((parse_container_state(lock.state_text,
                                                            pipe.container_id), lock.marker))
                pipe.preflight(sel, explicit=True)   # refused: nothing submitted or stored
                return self._run_locked(pipe, prof, sel, info, options, echo, t_start, lock)
            finally:
                pipe.lock = None

    def _run_locked(self, pipe, prof, sel, info, options, echo, t_start, lock):
        from ..results import store
        from ..results.model import Status
        from ..results.verdict import run_status
        from ..stages.state import now
        run_id = store.new_run_id(f"{self.name}-slurm")
        job_name = f"cctl-{self.name}-{run_id}"
        meta = store.run_record(
            run_id, status=Status.RUNNING, profile=prof.name, platform=prof.platform,
            container=self.s.container, started=now(), stages=[s.name for s in sel],
            cluster=self.name, scheduler="slurm",
            slurm={"submit": str(self.host), "partition": info["partition"],
                   "nodes": self.s.nodes, "tasks_per_node": self.s.tasks_per_node,
                   "mpi": self.s.mpi, "runtime": self.s.runtime,
                   "accounting": info["accounting"], "job_name": job_name, "steps": []})
        store.write_run(meta)
        lock.mark(run_id, str(store.run_dir(run_id)))
        outcomes: list = []
        job = None
        steps: list = meta["slurm"]["steps"]

        def finish(crash: store.Crash) -> None:
            if job is not None:
                ok = crash.status is None and all(o.status == "passed" for o in outcomes)
                end = self.release(job, job_name) if ok else self.cancel(job)
                meta["slurm"]["job_state"] = end
                meta["slurm"]["final"] = self.job(job)
                self.say(f"slurm: job {job} {end}")
            self.timings["submit to verdict"] = round(time.monotonic() - t_start, 3)
            meta["slurm"]["timings"] = dict(self.timings)
            store.end_run(meta, Status(run_status(outcomes, [s.name for s in sel], crash.status)),
                          now(), outcomes={o.name: o.status for o in outcomes})
        with store.crash_status(finish):
            job, jinfo = self.allocate(job_name)
            meta["slurm"].update(job=job, nodelist=jinfo.get("NodeList"))
            store.write_run(meta)
            failed: set[str] = set()
            for sd in sel:
                blocked = [r for r in sd.requires if r in failed]
                if blocked:
                    from ..stages.runner import StageOutcome
                    oc = StageOutcome(sd.name, "failed",
                                      f"not run: it needs {blocked[0]}, which failed in this run")
                    oc.record = pipe._record(run_id, sd, oc, 0.0, None)
                    outcomes.append(oc)
                    failed.add(sd.name)
                    continue
                t1 = time.monotonic()
                oc = pipe.run_one(sd, run_id, force=True,
                                  plug=self.plug(job, job_name, sd.name, steps))
                self.timings[f"stage {sd.name}"] = round(time.monotonic() - t1, 3)
                outcomes.append(oc)
                if oc.status != "passed":
                    failed.add(sd.name)
                if oc.status in ("timeout", "interrupted"):
                    break
                if self.job(job).get("JobState") != "RUNNING":
                    break          # the allocation is gone: nothing more can run on it
        return run_id, meta, outcomes

    def ps(self) -> list[dict]:
        """This cluster's jobs as squeue reports them (any home's: the scheduler knows)."""
        a = self.host.run(["squeue", "-h", "-o", "%i|%j|%T|%r|%N"], timeout=20)
        out = []
        for ln in a.out.splitlines() if a.ok else []:
            f = ln.split("|")
            if len(f) == 5 and f[1].startswith(f"cctl-{self.name}-"):
                out.append({"job": f[0], "name": f[1], "state": f[2], "reason": f[3],
                            "nodes": f[4]})
        return out


def render_lines(inv: SlurmInventory, job: str = "$JOB", job_name: str = "cctl-NAME-RUN",
                 stage: str = "perf") -> str:
    """The lines the backend runs for one stage, as text (golden-tested; `cluster export
    --format slurm` prints them for a Slurm inventory): the allocation, the stage's step and the
    ranks' step (launch.srun_line appends -n NRANKS and the program)."""
    s = inv.slurm
    hold = f"{s.workspace}/{STATE_DIR}/{job_name}/release"
    return "\n".join([
        f"# containerctl Slurm backend: cluster {inv.name}, runtime {s.runtime}, "
        f"{s.nodes} nodes x {s.tasks_per_node} tasks, srun --mpi={s.mpi}",
        "# allocation (held until containerctl touches the release marker):",
        quote(alloc_argv(s, job_name, hold)),
        f"# the {stage} stage's script, one step on the first node:",
        quote(step_argv(s, job, stage)) + " bash STAGE_SCRIPT",
        f"# the {stage} stage's ranks, one step across the nodes:",
        quote(ranks_argv(s, job, stage)) + f" -n {s.ntasks} PROGRAM ARGS",
    ]) + "\n"


def sbatch_test_only(host: SubmitHost, argv: list[str]) -> Answer:
    """`sbatch --test-only` of an allocation: Slurm validates it without submitting."""
    return host.run([argv[0], "--test-only", *argv[1:]], timeout=30)
