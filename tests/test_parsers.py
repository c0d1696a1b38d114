"""Parsers and checks over the runbook's real outputs and hand-written fixtures in the exact formats."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from containerctl.errors import UsageError
from containerctl.results import parsers as P

FIX = Path(__file__).parent / "fixtures"
RB = FIX / "runbook"
HW = FIX / "handwritten"

PLATFORMS = {"a800": 144.176214, "c550": 47.333872, "p800": 20.027448}


def read(p: Path) -> str:
    return p.read_text(encoding="utf-8")


# ---------------------------------------------------------------- FlagCX perf lines


@pytest.mark.parametrize("name,busbw_4g", sorted(PLATFORMS.items()))
def test_runbook_perf_outputs_parse_completely(name, busbw_4g):
    text = read(RB / f"{name}_allreduce.txt")
    sweeps = P.parse_flagcx_perf(text)
    assert len(sweeps) == 1
    rows = sweeps[0].rows
    # -b 128K -e 4G -f 2: every size from 128 KiB to 4 GiB, doubling
    assert [r.size for r in rows] == [131072 * 2**i for i in range(16)]
    assert rows[-1].busbw == pytest.approx(busbw_4g, abs=1e-6)
    # one parsed row per "Comm size" occurrence in the raw text: nothing lost, nothing invented
    assert len(rows) == text.count("Comm size:")
    # the parsed numbers obey the tool's formula algbw = size / 1e9 / time where time has enough digits
    for r in rows:
        if r.time_s > 1e-3:
            assert r.algbw == pytest.approx(r.size / 1e9 / r.time_s, rel=2e-3)


def test_perf_v013_layout_with_mpi_tags_and_debug_lines():
    sweeps = P.parse_flagcx_perf(read(HW / "flagcx_perf_v013_tagged_2ranks.txt"))
    assert [(s.datatype, s.op) for s in sweeps] == [("int8", "sum"), ("half", "max"), ("float", "sum")]
    assert all([r.size for r in s.rows] == [1 << 20, 2 << 20, 4 << 20, 8 << 20] for s in sweeps)
    assert sweeps[2].rows[0].time_s == pytest.approx(0.00008)


def test_perf_headerless_concatenated_runs_split_into_sweeps():
    one = read(RB / "a800_allreduce.txt")
    sweeps = P.parse_flagcx_perf(one + one)
    assert len(sweeps) == 2 and all(len(s.rows) == 16 for s in sweeps)
    assert sweeps[0].datatype is None and sweeps[0].op is None


def test_perf_header_without_rows_is_kept_and_garbage_ignored():
    text = "#\n# datatype: float, op: sum\n#\nsegfault\nComm size: nonsense\n"
    sweeps = P.parse_flagcx_perf(text)
    assert len(sweeps) == 1 and sweeps[0].rows == []
    assert P.parse_flagcx_perf("nothing here\n") == []


_PREFIXES = st.sampled_from(["", "[1,0]<stdout>:", "[0] ", "[default0]:", "[1,0]<stdout>:[0] "])


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(1, 2**40), st.floats(1e-6, 10.0), st.floats(0.0, 1e4), st.floats(0.0, 2e4)),
        min_size=1, max_size=12,
    ),
    prefix=_PREFIXES,
)
def test_perf_roundtrip_through_the_printf_format(rows, prefix):
    rows = sorted({r[0]: r for r in rows}.values())  # strictly growing sizes = one sweep
    text = "".join(
        prefix + "Comm size: %d bytes; Elapsed time: %lf sec; Algo bandwidth: %lf GB/s; Bus bandwidth: %lf GB/s\n" % r
        + "host:1:1 [0] FLAGCX INFO noise\n"
        for r in rows
    )
    sweeps = P.parse_flagcx_perf(text)
    assert len(sweeps) == 1
    got = sweeps[0].rows
    assert [g.size for g in got] == [r[0] for r in rows]
    for g, r in zip(got, rows):
        assert abs(g.time_s - r[1]) <= 5e-7 and abs(g.algbw - r[2]) <= 5e-7 + 1e-12 * r[2] and abs(g.busbw - r[3]) <= 5e-7 + 1e-12 * r[3]


# ---------------------------------------------------------------- -p 1 buffers


def test_buffers_pair_with_sizes_and_allreduce_check_uses_nranks():
    text = read(HW / "flagcx_allreduce_p1_4ranks.txt")
    p = P.parse_perf_buffers(text)
    assert p.sizes == [131072, 262144, 524288, 1048576]
    sends = p.of("send")
    assert [p.size_of(l.seq) for l in sends] == p.sizes and sends[0].values == [float(i % 10) for i in range(10)]
    ok = P.check_collective("allreduce", p, 4)
    assert ok.ok is True and ok.compared == 4, ok.detail
    wrong = P.check_collective("allreduce", p, 2)
    assert wrong.ok is False
    assert "size 131072" in wrong.detail and "expected 2" in wrong.detail


def test_allreduce_check_catches_one_corrupted_value():
    text = read(HW / "flagcx_allreduce_p1_4ranks.txt")
    lines = text.splitlines()
    last_recv = max(i for i, l in enumerate(lines) if l.startswith("recvbuff"))
    lines[last_recv] = lines[last_recv].replace("12.000000", "13.000000", 1)
    c = P.check_collective("allreduce", "\n".join(lines), 4)
    assert c.ok is False
    assert "size 1048576" in c.detail and "recvbuff[3] = 13" in c.detail


def test_allreduce_check_without_buffers_is_undecided_not_passed():
    c = P.check_collective("allreduce", P.parse_perf_buffers(read(RB / "a800_allreduce.txt")), 2)
    assert c.ok is None and c.detail == P.NO_BUFFERS


def test_broadcast_root_lines_count():
    # 2 ranks, -r -1: both print every round; rank r's data is r
    b = "".join(f"root rank is {r}\nsendbuff = " + "0.000000 " * 3 + f"\nroot rank is {r}\nsendbuff = " + "1.000000 " * 3
                + "\n" + f"recvbuff = {r}.000000 {r}.000000 {r}.000000 \n" * 2 for r in (0, 1))
    assert P.check_collective("broadcast", b, 2).ok is True
    assert P.check_collective("broadcast", b.replace("root rank is 1", "root rank is 0"), 2).ok is False


@pytest.mark.parametrize("coll", ["reduce", "alltoall", "reducescatter", "gather", "scatter", "sendrecv"])
def test_no_invented_checks_for_other_collectives(coll):
    c = P.check_collective(coll, P.parse_perf_buffers(read(HW / "flagcx_allreduce_p1_4ranks.txt")), 4)
    assert c.ok is None and c.detail.startswith(f"no check for {coll}")


# ---------------------------------------------------------------- bus factor


@pytest.mark.parametrize("coll,n,f", [("allreduce", 2, 1.0), ("allreduce", 8, 1.75), ("all_reduce_perf", 4, 1.5),
                                      ("test_allgather", 8, 0.875), ("reducescatter", 4, 0.75), ("alltoallv", 2, 0.5),
                                      ("broadcast", 8, 1.0), ("perf_sendrecv", 4, 1.0), ("gather", 1, 0.0)])
def test_bus_factor_table(coll, n, f):
    assert P.bus_factor(coll, n) == pytest.approx(f)


@given(st.integers(1, 4096))
def test_bus_factor_relations(n):
    assert P.bus_factor("allreduce", n) == pytest.approx(2 * P.bus_factor("allgather", n))
    assert 0 <= P.bus_factor("allreduce", n) < 2
    assert P.bus_factor("broadcast", n) == 1.0


def test_bus_factor_rejects_unknown_and_bad_nranks():
    with pytest.raises(UsageError):
        P.bus_factor("allscatterreduce", 2)
    with pytest.raises(UsageError):
        P.bus_factor("allreduce", 0)


def test_bus_factor_check_detects_wrong_rank_count_on_the_hetero_run():
    sweeps = P.parse_flagcx_perf(read(RB / "hetero_a800x2_c550x2.txt"))
    assert P.check_bus_factor(sweeps, "allreduce", 4).ok is True  # A800×2 + C550×2
    bad = P.check_bus_factor(sweeps, "allreduce", 2)
    assert bad.ok is False and "1.5000" in bad.detail


# ---------------------------------------------------------------- nccl-tests


def test_nccl_tests_table_and_footer():
    res = P.parse_nccl_tests(read(HW / "nccl_tests_allreduce_2gpu.txt"))
    assert res.test == "all_reduce_perf"
    assert [r.size for r in res.rows] == [8, 1024, 1 << 20, 1 << 26, 1 << 30]
    r = res.rows[-1]
    assert (r.count, r.type, r.redop, r.root) == (268435456, "float", "sum", -1)
    assert r.oop.wrong == 0 and r.ip.wrong == 0 and r.oop.busbw == pytest.approx(119.87)
    assert res.out_of_bounds == 0 and res.out_of_bounds_ok is True
    # the footer average is the mean of the printed busbw columns
    assert res.avg_busbw == pytest.approx(sum(x.oop.busbw + x.ip.busbw for x in res.rows) / (2 * len(res.rows)), rel=1e-3)
    assert all(c.ok for c in P.check_nccl_tests(res))


def test_nccl_tests_failures_and_na_columns():
    text = read(HW / "nccl_tests_allreduce_2gpu.txt").replace("0 OK", "3 FAILED")
    lines = text.splitlines()
    i = next(k for k, l in enumerate(lines) if " 1048576 " in l)
    toks = lines[i].split()
    toks[-1] = "N/A"
    toks[9] = "2"  # out-of-place #wrong
    lines[i] = "   ".join(toks)
    res = P.parse_nccl_tests("\n".join(lines))
    row = next(r for r in res.rows if r.size == 1 << 20)
    assert row.oop.wrong == 2 and row.ip.wrong is None
    checks = {c.name: c for c in P.check_nccl_tests(res)}
    assert checks["nccl-tests out of bounds"].ok is False
    assert checks["nccl-tests #wrong"].ok is False and "1048576" in checks["nccl-tests #wrong"].detail


def test_nccl_tests_old_layout_without_root_column():
    line = "     1048576        262144     float     sum    18.74   55.96   55.96  0e+00    19.31   54.30   54.30  0e+00"
    res = P.parse_nccl_tests(line)
    assert len(res.rows) == 1 and res.rows[0].root is None and res.rows[0].ip.busbw == pytest.approx(54.30)
    assert res.out_of_bounds is None


# ---------------------------------------------------------------- torch example.py


@pytest.mark.parametrize("name", ["a800", "c550", "p800"])
def test_torch_runbook_outputs_pass(name):
    parsed = P.parse_torch_example(read(RB / f"torch_{name}.txt"))
    assert parsed.nranks == 2 and set(parsed.before) == {0, 1}
    assert {a.op for a in parsed.after} == {"min", "max", "sum"} and len(parsed.after) == 6
    checks = P.check_torch_example(parsed)
    assert [c.name for c in checks if c.ok is not True] == [], checks
    assert len(checks) == 5


def test_torch_sum_is_of_the_min_reduced_x_not_of_the_inputs():
    # example.py all_reduces x with MIN, then the same x with SUM: the printed sum is 2 × min,
    # so "sum of before-x" would wrongly fail the real runbook output.
    parsed = P.parse_torch_example(read(RB / "torch_a800.txt"))
    xs = [parsed.before[r]["x"] for r in (0, 1)]
    printed_sum = next(a.values for a in parsed.after if a.op == "sum")
    assert abs(printed_sum[0] - (xs[0][0] + xs[1][0])) > 0.5
    assert printed_sum[0] == pytest.approx(2 * min(xs[0][0], xs[1][0]), abs=2e-4)


@pytest.mark.parametrize("name", ["a800", "c550", "p800"])
def test_torch_corrupted_copy_fails(name):
    lines = read(RB / f"torch_{name}.txt").splitlines()
    i = next(k for k, l in enumerate(lines) if l.startswith("rank 1 after allreduce max"))
    lines[i] = lines[i].replace("tensor([0.", "tensor([0.0", 1)  # rank 1's max result shrinks ~10×
    checks = {c.name: c for c in P.check_torch_example(P.parse_torch_example("\n".join(lines)))}
    assert checks["torch allreduce max"].ok is False and "rank 1" in checks["torch allreduce max"].detail
    assert checks["torch allreduce ranks agree"].ok is False
    assert checks["torch allreduce min"].ok is True


def test_torch_missing_rank_or_no_output_fails():
    lines = [l for l in read(RB / "torch_p800.txt").splitlines() if not l.startswith("rank 1 after allreduce sum")]
    checks = {c.name: c for c in P.check_torch_example(P.parse_torch_example("\n".join(lines)))}
    assert checks["torch allreduce sum"].ok is False and "only rank(s) [0]" in checks["torch allreduce sum"].detail
    empty = P.check_torch_example(P.parse_torch_example("NCCL debug information disabled.\n"), 2)
    assert len(empty) == 1 and empty[0].ok is False and empty[0].detail == "example.py printed no result lines"


@pytest.mark.parametrize("name", ["a800", "p800"])
def test_torch_fewer_ranks_than_configured_fails(name):
    text = read(RB / f"torch_{name}.txt")
    assert all(c.ok for c in P.check_torch_example(P.parse_torch_example(text), 2))
    only0 = "\n".join(l for l in text.splitlines() if not l.startswith("rank 1 "))
    checks = {c.name: c for c in P.check_torch_example(P.parse_torch_example(only0), 2)}
    assert checks["torch allreduce ranks"].ok is False and "from rank(s) [1]" in checks["torch allreduce ranks"].detail
    assert checks["torch allreduce min"].ok is False
    # the same 1-rank log is whole when 1 rank was configured... and wrong when 4 were
    assert checks["torch allreduce ranks"].ok is False
    assert not all(c.ok for c in P.check_torch_example(P.parse_torch_example(text), 4))


def test_torch_prefixed_wrapped_scientific_tensors():
    text = (
        "[default1]:rank 1 before allreduce: x = tensor([1.0000e-01, 5.0000e-01,\n[default1]:        2.0000e-01], device='cuda:1'), "
        "y = tensor([0.3, 0.1, 0.9], device='cuda:1')\n"
        "[default0]:rank 0 before allreduce: x = tensor([0.2000, 0.4000, 0.3000], device='cuda:0'), y = tensor([0.5, 0.2, 0.1], device='cuda:0')\n"
    )
    for r in (0, 1):
        text += f"[default{r}]:rank {r} after allreduce min with FLAGCX_GROUP1: x = tensor([0.1000, 0.4000, 0.2000], device='cuda:{r}')\n"
        text += f"[default{r}]:rank {r} after allreduce max with FLAGCX_GROUP1: y = tensor([0.5000, 0.2000, 0.9000], device='cuda:{r}')\n"
        text += f"[default{r}]:rank {r} after allreduce sum with FLAGCX_GROUP1: x = tensor([0.2000, 0.8000, 0.4000], device='cuda:{r}')\n"
    parsed = P.parse_torch_example(text)
    assert parsed.before[1]["x"] == pytest.approx([0.1, 0.5, 0.2])
    assert all(c.ok for c in P.check_torch_example(parsed))


# ---------------------------------------------------------------- FlagScale


def test_flagscale_iterations():
    its = P.parse_flagscale_iterations(read(HW / "flagscale_llama3_8b_tail.log"))
    assert [i["iteration"] for i in its] == [1, 2, 3, 4, 5]
    first = its[0]
    assert first["total"] == 10 and first["consumed_samples"] == 2048 and first["global_batch_size"] == 2048
    assert first["ms_per_iter"] == pytest.approx(25001.0) and first["tflops_per_gpu"] == pytest.approx(181.0)
    assert first["lm_loss"] == pytest.approx(11.55) and first["lr"] == pytest.approx(1.5e-5)
    assert first["skipped"] == 0 and first["nan"] == 0 and first["rank"] == 7
    assert first["timestamp"] == "2025-08-01 07:19:10"
    assert its[-1]["lm_loss"] < its[0]["lm_loss"]
    assert all(c.ok for c in P.check_training(its))


def test_flagscale_missing_fields_and_nan_iterations():
    line = (" iteration        3/      10 | consumed samples:          384 | elapsed time per iteration (ms): 12936.1 |"
            " learning rate: 1.395349E-07 | global batch size:   128 | lm loss: nan | number of skipped iterations:   1 |"
            " number of nan iterations:   1 |")
    (it,) = P.parse_flagscale_iterations(line)
    assert it["tflops_per_gpu"] is None and it["rank"] is None and it["skipped"] == 1 and math.isnan(it["lm_loss"])
    checks = {c.name: c.ok for c in P.check_training([it])}
    assert checks["train nan iterations"] is False and checks["train lm loss"] is False
    assert P.check_training([])[0].ok is False


def test_strip_prefix():
    assert P.strip_prefix("[1,0]<stdout>:[default2]:x") == "x"
    assert P.strip_prefix("host:1:1 [0] FLAGCX INFO") == "host:1:1 [0] FLAGCX INFO"
