"""Multi-host (heterogeneous) runs, runbook §4, from a hosts inventory. Where things are:

  inventory.py  the hosts YAML, each host resolved (profile, its own Engine, container name),
                the bounded engine reachability check, hostfile / ssh config text
  parallel.py   one function per host in threads: bounded waits, Ctrl-C to every host,
                one progress line per host per phase
  mesh.py       the cluster's keypair, sshd in every container, passwordless ssh verified
                (each host tests all peers in one exec, all hosts at once)
  mpi.py        the same MPICH at the same path everywhere (from the PyPI wheel)
  ../launch.py  every launch argv (one host, MPICH MPMD, srun) as pure functions
  run.py        deps → build on every host at once, and the `hetero` stage
  export.py     the same job as an sbatch script or a Kubeflow MPIJob

`Cluster` below is the thin facade the CLI uses. Nothing here talks to Docker except through
engine.Engine; nothing launches ranks except mpirun.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import paths
from ..engine import MANAGED, ContainerInfo
from ..errors import ContainerctlError, HostError, UsageError
from ..runspec import LABEL
from . import mesh as _mesh
from . import mpi as _mpi
from . import run as _run
from .export import render_mpijob, render_slurm
from .inventory import (CLUSTER_LABEL, HOST_LABEL, Host, Inventory, discover, reach, require,
                        resolve_hosts, single_device_warnings)
from .mpi import cache_dir, extract_wheel_data
from .parallel import Progress, each, since

__all__ = ["Cluster", "Host", "HostRow", "CLUSTER_LABEL", "HOST_LABEL", "cache_dir",
           "extract_wheel_data", "render_slurm", "render_mpijob"]

Say = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


@dataclass
class HostRow:
    host: str
    container: str
    docker: str
    status: str
    image: str = ""
    address: str = ""
    profile: str = ""


class Cluster:
    """One inventory's cluster. `say` gets progress lines (`host: phase …`), `warn` warnings,
    `on_line` image build output (prefixed with the host)."""

    def __init__(self, inv: Inventory, say: Say | None = None, warn: Say | None = None,
                 on_line: Say | None = None):
        self.inv = inv
        self.name = inv.cluster.name
        self.say = say or _quiet
        self.warn = warn or _quiet
        self.on_line = on_line or _quiet
        self.progress = Progress(self.say)
        self._hosts: list[Host] | None = None

    @property
    def hosts(self) -> list[Host]:
        if self._hosts is None:
            self._hosts = resolve_hosts(self.inv)
        return self._hosts

    @property
    def timings(self) -> dict[str, float]:
        """Wall seconds per phase of the last up / mesh / mpich / deps / build / launch."""
        return self.progress.timings

    def warnings(self) -> list[str]:
        return single_device_warnings({h.name: h.slots for h in self.hosts})

    def require(self, h: Host) -> ContainerInfo:
        return require(h, self.inv.source_file)

    _require = require

    # -- keys -------------------------------------------------------------------------------
    def key_dir(self) -> Path:
        return paths.home() / "clusters" / self.name

    def keypair(self) -> tuple[Path, Path]:
        return _mesh.keypair(self.key_dir(), self.name)

    # -- up / down / ps ---------------------------------------------------------------------
    def up(self, force_recreate: bool = False) -> list[tuple[str, str, str]]:
        """Every host's container from its own profile, all at once; then the mesh. Returns
        (host, container, action)."""
        for w in self.warnings():
            self.warn(w)
        hosts = self.hosts
        with self.progress.phase("up"):
            done = each(hosts, lambda h: self._up_host(h, force_recreate),
                        what="bringing the hosts up")
        self.mesh()
        return done

    def _up_host(self, h: Host, force_recreate: bool) -> tuple[str, str, str]:
        """lifecycle.up's convergence on the host's own engine, with the cluster's labels —
        after the engine answered within the bound, and never over another's container."""
        from .. import lifecycle
        t0 = time.monotonic()
        reach(h)
        c = h.engine.find(h.container)
        if c is not None and MANAGED in c.labels and \
                (c.labels.get(CLUSTER_LABEL), c.labels.get(HOST_LABEL)) != (self.name, h.name):
            owner = (f"host {c.labels.get(HOST_LABEL)} of cluster {c.labels.get(CLUSTER_LABEL)}"
                     if CLUSTER_LABEL in c.labels else
                     f"profile {c.labels.get(LABEL + 'profile', '?')} (a single-host container)")
            raise UsageError(f"host {h.name}: a container named {h.container} exists on "
                             f"{h.docker} and belongs to {owner}",
                             "remove it (containerctl down --name / cluster down), or rename "
                             "this cluster")
        for old in h.engine.list(labels=h.labels(self.name)):
            if old.name != h.container:      # this host's container under an older name
                with lifecycle.name_lock(old.name):
                    h.engine.remove(old.name, force=True)
                self.progress(h.name, f"removed {old.name} (its container under an older "
                                      "naming scheme; its workspace volume is kept)")
        res = lifecycle.up(h.engine, h.profile, h.container, force_recreate,
                           on_line=lambda ln, n=h.name: self.on_line(f"{n}: {ln}"),
                           extra_labels=h.labels(self.name))
        action = "up to date" if res.action == "noop" else res.action
        h.address = discover(h, self.inv.cluster.network)
        self.progress(h.name, f"up {since(t0)} ({h.container} {action}, {h.address})")
        return h.name, h.container, action

    def _engines(self) -> list[Host]:
        """One host per distinct engine endpoint (its Engine lists that endpoint's containers)."""
        seen: dict[str, Host] = {}
        for h in self.hosts:
            seen.setdefault(h.docker, h)
        return list(seen.values())

    def down(self, volumes: bool = False) -> list[str]:
        """Remove every container labelled with this cluster on every endpoint (its processes
        go with it; hosts dropped from the inventory included), the workspace volumes with
        --volumes, and the cluster's keys. Unreachable engines are reported, not skipped."""
        from .. import lifecycle
        from ..runspec import workspace_volume_name
        names = {h.name for h in self.hosts}
        kept: list[str] = []

        def one(rep: Host) -> tuple[list[str], list[str]]:
            removed: list[str] = []
            try:
                reach(rep)
                mine = rep.engine.list(labels={CLUSTER_LABEL: self.name})
                for c in mine:      # a stage running anywhere refuses before anything goes
                    lifecycle.refuse_busy(rep.engine, c.name, "cluster down")
                for c in mine:
                    host = c.labels.get(HOST_LABEL, "?")
                    with lifecycle.name_lock(c.name):
                        vol = c.labels.get(LABEL + "workspace-volume")
                        own = volumes and vol and lifecycle.own_volume(rep.engine, vol, c.name, c)
                        rep.engine.remove(c.id, force=True)
                        removed.append(f"{host}: {c.name}")
                        if own:
                            rep.engine.remove_volume(vol)
                            removed.append(f"{host}: volume {vol}")
                        elif volumes and vol and own is False:
                            kept.append(f"{host}: volume {vol} (not made by containerctl for "
                                        f"{c.name}: left alone)")
                if volumes:      # volumes whose container is already gone: only labelled ones
                    for h in self.hosts:
                        vol = workspace_volume_name(h.container)
                        if h.docker != rep.docker or h.name not in names or \
                                f"{h.name}: volume {vol}" in removed:
                            continue
                        own = lifecycle.own_volume(rep.engine, vol, h.container, None)
                        if own:
                            rep.engine.remove_volume(vol)
                            removed.append(f"{h.name}: volume {vol}")
                        elif own is False:
                            kept.append(f"{h.name}: volume {vol} (not made by containerctl for "
                                        f"{h.container}: left alone)")
            except ContainerctlError as exc:
                return removed, [exc.message]
            return removed, []
        got = each(self._engines(), one, what="removing the cluster")
        removed = [r for rs, _p in got for r in rs]
        problems = [p for _r, ps in got for p in ps]
        if problems:
            raise HostError("cluster down incomplete: " + "; ".join(problems),
                            "fix the engine connection and run `containerctl cluster down` again")
        shutil.rmtree(self.key_dir(), ignore_errors=True)
        self.left_alone = kept     # volumes of the cluster's names that containerctl did not make
        return removed

    def ps(self) -> list[HostRow]:
        """Each host's container (found by the cluster's labels), all hosts at once."""
        def one(h: Host) -> list[HostRow]:
            try:
                reach(h)
                found = h.engine.list(labels=h.labels(self.name))
            except ContainerctlError as exc:
                return [HostRow(h.name, h.container, h.docker, f"unreachable: {exc.message}",
                                profile=h.profile.name)]
            if not found:
                return [HostRow(h.name, h.container, h.docker, "absent", profile=h.profile.name)]
            rows = []
            for c in found:
                addr = h.entry.address or ""
                if c.running and not addr and c.name == h.container:
                    try:
                        addr = discover(h, self.inv.cluster.network)
                    except ContainerctlError:
                        addr = ""
                rows.append(HostRow(h.name, c.name, h.docker, c.status, c.image, addr,
                                    c.labels.get(LABEL + "profile", h.profile.name)))
            return rows
        return [r for rows in each(self.hosts, one, what="listing the cluster") for r in rows]

    # -- ssh mesh ---------------------------------------------------------------------------
    def _addresses(self) -> None:
        def one(h: Host) -> None:
            self.require(h)
            h.address = discover(h, self.inv.cluster.network)
        each([h for h in self.hosts if h.address is None], one, what="finding the addresses")

    def mesh(self) -> None:
        """sshd on the port in every container, the cluster key and a client config in each,
        then passwordless ssh verified each → each."""
        with self.progress.phase("mesh"):
            port = self.inv.cluster.ssh_port
            key, pub = self.keypair()
            self._addresses()
            _mesh.configure(self.hosts, self.name, port, key, pub, self.progress)
            self.verify()

    def verify(self) -> None:
        """Passwordless ssh from every container to every container, all at once; the error
        names every failing pair."""
        self._addresses()
        _mesh.verify(self.hosts, self.inv.cluster.ssh_port, self.progress)

    # -- MPICH, build, hetero ---------------------------------------------------------------
    def ensure_mpich(self) -> dict[str, str]:
        for h in self.hosts:
            self.require(h)
        with self.progress.phase("mpich"):
            return _mpi.ensure(self.hosts, self.inv.cluster, self.inv.source_file,
                               self.progress, self.progress.line)

    def mpich_wheel(self, arch: str) -> Path:
        return _mpi.wheel_for(self.inv.cluster, self.inv.source_file, arch, self.progress.line)

    def build(self, options: dict | None = None, echo: Callable[[str, str], None] | None = None,
              force: bool = False, stages: list[str] | tuple = ("deps", "build")
              ) -> list[tuple[str, str, list]]:
        """deps → build (or the host stages named) on every host at once. Returns (host, run
        id, outcomes)."""
        return _run.build(self, options, echo, force, stages)

    def hetero(self, options: dict | None = None, echo: Callable[[str, str], None] | None = None,
               checked: bool = False) -> tuple[str, dict]:
        return _run.hetero(self, options, echo, checked)

    def run(self, options: dict | None = None, echo: Callable[[str, str], None] | None = None,
            force: bool = False) -> tuple[list, str, dict]:
        self.up()
        self.ensure_mpich()
        builds = self.build(options, echo, force=force)
        run_id, rec = self.hetero(options, echo, checked=True)
        return builds, run_id, rec
