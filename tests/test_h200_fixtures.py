"""Parsers and checks over real outputs captured on an H200 through containerctl (see
tests/fixtures/h200/README.md)."""
from __future__ import annotations

from pathlib import Path

from containerctl.results import parsers as P
from containerctl.stages import checks as C

H = Path(__file__).parent / "fixtures" / "h200"


def test_perf_all_collectives_parse_and_check():
    text = (H / "h200x1_perf_all_colls.log").read_text()
    metrics, checks, _ = C.run_parser("perf", text, {"nranks": 1, "platform_key": "nvidia-h200"})
    colls = metrics["collectives"]
    assert set(colls) == {"allreduce", "allgather", "reducescatter", "alltoall", "broadcast",
                          "reduce", "sendrecv", "gather", "scatter"}
    for coll, part in colls.items():
        rows = part["sweeps"][0]["rows"]
        assert [r["size"] for r in rows] == [128 * 1024 * 2 ** i for i in range(14)], coll
        assert all(r["algbw"] > 0 for r in rows)
    by_name = {c["name"]: c for c in checks}
    assert by_name["allreduce sum buffers"]["ok"] is True
    assert not [c for c in checks if c["ok"] is False]


def test_container_matches_bare_metal_within_a_percent():
    def algbw(f):
        return {r.size: r.algbw for s in P.parse_flagcx_perf((H / f).read_text()) for r in s.rows}
    cc, bare = algbw("h200x1_containerctl_allreduce.log"), algbw("h200x1_bare_metal_allreduce.log")
    assert set(cc) == set(bare) and max(cc) == 4 * 1024 ** 3
    big = [s for s in cc if s >= 256 * 1024 ** 2]
    assert min(cc[s] / bare[s] for s in big) > 0.99


def test_nccl_tests_real_output():
    res = P.parse_nccl_tests((H / "h200x1_nccl_tests_all_reduce_g1.log").read_text())
    assert [r.size for r in res.rows][0] == 131072 and res.rows[-1].size == 4 * 1024 ** 3
    assert res.out_of_bounds == 0 and res.out_of_bounds_ok
    assert all(c.ok for c in P.check_nccl_tests(res))


def test_torch_example_real_output():
    parsed = P.parse_torch_example((H / "h200x1_torch_example.log").read_text())
    checks = P.check_torch_example(parsed, 1)
    assert checks and all(c.ok for c in checks), [c.to_dict() for c in checks]
    broken = (H / "h200x1_torch_example.log").read_text().replace(
        "after allreduce max with FLAGCX_GROUP1: y = tensor([0.6259]",
        "after allreduce max with FLAGCX_GROUP1: y = tensor([0.9999]")
    assert not all(c.ok for c in P.check_torch_example(P.parse_torch_example(broken), 1))
    # the same 1-rank log is a failure when the profile configured 2 ranks
    two = {c.name: c for c in P.check_torch_example(parsed, 2)}
    assert two["torch allreduce ranks"].ok is False


def test_flagos_host_api_layout_real_output():
    """≥ v0.12 (flagos-ai 0c72129): perf_<coll> with a datatype/op banner, no buffers printed."""
    text = (H / "h200x1_flagos_v0.13_perf_all_colls.log").read_text()
    assert "perf layout: v0.12" in text
    metrics, checks, _ = C.run_parser("perf", text, {"nranks": 1, "platform_key": "nvidia-h200"})
    assert len(metrics["collectives"]) == 9
    for coll, part in metrics["collectives"].items():
        sw = part["sweeps"][0]
        assert (sw["datatype"], sw["op"]) == ("float", "sum"), coll
        assert [r["size"] for r in sw["rows"]] == [128 * 1024 * 2 ** i for i in range(10)]
    by = {c["name"]: c for c in checks}
    assert by["allreduce sum buffers"]["ok"] is None   # nothing printed: undecided, never a pass
    assert not [c for c in checks if c["ok"] is False]


# --- 2 × H200 (nvidia-h200-x2), 2 ranks -------------------------------------------------------

