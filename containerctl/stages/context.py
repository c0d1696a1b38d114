"""What a stage script is rendered from: make_context builds the context (structure for the
templates, every user value in ctx["env"], exported quoted by the renderer) from the profile, the
command's options and, once probed, the FlagCX checkout (flagcx_env). No I/O: the Pipeline adds
what it reads from the container (the MPI facts, a plug's values)."""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..flagcx import DEFAULT_COLLS
from ..flagcx.interface import WORD_RE
from ..flagscale import driver_args as flagscale_driver_args
from ..profiles.devices import visible_devices, visible_devices_env   # no pydantic
from .render import SHELL_NAME, Opts

if TYPE_CHECKING:   # annotations only: these are pydantic models (validated.Frozen stand in)
    from ..flagcx import FlagCXInterface
    from ..profiles import Profile

ALWAYS_EXPORT = ["PATH", "LD_LIBRARY_PATH", "FLAGCX_DEBUG", "FLAGCX_DEBUG_SUBSYS", "FLAGCX_IB_HCA",
                 "FLAGCX_ENABLE_TOPO_DETECT", "FLAGCX_SOCKET_IFNAME", "FLAGCX_USE_HOST_COMM",
                 "NCCL_DEBUG", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST",
                 "NVSHMEM_DISABLE_NVLS", "OMPI_MCA_btl_vader_single_copy_mechanism"]


def as_lines(values, what: str) -> str:
    """A list for a stage script: one element per line (the script reads it with mapfile), so
    an element may hold spaces, quotes or `$` but not a newline."""
    out = []
    for v in values:
        v = str(v)
        if "\n" in v or "\0" in v:
            raise UsageError(f"{what}: {v!r} contains a newline",
                             "remove the newline from the value")
        out.append(v)
    return "\n".join(out)


