"""Tests written for the mutants that survived the first mutation run (tests/mutation): each
pins one rule of the verdict code that no other fast test held — a stage parser (checks.py), a
reference tolerance, an oracle corner. Pure functions over texts in the stages' own protocol
(the `=== containerctl … ===` markers the stage scripts print); each rule is shown failing on the
planted fault AND passing on the matching correct text, so neither side is hard-coded."""
from __future__ import annotations

import pytest

from containerctl.errors import ProfileError, UsageError
from containerctl.flagcx import FlagCXInterface
from containerctl.results import parsers as P
from containerctl.results import references as R
from containerctl.results.model import Status
from containerctl.stages import checks as C

SIZE = ("Comm size: {n} bytes; Elapsed time: 0.000010 sec; Algo bandwidth: 1.000000 GB/s; "
        "Bus bandwidth: 1.000000 GB/s\n")


def allreduce_2ranks(recv0="0.000000 3.000000 6.000000 9.000000",
                     recv1="0.000000 3.000000 6.000000 9.000000", sizes=(1024, 2048)) -> str:
    """v0.9–v0.13 shape: every rank prints its buffers and FlagCX's verdict line."""
    out = ""
    for n in sizes:
        out += ("rank 0 sendbuff = 0.000000 1.000000 2.000000 3.000000\n"
                "rank 1 sendbuff = 0.000000 2.000000 4.000000 6.000000\n" + SIZE.format(n=n))
        if recv0 is not None:
            out += f"rank 0 recvbuff = {recv0}\n"
        if recv1 is not None:
            out += f"rank 1 recvbuff = {recv1}\n"
    return out


def perf_stage(body: str, coll: str = "allreduce", end: bool = True, rc: int = 0) -> str:
    s = f"=== containerctl coll={coll} nranks=2 ===\n{body}"
    return s + (f"=== containerctl end coll={coll} rc={rc} ===\n" if end else "")


def perf_records(text: str, **ctx) -> dict[str, dict]:
    _, checks, _ = C.run_parser("perf", text, {"nranks": 2, "platform_key": "cpu-selftest", **ctx})
    return {c["name"]: c for c in checks}


def perf_checks(text: str, **ctx) -> dict[str, bool | None]:
    return {k: c["ok"] for k, c in perf_records(text, **ctx).items()}


# ------------------------------------------------------------------ oracle corners

def test_correct_allreduce_passes_and_a_truncated_recvbuff_fails():
    assert P.check_collective("allreduce", allreduce_2ranks(), 2).ok is True
    c = P.check_collective("allreduce", allreduce_2ranks(recv1="0.000000 3.000000"), 2)
    assert c.ok is False and "2 values printed, expected 4" in c.detail


def test_allreduce_where_one_rank_printed_no_recvbuff_is_skipped_not_passed():
    c = P.check_collective("allreduce", allreduce_2ranks(recv1=None), 2)
    assert c.ok is None and "no recvbuff from rank(s) [1]" in c.detail


def test_labelled_allgather_with_a_silent_sender_is_not_a_full_pass():
    full = ("rank 0 sendbuff = 10.000000\nrank 1 sendbuff = 11.000000\nrank 2 sendbuff = 12.000000\n"
            + SIZE.format(n=1024)
            + "".join(f"rank {r} recvbuff = 10.000000 11.000000 12.000000\n" for r in range(3)))
    assert P.check_collective("allgather", full, 3).ok is True
    partial = full.replace("rank 2 sendbuff = 12.000000\n", "")
    c = P.check_collective("allgather", partial, 3)
    assert c.ok is None and "not every rank printed its sendbuff" in c.detail


# ------------------------------------------------------------------ perf stage parser

def test_perf_stage_with_evidence_passes():
    ck = perf_checks(perf_stage(allreduce_2ranks()))
    assert ck["allreduce output"] is True and ck["allreduce sum buffers"] is True
    assert False not in ck.values(), ck


