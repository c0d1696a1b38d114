"""Every MPI launch line, built here as an argv list from a small typed description; nothing
here runs anything, so each launcher is tested by looking at its argv (tests/test_launch.py).

- One host (`LocalLaunch`): `mpirun -np N` plus what the MPI flavour and the container's facts
  call for. The facts are probed by the deps stage, which writes them as data (`key=value`
  lines in $CCTL_DIR/mpi.facts, read back by `read_facts` before a stage that launches ranks).
  OpenMPI gets --allow-run-as-root --oversubscribe --bind-to none, `--mca plm_rsh_agent false`
  where the container has no ssh client, `--mca btl ^openib` only where that BTL exists, and
  `-x NAME` per exported name; MPICH (and an MPI of unknown flavour) `-genv NAME VALUE`. The
  profile's stages.perf.mpirun_args come last.
- A Slurm job step (`SrunLaunch`): the backend's `srun --mpi=pmix|pmi2 …` for the ranks, `-n N`,
  then the wrapper. The stage script itself runs as a one-task step, so the SLURM_* variables
  that step set are dropped with `env -u` (all but the job id and the config path).
- Many hosts: MPICH (Hydra) MPMD, runbook §4.1(5): `mpirun -f HOSTFILE -genvnone` then one
  `:`-separated segment per host in hostfile order (Hydra places segment i on host i), each with
  its `-n`, `-wdir`, `-env K V`, binary and arguments; or Slurm heterogeneous-job components
  (`srun --mpi=… … : …`, pyxis image, workdir, `env K=V … binary`).

What only the stage's own shell knows at launch time is the environment: which exported names
are set (and, for -genv, their values; the scripts prepend their build/lib to LD_LIBRARY_PATH
just before launching) and which SLURM_* variables the step has. A `Line` therefore carries
the argv without that part plus where it goes (`at`), its form (`-x`, `-genv`, `-u`) and the
names; `Line.expand(environ)` is the whole argv, and common.sh's `mpi_launcher` does exactly
that expansion in bash (tests/test_launch.py runs both on the same input and compares)."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from .engine import Engine

FACTS_FILE = "mpi.facts"            # in $CCTL_DIR, written by the deps stage (10-deps.yaml)
SLURM_KEEP = ("SLURM_JOB_ID", "SLURM_CONF")


# ---------------------------------------------------------------------------------------------
# one host, or one Slurm step


@dataclass(frozen=True)
class MpiFacts:
    """What the deps stage found in the container (its mpi.facts)."""
    flavour: str                     # openmpi | mpich | unknown
    mpirun: str
    has_ssh: bool = True
    has_openib_btl: bool = False

    @classmethod
    def parse(cls, text: str) -> "MpiFacts | None":
        """mpi.facts (`key=value` lines) -> facts; None when there is no mpirun line."""
        kv = {}
        for ln in text.splitlines():
            k, sep, v = ln.partition("=")
            if sep:
                kv[k.strip()] = v
        if not kv.get("mpirun"):
            return None
        return cls(kv.get("flavour") or "unknown", kv["mpirun"], kv.get("ssh", "1") == "1",
                   kv.get("openib_btl", "0") == "1")


@dataclass(frozen=True)
class LocalLaunch:
    """`nranks` ranks on this host with the container's MPI."""
    facts: MpiFacts
    nranks: int
    export: tuple[str, ...] = ()     # names passed to every rank (when set at launch)
    extra: tuple[str, ...] = ()      # the profile's stages.perf.mpirun_args


@dataclass(frozen=True)
class SrunLaunch:
    """`nranks` ranks as one Slurm job step: `srun` is the backend's ranks' step (everything
    but -n), `wrap` what every task runs before the program."""
    srun: tuple[str, ...]
    nranks: int
    wrap: tuple[str, ...] = ()
    keep: tuple[str, ...] = SLURM_KEEP


@dataclass(frozen=True)
class Line:
    """A launch argv less the part only the launch-time environment gives: at `at`, for each of
    `names` — `-x`: `-x NAME` if NAME is set; `-genv`: `-genv NAME VALUE` if set; `-u`: every
    SLURM_* variable not among `names` becomes `-u VAR`."""
    argv: tuple[str, ...]
    at: int
    form: str = ""
    names: tuple[str, ...] = ()

    def expand(self, environ: Mapping[str, str]) -> list[str]:
        """The whole argv, given the environment the launcher runs in."""
        env: list[str] = []
        if self.form == "-x":
            env = [x for n in self.names if n in environ for x in ("-x", n)]
        elif self.form == "-genv":
            env = [x for n in self.names if n in environ for x in ("-genv", n, environ[n])]
        elif self.form == "-u":
            env = [x for n in environ if n.startswith("SLURM_") and n not in self.names
                   for x in ("-u", n)]
        return [*self.argv[:self.at], *env, *self.argv[self.at:]]

    def stage_env(self) -> dict[str, str]:
        """The CCTL_LAUNCH_* values common.sh's mpi_launcher reads (lists one element a line)."""
        for a in self.argv:
            if "\n" in a or "\0" in a:
                raise ValueError(f"launch argument {a!r} contains a newline")
        return {"CCTL_LAUNCH_ARGV": "\n".join(self.argv), "CCTL_LAUNCH_AT": str(self.at),
                "CCTL_LAUNCH_ENV": self.form, "CCTL_LAUNCH_NAMES": " ".join(self.names)}


