"""`cluster export`: the same heterogeneous job for a batch system — an sbatch script (pyxis
--container-image, one heterogeneous-job component per host) or a Kubeflow MPIJob manifest.

What it names is what exists: the image is the one the host's container runs, else the
content-hash tag (`containerctl/<spec>:<sha12>`, images/) this machine's engine has or would
build — with how to push it — unless `--image HOST=REF` says where it was pushed; the perf binary
and its options come from the FlagCX checkout's own interface (flagcx.FlagCXInterface): the
newest passed build record of the first host, else a probe of `--source DIR` or the profile's
local source, else an assumed layout that the script says it assumed. No host engine needs to
answer (each is asked with a short bound; the launch lines come from launch.py)."""
from __future__ import annotations

from ..flagcx import assumed_oldest

import posixpath
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ContainerctlError, UsageError
from .inventory import CLUSTER_LABEL
from ..launch import Segment, mpich_mpmd, srun_mpmd
from ..profiles.devices import visible_devices_env

if TYPE_CHECKING:
    from . import Cluster

SSH_DIR = "/root/.ssh"

_DEVICE_RESOURCES = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu", "hygon": "hygon.com/dcu"}


@dataclass
class _JobHost:
    name: str
    image: str
    image_note: str
    slots: int
    binary: str
    wdir: str
    env: dict[str, str]
    platform: str

    def segment(self, args: list[str]) -> Segment:
        return Segment(self.name, self.slots, self.binary, tuple(args), self.wdir, self.env,
                       self.image)


# ---------------------------------------------------------------------------------------------
# what the job runs: the FlagCX interface, the images

def _from_records(container: str):
    """(FlagCXInterface, run id) from the newest passed build record of `container`."""
    from ..flagcx import FlagCXInterface
    from ..results import store
    for run in store.list_runs():                       # newest first
        if run.get("container") != container or \
                (run.get("stage_status") or {}).get("build") != "passed":
            continue
        try:
            rec = store.load_run(run["run_id"])["records"]["build"]
            d = (rec.get("metrics") or {}).get("flagcx_interface")
            if isinstance(d, dict) and d.get("perf_layout"):
                return FlagCXInterface.from_dict(d), run["run_id"]
        except (ContainerctlError, KeyError, TypeError, ValueError):
            continue
    return None, None


def flagcx_interface(cl: "Cluster", source: str | None = None):
    """(interface or None, where it came from: one line for the script's header)."""
    from ..flagcx import probe_local
    h0 = cl.hosts[0]
    if source:
        p = Path(source).expanduser()
        if not p.is_dir():
            raise UsageError(f"--source {source}: not a directory here",
                             "give the local FlagCX checkout the images were built from")
        iface = probe_local(p)
        return iface, f"probed {p}"
    iface, run_id = _from_records(h0.container)
    if iface is not None:
        return iface, f"the passed build of host {h0.name} (run {run_id})"
    try:
        from ..stages.source import resolve_source
        kind, loc, _ref = resolve_source(h0.profile)
    except (ContainerctlError, ImportError):
        kind, loc = "", None
    if kind == "dir" and loc and Path(loc).is_dir():
        try:
            iface = probe_local(Path(loc))
        except (OSError, ValueError) as exc:   # subprocess errors are OSErrors
            return None, f"probe of {loc} failed ({exc})"
        if iface.perf_layout:
            return iface, f"probed {loc} (host {h0.name}'s flagcx.source)"
    return None, None


def _image(cl: "Cluster", h, opts: dict) -> tuple[str, str]:
    """(image reference, a note for the script) for host h."""
    from ..engine import get_engine
    from ..lifecycle import is_image_spec, resolve_image
    from .inventory import reach
    given = (opts.get("images") or {}).get(h.name)
    prof = h.profile
    if given:
        return given, ""
    if not is_image_spec(prof.image):
        return prof.image, ""
    how = (f"push it where the cluster pulls from: docker tag {{tag}} REGISTRY/{prof.image}:"
           f"{{sha}} && docker push REGISTRY/{prof.image}:{{sha}}, then export again with "
           f"--image {h.name}=REGISTRY/{prof.image}:{{sha}}")
    engines = []
    if h.docker.startswith("unix://"):
        try:                       # the image the host's container runs, exactly
            reach(h, bound=5)
            c = h.engine.find(h.container)
            if c is not None and c.image.startswith("containerctl/"):
                t = c.image
                return t, (f"{h.container} runs {t} (built by containerctl from image spec "
                           f"{prof.image}); " + how.format(tag=t, sha=t.rpartition(':')[2]))
            engines.append(h.engine)
        except ContainerctlError:
            pass
    engines.append(get_engine())
    for e in engines:
        try:
            if not e.ping():
                continue
            t = resolve_image(e, prof, build=False)
        except ContainerctlError:
            continue
        if t.endswith("<built-at-up>"):
            continue
        built = e.image_exists(t)
        return t, (f"{t}: image spec {prof.image} as containerctl tags it (content hash) on "
                   f"{e.base_url}" + ("" if built else
                                      f", not built yet: containerctl image build {prof.image}")
                   + "; " + how.format(tag=t, sha=t.rpartition(':')[2]))
    t = f"containerctl/{prof.image}:UNBUILT"
    return t, (f"image spec {prof.image} has no tag yet (its base is not on this machine's "
               f"engine): run `containerctl image build {prof.image}`, export again, then "
               + how.format(tag=f"containerctl/{prof.image}:<sha12>", sha="<sha12>"))