def test_perf_stage_cut_short_fails_and_says_so():
    ck = perf_records(perf_stage(allreduce_2ranks(), end=False))
    assert ck["allreduce ran"]["ok"] is False, ck
    assert "no end marker" in ck["allreduce ran"]["detail"]    # not "the launcher exited None"


def test_perf_stage_launcher_exit_fails_even_with_correct_buffers():
    ck = perf_checks(perf_stage(allreduce_2ranks(), rc=1))
    assert ck["allreduce ran"] is False, ck


def test_perf_stage_that_started_nothing_fails():
    ck = perf_checks("make: *** [Makefile:12: perf] Error 2\n")
    assert ck.get("perf ran") is False, ck


def test_perf_binary_not_built_fails():
    text = ("=== containerctl coll=allreduce missing=test/perf/host_api/build/bin/perf_allreduce ===\n"
            + perf_stage(allreduce_2ranks(), coll="allgather"))
    ck = perf_checks(text)
    assert ck["allreduce built"] is False, ck


def test_perf_of_a_checkout_that_prints_nothing_is_skip_never_pass():
    body = SIZE.format(n=1024) + SIZE.format(n=2048)
    silent = FlagCXInterface(perf_layout="host_api", allreduce_prints="none")
    ck = perf_checks(perf_stage(body), flagcx=silent)
    assert ck["allreduce output"] is True
    assert ck["allreduce correctness"] is None, ck
    # the same checkout judged as one that prints buffers: nothing printed is SKIP there too
    printing = FlagCXInterface(perf_layout="host_api", allreduce_prints="rank",
                               verdict_kinds=["all-reduce"])
    ck = perf_checks(perf_stage(body), flagcx=printing)
    assert True not in [v for k, v in ck.items() if "buffers" in k or "correctness" in k], ck


def test_a_bad_reference_table_is_a_failed_check_not_silence():
    ck = perf_checks(perf_stage(allreduce_2ranks()), references={"allreduce": {"1K": "fast"}})
    assert ck["references"] is False, ck
    ck = perf_checks(perf_stage(allreduce_2ranks()), references={"allreduce": {"1K": 0.5}})
    assert ck["ref allreduce busbw 1K"] is True, ck


# ------------------------------------------------------------------ unittest stage parser

XML_OK = ('<?xml version="1.0"?><testsuites><testsuite name="S">'
          '<testcase name="a" classname="S" status="run" result="completed" time="0"/>'
          '<testcase name="b" classname="S" status="run" result="completed" time="0"/>'
          '</testsuite></testsuites>')


def ut_binary(name: str, rc: int, xml: str = XML_OK) -> str:
    return (f"=== containerctl ut-run bin={name} kind=unit ===\n[==========] Running 2 tests\n"
            f"=== containerctl ut-end bin={name} rc={rc} ===\n"
            f"=== containerctl ut-xml bin={name} file={name}.xml ===\n{xml}\n"
            "=== containerctl ut-xml-end ===\n")


def ut_checks(text: str, **ctx) -> dict[str, bool | None]:
    _, checks, _ = C.run_parser("unittest", text, ctx)
    return {c["name"]: c["ok"] for c in checks}


def test_unittest_binary_exit_code_counts():
    ok = "=== containerctl ut-build rc=0 ===\n" + ut_binary("core_unit_tests", 0)
    assert ut_checks(ok) == {"unittest core_unit_tests": True}
    # exit 1 with every case passed and no known failure: not a pass
    assert ut_checks(ok.replace("rc=0 ===\n=== containerctl ut-xml", "rc=1 ===\n"
                                "=== containerctl ut-xml"))["unittest core_unit_tests"] is False
    # killed by the per-binary timeout after its XML was written: not a pass, and named so
    _, checks, _ = C.run_parser("unittest", ok.replace(
        "rc=0 ===\n=== containerctl ut-xml", "rc=124 ===\n=== containerctl ut-xml"), {})
    assert checks[0]["ok"] is False and "timed out" in checks[0]["detail"], checks