def make_context(profile: Profile, options: dict | None = None,
                 flagcx: "FlagCXInterface | None" = None) -> dict:
    """What a stage script is rendered from. User-given VALUES travel only in ctx["env"]: the
    renderer exports each one quoted (defs.render), and the built-in scripts read them as "$CCTL_…"
    — so no value is ever spliced into bash text. The remaining keys are structure (which branch
    of a script applies) and the legacy fragments the hetero launch still uses."""
    options = options or {}
    fx = profile.flagcx
    perf = profile.stages.perf.model_dump()
    if options.get("colls"):
        perf["colls"] = options["colls"]
    for k in ("begin", "end", "factor", "warmup", "iters"):
        if options.get(k) is not None:
            perf[k] = options[k]
    colls = list(perf["colls"])
    if options.get("all_colls"):
        colls = list(DEFAULT_COLLS)
        if flagcx is not None and flagcx.perf_colls:
            colls = [c for c in DEFAULT_COLLS if c in flagcx.perf_colls] or colls
    for c in colls:
        if not WORD_RE.match(str(c)):
            raise UsageError(f"collective {c!r} is not a FlagCX perf test name",
                             "use names such as allreduce, allgather, broadcast")
    plan = options.get("device_plan") or {}     # flagcx/variants.device_plan: auto resolved
    nranks = int(options.get("nranks") or plan.get("nranks") or
                 (fx.nranks if fx.nranks != "auto" else 1))
    visible = visible_devices(fx, nranks, plan)   # auto: 0..nranks-1
    stage_env = dict(fx.env)
    for k, v in visible_devices_env(fx, nranks, plan).items():
        stage_env.setdefault(k, v)
    export = list(dict.fromkeys(ALWAYS_EXPORT + list(profile.container.env) + list(stage_env)))
    for k in list(stage_env) + export:
        if not SHELL_NAME.match(k):
            raise UsageError(f"environment variable name {k!r} is not a shell identifier",
                             "use letters, digits and _ (no '=', spaces or quotes)")
    cctl_dir = f"{fx.dir.rstrip('/')}/../.containerctl"
    tr, train = profile.stages.torch, profile.stages.train  # typed, defaults in profiles/model.py
    ut = profile.stages.unittest
    env: dict[str, str] = {
        "CCTL_DIR": cctl_dir, "CCTL_FLAGCX_DIR": fx.dir.rstrip("/") or "/",
        "CCTL_NRANKS": str(nranks), "CCTL_PLATFORM": profile.platform,
        "CCTL_MAKE_FLAGS": as_lines(fx.make_flags, "flagcx.make_flags"),
        "CCTL_DEVICE_HOME": fx.device_home or "",
        "CCTL_PROFILE_CCL_HOME": fx.ccl_home or "",
        "CCTL_PROFILE_MPI_HOME": fx.mpi_home or "",
        "CCTL_PROFILE_MPI_LINK": fx.mpi_link or "",
        "CCTL_INSTALL_MISSING": "1" if options.get("install_missing", True) else "0",
        "CCTL_EXPORT_NAMES": " ".join(export),
        "CCTL_MPIRUN_ARGS": as_lines(profile.stages.perf.mpirun_args, "stages.perf.mpirun_args"),
        "CCTL_COLLS": " ".join(colls),
        "CCTL_TORCH_INDEX_URL": tr.index_url or "",
        "CCTL_TORCH_ADAPTOR": fx.torch_adaptor or "",
        "CCTL_TORCH_EXAMPLE_ARGS": as_lines(tr.example_args, "stages.torch.example_args"),
        "CCTL_TORCH_MASTER_PORT": str(tr.master_port),
        "CCTL_TORCH_DEBUG": "1" if tr.debug else "",
        "CCTL_UT_TIMEOUT": str(ut.timeout_per_binary),
        "CCTL_UT_COMPONENTS": " ".join(ut.components or []),
        "CCTL_UT_FILTER": ("-" + ":".join(ut.exclude)) if ut.exclude else "",
        "CCTL_UT_SKIP_BINS": " ".join(getattr(ut, "skip_binaries", None) or []),
        # the train driver's argv, from stages.train (checked there: cause + fix, exit 2)
        "CCTL_TRAIN_ARGS": as_lines(flagscale_driver_args(
            train.model_dump(), fx.visible_devices_env, visible),
            "stages.train"),
        "CCTL_TRAIN_CONDA_ENV": train.conda_env or "",
    }
    if flagcx is not None:
        env.update(flagcx_env(flagcx, perf, options))
        if fx.torch_adaptor:
            # the adaptor one way only, the way this checkout reads it
            t_env, t_argv = flagcx.torch_install(fx.torch_adaptor)
            env["CCTL_TORCH_ADAPTOR_ENV"] = t_env.get("FLAGCX_ADAPTOR", "")
            env["CCTL_TORCH_SETUP_ARGS"] = as_lines(t_argv, "torch setup arguments")
        if fx.compile_kernel and "COMPILE_KERNEL" in (flagcx.make_vars_read or []):
            # FlagCX's CI builds with COMPILE_KERNEL=1; only where this checkout's Makefiles read it
            env["CCTL_BUILD_MAKE_VARS"] = "\n".join(
                x for x in (env.get("CCTL_BUILD_MAKE_VARS", ""), "COMPILE_KERNEL=1") if x)
    env.update(stage_env)
    make_flags = " ".join(shlex.quote(f) for f in fx.make_flags)
    path_vars = []
    if fx.device_home:
        path_vars.append(f"DEVICE_HOME={shlex.quote(fx.device_home)}")
    path_vars.append('${CCL_HOME:+CCL_HOME="$CCL_HOME"}')
    path_vars.append('${MPI_HOME:+MPI_HOME="$MPI_HOME"}')
    return {
        "profile": profile, "platform": profile.platform, "nranks": nranks, "env": env,
        "flagcx": flagcx, "perf": Opts(perf), "torch": Opts(tr.model_dump()),
        "train": Opts(train.model_dump()),
        "print_buffer": bool(perf.get("print_buffer", True)),
        "references": profile.references, "platform_key": profile.name,
        "known_failures": list(ut.known_failures),
        "known_build_failures": list(ut.known_build_failures),
        "excluded_tests": list(ut.exclude),
        # legacy fragments, used only by the hetero launch (cluster) until it moves onto env
        "fx": fx, "colls": " ".join(colls), "make_flags": make_flags,
        "path_vars": " ".join(path_vars), "export_names": " ".join(export),
        "cctl_dir": cctl_dir, "stage_env": {},
    }


def flagcx_env(fxi: "FlagCXInterface", perf: dict, options: dict) -> dict[str, str]:
    """What the probed checkout tells the perf, torch and unittest scripts."""
    env = {"CCTL_PERF_LAYOUT": fxi.perf_layout or "", "CCTL_PERF_DIR": fxi.perf_dir or "",
           "CCTL_PERF_BIN_DIR": fxi.perf_bin_dir or "",
           "CCTL_PERF_PREFIX": fxi.perf_bin_prefix or ""}
    if fxi.perf_layout:
        env["CCTL_PERF_ARGS"] = as_lines(fxi.perf_args(
            begin=perf["begin"], end=perf["end"], factor=perf["factor"], warmup=perf["warmup"],
            iters=perf["iters"], print_buffer=perf.get("print_buffer", True),
            dtype=perf.get("dtype"), op=perf.get("op"),
            extra=perf.get("extra_args") or []), "stages.perf.extra_args")
    env["CCTL_BUILD_MAKE_VARS"] = as_lines(
        [f"{k}={v}" for k, v in fxi.build_make_vars().items()], "make variables")
    env["CCTL_UT_LAYOUT"] = fxi.unittest_layout
    if not env.get("CCTL_UT_COMPONENTS"):
        env["CCTL_UT_COMPONENTS_PROBED"] = " ".join(fxi.unittest_components)
    env["CCTL_UT_MAKE_VARS"] = as_lines(
        [f"{k}={v}" for k, v in fxi.unittest_make_vars().items()], "make variables")
    env["CCTL_TORCH_DIR"] = fxi.torch_dir or ""
    env["CCTL_TORCH_EXAMPLE"] = fxi.torch_example or ""
    return env
