"""What a cluster runs: deps → build on every host at once (the single-host Pipeline, one per host,
each in its own thread), then the `hetero` stage — the perf tests built against MPICH on every
host at once (role build), one MPICH launch from the first host (role launch; argv from
launch.py), and a stage record in a run of its own.

The hetero execution below is the cluster's own small executor; it is meant to move onto the
runner's single executor (with launch.py plugging in the multi-host argv)."""
from __future__ import annotations

import hashlib
import shlex
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from .. import __version__
from ..errors import ContainerctlError, StageError, UsageError
from ..runspec import LABEL
from .inventory import Host, mpich_hostfile
from ..launch import Segment, hetero_runs
from ..profiles.devices import visible_devices_env
from .parallel import each

if TYPE_CHECKING:
    from . import Cluster
    from ..stages.locks import ContainerLock

MESH_DIR = "/var/tmp/containerctl"
Echo = Callable[[str, str], None]


def kill_stage(h: Host, stage: str) -> None:
    """Stop the stage session `stage` in h's container (stages/executor.KILL_SCRIPT by its session id),
    for a Ctrl-C that the main thread received while a worker thread ran the stage."""
    from ..stages.state import IN_CONTAINER_DIR
    d = f"{IN_CONTAINER_DIR}/{stage}"
    h.engine.exec(h.container, ["bash", "-c", f'[ -f {d}/kill.sh ] && bash {d}/kill.sh '
                                              f'{d}/session "" || true'])


@contextmanager
def hold_hosts(cl: "Cluster", what: str) -> Iterator[dict[str, "ContainerLock"]]:
    """Every host's container run lock (stages/locks.py, the one a single-host run holds), taken
    before anything runs and held to the end: {host name: lock}. Taken one after another in one
    fixed order (engine URL, then container name), so two cluster runs over overlapping hosts
    queue instead of each holding a part; a busy host refuses the whole run (exit 2, naming the
    host and the holder) and the locks already taken are given back. Released on every way out
    (passed, failed, Ctrl-C), after what the body's own guard does on its way out."""
    from ..stages.locks import ContainerLock
    for h in cl.hosts:
        cl.require(h)
    locks: dict[str, ContainerLock] = {}
    try:
        for h in sorted(cl.hosts, key=lambda h: (h.docker, h.container)):
            lock = ContainerLock(h.engine, h.container, "cluster",
                                 f"{what} of cluster {cl.name} (host {h.name})",
                                 on_note=lambda m, n=h.name: cl.progress(n, m),
                                 flagcx_dir=h.profile.flagcx.dir.rstrip("/"))
            try:
                lock.acquire()
            except UsageError as exc:
                raise UsageError(f"host {h.name}: {exc.message}; nothing was started on any "
                                 "host", exc.hint) from None
            locks[h.name] = lock
        yield locks
    finally:
        for lock in reversed(list(locks.values())):
            lock.release()


def build(cl: "Cluster", options: dict | None = None, echo: Echo | None = None,
          force: bool = False, stages: list[str] | tuple = ("deps", "build")
          ) -> list[tuple[str, str, list]]:
    """deps → build (or `stages`, then run as asked for) in every host's container at once.
    Returns (host, run id, outcomes).
    With several hosts the stages' output goes to their logs only (one line per host per stage
    here); with one host it streams through `echo` as `containerctl run` does."""
    from ..stages.runner import Pipeline
    hosts = cl.hosts
    for h in hosts:
        cl.require(h)
    stream = echo if (echo and len(hosts) == 1) else None
    durations: dict[str, dict[str, float]] = {}

    def one(h: Host):
        pipe = Pipeline(h.engine, h.profile, h.container, dict(options or {}),
                        echo=(lambda st, ln, n=h.name: stream(f"{n}:{st}", ln)) if stream else None,
                        status=(lambda m, n=h.name: cl.progress(n, m)) if stream else None)
        explicit = tuple(stages) != ("deps", "build")
        run_id, outcomes = pipe.run(pipe.select(only=list(stages)), force=force,
                                    explicit=explicit, lock=locks[h.name])
        durations[h.name] = {}
        for o in outcomes:
            d = float((o.record or {}).get("duration_s") or 0.0)
            durations[h.name][o.name] = d
            cl.progress(h.name, f"{o.name} {o.status} {d:.1f}s" +
                        ("" if o.status in ("passed", "skipped") else f": {o.message}"))
        bad = [o for o in outcomes if o.status not in ("passed", "skipped")]
        if bad:
            raise StageError(f"host {h.name}: stage {bad[0].name} {bad[0].status}: "
                             f"{bad[0].message}", f"see containerctl results show {run_id}")
        return h.name, run_id, outcomes

    t0 = time.monotonic()
    try:
        with hold_hosts(cl, ",".join(stages)) as locks:
            out = each(hosts, one, what="deps and build",
                       on_interrupt=lambda h: [kill_stage(h, s) for s in stages])
    finally:
        # per phase: the slowest host's stage (they ran side by side)
        for st in stages:
            vals = [d.get(st, 0.0) for d in durations.values()]
            if vals:
                cl.progress.timings[st] = round(max(vals), 3)
        cl.progress.timings["deps+build"] = round(time.monotonic() - t0, 3)
    return out