def _job_hosts(cl: "Cluster", opts: dict, iface) -> list[_JobHost]:
    coll = opts.get("coll") or "allreduce"
    mpi_home = cl.inv.cluster.mpi_home
    out = []
    for h in cl.hosts:
        prof = h.profile
        img, note = _image(cl, h, opts)
        fx = prof.flagcx
        root = fx.dir.rstrip("/")
        rel = (iface if iface is not None and iface.perf_layout else
               assumed_oldest()).perf_binary(coll)
        binary = f"{root}/{rel}"
        env = {"PATH": f"{mpi_home}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
                       "/bin",
               "LD_LIBRARY_PATH": f"{root}/build/lib:{mpi_home}/lib"}
        env.update(visible_devices_env(fx))   # the container's rule (no rank count: auto is none)
        env.update(fx.env)
        env.update(h.entry.env)
        out.append(_JobHost(h.name, img, note, h.slots, binary, posixpath.dirname(binary), env,
                            prof.platform))
    return out


def _perf_args(cl: "Cluster", opts: dict, iface) -> list[str]:
    perf = cl.hosts[0].profile.stages.perf
    kw = dict(begin=opts.get("begin") or perf.begin, end=opts.get("end") or perf.end,
              factor=perf.factor, warmup=perf.warmup, iters=perf.iters,
              print_buffer=1 if perf.print_buffer else 0)
    if iface is None or not iface.perf_layout:
        iface = assumed_oldest()
    return iface.perf_args(**kw, dtype="float", op="sum")


def _layout_lines(iface, where: str | None) -> list[str]:
    if iface is not None and iface.perf_layout:
        return [f"FlagCX perf layout {iface.perf_layout} ({iface.perf_bin_dir}/"
                f"{iface.perf_bin_prefix}<coll>), options {iface.perf_getopt or 'unknown'}: "
                f"from {where}"]
    a = assumed_oldest()
    return [f"FlagCX perf layout NOT KNOWN{' (' + where + ')' if where else ''}: assumed "
            f"{a.perf_bin_dir}/{a.perf_bin_prefix}<coll> (the oldest layout, no -d/-o).",
            "If the images hold a newer FlagCX, run `containerctl cluster run` once, or pass "
            "--source DIR (the checkout), and export again."]


def _prepare(cl: "Cluster", opts: dict):
    iface, where = flagcx_interface(cl, opts.get("source"))
    jh = _job_hosts(cl, opts, iface)
    return iface, where, jh, _perf_args(cl, opts, iface)


# ---------------------------------------------------------------------------------------------
# the two formats

