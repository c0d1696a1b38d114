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
