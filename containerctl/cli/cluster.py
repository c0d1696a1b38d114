"""CLI for multi-host runs: containerctl cluster up | down | ps | run | exec-stage | export
--hosts FILE. Thin: parse, call containerctl.cluster, render. Only typer at module top."""
from __future__ import annotations

from typing import List, Optional

import typer

HOSTS_HELP = "The hosts inventory (YAML; see examples/hosts-*.yaml)."


def _load(hosts: str):
    from ..cluster import Cluster
    from ..cluster.inventory import load_inventory
    from .common import console
    err = console(stderr=True)
    inv = load_inventory(hosts)
    return Cluster(inv, say=lambda m: err.print(m, markup=False, highlight=False),
                   warn=lambda m: err.print(f"[yellow]warning:[/yellow] {m}"),
                   on_line=lambda ln: err.print(ln[:200], markup=False, highlight=False)
                   if ln.partition(": ")[2].startswith("Step ") else None)


def _slurm(hosts: str):
    """containerctl.slurm.cli when the inventory says `scheduler: slurm` (else None)."""
    from ..slurm import cli as slurm_cli
    return slurm_cli if slurm_cli.is_slurm(hosts) else None


def _options(coll, begin, end, iters, warmup, timeout, source) -> dict:
    """The perf and timeout options, bounded where they enter (the profile's own rules)."""
    from ..errors import UsageError
    from ..profiles import MAX_ITERS, check_perf_range, check_perf_size, check_timeout
    try:
        if timeout is not None:
            check_timeout(timeout, "--timeout")
        for v, what in ((begin, "--begin"), (end, "--end")):
            if v is not None:
                check_perf_size(v, what)
        if begin is not None and end is not None:
            check_perf_range(begin, end)
        for v, what in ((iters, "--iters"), (warmup, "--warmup")):
            if v is not None and not 0 <= v <= MAX_ITERS:
                raise ValueError(f"{what} {v}: give 0 to {MAX_ITERS}")
    except ValueError as exc:
        raise UsageError(str(exc), "e.g. -b 1K -e 64K --timeout 3600") from None
    return {"colls": coll, "begin": begin, "end": end, "iters": iters, "warmup": warmup,
            "timeout": timeout, "source": source}


def _echo(quiet: bool):
    from .stages import echo_factory
    return echo_factory(quiet)


def _print_hetero(run_id: str, rec: dict) -> int:
    """The run as `containerctl report` shows it, then the peak bus bandwidth per collective."""
    from rich.console import Console
    from ..report import load_runs, table_renderables
    from ..results import store
    con = Console(highlight=False)
    for r in table_renderables(load_runs([run_id])):
        con.print(r)
    for coll, part in rec.get("metrics", {}).get("collectives", {}).items():
        rows = [r for sw in part.get("sweeps", []) for r in sw.get("rows", [])]
        if rows:
            best = max(rows, key=lambda r: r.get("busbw") or 0)
            con.print(f"{coll}: {part.get('nranks')} ranks across "
                      f"{len(rec.get('metrics', {}).get('hosts', []))} hosts, peak bus bandwidth "
                      f"{best['busbw']:.6f} GB/s at {best['size']} bytes")
    con.print(f"hetero: {rec['status']} — {rec.get('message', '')}")
    con.print(f"results: {store.run_dir(run_id)}   (containerctl report {run_id})")
    return {"passed": 0, "interrupted": 130}.get(rec["status"], 1)