def check_built(cl: "Cluster") -> None:
    from ..stages.state import load_state
    for h in cl.hosts:
        c = cl.require(h)
        st = load_state(h.container, c.id)
        build_state = st["stages"].get("build", {})
        h.iface = _interface(build_state.get("interface"))
        if build_state.get("status") != "passed":
            raise UsageError(f"stage hetero needs build, which has not passed on host "
                             f"{h.name} ({h.container})",
                             f"run it first: containerctl cluster run --hosts "
                             f"{cl.inv.source_file}")


def _interface(d):
    """FlagCXInterface from a stored dict (build state or record), or None."""
    if not isinstance(d, dict):
        return None
    try:
        from ..flagcx import FlagCXInterface
        return FlagCXInterface.from_dict(d)
    except (ImportError, TypeError, ValueError):
        return None


def ctx_common(cl: "Cluster", run_id: str) -> dict:
    c = cl.inv.cluster
    entries = [(h.address or h.name, h.slots) for h in cl.hosts]
    return {"name": cl.name, "mpi_home": c.mpi_home, "ssh_port": c.ssh_port,
            "hostfile": mpich_hostfile(entries), "runs": [],
            "stage_dir": f"{MESH_DIR}/hetero/{run_id}"}


def read_build_output(h: Host, text: str) -> None:
    """The role-build protocol lines: CCTL_HOSTENV K=V (the ranks' environment) and CCTL_BIN
    coll=… layout=… wdir=… path=… (the perf binaries); the profile's and inventory's env on top."""
    from ..stages.markers import line_value   # the stage protocol's one vocabulary
    env: dict[str, str] = {}
    h.bins = {}
    for ln in text.splitlines():
        if (rest := line_value("hostenv", ln)) is not None and "=" in rest:
            k, _, v = rest.partition("=")
            env[k] = v
        elif (rest := line_value("rankout", ln)) is not None:
            h.rankout = rest.strip() or None
        elif (rest := line_value("stdbuf", ln)) is not None:
            h.stdbuf = rest.strip() or None
        elif (rest := line_value("bin", ln)) is not None and " path=" in rest:
            kv = dict(p.split("=", 1) for p in rest.split(" ") if "=" in p)
            h.bins[kv["coll"]] = (kv.get("layout", "v0.11"), kv.get("wdir", ""), kv["path"])
    fx = h.profile.flagcx
    env.update(visible_devices_env(fx))   # the container's rule (no rank count: auto is none)
    env.update(fx.env)
    env.update(h.entry.env)
    for k in ("PATH", "LD_LIBRARY_PATH"):
        if env.get(k):
            env[k] = ":".join(dict.fromkeys(p for p in env[k].split(":") if p))
    h.env = env


def perf_args(h: Host, perf, layout: str, extra: list[str]) -> list[str]:
    """The perf arguments for h's binaries, from the FlagCX interface its build stage probed
    (-d/-o only where that checkout's getopt has them)."""
    if h.iface is None or not h.iface.perf_layout:
        raise StageError(f"host {h.name}: its build record holds no probed FlagCX interface",
                         "run the build again: containerctl cluster run --force --hosts FILE")
    return h.iface.perf_args(begin=perf.begin, end=perf.end, factor=perf.factor,
                             warmup=perf.warmup, iters=perf.iters,
                             print_buffer=int(bool(perf.print_buffer)),
                             dtype=perf.dtype or "float", op=perf.op or "sum", extra=extra)


def launch_commands(cl: "Cluster", ctx: dict, run_id: str) -> list[dict]:
    colls = [c.strip("'\"") for c in shlex.split(ctx["colls"])]
    extra = shlex.split(ctx["perf_extra"]) if ctx.get("perf_extra") else \
        [str(a) for a in (ctx["perf"].extra_args or [])]
    per_coll: dict[str, list[Segment]] = {}
    for coll in colls:
        segs = []
        for h in cl.hosts:
            if coll not in h.bins:
                raise StageError(f"host {h.name}: no perf binary for {coll}", "see the hetero log")
            layout, wdir, path = h.bins[coll]
            args = tuple(perf_args(h, ctx["perf"], layout, extra))
            if getattr(h, "stdbuf", None):
                # whole lines per write: ranks' lines then interleave only at line boundaries
                path, args = h.stdbuf, ("-oL", "-eL", path, *args)
            if getattr(h, "rankout", None):
                # every rank its own output file (gathered by the launch), rank 0 also streams
                path, args = h.rankout, (rank_dir(run_id, coll), path, *args)
            segs.append(Segment(h.name, h.slots, path, args, wdir, h.env))
        per_coll[coll] = segs
    runs = hetero_runs(f"{cl.inv.cluster.mpi_home}/bin/mpirun",
                       f"{MESH_DIR}/hetero/{run_id}/hostfile", per_coll, run_id)
    if all(getattr(h, "rankout", None) for h in cl.hosts):
        for r in runs:
            r["rank_dir"] = rank_dir(run_id, r["coll"])
    return runs