def local_line(d: LocalLaunch) -> Line:
    """mpirun on one host (OpenMPI or MPICH)."""
    if d.nranks < 1:
        raise ValueError(f"nranks {d.nranks}: at least 1 rank")
    f = d.facts
    argv = [f.mpirun, "-np", str(d.nranks)]
    if f.flavour == "openmpi":
        argv += ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]
        if not f.has_ssh:
            argv += ["--mca", "plm_rsh_agent", "false"]
        if f.has_openib_btl:          # the runbook's fix for the openib BTL warning
            argv += ["--mca", "btl", "^openib"]
        form = "-x"
    else:
        form = "-genv"
    return Line((*argv, *d.extra), len(argv), form, tuple(d.export))


def srun_line(d: SrunLaunch) -> Line:
    """A Slurm job step for the ranks: `env -u SLURM_… srun … -n N wrap…`."""
    if d.nranks < 1:
        raise ValueError(f"nranks {d.nranks}: at least 1 rank")
    if not d.srun or d.srun[0] != "srun":
        raise ValueError("a Slurm ranks' step starts with srun")
    return Line(("env", *d.srun, "-n", str(d.nranks), *d.wrap), 1, "-u", tuple(d.keep))


def launch_argv(d: LocalLaunch | SrunLaunch, environ: Mapping[str, str]) -> list[str]:
    """The whole launch argv for `d` in the environment `environ`."""
    return (srun_line(d) if isinstance(d, SrunLaunch) else local_line(d)).expand(environ)


# A container whose deps stage ran with a containerctl before mpi.facts has only mpi.env (MPI_HOME,
# CCTL_MPIRUN, CCTL_MPI_FLAVOUR); that containerctl probed ssh and the openib BTL at launch time,
# exactly as below, so the facts asked this way are the ones it launched with.
_FACTS_SCRIPT = r"""d=$1
if [ -f "$d/%s" ]; then cat "$d/%s"; exit; fi
[ -f "$d/mpi.env" ] && . "$d/mpi.env" && [ -n "${CCTL_MPIRUN:-}" ] || exit 1
ssh=0; command -v ssh >/dev/null 2>&1 && ssh=1
ib=0; ls "$MPI_HOME"/lib*/openmpi/mca_btl_openib.so >/dev/null 2>&1 && ib=1
printf 'flavour=%%s\nmpirun=%%s\nssh=%%s\nopenib_btl=%%s\n' "${CCTL_MPI_FLAVOUR:-unknown}" \
  "$CCTL_MPIRUN" "$ssh" "$ib"
""" % (FACTS_FILE, FACTS_FILE)


def read_facts(engine: "Engine", container: str, cctl_dir: str) -> MpiFacts | None:
    """The deps stage's facts from the container: its mpi.facts, or, where an earlier containerctl's
    deps left only mpi.env, the same facts asked of the container the way that version asked them
    at launch (one exec either way). None: deps has not run (or found no mpirun)."""
    code, out = engine.exec_capture(container, ["bash", "-c", _FACTS_SCRIPT, "cctl-facts",
                                                cctl_dir.rstrip("/")])
    return MpiFacts.parse(out) if code == 0 else None


def stage_launch_env(env: Mapping[str, str], facts: MpiFacts | None,
                     srun: SrunLaunch | None = None) -> dict[str, str]:
    """The CCTL_LAUNCH_* values of a stage from its final CCTL_* values (rank count, exported
    names, mpirun args — after a variant's or a scheduler's plug) and the container's facts.
    Nothing when neither a Slurm step nor facts are known: mpi_launcher then says to run deps."""
    nranks = int(env.get("CCTL_NRANKS") or 1)
    if srun is not None:
        return srun_line(SrunLaunch(srun.srun, nranks, srun.wrap, srun.keep)).stage_env()
    if facts is None:
        return {}
    extra = [x for x in str(env.get("CCTL_MPIRUN_ARGS", "")).split("\n") if x]
    return local_line(LocalLaunch(facts, nranks, tuple(str(env.get("CCTL_EXPORT_NAMES", "")).split()),
                                  tuple(extra))).stage_env()


# ---------------------------------------------------------------------------------------------
# many hosts


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
