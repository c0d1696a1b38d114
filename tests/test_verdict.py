"""No pass without evidence (issue 18): the one verdict module (results/verdict.py) and the rules
it is fed — a stage whose checks judged nothing, numbers that cannot be true, references that
know their direction, `report --strict`. Each rule is shown on the faulty text AND on the real
passing one (tests/fixtures/h200), so neither side is hard-coded."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from containerctl.errors import ProfileError, UsageError
from containerctl.results import parsers as P
from containerctl.results import references as R
from containerctl.results import store
from containerctl.results import verdict as V
from containerctl.results.model import Status
from containerctl.stages import checks as C

FIX = Path(__file__).parent / "fixtures" / "h200"
REL = FIX / "releases"
GIB = 1024 ** 3


def h200_ctx(nranks: int = 2, **over) -> dict:
    from containerctl.flagcx import parse_probe
    from containerctl.profiles import load_profile
    from containerctl.stages.context import make_context
    prof = load_profile("nvidia-h200", site=False)
    fx = parse_probe("FLAGCX_PROBE perf_layout host_api\nFLAGCX_PROBE allreduce_prints none\n")
    ctx = make_context(prof, {"nranks": nranks}, fx)
    ctx.update(over)
    return ctx


def judge(parse: str, text: str, ctx: dict, exit_code: int = 0) -> V.StageVerdict:
    _, checks, _ = C.run_parser(parse, text, ctx)
    return V.stage_verdict(checks, exit_code=exit_code)


def false_pass_log(sizes=(1 << 10, 4 * GIB)) -> str:
    """The false PASS seen on one H200 with FlagCX main (2026-12-05): 2 ranks on one GPU, a time
    of 2 µs whatever the size, busbw rising to 2,331,149 GB/s at 4 GiB. main prints no buffers."""
    body, n = "", sizes[0]
    while n <= sizes[1]:
        t = 0.000002
        bw = 2331149.431702 if n == 4 * GIB else n / 1e9 / t   # the printed 4 GiB row, as quoted
        body += (f"Comm size: {n} bytes; Elapsed time: {t:.6f} sec; Algo bandwidth: {bw:.6f} GB/s; "
                 f"Bus bandwidth: {bw:.6f} GB/s\n")
        n *= 4
    return ("=== containerctl coll=allreduce nranks=2 ===\n# datatype: float, op: sum\n" + body
            + "=== containerctl end coll=allreduce rc=0 ===\n")


# ------------------------------------------------------------------ plausibility (item 4)

def test_the_h200_false_pass_fails_naming_the_rows():
    log = false_pass_log()
    assert "Bus bandwidth: 2331149" in log                         # the quoted number
    v = judge("perf", log, h200_ctx())
    assert v.status == "failed", v
    assert "allreduce plausible" in v.message and "above what this hardware can move" in v.message
    assert "2,331,149" in v.message and "4 GiB" in v.message and "limits.max_busbw_gbps 4800" in v.message
    assert "time does not grow with size" in v.message


def test_a_flat_time_fails_even_without_a_bandwidth_bound():
    _, checks, _ = C.run_parser("perf", false_pass_log(), {"nranks": 2})     # no profile: no bound
    c = {x["name"]: x for x in checks}["allreduce plausible"]
    assert c["ok"] is False and "time does not grow with size" in c["detail"]
    assert "1 KiB" in c["detail"] and "GiB" in c["detail"]


def test_the_real_h200_main_perf_passes_on_plausible_numbers():
    log = (REL / "main_perf.log").read_text()
    metrics, checks, _ = C.run_parser("perf", log, h200_ctx())
    rows = metrics["collectives"]["allreduce"]["sweeps"][0]["rows"]
    assert rows[-1]["size"] == GIB and 320 < rows[-1]["busbw"] < 340        # 327 GB/s at 1 GiB
    c = {x["name"]: x for x in checks}
    assert c["allreduce plausible"]["ok"] is True, c["allreduce plausible"]
    assert c["allreduce correctness"]["ok"] is None                        # main prints nothing
    v = V.stage_verdict(checks)
    assert v.status == "passed" and "not checkable" in v.message


@pytest.mark.parametrize("log,nranks", [("h200x2_perf_all.log", 2), ("h200x2_containerctl_allreduce.log", 2),
                                         ("h200x1_containerctl_allreduce.log", 1), ("h200x1_perf_all_colls.log", 1)])
def test_every_real_h200_perf_log_is_plausible(log, nranks):
    _, checks, _ = C.run_parser("perf", (FIX / log).read_text(), h200_ctx(nranks))
    pl = [c for c in checks if c["name"].endswith("plausible")]
    assert pl and all(c["ok"] is True for c in pl), [c for c in pl if c["ok"] is not True]


def test_plausibility_bound_is_strict_and_one_rank_is_judged_on_algbw():
    part = {"sweeps": [{"rows": [{"size": 1 << 20, "time_s": 1e-4, "algbw": 10.0, "busbw": 10.0},
                                 {"size": 1 << 30, "time_s": 0.1, "algbw": 100.0, "busbw": 100.0}]}]}
    assert P.check_plausible("allreduce", part, 100.0, 2).ok is True       # at the bound: fine
    assert P.check_plausible("allreduce", part, 99.99, 2).ok is False
    one = {"sweeps": [{"rows": [{"size": 1 << 30, "time_s": 0.1, "algbw": 5000.0, "busbw": 0.0}]}]}
    c = P.check_plausible("allreduce", one, 4800, 1)
    assert c.ok is False and "algbw" in c.detail
    assert P.check_plausible("allreduce", one, 4800, 2).ok is True          # busbw 0 for 2 ranks
    nan = {"sweeps": [{"rows": [{"size": 1 << 20, "time_s": 1e-4, "algbw": math.inf, "busbw": math.inf}]}]}
    assert P.check_plausible("allreduce", nan, 4800, 2).ok is False
    assert P.check_plausible("allreduce", part, None, 2).ok is True         # 1024× up to 1 GiB: judged
    small = {"sweeps": [{"rows": [dict(r, size=r["size"] >> 5) for r in part["sweeps"][0]["rows"]]}]}
    assert P.check_plausible("allreduce", small, None, 2).ok is None         # … but up to 32 MiB: not
    assert P.check_plausible("allreduce", {"sweeps": []}, 4800, 2).ok is None


def test_time_growth_rule_at_its_edges():
    def part(small_t, large_t, large=64 << 20, small=64 << 10):
        return {"sweeps": [{"rows": [{"size": small, "time_s": small_t, "algbw": 1.0, "busbw": 1.0},
                                     {"size": large, "time_s": large_t, "algbw": 1.0, "busbw": 1.0}]}]}
    assert P.check_plausible("allreduce", part(1e-5, 1.51e-5), None).ok is True    # grew 1.5×
    assert P.check_plausible("allreduce", part(1e-5, 1.49e-5), None).ok is False
    assert P.check_plausible("allreduce", part(0.0, 0.0), None).ok is False         # 0 s for 64 MiB
    assert P.check_plausible("allreduce", part(1e-5, 1e-5, large=(64 << 20) - 1024), None).ok is None
    assert P.check_plausible("allreduce", part(1e-5, 1e-5, small=67109), None).ok is None   # 999.99×
    # the fastest smaller size is the yardstick (a warm-up outlier at the first size proves nothing)
    rows = [{"size": 64 << 10, "time_s": 3e-3, "algbw": 1.0, "busbw": 1.0},
            {"size": 128 << 10, "time_s": 1e-5, "algbw": 1.0, "busbw": 1.0},
            {"size": 64 << 20, "time_s": 1.2e-5, "algbw": 1.0, "busbw": 1.0}]
    assert P.check_plausible("allreduce", {"sweeps": [{"rows": rows}]}, None).ok is False


def test_profiles_carry_a_sourced_bound():
    from containerctl.profiles import load_profile
    root = Path(__file__).parent.parent / "profiles"
    for f in sorted(root.glob("*.yaml")):
        prof = load_profile(f.stem, site=False)
        assert prof.limits.max_busbw_gbps and prof.limits.max_busbw_gbps > 0, f.name
    assert load_profile("nvidia-h200", site=False).limits.max_busbw_gbps == 4800
    assert "datasheet" in (root / "nvidia-h200.yaml").read_text().split("limits:")[-1]


def test_the_bound_reaches_the_check_from_a_remembered_profile_too():
    """exec-stage's fast path hands the stage a Frozen read-back of the validated profile."""
    from containerctl import validated
    for _ in range(2):      # validated, then read back without pydantic
        prof = validated.load_profile("nvidia-h200")
        assert C.max_busbw({"profile": prof}) == 4800.0
    assert C.max_busbw({}) is None