def render_slurm(cl: "Cluster", opts: dict) -> str:
    """An sbatch script: one node per inventory host; with different images, environments or
    slot counts, one heterogeneous-job component per host (`#SBATCH hetjob`, srun's `:`
    separated components), each with its own pyxis --container-image. Slurm's PMI starts the
    ranks (srun --mpi=pmi2|pmix): no sshd, no hostfile."""
    mpi = opts.get("mpi") or "pmi2"
    if mpi not in ("pmi2", "pmix"):
        raise UsageError(f"--mpi {mpi!r}: MPICH under srun uses pmi2 or pmix",
                         "pass --mpi pmi2 (or pmix where Slurm has the plugin)")
    iface, where, jh, args = _prepare(cl, opts)
    name = f"cctl-{cl.name}-hetero"
    uniform = len({(j.image, j.slots, tuple(sorted(j.env.items()))) for j in jh}) == 1
    lines = ["#!/bin/bash",
             f"# containerctl cluster export --format slurm: cluster {cl.name} "
             f"({cl.inv.source_file})",
             "# FlagCX and its perf tests must be built in each image at the path below (the",
             f"# image block `flagcx`) and MPICH at {cl.inv.cluster.mpi_home}; pyxis runs the",
             "# containers, Slurm's PMI wires the ranks."]
    lines += [f"# {ln}" for ln in _layout_lines(iface, where)]
    lines += [f"#SBATCH --job-name={name}",
              f"#SBATCH --output={name}-%j.out",
              "#SBATCH --time=01:00:00"]
    if uniform:
        lines += [f"#SBATCH --nodes={len(jh)}", f"#SBATCH --ntasks-per-node={jh[0].slots}"]
    else:
        for i, j in enumerate(jh):
            if i:
                lines.append("#SBATCH hetjob")
            lines += ["#SBATCH --nodes=1", f"#SBATCH --ntasks-per-node={j.slots}"]
    for j in jh:
        if j.image_note:
            lines.append(f"# {j.name}: {j.image_note}")
    lines += ["set -euo pipefail", ""]
    comps = jh[:1] if uniform else jh
    argv = srun_mpmd([j.segment(args) for j in comps], mpi)
    parts, cur = [], []
    for a in argv[2:]:
        if a == ":":
            parts.append(cur)
            cur = []
        else:
            cur.append(a)
    parts.append(cur)
    lines.append(f"srun --mpi={mpi} " + " \\\n  : ".join(shlex.join(p) for p in parts))
    return "\n".join(lines) + "\n"


def render_mpijob(cl: "Cluster", opts: dict) -> str:
    """A Kubeflow MPIJob (kubeflow.org/v2beta1, mpiImplementation MPICH): one Worker replica
    per inventory host running sshd on the mesh port, a Launcher running the same mpirun as
    `cluster run` (-f the operator's hostfile, per-host -env in MPMD segments). An MPIJob has
    one Worker template, so every host must share the image and the slot count."""
    import yaml
    iface, where, jh, args = _prepare(cl, opts)
    imgs = {j.image for j in jh}
    if len(imgs) > 1:
        raise UsageError("an MPIJob has one Worker template, but the hosts run different images: "
                         + ", ".join(f"{j.name}={j.image}" for j in jh),
                         "use --format slurm (one heterogeneous-job component per host)")
    slots = {j.slots for j in jh}
    if len(slots) > 1:
        raise UsageError("an MPIJob has one slotsPerWorker, but the hosts have different slots: "
                         + ", ".join(f"{j.name}={j.slots}" for j in jh),
                         "give every host the same `slots`, or use --format slurm")
    port = cl.inv.cluster.ssh_port
    cmd = mpich_mpmd(f"{cl.inv.cluster.mpi_home}/bin/mpirun", "/etc/mpi/hostfile",
                     [j.segment(args) for j in jh])
    worker = {"name": "worker", "image": jh[0].image,
              "command": ["/bin/sh", "-c", f"ssh-keygen -A && mkdir -p /run/sshd && "
                                           f"exec /usr/sbin/sshd -De -p {port}"]}
    res = _DEVICE_RESOURCES.get(jh[0].platform)
    if res:
        worker["resources"] = {"limits": {res: jh[0].slots}}
    doc = {
        "apiVersion": "kubeflow.org/v2beta1",
        "kind": "MPIJob",
        # the operator names pods <name>-worker-<i>, which must be DNS-1035 labels: no '.'
        "metadata": {"name": f"cctl-{cl.name.replace('.', '-')}-hetero",
                     "labels": {CLUSTER_LABEL: cl.name}},
        "spec": {
            "slotsPerWorker": jh[0].slots,
            "mpiImplementation": "MPICH",
            "sshAuthMountPath": SSH_DIR,
            "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 0},
            "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "template": {"spec": {"containers": [{
                    "name": "launcher", "image": jh[0].image, "command": cmd,
                    "env": [{"name": "HYDRA_LAUNCHER", "value": "ssh"},
                            {"name": "HYDRA_LAUNCHER_EXTRA_ARGS", "value": f"-p {port}"}]}]}}},
                "Worker": {"replicas": len(jh), "template": {"spec": {"containers": [worker]}}},
            },
        },
    }
    head = (f"# containerctl cluster export --format mpijob: cluster {cl.name} "
            f"({cl.inv.source_file}); worker i runs host i's ranks (hostfile order)\n")
    head += "".join(f"# {ln}\n" for ln in _layout_lines(iface, where))
    notes = "".join(f"# {j.name}: {j.image_note}\n" for j in jh[:1] if j.image_note)
    return head + notes + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