def rank_dir(run_id: str, coll: str) -> str:
    return f"{MESH_DIR}/hetero/{run_id}/ranks/{coll}"


CLEANUP_SCRIPT = r"""run=$1; n=0
for sig in TERM KILL; do
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$$" ] && continue
    if tr '\0' '\n' 2>/dev/null < "$p/environ" | grep -qxF "CCTL_HETERO_RUN=$run"; then
      kill -$sig "$pid" 2>/dev/null && [ $sig = TERM ] && n=$((n+1))
    fi
  done
  [ $n = 0 ] && break
  sleep 1
done
echo $n
"""


def cleanup(cl: "Cluster", run_id: str, emit: Callable[[str, str], None]) -> None:
    """Kill whatever still carries this run's marker on any host (a timeout or Ctrl-C kills
    the launcher's session on the first host; ranks elsewhere are found by the marker)."""
    def one(h: Host) -> None:
        try:
            _code, out = h.engine.exec_capture(h.container, ["bash", "-c", CLEANUP_SCRIPT,
                                                             "cleanup", run_id])
        except ContainerctlError:
            return
        n = out.strip()
        if n and n != "0":
            emit(f"[{h.name}] ", f"cleanup: killed {n} leftover process(es) of this run")
    each(cl.hosts, one, what="cleaning up the run")


def repro(cl: "Cluster", ctx: dict | None) -> dict:
    r: dict = {"containerctl": __version__, "cluster": cl.name,
               "inventory": cl.inv.source_file,
               "mpi_home": cl.inv.cluster.mpi_home, "ssh_port": cl.inv.cluster.ssh_port}
    if ctx and ctx.get("cluster"):
        r["hostfile"] = ctx["cluster"]["hostfile"]
        if ctx["cluster"].get("runs"):
            r["mpirun"] = [x["display"] for x in ctx["cluster"]["runs"]]
    hosts = []
    for h in cl.hosts:
        d = {"name": h.name, "container": h.container, "docker": h.docker,
             "profile": h.profile.name, "profile_file": h.profile.source_file,
             "profile_hash": hashlib.sha256(
                 h.profile.model_dump_json().encode()).hexdigest()[:16],
             "mpich": h.mpich, "env": h.env}
        try:
            info = h.engine.inspect(h.container)
            d["image_id"] = info.get("Image")
            d["config_hash"] = (info["Config"].get("Labels") or {}).get(LABEL + "config-hash")
        except ContainerctlError:
            pass
        hosts.append(d)
    r["hosts"] = hosts
    return r