@pytest.mark.parametrize("bad", ["nan", ".inf", "-1", "0", "fast"])
def test_a_bad_limit_is_exit_2_naming_the_file(tmp_path, bad):
    from containerctl.profiles import load_profile
    p = tmp_path / "p.yaml"
    p.write_text(f"name: p\nimage: local/x\nlimits:\n  max_busbw_gbps: {bad}\n")
    with pytest.raises(ProfileError) as e:
        load_profile(str(p), site=False)
    assert e.value.exit_code == 2 and "p.yaml" in str(e.value.message) + str(e.value.hint or "")


# ------------------------------------------------------------------ judged nothing (item 2)

def _ut(bins: dict[str, str]) -> str:
    out = ""
    for name, console in bins.items():
        out += f"=== containerctl ut-run bin={name} kind=unit ===\n{console}=== containerctl ut-end bin={name} rc=0 ===\n"
    return out


ZERO = ("[==========] Running 0 tests from 0 test suites.\n[==========] 0 tests from 0 test suites ran. "
        "(0 ms total)\n[  PASSED  ] 0 tests.\n")
ALL_SKIPPED = ("[==========] Running 2 tests from 1 test suite.\n[ RUN      ] RmaTest.Put\n[  SKIPPED ] RmaTest.Put (0 ms)\n"
               "[ RUN      ] RmaTest.Get\n[  SKIPPED ] RmaTest.Get (0 ms)\n[==========] 2 tests from 1 test suite ran. (1 ms total)\n"
               "[  PASSED  ] 0 tests.\n[  SKIPPED ] 2 tests, listed below:\n")