def test_x2_perf_all_collectives_two_ranks():
    text = (H / "h200x2_perf_all.log").read_text()
    metrics, checks, _ = C.run_parser("perf", text, {"nranks": 2, "platform_key": "nvidia-h200"})
    assert len(metrics["collectives"]) == 9
    ar = metrics["collectives"]["allreduce"]["sweeps"][0]["rows"]
    # bus bandwidth = algbw × 2(n-1)/n = algbw for 2 ranks, and NVLink-class numbers at 1 GiB
    assert all(abs(r["busbw"] - r["algbw"]) <= 1e-3 * max(1.0, r["algbw"]) for r in ar)
    assert ar[-1]["size"] == 1024 ** 3 and ar[-1]["busbw"] > 100
    by = {c["name"]: c for c in checks}
    assert by["allreduce sum buffers"]["ok"] is True and "× 2" in by["allreduce sum buffers"]["detail"]
    assert not [c for c in checks if c["ok"] is False]


def test_x2_container_costs_no_bandwidth():
    def busbw(f):
        return {r.size: r.busbw for s in P.parse_flagcx_perf((H / f).read_text()) for r in s.rows}
    cc = busbw("h200x2_containerctl_allreduce.log")
    bare = busbw("h200x2_bare_allreduce.log")
    nt = P.parse_nccl_tests((H / "h200x2_nccl_tests_g2.log").read_text())
    nccl = {r.size: r.oop.busbw for r in nt.rows}
    big = [s for s in cc if s >= 256 * 1024 ** 2]
    assert len(big) == 5
    assert min(cc[s] / bare[s] for s in big) >= 0.99
    assert min(cc[s] / nccl[s] for s in big) >= 0.98
    assert nt.out_of_bounds == 0 and all(c.ok for c in P.check_nccl_tests(nt))


def test_x2_torch_example_two_ranks():
    text = (H / "h200x2_torch.log").read_text()
    checks = P.check_torch_example(P.parse_torch_example(text), 2)
    assert checks and all(c.ok for c in checks), [c.to_dict() for c in checks]
    broken = text.replace("rank 1 after allreduce sum with FLAGCX_GROUP1: x = tensor([1.0638",
                          "rank 1 after allreduce sum with FLAGCX_GROUP1: x = tensor([1.5000")
    assert broken != text
    assert not all(c.ok for c in P.check_torch_example(P.parse_torch_example(broken), 2))


# --- FlagCX v0.13.0 on 2 × H200 (real, 2026-11-30) ---------------------------------------------

def test_v013_torch_example_two_runs_and_shared_lines():
    """`-o allreduce`, then `-o all` (broadcast, reduce, … lines too; two ranks' lines sharing one line)."""
    text = (H / "h200x2_v0.13.0_torch.log").read_text()
    assert "device='cuda:0')rank 1 before allreduce:" in text
    parsed = P.parse_torch_example(text)
    assert len(parsed.rounds) == 2 and all(set(r) == {0, 1} for r in parsed.rounds)
    checks = P.check_torch_example(parsed, 2)
    assert len(checks) == 10 and all(c.ok for c in checks), [c.to_dict() for c in checks]
    broken = text.replace("rank 0 after allreduce min with FLAGCX_GROUP1: x = tensor([0.2275, 0.6397], device='cuda:0')rank 1",
                          "rank 0 after allreduce min with FLAGCX_GROUP1: x = tensor([0.8617, 0.6397], device='cuda:0')rank 1")
    assert broken != text
    bad = {c.name: c for c in P.check_torch_example(P.parse_torch_example(broken), 2)}
    assert bad["torch allreduce min (run 2)"].ok is False and bad["torch allreduce min (run 1)"].ok is True


def test_v013_perf_p1_every_collective_judged_without_a_false_fail():
    text = (H / "h200x2_v0.13.0_perf_p1.log").read_text()
    verdicts = {}
    for part in text.split("=== coll=")[1:]:
        coll = part.split()[0]
        verdicts[coll] = P.check_collective(coll, part, 2).ok
    assert verdicts == {"allreduce": True, "allgather": True, "broadcast": True, "reduce": None, "reducescatter": None,
                        "alltoall": None, "gather": None, "scatter": None, "sendrecv": None}