def register(app: typer.Typer) -> None:
    cluster_app = typer.Typer(help="Multi-host (heterogeneous) runs from a hosts inventory: "
                                   "Docker over ssh, an ssh mesh, MPICH across hosts.",
                              no_args_is_help=True)
    app.add_typer(cluster_app, name="cluster")

    HostsOpt = typer.Option(..., "--hosts", "-H", help=HOSTS_HELP)

    @cluster_app.command("up")
    def up(hosts: str = HostsOpt,
           force_recreate: bool = typer.Option(False, "--force-recreate")):
        """Each host's container from its own profile, sshd on the mesh port, the cluster key,
        passwordless ssh verified both ways."""
        if _slurm(hosts):
            _slurm(hosts).no_up_down(hosts, "up")
        cl = _load(hosts)
        for host, name, action in cl.up(force_recreate):
            typer.echo(f"{host}: {name} {action}")
        typer.echo(f"cluster {cl.name}: {len(cl.hosts)} hosts up, ssh mesh verified on port "
                   f"{cl.inv.cluster.ssh_port}")

    @cluster_app.command("down")
    def down(hosts: str = HostsOpt,
             volumes: bool = typer.Option(False, "--volumes", help="Also delete the workspace "
                                          "volumes.")):
        """Remove every host's container (its processes with it) and the cluster's keys."""
        if _slurm(hosts):
            _slurm(hosts).no_up_down(hosts, "down")
        cl = _load(hosts)
        removed = cl.down(volumes)
        typer.echo("removed " + (", ".join(removed) if removed else "nothing (no containers)") +
                   ("" if volumes else "; workspace volumes kept"))
        for v in getattr(cl, "left_alone", []):
            typer.echo(f"kept {v}")

    @cluster_app.command("ps")
    def ps(hosts: str = HostsOpt, json_out: bool = typer.Option(False, "--json")):
        """The cluster's containers, host by host, with their status."""
        if _slurm(hosts):
            raise typer.Exit(_slurm(hosts).ps(hosts, json_out))
        cl = _load(hosts)
        rows = cl.ps()
        if json_out:
            import json
            from dataclasses import asdict
            typer.echo(json.dumps([asdict(r) for r in rows], indent=1))
            return
        from rich.table import Table
        from .common import console
        t = Table("host", "container", "status", "address", "profile", "docker", box=None)
        for r in rows:
            t.add_row(r.host, r.container, r.status, r.address, r.profile, r.docker)
        console().print(t)

    @cluster_app.command("run")
    def run(hosts: str = HostsOpt,
            coll: Optional[List[str]] = typer.Option(None, "--coll"),
            begin: Optional[str] = typer.Option(None, "--begin", "-b", help="perf -b (e.g. 1K)"),
            end: Optional[str] = typer.Option(None, "--end", "-e", help="perf -e (e.g. 64K)"),
            iters: Optional[int] = typer.Option(None, "--iters", "-n"),
            warmup: Optional[int] = typer.Option(None, "--warmup", "-w"),
            timeout: Optional[int] = typer.Option(None, "--timeout"),
            source: Optional[str] = typer.Option(None, "--source"),
            force: bool = typer.Option(False, "--force", help="Rebuild even if deps/build "
                                       "passed with the same inputs."),
            quiet: bool = typer.Option(False, "--quiet", "-q")):
        """up → MPICH everywhere → deps, build on every host → hetero from the first host."""
        opts = _options(coll, begin, end, iters, warmup, timeout, source)
        if _slurm(hosts):   # scheduler: slurm → allocate once, every stage a job step
            raise typer.Exit(_slurm(hosts).run(hosts, None, opts, _echo(quiet)))
        cl = _load(hosts)
        try:
            builds, run_id, rec = cl.run(opts, _echo(quiet), force=force)
        except KeyboardInterrupt:
            typer.echo("interrupted: the ranks on every host were stopped", err=True)
            raise typer.Exit(130)
        for host, rid, outcomes in builds:
            typer.echo(f"{host}: " + ", ".join(f"{o.name} {o.status}" for o in outcomes) +
                       f" (run {rid})")
        raise typer.Exit(_print_hetero(run_id, rec))

    @cluster_app.command("exec-stage")
    def exec_stage(stage: str = typer.Argument(..., help="hetero (cluster-wide), or a host "
                                               "stage (deps, build) run on every host"),
                   hosts: str = HostsOpt,
                   coll: Optional[List[str]] = typer.Option(None, "--coll"),
                   begin: Optional[str] = typer.Option(None, "--begin", "-b"),
                   end: Optional[str] = typer.Option(None, "--end", "-e"),
                   iters: Optional[int] = typer.Option(None, "--iters", "-n"),
                   warmup: Optional[int] = typer.Option(None, "--warmup", "-w"),
                   timeout: Optional[int] = typer.Option(None, "--timeout"),
                   source: Optional[str] = typer.Option(None, "--source"),
                   quiet: bool = typer.Option(False, "--quiet", "-q")):
        """Run one stage on the cluster (its prerequisites must have passed)."""
        from ..errors import UsageError
        from ..stages.catalog import get_def
        sd = get_def(stage)
        opts = _options(coll, begin, end, iters, warmup, timeout, source)
        if _slurm(hosts):
            raise typer.Exit(_slurm(hosts).run(hosts, [sd.name], opts, _echo(quiet)))
        cl = _load(hosts)
        try:
            if sd.scope == "cluster":
                run_id, rec = cl.hetero(opts, _echo(quiet))
                raise typer.Exit(_print_hetero(run_id, rec))
            if sd.name not in ("deps", "build"):
                raise UsageError(f"stage {stage} runs on one host",
                                 f"use containerctl exec-stage {stage} --name "
                                 f"{cl.hosts[0].container} (`cluster ps` lists the containers)")
            builds = cl.build(opts, _echo(quiet), force=True, stages=[sd.name])
            for host, rid, outcomes in builds:
                for o in outcomes:
                    typer.echo(f"{host}: {o.name} {o.status} — {o.message} (run {rid})")
            raise typer.Exit(0)
        except KeyboardInterrupt:
            typer.echo("interrupted: the stage's processes were stopped", err=True)
            raise typer.Exit(130)

    @cluster_app.command("export")
    def export(hosts: str = HostsOpt,
               fmt: str = typer.Option(..., "--format", "-f", help="slurm | mpijob"),
               output: Optional[str] = typer.Option(None, "--output", "-o",
                                                    help="Write here (default: stdout)."),
               coll: str = typer.Option("allreduce", "--coll"),
               begin: Optional[str] = typer.Option(None, "--begin", "-b"),
               end: Optional[str] = typer.Option(None, "--end", "-e"),
               mpi: str = typer.Option("pmi2", "--mpi", help="slurm: srun --mpi plugin "
                                       "(pmi2 | pmix)"),
               image: Optional[List[str]] = typer.Option(None, "--image", help="HOST=REF: the "
                                                         "registry image a host runs (repeatable)"),
               source: Optional[str] = typer.Option(None, "--source", help="The local FlagCX "
                                                    "checkout the images hold (its perf layout "
                                                    "and options are probed); default: the "
                                                    "first host's last passed build")):
        """The same job for a batch system: an sbatch script (pyxis --container-image, one
        heterogeneous-job component per host) or a Kubeflow MPIJob manifest."""
        from ..cluster import render_mpijob, render_slurm
        from ..errors import UsageError
        if _slurm(hosts):   # the lines the Slurm backend runs (pyxis flags where the site has it)
            if fmt != "slurm":
                raise UsageError(f"--format {fmt}: {hosts} is a Slurm inventory",
                                 "use --format slurm (or an ssh-mesh inventory for mpijob)")
            from ..slurm.backend import render_lines
            from ..slurm.inventory import load as load_slurm
            typer.echo(render_lines(load_slurm(hosts)), nl=False)
            return
        cl = _load(hosts)
        images = {}
        for item in image or []:
            if "=" not in item:
                raise UsageError(f"--image {item!r} is not HOST=REF", "e.g. --image a800=reg/x:1")
            k, _, v = item.partition("=")
            cl.inv.host(k)
            images[k] = v
        opts = {"coll": coll, "begin": begin, "end": end, "mpi": mpi, "images": images,
                "source": source}
        if fmt == "slurm":
            text = render_slurm(cl, opts)
        elif fmt == "mpijob":
            text = render_mpijob(cl, opts)
        else:
            raise UsageError(f"--format {fmt!r}: use slurm or mpijob",
                             "containerctl cluster export --format slurm --hosts FILE")
        if output:
            from pathlib import Path
            Path(output).write_text(text)
            typer.echo(f"wrote {output}")
        else:
            typer.echo(text, nl=False)