ALL_FAILED = ("[==========] Running 2 tests from 1 test suite.\n[ RUN      ] CoreTest.A\nx.cc:1: Failure\n[  FAILED  ] CoreTest.A (0 ms)\n"
              "[ RUN      ] CoreTest.B\nx.cc:2: Failure\n[  FAILED  ] CoreTest.B (0 ms)\n[==========] 2 tests from 1 test suite ran. (1 ms total)\n"
              "[  PASSED  ] 0 tests.\n[  FAILED  ] 2 tests, listed below:\n")
ONE_PASSED = ("[==========] Running 1 test from 1 test suite.\n[ RUN      ] CoreTest.A\n[       OK ] CoreTest.A (0 ms)\n"
              "[==========] 1 test from 1 test suite ran. (1 ms total)\n[  PASSED  ] 1 test.\n")


def test_unittest_exclude_everything_is_not_a_pass():
    v = judge("unittest", _ut({"core_unit_tests": ZERO, "topo_unit_tests": ZERO}), {"excluded_tests": ["*"]})
    assert v.status == "failed" and v.message.startswith("judged nothing")
    assert "ran 0 tests" in v.message


def test_known_failures_star_against_a_faulty_source_is_not_a_pass():
    text = _ut({"core_unit_tests": ALL_FAILED})
    assert judge("unittest", text, {}).status == "failed"                      # the faults, plainly
    v = judge("unittest", text, {"known_failures": ["*"]})
    assert v.status == "failed" and v.message.startswith("judged nothing") and "2 known failures" in v.message
    # the same list with one real pass beside it: evidence, so a pass (the known ones listed)
    v = judge("unittest", _ut({"core_unit_tests": ALL_FAILED, "adaptor_unit_tests": ONE_PASSED}),
              {"known_failures": ["*"]})
    assert v.status == "passed" and "1 not checkable" in v.message


def test_a_binary_that_ran_nothing_and_skipped_the_rest_is_not_checkable_not_passed():
    _, checks, _ = C.run_parser("unittest", _ut({"rma_mpi_tests": ALL_SKIPPED}), {})
    (c,) = checks
    assert c["ok"] is None and c["detail"] == "judged nothing: 0 passed, 2 skipped"
    assert V.stage_verdict(checks).status == "failed"


