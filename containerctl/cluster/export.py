"""`cluster export`: the same heterogeneous job for a batch system — an sbatch script (pyxis
--container-image, one heterogeneous-job component per host) or a Kubeflow MPIJob manifest. Pure:
no engine is needed."""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from . import Cluster

CLUSTER_LABEL = "io.containerctl.cluster"
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


def _job_hosts(cl: "Cluster", opts: dict) -> list[_JobHost]:
    from ..lifecycle import is_image_spec
    coll = opts.get("coll") or "allreduce"
    mpi_home = cl.inv.cluster.mpi_home
    out = []
    for h in cl.hosts:
        prof = h.profile
        img = (opts.get("images") or {}).get(h.name)
        note = ""
        if not img:
            if is_image_spec(prof.image):
                img = f"containerctl/{prof.image}:latest"
                note = (f"built by containerctl (image spec {prof.image}): push it to a registry "
                        f"the cluster can pull from and pass --image {h.name}=REF")
            else:
                img = prof.image
        fx = prof.flagcx
        wdir = f"{fx.dir.rstrip('/')}/test/perf"
        env = {"PATH": f"{mpi_home}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
                       "/bin",
               "LD_LIBRARY_PATH": f"{fx.dir.rstrip('/')}/build/lib:{mpi_home}/lib"}
        if fx.visible_devices_env and fx.visible_devices is not None:
            env[fx.visible_devices_env] = fx.visible_devices
        env.update(fx.env)
        env.update(h.entry.env)
        out.append(_JobHost(h.name, img, note, h.slots, f"{wdir}/test_{coll}", wdir, env,
                            prof.platform))
    return out


def _perf_args(cl: "Cluster", opts: dict) -> list[str]:
    perf = cl.hosts[0].profile.stages.perf
    return ["-b", str(opts.get("begin") or perf.begin), "-e", str(opts.get("end") or perf.end),
            "-f", str(perf.factor), "-w", str(perf.warmup), "-n", str(perf.iters),
            "-p", "1" if perf.print_buffer else "0"]


def render_slurm(cl: "Cluster", opts: dict) -> str:
    """An sbatch script: one node per inventory host; with different images, environments or
    slot counts, one heterogeneous-job component per host (`#SBATCH hetjob`, srun's `:`
    separated components), each with its own pyxis --container-image. Slurm's PMI starts the
    ranks (srun --mpi=pmi2|pmix): no sshd, no hostfile."""
    mpi = opts.get("mpi") or "pmi2"
    if mpi not in ("pmi2", "pmix"):
        raise UsageError(f"--mpi {mpi!r}: MPICH under srun uses pmi2 or pmix",
                         "pass --mpi pmi2 (or pmix where Slurm has the plugin)")
    jh = _job_hosts(cl, opts)
    args = _perf_args(cl, opts)
    name = f"cctl-{cl.name}-hetero"
    uniform = len({(j.image, j.slots, tuple(sorted(j.env.items()))) for j in jh}) == 1
    q = shlex.quote
    lines = ["#!/bin/bash",
             f"# containerctl cluster export --format slurm: cluster {cl.name} "
             f"({cl.inv.source_file})",
             "# FlagCX and its perf tests must be built in each image at the path below (the",
             "# image block `flagcx`; FlagCX >= v0.12 names them build/bin/perf_<coll>) and MPICH",
             f"# at {cl.inv.cluster.mpi_home}; pyxis runs the containers, Slurm's PMI wires the ranks.",
             f"#SBATCH --job-name={name}",
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
    parts = []
    for i, j in enumerate(comps):
        comp = [f"--container-image={q(j.image)}", f"--container-workdir={q(j.wdir)}",
                "--export=ALL", "env"]
        comp += [q(f"{k}={v}") for k, v in j.env.items()]
        comp += [q(j.binary)] + args
        parts.append(" ".join(comp))
    lines.append(f"srun --mpi={mpi} " + " \\\n  : ".join(parts))
    return "\n".join(lines) + "\n"


def render_mpijob(cl: "Cluster", opts: dict) -> str:
    """A Kubeflow MPIJob (kubeflow.org/v2beta1, mpiImplementation MPICH): one Worker replica
    per inventory host running sshd on the mesh port, a Launcher running the same mpirun as
    `cluster run` (-f the operator's hostfile, per-host -env in MPMD segments). An MPIJob has
    one Worker template, so every host must share the image and the slot count."""
    import yaml
    jh = _job_hosts(cl, opts)
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
    mpirun = f"{cl.inv.cluster.mpi_home}/bin/mpirun"
    args = _perf_args(cl, opts)
    cmd = [mpirun, "-f", "/etc/mpi/hostfile", "-genvnone"]
    for i, j in enumerate(jh):
        if i:
            cmd.append(":")
        cmd += ["-n", str(j.slots), "-wdir", j.wdir]
        for k, v in j.env.items():
            cmd += ["-env", k, v]
        cmd += [j.binary] + args
    worker = {"name": "worker", "image": jh[0].image,
              "command": ["/bin/sh", "-c", f"ssh-keygen -A && mkdir -p /run/sshd && "
                                           f"exec /usr/sbin/sshd -De -p {port}"]}
    res = _DEVICE_RESOURCES.get(jh[0].platform)
    if res:
        worker["resources"] = {"limits": {res: jh[0].slots}}
    doc = {
        "apiVersion": "kubeflow.org/v2beta1",
        "kind": "MPIJob",
        "metadata": {"name": f"cctl-{cl.name}-hetero",
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
    notes = "".join(f"# {j.name}: {j.image_note}\n" for j in jh[:1] if j.image_note)
    return head + notes + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
