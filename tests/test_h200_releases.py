"""Real FlagCX releases on 2×H200 (nvidia-h200-x2, 2026-11-30; tests/fixtures/h200/releases/):
the stage logs containerctl wrote there, judged again by today's parsers. No correct run may be
called failed, and what really failed must stay failed for the reason it failed."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from containerctl.flagcx import parse_probe
from containerctl.profiles import load_profile
from containerctl.stages.checks import run_parser
from containerctl.stages.context import make_context
from containerctl.stages.executor import failure_cause

F = Path(__file__).parent / "fixtures" / "h200" / "releases"


def ctx_for(log: str, nranks: int = 2, **over) -> dict:
    """The context the stage had: the nvidia-h200 profile and the interface the probe reported
    (its summary line is in the log)."""
    prof = load_profile("nvidia-h200", site=False)
    m = re.search(r"-p 1 prints (\S+)", log)
    prints = {"verdict+buffers": "rank", "buffers": "rank", "none": "none"}[m.group(1)]
    fx = parse_probe(f"FLAGCX_PROBE perf_layout host_api\nFLAGCX_PROBE allreduce_prints {prints}\n"
                     + ("FLAGCX_PROBE verdict_kinds all-reduce\n" if m.group(1).startswith("verdict")
                        else ""))
    ctx = make_context(prof, {"nranks": nranks}, fx)
    ctx.update(over)
    return ctx


def bad(checks):
    return [c for c in checks if c["ok"] is False]


@pytest.mark.parametrize("rel", ["v0.11.0", "v0.12.0"])
def test_older_releases_fail_to_build_against_nccl_2_28_for_the_stated_reason(rel):
    log = (F / f"{rel}_build.log").read_text()
    cause = failure_cause(log)
    assert "NCCL_DEV_COMM_REQUIREMENTS_INITIALIZER" in cause and "nccl_adaptor.cc" in cause
    assert "does not match NCCL 2.28.9" in cause
    _, checks, _ = run_parser("build", log, {})
    assert bad(checks)   # no libflagcx.so: never a pass


def test_v0_13_perf_is_judged_correct():
    log = (F / "v0.13.0_perf.log").read_text()
    metrics, checks, _ = run_parser("perf", log, ctx_for(log))
    assert not bad(checks), checks
    ck = {c["name"]: c["ok"] for c in checks}
    assert ck["allreduce sum buffers"] is True
    rows = metrics["collectives"]["allreduce"]["sweeps"][0]["rows"]
    assert rows[-1]["size"] == 1 << 30 and rows[-1]["busbw"] > 300


def test_main_perf_prints_nothing_so_correctness_is_skip_not_pass():
    log = (F / "main_perf.log").read_text()
    _, checks, _ = run_parser("perf", log, ctx_for(log))
    assert not bad(checks)
    corr = [c for c in checks if "correctness" in c["name"] or "buffers" in c["name"]]
    assert corr and all(c["ok"] is None for c in corr)


@pytest.mark.parametrize("rel,expect", [("v0.13.0", True), ("main", None)])
def test_two_hosts_one_gpu_each(rel, expect):
    log = (F / f"{rel}_hetero_2x1.log").read_text()
    metrics, checks, _ = run_parser("perf", log, ctx_for(log))
    assert not bad(checks)
    corr = [c["ok"] for c in checks if "sum buffers" in c["name"] or "correctness" in c["name"]]
    assert corr == [expect]
    # NCCL said how it moved the data: sockets over the containers' bridge, no IB
    assert "via NET/Socket" in log and "NET/IB : No device found" in log
    peak = max(r["busbw"] for r in metrics["collectives"]["allreduce"]["sweeps"][0]["rows"])
    assert 1.0 < peak < 10.0


@pytest.mark.parametrize("rel", ["v0.13.0", "main"])
def test_unit_tests_pass_with_the_profiles_known_failures_and_fail_without(rel):
    log = (F / f"{rel}_unittest.log").read_text()
    prof = load_profile("nvidia-h200", site=False)
    ctx = {"known_failures": prof.stages.unittest.known_failures,
           "excluded_tests": prof.stages.unittest.exclude}
    _, checks, _ = run_parser("unittest", log, ctx)
    assert not bad(checks), bad(checks)
    assert sum(1 for c in checks if c["ok"]) >= 5
    # the same output without the list: the failures are real, and stay failures
    _, checks, _ = run_parser("unittest", log, {})
    assert bad(checks)


@pytest.mark.parametrize("rel", ["v0.13.0", "main"])
def test_torch_example_on_two_ranks(rel):
    log = (F / f"{rel}_torch.log").read_text()
    _, checks, _ = run_parser("torch", log, {"nranks": 2})
    assert not bad(checks) and any(c["ok"] for c in checks)
    _, checks, _ = run_parser("torch", log, {"nranks": 4})   # configured for more ranks
    assert bad(checks)