def test_the_real_main_unittest_log_still_passes_with_the_profiles_lists():
    from containerctl.profiles import load_profile
    prof = load_profile("nvidia-h200", site=False)
    ctx = {"known_failures": prof.stages.unittest.known_failures, "excluded_tests": prof.stages.unittest.exclude}
    _, checks, _ = C.run_parser("unittest", (REL / "main_unittest.log").read_text(), ctx)
    by = {c["name"]: c for c in checks}
    assert by["unittest rma_mpi_tests"]["ok"] is None and "judged nothing" in by["unittest rma_mpi_tests"]["detail"]
    assert V.stage_verdict(checks).status == "passed"


def test_a_perf_binary_that_exits_0_and_prints_no_size_line_fails():
    text = ("=== containerctl coll=allreduce nranks=2 ===\nI am 0 of 2\n"
            "=== containerctl end coll=allreduce rc=0 ===\n")
    v = judge("perf", text, {"nranks": 2})
    assert v.status == "failed" and "allreduce output" in v.message and "Bus bandwidth" in v.message
    v = judge("perf", "nothing at all\n", {"nranks": 2})
    assert v.status == "failed" and "perf ran" in v.message


def test_stage_verdict_rules():
    ok, skip, bad = {"name": "a", "ok": True, "detail": "d"}, {"name": "s", "ok": None, "detail": "why"}, \
        {"name": "b", "ok": False, "detail": "broken"}
    info = {"name": "hosts", "ok": True, "detail": "2 hosts", "evidence": False}
    assert tuple(V.stage_verdict([ok])) == ("passed", "1 checks passed")
    assert V.stage_verdict([ok, skip]).message == "1 checks passed, 1 not checkable (see the record)"
    assert tuple(V.stage_verdict([ok, bad])) == ("failed", "b: broken")
    v = V.stage_verdict([skip])
    assert v.status == "failed" and v.message == "judged nothing: no check passed; s: why"
    assert V.stage_verdict([info, skip]).status == "failed"         # where it ran is no evidence
    assert V.stage_verdict([]).status == "failed"
    assert V.stage_verdict([], expect_evidence=False).status == "passed"   # a stage with no parser
    assert V.stage_verdict([], exit_code=3, expect_evidence=False).status == "failed"
    assert V.stage_verdict([ok], exit_code=1, cause="boom").message == "exit code 1: boom"
    assert V.stage_verdict([ok, bad], exit_code=2, cause="c").message == "b: broken (exit code 2); c"
    built = {"name": "x built", "ok": False, "detail": "no"}
    assert V.stage_verdict([built], exit_code=2, cause="c").message == "exit code 2: c"
    assert V.stage_verdict([ok], exit_code=None).status == "passed"          # imported: no exit code
    assert V.stage_verdict([ok], outcome="timeout", timeout_s=5).status == "timeout"
    assert "5s" in V.stage_verdict([ok], outcome="timeout", timeout_s=5).message
    assert V.stage_verdict([ok], outcome="interrupted").status == "interrupted"
    assert V.stage_status([P.Check("c", True, "")]) == "passed"
    assert V.stage_status([P.Check("c", None, "")]) == "failed"


# ------------------------------------------------------------------ run status and --strict

class Oc:
    def __init__(self, name, status, message=""):
        self.name, self.status, self.message = name, status, message


@pytest.mark.parametrize("ocs,asked,crash,want", [
    ([("deps", "passed"), ("unittest", "failed", "judged nothing: …")], ["deps", "unittest"], None, "failed"),
    ([("deps", "passed"), ("perf", "interrupted")], ["deps", "perf"], None, "interrupted"),
    ([("deps", "passed"), ("perf", "running")], ["deps", "perf"], None, "error"),
    ([("deps", "skipped", "not applicable")], ["deps"], None, "error"),
    ([("deps", "skipped", "already passed in run x")], ["deps"], None, "passed"),
    ([("deps", "passed")], ["deps"], "error", "error"),
    ([("deps", "passed"), ("build", "passed")], ["deps", "build", "perf"], None, "error"),
])
def test_run_status(ocs, asked, crash, want):
    assert V.run_status([Oc(*o) for o in ocs], asked, crash) == want
    # stage-record dicts are judged the same way
    assert V.run_status([{"stage": o[0], "status": o[1], "message": (o[2:] or ("",))[0]} for o in ocs],
                        asked, crash) == want


def test_the_runner_and_the_cluster_use_the_one_rule():
    from containerctl.stages import runner
    assert runner.run_status is V.run_status
    import containerctl.cluster.run as CR
    src = Path(CR.__file__).read_text()
    assert "from ..results.verdict import run_status" in src


