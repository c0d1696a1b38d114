"""gtest results: the real v0.13.0 unit tests on 2×H200 (console + XML), known failures, and the
summary verdict for crashed / empty / skipped runs (planted shapes in tests/fixtures/handwritten/logs)."""
from __future__ import annotations

from pathlib import Path

import pytest

from containerctl.results import gtest as G

FIX = Path(__file__).parent / "fixtures"
H = FIX / "h200"
LOGS = FIX / "handwritten" / "logs"


def console() -> dict[str, str]:
    text = (H / "h200x2_v0.13.0_unit_console.log").read_text()
    return {p.split("\n", 1)[0].rsplit("/", 1)[-1]: p for p in text.split("=== ")[1:]}


@pytest.mark.parametrize("binary,passed", [("adaptor_unit_tests", 14), ("core_unit_tests", 64),
                                           ("runner_unit_tests", 5), ("service_unit_tests", 23), ("symmem_unit_tests", 9)])
def test_real_passing_binaries(binary, passed):
    run = G.parse_gtest_console(console()[binary], binary)
    assert run.count("passed") == passed and run.ran == passed and run.summary and not run.crashed
    c = G.check_gtest(run)
    assert c.ok is True and c.detail == f"{passed} passed"


def test_real_topo_zero_of_four_console_and_xml_agree():
    con = G.parse_gtest_console(console()["topo_unit_tests"], "topo_unit_tests")
    xml = G.parse_gtest_xml((H / "h200x2_v0.13.0_topo_unit_tests.xml").read_text(), "topo_unit_tests")
    for run in (con, xml):
        assert [c.name for c in run.failed] == ["P2pTopoTest.InitAndDestroy", "P2pTopoTest.GetNetDevForEachGpu",
                                                 "P2pTopoTest.OutOfRangeGpuDev", "P2pTopoTest.NullArgs"]
        assert "No IB P2P devices found" in run.failed[0].message
        c = G.check_gtest(run)
        assert c.ok is False and "4 failed, 0 passed: first P2pTopoTest.InitAndDestroy" in c.detail


@pytest.mark.parametrize("patterns", [["P2pTopoTest.*"], "*Topo*", ["-P2pTopoTest.InitAndDestroy:P2pTopoTest.GetNetDevForEachGpu",
                                                                    "P2pTopoTest.OutOf?angeGpuDev", "P2pTopoTest.NullArgs"]])
def test_known_failures_turn_matching_failures_into_known(patterns):
    run = G.parse_gtest_xml((H / "h200x2_v0.13.0_topo_unit_tests.xml").read_text(), "topo")
    c = G.check_gtest(run, known_failures=patterns)
    # every case a known failure, none passed: nothing was judged — never a pass (issue 18)
    assert c.ok is None and run.count("known-failure") == 4 and "4 known failures" in c.detail
    assert c.detail.startswith("judged nothing: 0 passed")


def test_partial_known_failures_still_fail_on_the_others():
    run = G.parse_gtest_xml((H / "h200x2_v0.13.0_topo_unit_tests.xml").read_text(), "topo")
    c = G.check_gtest(run, known_failures=["P2pTopoTest.NullArgs", "Other.*"])
    assert c.ok is False and c.detail.startswith("3 failed") and run.count("known-failure") == 1


def test_real_core_mpi_tests_ran_zero_tests():
    run = G.parse_gtest_console(console()["core_mpi_tests"], "core_mpi_tests")  # two ranks, colour codes
    assert run.ran == 0 and run.summary
    c = G.check_gtest(run)
    assert c.ok is False and "ran 0 tests" in c.detail
    # 0 tests where none were expected: not a failure, and not a pass either
    none = G.check_gtest(G.parse_gtest_console(console()["core_mpi_tests"]), expect_tests=False)
    assert none.ok is None and none.detail.startswith("judged nothing")


def test_real_core_xml_and_a_cut_short_xml():
    text = (H / "h200x2_v0.13.0_core_unit_tests.xml").read_text()
    assert G.check_gtest(G.parse_gtest_xml(text, "core")).detail == "64 passed"
    cut = G.check_gtest(G.parse_gtest_xml(text[: len(text) // 2], "core"))
    assert cut.ok is False and cut.detail.startswith("crashed: the XML report is unreadable")


def test_crash_inside_a_case_symmem_mpi_shape():
    run = G.parse_gtest_console((LOGS / "gtest_symmem_mpi_abort.log").read_text(), "symmem_mpi_tests")
    assert run.count("passed") == 1 and run.crashed and not run.summary
    c = G.check_gtest(run, exit_code=1)
    assert c.ok is False and "SymMemMpiTest.MulticastWindow" in c.detail and "crashed inside this test" in c.detail


def test_skipped_cases_and_nonzero_exit():
    run = G.parse_gtest_console((LOGS / "gtest_skipped.log").read_text(), "adaptor")
    assert [(c.name, c.status) for c in run.cases] == [("AdaptorTest.Basic", "passed"), ("AdaptorTest.NeedsIb", "skipped")]
    assert "no IB device" in run.cases[1].message
    assert G.check_gtest(run).detail == "1 passed, 1 skipped"
    bad = G.check_gtest(G.parse_gtest_console((LOGS / "gtest_skipped.log").read_text()), exit_code=1)
    assert bad.ok is False and "exited with code 1" in bad.detail


def test_no_output_at_all():
    c = G.check_gtest(G.parse_gtest_console("", "x"))
    assert c.ok is False and "no gtest output at all" in c.detail