def hetero(cl: "Cluster", options: dict | None = None, echo: Echo | None = None,
           checked: bool = False) -> tuple[str, dict]:
    """Verify the mesh and MPICH (unless `checked`: they just were), then the hetero stage
    through the runner's one executor: `hetero-build` on every host at once (a record per
    host), then `hetero` on the first host with the multi-host launch plugged in (launch.py's
    argv, every rank's own output file gathered from every host). Returns (run id, record).
    Every host's run lock is held from before the first check to after the cleanup: no stage
    from any home runs in a host's container meanwhile, and a busy host refuses the run."""
    from ..results import store
    from ..stages.catalog import get_def
    from ..results.model import Status
    from ..results.verdict import run_status
    from ..stages.context import as_lines
    from ..stages.runner import Pipeline, StageOutcome, StagePlug
    from ..stages.state import now
    options = dict(options or {})
    echo = echo or (lambda _s, _l: None)
    sd_build, sd = get_def("hetero-build"), get_def("hetero")
    hosts = cl.hosts
    with hold_hosts(cl, "hetero") as locks:
        if not checked:
            for w in cl.warnings():
                cl.warn(w)
        check_built(cl)
        if not checked:
            cl.verify()
            cl.ensure_mpich()
        total = sum(h.slots for h in hosts)
        profiles = list(dict.fromkeys(h.profile.name for h in hosts))
        platforms = list(dict.fromkeys(h.profile.platform for h in hosts))
        run_id = store.new_run_id(f"{cl.name}-hetero")
        meta = store.run_record(run_id, status=Status.RUNNING, profile="+".join(profiles),
                                platform="+".join(platforms),
                                container=",".join(h.container for h in hosts), started=now(),
                                stages=["hetero"], cluster=cl.name, hosts=[h.name for h in hosts])
        store.write_run(meta)
        for h in hosts:     # a run whose CLI dies is closed by the next command taking the lock
            locks[h.name].mark(run_id, str(store.run_dir(run_id)))
        c = cl.inv.cluster
        show = len(hosts) == 1
        outcomes: list = []
        rec: dict = {}

        def finish(crash: store.Crash) -> None:
            cleanup(cl, run_id, lambda prefix, text: echo("hetero", prefix + text))
            store.end_run(meta, Status(run_status(outcomes, ["hetero"], crash.status)), now())
        with store.crash_status(finish):
            bt0 = time.monotonic()

            def build_one(h: Host):
                t1 = time.monotonic()
                pipe = Pipeline(h.engine, h.profile, h.container, options,
                                echo=(lambda st, ln, n=h.name: echo("hetero", f"[{n}] {ln}"))
                                if show else None)
                pipe.run_token = locks[h.name].token    # the holder's watchdog knows its processes
                name = f"hetero-build-{h.name}"
                oc = pipe.run_one(sd_build, run_id, force=True, plug=StagePlug(
                    name=name, env={"CCTL_CLUSTER_MPI_HOME": c.mpi_home}))
                log = store.run_dir(run_id) / "logs" / f"{name}.log"
                text = log.read_text(errors="replace") if log.is_file() else ""
                if oc.status == "passed":
                    read_build_output(h, text)
                    cl.progress(h.name, f"perf tests built ({len(h.bins)} binaries) "
                                        f"{time.monotonic() - t1:.1f}s")
                else:
                    cl.progress(h.name, f"perf tests not built: {oc.message} (log {log})")
                return oc
            built = each(hosts, build_one, what="building the perf tests",
                         on_interrupt=lambda h: kill_stage(h, f"hetero-build-{h.name}"))
            cl.progress.timings["perf-build"] = round(time.monotonic() - bt0, 3)
            first = Pipeline(hosts[0].engine, hosts[0].profile, hosts[0].container,
                             dict(options, nranks=total), echo=echo)
            first.run_token = locks[hosts[0].name].token
            hosts_check = {"name": "hosts", "ok": True, "detail": f"{total} ranks across "
                           f"{len(hosts)} hosts (" + ", ".join(f"{h.name}={h.address}:{h.slots}"
                                                               for h in hosts) + ")",
                           "evidence": False}   # where it ran, no measurement: never a pass alone
            host_metrics = [{"name": h.name, "address": h.address, "profile": h.profile.name,
                             "platform": h.profile.platform, "slots": h.slots, "mpich": h.mpich,
                             "docker": h.docker} for h in hosts]
            bad = [(h, oc) for h, oc in zip(hosts, built) if oc.status != "passed"]
            if bad:
                h, boc = bad[0]
                oc = StageOutcome("hetero", "failed" if boc.status == "failed" else boc.status,
                                  f"not run: the perf tests did not build on host {h.name}: "
                                  f"{boc.message}")
                rec = first._record(run_id, sd, oc, 0.0, None, metrics={"hosts": host_metrics},
                                    checks=[hosts_check], repro=repro(cl, None))
                oc.record = rec
                outcomes = [oc]
            else:
                lt0 = time.monotonic()
                runs = launch_commands(cl, first.ctx, run_id)
                env = {"CCTL_HOSTFILE": mpich_hostfile([(h.address or h.name, h.slots)
                                                        for h in hosts]).rstrip("\n"),
                       "CCTL_STAGE_DIR": f"{MESH_DIR}/hetero/{run_id}",
                       "CCTL_SSH_PORT": str(c.ssh_port), "CCTL_RUN_COUNT": str(len(runs))}
                for i, r in enumerate(runs):
                    env[f"CCTL_RUN_{i}_COLL"] = r["coll"]
                    env[f"CCTL_RUN_{i}_ARGV"] = as_lines(r["argv"], "the hetero launch")
                    env[f"CCTL_RUN_{i}_RANKDIR"] = r.get("rank_dir", "")
                rp = repro(cl, {"cluster": {"hostfile": env["CCTL_HOSTFILE"], "runs": runs}})
                oc = first.run_one(sd, run_id, force=True, plug=StagePlug(
                    env=env, checks_first=[hosts_check], metrics={"hosts": host_metrics},
                    repro=rp))
                cl.progress.timings["launch"] = round(time.monotonic() - lt0, 3)
                rec = oc.record
                outcomes = [oc]
        return run_id, rec
