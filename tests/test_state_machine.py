"""A random walk over the REAL CLI and engine (hypothesis RuleBasedStateMachine): up, run
(--only some of deps/build/perf, from good and fault-planted FlagCX stand-in trees), exec-stage,
an exec-stage perf interrupted with SIGINT mid-sweep, down (with and without --volumes), read
commands, and damaged files (stage state, up cache, run and stage records). After every step:

* no run is stored `passed` unless every stage it asked for passed, was skipped as already
  passed (in a run whose own record of that stage passed) or did not apply — and a stage that
  passed has no failed check and exit code 0; a stage run from a fault-planted tree never passed;
* the exit code matches the stored verdict (0 = passed, 1 = failed/timeout/error, 130 =
  interrupted, 2 = refused and nothing stored); never 70, never a traceback;
* the stage state never claims a pass its run record does not show;
* at most one container per name; no workspace volume left after `down --volumes`;
* no stage process left in the container (only its init and `sleep infinity`);
* the container and its workspace volume carry containerctl's labels (made by it, for it).

Two CONTAINERCTL_HOMEs drive the one container (each step is drawn from either home, as two
people sharing an engine would): the invariants hold for the runs and states of both.

Bounded for CI: a few examples of a few steps each, small perf sizes, one container."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from conftest import cli

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parent.parent
EXPORT = ROOT / "workloads" / "flagcx-selftest" / "tools" / "export-generation.sh"
ALLOWED = {0, 1, 2, 130}
SMALL = ["--set", "stages.perf.end=64K", "--set", "stages.perf.iters=5",
         "--set", "stages.perf.warmup=1"]
BIG = ["--set", "stages.perf.end=256M", "--set", "stages.perf.iters=200"]
# faults that must make perf fail (a planted wrong result, a lying exit code, a dead rank)
PERF_FAULTS = ("corrupt", "exit0", "crash-rank1")
DAMAGE = ["[]", '"a string"', '{"wrong": "keys"}', '{"container_id": "abc", "stag', "",
          '{"k": {"name": 3}}']


def _exe() -> str:
    return str(Path(sys.executable).parent / "containerctl")


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60).stdout


def _read(p: Path):
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


class Walk(RuleBasedStateMachine):
    """Class attributes are set by the test before the run: name, sources, violations."""
    name: str = ""
    sources: dict[str, str] = {}
    tmp: str = ""

    def __init__(self):
        super().__init__()
        # homes of its own per walk: what an earlier walk damaged is not this one's business
        self.homes = [Path(tempfile.mkdtemp(prefix=f"walk-home{i}-", dir=self.tmp))
                      for i in (1, 2)]
        self.home = self.homes[0]
        os.environ["CONTAINERCTL_HOME"] = str(self.home)   # the test's monkeypatch restores it
        self.damaged: set[Path] = set()     # records this walk damaged on purpose
        self.faulty_runs: set[str] = set()  # run ids whose stages ran from a faulty tree
        self.volumes_gone = False           # down --volumes since the last up
        self.up_now = False                 # the container exists (as far as the walk knows)
        self.built: str | None = None       # which source the container's build came from
        self.interrupts = 0
        self.log: list[str] = []

    # ------------------------------------------------------------------ helpers
    def runs(self) -> list[Path]:
        out: list[Path] = []
        for h in self.homes:
            root = h / "results"
            out += sorted(root.glob("*/run.json")) if root.is_dir() else []
        return out

    def cli(self, *args: str, timeout: int = 300, who: int = 0) -> subprocess.CompletedProcess:
        before = {p.parent for p in self.runs()}
        r = cli(*args, timeout=timeout, env={"CONTAINERCTL_HOME": str(self.homes[who])})
        self.log.append(f"[home{who + 1}] {' '.join(args)} -> {r.returncode}")
        self.check_exit(args, r.returncode, r.stdout + r.stderr)
        self.check_new_runs(args, r.returncode, before)
        return r

    def check_exit(self, args, code: int, out: str) -> None:
        assert code in ALLOWED, f"{args}: exit {code}\n{out[-3000:]}"
        assert "Traceback" not in out and "internal error" not in out, f"{args}:\n{out[-3000:]}"

    def check_new_runs(self, args, code: int, before: set[Path]) -> None:
        new = [p for p in self.runs() if p.parent not in before]
        if code == 2:
            assert not new, f"{args}: refused (exit 2) but stored {[p.parent.name for p in new]}"
            return
        if args[0] not in ("run", "exec-stage") or not new:
            return
        assert len(new) == 1, f"{args}: one command stored {len(new)} runs"
        meta = _read(new[0])
        want = {0: ("passed",), 1: ("failed", "timeout", "error"), 130: ("interrupted",)}[code]
        assert meta and meta.get("status") in want, \
            f"{args}: exit {code} but the run is stored {meta and meta.get('status')}"
        self.judge(args, new[0].parent, meta)

    def judge(self, args, run_dir: Path, meta: dict) -> None:
        """Ground truth: the tree the container's build came from (this run's, when its build
        ran) decides what perf must say — FAIL on a fault-planted tree, PASS on a correct one."""
        src = "embedded"
        if "--source" in args:
            src = next(k for k, v in self.sources.items() if v == args[args.index("--source") + 1])
        recs = {s: _read(run_dir / f"{s}.json") for s in meta.get("stages") or []}
        b = recs.get("build")
        if isinstance(b, dict) and b.get("status") != "skipped":
            self.built = src
        pr = recs.get("perf")
        if not isinstance(pr, dict) or pr.get("status") in ("skipped", "interrupted") or \
                str(pr.get("message", "")).startswith("not run") or self.built is None:
            return
        if self.built in PERF_FAULTS:
            self.faulty_runs.add(run_dir.name)
            assert pr["status"] != "passed", \
                f"{args}: perf PASSED on the {self.built} tree: {pr.get('checks')}"
        else:
            assert pr["status"] == "passed", \
                f"{args}: perf {pr['status']} on the correct {self.built} tree: {pr.get('message')}"

    def stage_args(self, source: str) -> list[str]:
        return ["--source", self.sources[source]] if source != "embedded" else []

    # ------------------------------------------------------------------ rules
    @initialize()
    def start_clean(self):
        """Every walk starts from a fresh container with deps and build passed."""
        cli("down", "--name", self.name, "--volumes")
        self.cli("run", "--profile", "cpu-selftest", "--name", self.name, "-q", "--only", "deps",
                 "--only", "build")
        self.up_now = True

    @rule(shm=st.sampled_from([None, "320M"]), who=st.sampled_from([0, 1]))
    def up(self, shm, who):
        extra = ["--set", f"container.shm_size={shm}"] if shm else []
        r = self.cli("up", "--profile", "cpu-selftest", "--name", self.name, *extra, who=who)
        assert r.returncode == 0, r.stdout + r.stderr
        self.volumes_gone, self.up_now = False, True

    @rule(stages=st.sampled_from([("deps", "build", "perf"), ("deps",), ("build", "perf"),
                                  ("perf",), ("build",)]),
          source=st.sampled_from(["embedded", "good", "corrupt", "exit0", "crash-rank1"]),
          force=st.booleans(), who=st.sampled_from([0, 1]))
    def run(self, stages, source, force, who):
        args = ["run", "--profile", "cpu-selftest", "--name", self.name, "-q", *SMALL,
                *self.stage_args(source)]
        for s in stages:
            args += ["--only", s]
        if force:
            args.append("--force")
        self.cli(*args, who=who)
        # run brings the container up before any stage is chosen or refused. (Preconditions
        # read only what the drawn steps decide, never a result: hypothesis replays steps.)
        self.up_now, self.volumes_gone = True, False

    @precondition(lambda self: self.up_now)
    @rule(stage=st.sampled_from(["deps", "build", "perf"]),
          source=st.sampled_from(["embedded", "good", "corrupt"]), who=st.sampled_from([0, 1]))
    def exec_stage(self, stage, source, who):
        self.cli("exec-stage", stage, "--name", self.name, "-q", *SMALL, *self.stage_args(source),
                 who=who)

    @precondition(lambda self: self.up_now and self.interrupts < 2)   # the costly step
    @rule(who=st.sampled_from([0, 1]))
    def interrupt(self, who):
        """exec-stage perf with large sizes, SIGINT once its ranks run: exit 130, recorded
        interrupted, nothing left running (checked by the invariants)."""
        self.interrupts += 1
        before = {p.parent for p in self.runs()}
        p = subprocess.Popen([_exe(), "exec-stage", "perf", "--name", self.name, "-q", *BIG],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=dict(os.environ, CONTAINERCTL_HOME=str(self.homes[who])))
        deadline = time.time() + 30
        while time.time() < deadline and p.poll() is None:
            if "perf_allreduce" in _docker("exec", self.name, "ps", "-eo", "args") or \
                    "test_allreduce" in _docker("exec", self.name, "ps", "-eo", "args"):
                time.sleep(0.5)
                break
            time.sleep(0.3)
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            raise AssertionError(f"exec-stage perf did not stop within 60 s of SIGINT: {out}")
        self.log.append(f"[home{who + 1}] exec-stage perf (SIGINT) -> {p.returncode}")
        args = ("exec-stage", "perf")
        self.check_exit(args, p.returncode, out)
        self.check_new_runs(args, p.returncode, before)

    @rule(volumes=st.booleans(), who=st.sampled_from([0, 1]))
    def down(self, volumes, who):
        r = self.cli("down", "--name", self.name, *(["--volumes"] if volumes else []), who=who)
        self.up_now = False
        if r.returncode == 0:
            self.volumes_gone = volumes
            if volumes:
                self.built = None           # the workspace (and the tree) went with it

    @rule(what=st.sampled_from(["state", "upcache", "run", "stage", "lying-state"]),
          text=st.sampled_from(DAMAGE), who=st.sampled_from([0, 1]))
    def damage(self, what, text, who):
        home = self.homes[who]
        if what in ("state", "lying-state"):
            f = home / "state" / f"{self.name}.json"
            if what == "lying-state":
                # the right shape, the right container, but a pass no run ever recorded
                info = _docker("inspect", "--format", "{{.Id}}", self.name).strip()
                text = json.dumps({"container_id": info, "stages": {
                    s: {"status": "passed", "inputs": "0" * 16, "run_id": "no-such-run"}
                    for s in ("deps", "build")}})
                self.built = None           # perf may now run on whatever tree is there
        elif what == "upcache":
            f = home / "cache" / "up.json"
        else:
            runs = [r for r in self.runs() if home in r.parents]
            if not runs:
                return
            d = runs[-1].parent
            f = d / "run.json" if what == "run" else \
                next(iter(sorted(p for p in d.glob("*.json") if p.name != "run.json")), d / "x.json")
            self.damaged.add(f)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        self.log.append(f"damage home{who + 1}/{f.relative_to(home)} <- {text[:30]!r}")

    @rule(cmd=st.sampled_from([("status",), ("results", "list"), ("report", "latest"),
                               ("ps",)]), who=st.sampled_from([0, 1]))
    def read(self, cmd, who):
        args = list(cmd) + (["--name", self.name] if cmd == ("status",) else [])
        self.cli(*args, who=who)

    def teardown(self):
        if os.environ.get("CCTL_WALK_VERBOSE"):
            print("walk:", "; ".join(self.log), flush=True)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def verdicts_follow_evidence(self):
        for p in self.runs():
            if p in self.damaged:
                continue
            meta = _read(p)
            if not isinstance(meta, dict):
                continue
            rid = p.parent.name
            assert meta.get("status") != "running", f"{rid}: left 'running' after its command"
            recs = {}
            for s in meta.get("stages") or []:
                f = p.parent / f"{s}.json"
                if f not in self.damaged:
                    recs[s] = _read(f)
            for s, rec in recs.items():
                if not isinstance(rec, dict):
                    continue
                if rec["status"] == "passed":
                    assert rec.get("exit_code") == 0, f"{rid}/{s}: passed with exit {rec}"
                    bad = [c for c in rec.get("checks") or [] if c.get("ok") is False]
                    assert not bad, f"{rid}/{s}: passed with failed checks {bad}"
                    assert not (rid in self.faulty_runs and s == "perf"), \
                        f"{rid}: perf passed on a fault-planted tree: {rec.get('checks')}"
                if rec["status"] == "skipped" and rec.get("previous_run") not in (None,
                                                                                  "no-such-run"):
                    prev = p.parent.parent / rec["previous_run"] / f"{s}.json"
                    if prev not in self.damaged and prev.parent / "run.json" not in self.damaged:
                        pr = _read(prev)
                        assert isinstance(pr, dict) and pr.get("status") == "passed", \
                            f"{rid}/{s}: skipped as passed in {rec['previous_run']}, whose " \
                            f"record says {pr and pr.get('status')}"
            if meta.get("status") == "passed" and len(recs) == len(meta["stages"]):
                assert len(recs) == len(meta["stages"]) and all(
                    isinstance(r, dict) for r in recs.values()), f"{rid}: passed, records missing"
                for s, rec in recs.items():
                    ok = rec["status"] == "passed" or (
                        rec["status"] == "skipped" and
                        rec.get("message", "").startswith(("already passed", "not applicable")))
                    assert ok, f"{rid}: stored passed, but {s} is {rec['status']}: {rec['message']}"
                assert any(r["status"] == "passed" or r.get("message", "").startswith(
                    "already passed") for r in recs.values()), f"{rid}: passed with nothing run"

    @invariant()
    def state_claims_are_recorded(self):
        for home in self.homes:
            f = home / "state" / f"{self.name}.json"
            st_ = _read(f)
            if not isinstance(st_, dict) or not isinstance(st_.get("stages"), dict):
                continue    # damaged (by this walk): the next command drops it with a warning
            for s, e in st_["stages"].items():
                if isinstance(e, dict) and e.get("status") == "passed" and \
                        e.get("run_id") != "no-such-run":   # planted by damage(lying-state)
                    # a home's state names a run recorded in that home (or, where the state
                    # is kept in the container, in the other home)
                    recs = [h / "results" / str(e.get("run_id")) / f"{s}.json"
                            for h in [home] + [h for h in self.homes if h != home]]
                    if any(rec in self.damaged for rec in recs):
                        continue
                    rs = [_read(rec) for rec in recs if rec.exists()]
                    assert rs and all(isinstance(r, dict) and r.get("status") == "passed"
                                      for r in rs[:1]), \
                        f"{home.name} state says {s} passed in {e.get('run_id')}; its record: {rs}"

    @invariant()
    def one_container_and_no_orphans(self):
        names = _docker("ps", "-a", "--filter", f"name=^/{self.name}$", "--format",
                        "{{.Names}}").split()
        assert len(names) <= 1, names
        if names:   # made by containerctl, for this container, and so is its workspace volume
            labels = json.loads(_docker("inspect", "--format", "{{json .Config.Labels}}",
                                        self.name) or "{}") or {}
            assert labels.get("io.containerctl.managed") == "1", labels
            assert labels.get("io.containerctl.creation-id"), labels
            vol = labels.get("io.containerctl.workspace-volume")
            if vol:
                vl = json.loads(_docker("volume", "inspect", "--format", "{{json .Labels}}",
                                        vol) or "null") or {}
                assert vl.get("io.containerctl.managed") == "1" and \
                    vl.get("io.containerctl.volume-of") == self.name, (vol, vl)
        if self.volumes_gone:
            vols = [v for v in _docker("volume", "ls", "--format", "{{.Name}}").split()
                    if v.startswith(self.name)]
            assert not vols, f"down --volumes left {vols}"
        if names:
            procs = ""
            for _ in range(10):     # a killed exec may take a moment to be reaped
                procs = _docker("exec", self.name, "ps", "-eo", "pid=,args=")
                left = [ln for ln in procs.splitlines() if ln.split(None, 1)[1:] and
                        not ln.split(None, 1)[1].startswith(
                            ("/sbin/docker-init", "sleep infinity", "ps -eo"))]
                if not left:
                    break
                time.sleep(0.3)
            assert not left, f"stage processes left in {self.name}: {left}"


def test_random_walk_keeps_the_invariants(unique_name, selftest_image, tmp_path):
    sources = {"embedded": "selftest"}
    for key, gen, fault in (("good", "v0.13", None), ("corrupt", "v0.13", "corrupt"),
                            ("exit0", "v0.13", "exit0"),
                            ("crash-rank1", "v0.13", "crash-rank1")):
        dest = tmp_path / key
        subprocess.run(["bash", str(EXPORT), gen, str(dest)] + ([fault] if fault else []),
                       check=True, capture_output=True)
        sources[key] = str(dest)
    Walk.name = unique_name
    Walk.sources = sources
    Walk.tmp = str(tmp_path)
    t0 = time.monotonic()
    run_state_machine_as_test(Walk, settings=settings(
        max_examples=int(os.environ.get("CCTL_WALK_EXAMPLES", "5")),
        stateful_step_count=int(os.environ.get("CCTL_WALK_STEPS", "8")), deadline=None,
        database=None, suppress_health_check=list(HealthCheck)))
    assert time.monotonic() - t0 < 600