def _rec(stage, status, checks, code=0, message=""):
    return {"schema": "containerctl.stage/1", "stage": stage, "status": status, "exit_code": code,
            "checks": checks, "message": message}


def test_strict_refuses_a_stored_pass_without_evidence():
    skip = {"name": "unittest core", "ok": None, "detail": "ran 0 tests"}
    run = {"run_id": "r1", "status": "passed", "records": {"unittest": _rec("unittest", "passed", [skip])}}
    why = V.strict_failures(run)
    assert why and "unittest: failed" in why[0]
    good = {"run_id": "r2", "status": "passed",
            "records": {"perf": _rec("perf", "passed", [{"name": "p", "ok": True, "detail": ""}])}}
    assert V.strict_failures(good) == []
    assert V.strict_failures(dict(good, status="failed")) == ["run status failed"]
    assert V.strict_failures(dict(good, problems=["x.json: damaged"]))[0].startswith("unreadable")
    assert V.strict_failures(good, [("perf", {"name": "q", "ok": False})]) == ["perf: check q failed"]
    assert V.strict_failures({"run_id": "r3", "status": "passed", "records": {}}) == ["no stage record"]
    skipped = {"run_id": "r4", "status": "passed",
               "records": {"torch": _rec("torch", "skipped", [], message="not applicable: no adaptor")}}
    assert V.strict_failures(skipped) == ["no stage passed"]


def test_finish_run_derives_from_the_records_evidence():
    rid = store.start_run("p", stages=["unittest"])["run_id"]
    store.write_stage(rid, store.stage_record(rid, "unittest", status=Status.PASSED, exit_code=0, started=store.now_iso(),
                                              checks=[P.Check("unittest x", None, "ran 0 tests")]))
    assert store.finish_run(rid)["status"] == "failed"
    rid = store.start_run("p", stages=["perf"])["run_id"]
    store.write_stage(rid, store.stage_record(rid, "perf", status=Status.PASSED, exit_code=0, started=store.now_iso(),
                                              checks=[P.Check("perf x", True, "")]))
    assert store.finish_run(rid)["status"] == "passed"


def test_import_of_the_false_pass_is_failed_and_strict_exits_1(tmp_path, run_cli):
    f = tmp_path / "main_h200x1.log"
    f.write_text(false_pass_log())
    rid = store.import_text(f, "flagcx-perf", nranks=2)
    run = store.load_run(rid)
    assert run["status"] == "failed"
    (rec,) = run["records"].values()
    assert rec["status"] == "failed" and "time does not grow" in json.dumps(rec["checks"])
    r = run_cli("report", rid, "--strict")
    assert r.returncode == 1 and rid in r.stderr and "perf: failed" in r.stderr, r.stderr
    ok = tmp_path / "main_perf.log"
    ok.write_text((REL / "main_perf.log").read_text())
    rid2 = store.import_text(ok, "flagcx-perf", nranks=2)
    assert store.load_run(rid2)["status"] == "passed"
    r = run_cli("report", rid2, "--strict")
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ references (item 3)

def _metrics(size, **row):
    return {"collectives": {"allreduce": {"nranks": 2, "sweeps": [{"rows": [dict(size=size, **row)]}]}}}


def test_a_time_reference_fails_when_slower_and_says_seconds():
    m = _metrics(1024, time_s=0.00043, algbw=1.0, busbw=1.0)      # 43,000× a 1e-8 s reference
    (c,) = R.evaluate(m, R.load_references(None, {"allreduce": {"1K": {"value": 1e-8, "metric": "time_s"}}}))
    assert c.ok is False and " s > 1e-08 × 1.10" in c.detail and "GB/s" not in c.detail
    (c,) = R.evaluate(m, R.load_references(None, {"allreduce": {"1K": {"value": 0.0004, "metric": "time_s"}}}))
    assert c.ok is True and "0.00043 s" in c.detail
    (c,) = R.evaluate(m, R.load_references(None, {"allreduce": {"1K": {"value": 0.001, "metric": "time_s"}}}))
    assert c.ok is True                                             # faster than the reference: fine
    ref = R.validate_references({"allreduce": {"1K": {"value": 1e-3, "metric": "time_s"}}})["allreduce"][1024]
    assert (ref.direction, ref.unit, ref.lower, ref.upper) == ("lower", "s", None, 0.10)
    bw = R.validate_references({"allreduce": {"1K": 5.0}})["allreduce"][1024]
    assert (bw.direction, bw.unit, bw.lower, bw.upper) == ("higher", "GB/s", -0.10, None)