def test_unittest_component_that_did_not_build_fails_unless_known():
    text = ("=== containerctl ut-build rc=2 ===\n" + ut_binary("core_unit_tests", 0)
            + "=== containerctl ut-missing comp=p2p want=unit ===\n")
    assert ut_checks(text)["unittest p2p build"] is False
    assert ut_checks(text, known_build_failures=["p2p"])["unittest p2p build"] is None
    assert ut_checks(text, known_build_failures=["topo"])["unittest p2p build"] is False


def test_unittest_stage_that_ran_no_binary_fails():
    assert ut_checks("=== containerctl ut-build rc=2 ===\nmake: *** Error 2\n") == \
        {"unit tests": False}
    assert ut_checks("=== containerctl unittest none ===\n") == {"unit tests": None}


# ------------------------------------------------------------------ build / deps parsers

def test_build_check_needs_the_library():
    ok = "+ make USE_CPU_SELFTEST=1\n-rwxr-xr-x 1 root root 55176 build/lib/libflagcx.so\n"
    assert C.run_parser("build", ok, {})[1][0]["ok"] is True
    bad = "+ make USE_CPU_SELFTEST=1\nbuild/lib/libflagcx.so was not produced\n"
    assert C.run_parser("build", bad, {})[1][0]["ok"] is False


def test_missing_dependency_fails():
    text = "DEP make status=found path=/usr/bin/make\nDEP mpi status=missing fix=apt_install_openmpi\n"
    ck = {c["name"]: c["ok"] for c in C.run_parser("deps", text, {})[1]}
    assert ck == {"dep make": True, "dep mpi": False}


# ------------------------------------------------------------------ references

@pytest.mark.parametrize("bad", ["fast", [1.0, 2.0, 3.0, "GB/s", 5], {"valu": 3}, -4.0, [3.0, 0.5]])
def test_a_malformed_reference_is_refused_never_dropped(bad):
    with pytest.raises(ProfileError, match=r"references\.allreduce\.4G"):
        R.validate_references({"allreduce": {"4G": bad}})
    with pytest.raises(UsageError):
        R.load_references("nvidia-a800", {"allreduce": {"4G": bad}})
    # a good value in the same place is taken
    assert R.load_references("nvidia-a800", {"allreduce": {"4G": 150.0}})["allreduce"][4 * 1024 ** 3].value == 150.0


def test_a_reference_with_an_unreadable_size_is_refused():
    with pytest.raises(ProfileError, match=r"references\.allreduce\.4Q"):
        R.validate_references({"allreduce": {"4Q": 10.0}})


def _metrics(busbw: dict[int, float]) -> dict:
    rows = [{"size": s, "time_s": 0.01, "algbw": b, "busbw": b} for s, b in busbw.items()]
    return {"collectives": {"allreduce": {"nranks": 2, "sweeps": [
        {"datatype": "float", "op": "sum", "rows": rows}]}}}


def test_reference_lower_bound_and_unmeasured_sizes():
    g4, g1 = 4 * 1024 ** 3, 1024 ** 3
    refs = {"allreduce": {g4: R.Reference(144.18, -0.10, None, "GB/s", "busbw", 2),
                          g1: R.Reference(141.31, -0.10, None, "GB/s", "busbw", 2)}}
    by = {c.name: c.ok for c in R.evaluate(_metrics({g4: 130.0}), refs)}
    assert by["ref allreduce busbw 4G"] is True      # 130 ≥ 144.18 × 0.9 = 129.76
    assert by["ref allreduce busbw 1G"] is None      # not measured: SKIP, never PASS
    by = {c.name: c.ok for c in R.evaluate(_metrics({g4: 129.0}), refs)}
    assert by["ref allreduce busbw 4G"] is False     # just below the tolerance


# ------------------------------------------------------------------ issue 18: rules no test held