@pytest.mark.parametrize("entry,words", [
    ([1.0, float("nan")], "lower nan is not a finite number"),
    ([1.0, -0.1, float("nan")], "upper nan is not a finite number"),
    ([1.0, -0.1, float("inf")], "upper inf is not a finite number"),
    ([1.0, float("-inf")], "lower -inf is not a finite number"),
    ([1.0, -0.1, -0.2], "upper -0.2 must be ≥ 0"),
    ([1.0, 0.1], "lower 0.1 must be a relative fraction"),
    ([1.0, None, 0.1], "needs a lower bound"),
    ({"value": 1e-3, "metric": "time_s", "upper": None}, "needs a upper bound"),
    ({"value": 1e-3, "metric": "time_s", "unit": "GB/s"}, "does not fit metric time_s"),
    ({"value": 5.0, "unit": "s"}, "does not fit metric busbw"),
    ({"value": float("nan")}, "value must be a positive number"),
])
def test_bad_tolerances_are_refused_naming_the_entry(entry, words):
    with pytest.raises(ProfileError) as e:
        R.validate_references({"allreduce": {"2K": entry}}, "p.yaml:7: references")
    assert e.value.exit_code == 2 and "p.yaml:7: references.allreduce.2K" in e.value.message
    assert words in e.value.message, e.value.message
    with pytest.raises(UsageError):
        R.load_references(None, {"allreduce": {"2K": entry}})


def test_a_nan_tolerance_in_a_profile_file_is_exit_2_with_file_and_line(tmp_path, run_cli):
    p = tmp_path / "nanref.yaml"
    p.write_text("name: nanref\nimage: local/x\nreferences:\n  allreduce:\n    4G: [144.0, .nan]\n")
    r = run_cli("profile", "validate", str(p))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert "nanref.yaml:4" in r.stderr and "not a finite number" in r.stderr, r.stderr


def test_printed_size_lines_alone_are_not_evidence():
    """main prints no buffers; with no bound for the platform and a sweep too short to show the
    time growing, nothing says the collective ran: not a pass (a bound makes it one)."""
    rows = "".join(f"Comm size: {n} bytes; Elapsed time: 0.000010 sec; Algo bandwidth: {n / 1e4:.6f} GB/s; "
                   f"Bus bandwidth: {n / 1e4:.6f} GB/s\n" for n in (1024, 2048, 4096))
    text = f"=== containerctl coll=allreduce nranks=2 ===\n{rows}=== containerctl end coll=allreduce rc=0 ===\n"
    _, checks, _ = C.run_parser("perf", text, {"nranks": 2})
    by = {c["name"]: c for c in checks}
    assert by["allreduce output"]["ok"] is True and by["allreduce plausible"]["ok"] is None
    v = V.stage_verdict(checks)
    assert v.status == "failed" and v.message.startswith("judged nothing")
    v = judge("perf", text, h200_ctx())
    assert v.status == "passed", v


def test_real_engine_unittest_that_ran_nothing_fails_the_run_and_strict(run_cli, unique_name, selftest_image):
    """The issue's own repro on the real engine: `stages.unittest.exclude: ["*"]` used to give
    unittest `passed` with 0 tests run, and `report --strict` exit 0."""
    import os
    home = Path(os.environ["CONTAINERCTL_HOME"])
    r = run_cli("run", "--profile", "cpu-selftest", "--name", unique_name, "--until", "unittest", "-q",
                "--set", 'stages.unittest.exclude=["*"]')
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    (run_json,) = sorted((home / "results").glob("*/run.json"))
    meta = json.loads(run_json.read_text())
    ut = json.loads((run_json.parent / "unittest.json").read_text())
    assert meta["status"] == "failed" and ut["status"] == "failed", (meta, ut["message"])
    assert ut["message"].startswith("judged nothing") and ut["exit_code"] == 0
    assert json.loads((run_json.parent / "build.json").read_text())["status"] == "passed"
    s = run_cli("report", meta["run_id"], "--strict")
    assert s.returncode == 1 and "unittest: failed" in s.stderr, s.stdout + s.stderr