def test_a_value_exactly_at_the_tolerance_passes_and_just_below_fails():
    refs = {"allreduce": {1024: R.Reference(100.0, -0.5, None, "GB/s", "busbw", 2)}}    # lo = 50.0 exactly
    assert [c.ok for c in R.evaluate(_metrics({1024: 50.0}), refs)] == [True]
    assert [c.ok for c in R.evaluate(_metrics({1024: 49.999}), refs)] == [False]


def test_a_sweep_spanning_exactly_1000x_is_judged_for_flat_time():
    rows = [{"size": 67109, "time_s": 1e-5, "algbw": 1.0, "busbw": 1.0},
            {"size": 67109 * 1000, "time_s": 1e-5, "algbw": 1.0, "busbw": 1.0}]
    c = P.check_plausible("allreduce", {"sweeps": [{"rows": rows}]}, None)
    assert c.ok is False and "1000× the data" in c.detail


def test_the_oracle_compares_the_last_size_too():
    good = "0.000000 3.000000 6.000000 9.000000"
    text = allreduce_2ranks(sizes=(1024, 2048, 4096))
    assert P.check_collective("allreduce", text, 2).ok is True
    # only the last (largest) size is wrong, on rank 1 only
    i = text.rindex(f"rank 1 recvbuff = {good}")
    bad = text[:i] + "rank 1 recvbuff = 0.000000 3.000000 6.000000 9.500000" + text[i + len(f"rank 1 recvbuff = {good}"):]
    c = P.check_collective("allreduce", bad, 2)
    assert c.ok is False and "rank 1" in c.detail and "4096" in c.detail.replace("4 KiB", "4096")


def test_a_loss_that_turns_nan_fails_training():
    line = ("iteration {i}/10 | elapsed time per iteration (ms): 100.0 | lm loss: {loss} | "
            "number of skipped iterations:   0 | number of nan iterations:   0 |")
    iters = P.parse_flagscale_iterations("\n".join(line.format(i=i, loss=v) for i, v in ((1, "2.5E+00"), (2, "nan"))))
    checks = {c.name: c.ok for c in P.check_training(iters)}
    assert checks["train lm loss"] is False and checks["train nan iterations"] is True
    iters = P.parse_flagscale_iterations("\n".join(line.format(i=i, loss=v) for i, v in ((1, "2.5E+00"), (2, "2.4E+00"))))
    assert all(c.ok for c in P.check_training(iters))


def test_torch_a_rank_numbered_n_is_one_too_many():
    before = ("rank {r} before allreduce: x = tensor([1.0000, 2.0000]), y = tensor([3.0000, 4.0000])\n")
    text = "".join(before.format(r=r) for r in range(3))
    parsed = P.parse_torch_example(text + "rank 0 after allreduce min: x = tensor([1.0000, 2.0000])\n")
    checks = {c.name: c for c in P.check_torch_example(parsed, 2)}
    assert checks["torch allreduce ranks"].ok is False and "rank(s) [2] printed too" in checks["torch allreduce ranks"].detail


@pytest.mark.parametrize("status", ["failed", "timeout", "interrupted"])
def test_every_bad_stage_gets_a_failure_screen_and_a_pass_none(tmp_path, monkeypatch, status):
    monkeypatch.setenv("CONTAINERCTL_HOME", str(tmp_path))
    from containerctl.results import store
    from containerctl.ui.failure import failure_blocks
    rid = store.start_run("p", stages=["perf", "deps"])["run_id"]
    store.log_path(rid, "perf").write_text("mpirun noticed that process rank 1 exited on signal 9 (Killed).\n")
    store.write_stage(rid, store.stage_record(rid, "perf", status=Status(status), started=store.now_iso(), exit_code=137,
                                              message=f"perf {status}", log="logs/perf.log"))
    store.write_stage(rid, store.stage_record(rid, "deps", status=Status.PASSED, started=store.now_iso(), exit_code=0,
                                              message="1 checks passed"))
    (title, lines), = failure_blocks(store.load_run(rid))
    assert title.startswith(f"perf {status}") and any("signal 9" in ln for ln in lines)
