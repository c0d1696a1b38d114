"""The perf correctness oracle: every rule with a correct output and a planted wrong one per FlagCX
generation (runbook ≤ v0.6, v0.9–v0.11, v0.12–v0.13, main), plus the real v0.13.0 run on 2×H200.
Planted texts: tests/fixtures/handwritten/oracle (generate.py says what each shape is)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from containerctl.errors import UsageError
from containerctl.results import parsers as P

FIX = Path(__file__).parent / "fixtures"
O = FIX / "handwritten" / "oracle"
H = FIX / "h200"


def chk(coll: str, name: str, nranks: int | None, **kw) -> P.Check:
    return P.check_collective(coll, (O / name).read_text(), nranks, **kw)


def real_v013(coll: str) -> str:
    parts = (H / "h200x2_v0.13.0_perf_p1.log").read_text().split("=== coll=")
    return next(p for p in parts if p.startswith(coll + "\n"))


# ---------------------------------------------------------------- parsing


def test_labelled_lines_are_tied_to_sizes_by_each_ranks_own_order():
    # rank 1's lines all arrive after rank 0's (forwarded late): positions lie, per-rank order does not
    p = P.parse_perf_buffers((O / "v0.11_allreduce_correct.txt").read_text())
    assert p.sizes == [131072, 262144, 524288]
    r1 = [l for l in p.lines if l.rank == 1 and l.kind == "recv"]
    assert [p.size_of(l.seq) for l in r1] == p.sizes
    assert all(l.after_size == 524288 for l in r1)  # every one of them printed after the last size line
    assert [(v.rank, v.kind, v.ok) for v in p.verdicts].count((1, "all-reduce", True)) == 3


def test_prefixes_and_two_ranks_on_one_line():
    text = ("[1,0]<stdout>:rank 0 sendbuff = 0.000000 1.000000 rank 1 sendbuff = 0.000000 2.000000 \n"
            "[1,0]<stdout>:Comm size: 8 bytes; Elapsed time: 0.1 sec; Algo bandwidth: 1 GB/s; Bus bandwidth: 1 GB/s\n"
            "[1,1]<stdout>:rank 1 recvbuff = 0.000000 3.000000 rank 0 recvbuff = 0.000000 3.000000 \n"
            "rank 0 all-reduce correctness = 1rank 1 all-reduce correctness = 1\n")
    p = P.parse_perf_buffers(text)
    assert sorted((l.kind, l.rank, tuple(l.values)) for l in p.lines) == [
        ("recv", 0, (0.0, 3.0)), ("recv", 1, (0.0, 3.0)), ("send", 0, (0.0, 1.0)), ("send", 1, (0.0, 2.0))]
    assert len(p.verdicts) == 2
    c = P.check_collective("allreduce", p, 2)
    assert c.ok is True and c.compared == 2


def test_selfsendbuff_and_string_buffers_are_not_numbers():
    p = P.parse_perf_buffers("selfsendbuff1 = 0x01 0x02\nsendbuff = hello world\nh_sendcounts = 1 2\n")
    assert not p and len(p) == 0


# ---------------------------------------------------------------- allreduce per generation


@pytest.mark.parametrize("name,nranks,compared", [
    ("runbook_allreduce_correct.txt", 2, 3),
    ("v0.11_allreduce_correct.txt", 2, 6),
    ("v0.13_allreduce_tagged_4ranks_correct.txt", 4, 12),
])
def test_allreduce_correct_outputs_pass_with_counts(name, nranks, compared):
    c = chk("allreduce", name, nranks)
    assert c.ok is True, c.detail
    assert c.compared == compared and c.to_dict()["compared"] == compared


def test_runbook_generation_states_its_assumption_and_needs_nranks():
    c = chk("allreduce", "runbook_allreduce_correct.txt", 2)
    assert "sendbuff × 2" in c.detail and "equal inputs" in c.detail and "only rank 0 printed" in c.detail
    assert chk("allreduce", "runbook_allreduce_correct.txt", None).ok is None
    # a wrong rank count is caught: × 3 is not what 2 ranks produce
    assert chk("allreduce", "runbook_allreduce_correct.txt", 3).ok is False


def test_runbook_generation_wrong_value_fails_naming_size():
    c = chk("allreduce", "runbook_allreduce_wrong.txt", 2)
    assert c.ok is False and "rank 0, size 262144: recvbuff[3] = 5, expected 6" in c.detail


def test_v011_wrong_output_fails_on_flagcx_verdict_and_on_ours():
    c = chk("allreduce", "v0.11_allreduce_wrong.txt", 2)
    assert c.ok is False
    assert "rank 1, size 524288: all-reduce correctness = 0 (wrong output at offset 3, expected 9, got 8)" in c.detail
    assert "rank 1, size 524288: recvbuff[3] = 8, expected 9" in c.detail
    assert c.detail.startswith("2 wrong")


def test_our_expectation_catches_what_flagcx_verdict_missed():
    c = chk("allreduce", "v0.11_allreduce_wrong_verdict_says_1.txt", 2)
    assert c.ok is False and "rank 0, size 262144: recvbuff[7] = 20, expected 21" in c.detail


def test_v013_tagged_4_ranks_expectation_is_the_sum_of_all_inputs():
    c = chk("allreduce", "v0.13_allreduce_tagged_4ranks_wrong.txt", 4)
    assert c.ok is False and "rank 3, size 131072" in c.detail and "expected 75" in c.detail  # 5 × (1+2+4+8)
    # the old rule (recvbuff = sendbuff × nranks) would have failed the correct run: this one passes it
    good = (O / "v0.13_allreduce_tagged_4ranks_correct.txt").read_text()
    assert P.check_collective("allreduce", good, 4).ok is True


@pytest.mark.parametrize("op,expected", [("max", "expected 8"), ("min", "expected 1"), ("prod", "expected 8")])
def test_other_ops_derive_their_own_expectation(op, expected):
    # 2 ranks: rank 0 sends i%10, rank 1 sends 2·(i%10): at offset 1 max 2, min 1, prod 2; offset 2 → 4, 2, 8
    text = ("rank 0 sendbuff = 0.000000 1.000000 2.000000 \nrank 1 sendbuff = 0.000000 2.000000 4.000000 \n"
            "rank 0 recvbuff = 0.000000 1.000000 4.000000 \nrank 1 recvbuff = 0.000000 1.000000 4.000000 \n")
    c = P.check_collective("allreduce", text, 2, op=op)
    assert c.name == f"allreduce {op} buffers"
    if op == "max":
        assert c.ok is False and "recvbuff[1] = 1, expected 2" in c.detail
    elif op == "min":
        assert c.ok is False and "recvbuff[2] = 4, expected 2" in c.detail
    else:
        assert c.ok is False and "recvbuff[1] = 1, expected 2" in c.detail
    with pytest.raises(UsageError):
        P.check_collective("allreduce", text, 2, op="xor")


def test_fewer_ranks_printed_than_configured_is_skipped_not_passed():
    c = chk("allreduce", "v0.11_allreduce_correct.txt", 4)
    assert c.ok is None and "sendbuff printed by rank(s) [0, 1] of 4" in c.detail


def test_reduce_mode_verdicts_skip_the_allreduce_expectation_but_still_count():
    c = chk("allreduce", "v0.11_allreduce_locred_mode.txt", 2)
    assert c.ok is None and "reduce mode" in c.detail and "6/6 lines say correct" in c.detail
    text = (O / "v0.11_allreduce_locred_mode.txt").read_text().replace("rank 1 reduce correctness = 1", "rank 1 reduce correctness = 0", 1)
    bad = P.check_collective("allreduce", text, 2)
    assert bad.ok is False and "rank 1, size 131072: reduce correctness = 0" in bad.detail


def test_main_after_v013_prints_nothing_and_is_never_a_pass():
    for coll in ("allreduce", "allgather", "broadcast"):
        c = chk(coll, "main_allreduce_no_buffers.txt", 2)
        assert c.ok is None and c.detail == P.NO_BUFFERS
    real = (H / "h200x1_flagos_v0.13_perf_all_colls.log").read_text()
    assert P.check_collective("allreduce", real, 1).detail == P.NO_BUFFERS


# ---------------------------------------------------------------- allgather / broadcast cannot be fooled


@pytest.mark.parametrize("name,nranks", [("v0.11_allgather_4ranks", 4), ("labelled_allgather_3ranks", 3)])
def test_allgather_that_moved_nothing_fails(name, nranks):
    good = chk("allgather", name + "_correct.txt", nranks)
    assert good.ok is True, good.detail
    bad = chk("allgather", name + "_noop.txt", nranks)
    assert bad.ok is False and "chunk" in bad.detail


def test_allgather_4ranks_says_which_chunks_it_could_check():
    c = chk("allgather", "v0.11_allgather_4ranks_correct.txt", 4)
    assert "chunks of ranks [0, 3]" in c.detail and "2 ranks that print nothing are not checked" in c.detail


def test_allgather_with_one_rank_printing_proves_nothing_unless_wrong():
    text = "sendbuff = 0.000000\nrecvbuff = 0.000000 \n"
    c = P.check_collective("allgather", text, 1)
    assert c.ok is None and "prove nothing" in c.detail
    assert P.check_collective("allgather", text.replace("recvbuff = 0.000000", "recvbuff = 7.000000"), 1).ok is False
    # runbook-style: only rank 0 prints its sendbuff (0) on 2 ranks; rank 1's chunk is not printed input
    two = "sendbuff = 0.000000\nrecvbuff = 0.000000 1.000000 \n"
    c2 = P.check_collective("allgather", two, 2)
    assert c2.ok is None and "only rank 0's input" in c2.detail
    assert P.check_collective("allgather", two.replace("recvbuff = 0.000000", "recvbuff = -1.000000"), 2).ok is False
    # a single value that is not a rank id: whose chunk it is cannot be told
    assert P.check_collective("allgather", "sendbuff = 5.000000\nrecvbuff = 5.000000 6.000000 \n", 2).ok is None


@pytest.mark.parametrize("name,nranks", [("v0.11_broadcast", 2), ("labelled_broadcast_3ranks", 3)])
def test_broadcast_that_did_nothing_fails(name, nranks):
    good = chk("broadcast", name + "_correct.txt", nranks)
    assert good.ok is True, good.detail
    bad = chk("broadcast", name + "_noop.txt", nranks)
    assert bad.ok is False, bad.detail


def test_broadcast_noop_detail_names_the_count():
    c = chk("broadcast", "v0.11_broadcast_noop.txt", 2)
    assert "was received 12 times, expected 6" in c.detail  # root 0's data everywhere, root 1's nowhere


def test_broadcast_from_a_middle_root_is_not_claimed():
    # 3 ranks, -r 1: ranks 0 and 2 print, the root's own data is never printed
    text = "root rank is 1\nsendbuff = 0.000000 \nroot rank is 1\nsendbuff = 2.000000 \nrecvbuff = 1.000000 \nrecvbuff = 1.000000 \n"
    c = P.check_collective("broadcast", text, 3)
    assert c.ok is None and "cannot be told" in c.detail


# ---------------------------------------------------------------- verdict-only collectives


def test_reduce_verdict_zero_fails_with_rank_size_and_the_unlabelled_wrong_line():
    c = chk("reduce", "v0.13_reduce_wrong.txt", 2)
    assert c.ok is False
    assert "rank 1, size 524288: (root rank) correctness = 0 (wrong output at offset 4, expected 12, got 11)" in c.detail
    ok = (O / "v0.13_reduce_wrong.txt").read_text().replace("correctness = 0", "correctness = 1")
    c2 = P.check_collective("reduce", ok, 2)
    assert c2.ok is None and "6/6 lines say correct" in c2.detail  # FlagCX's word alone is not our pass


@pytest.mark.parametrize("coll", ["alltoall", "gather", "scatter", "sendrecv"])
def test_no_invented_checks(coll):
    c = P.check_collective(coll, real_v013(coll), 2)
    assert c.ok is None and c.detail.startswith(f"no check for {coll}")


# ---------------------------------------------------------------- the real v0.13.0 run (2×H200)


@pytest.mark.parametrize("coll,compared", [("allreduce", 8), ("allgather", 8), ("broadcast", 16)])
def test_real_v013_run_passes(coll, compared):
    c = P.check_collective(coll, real_v013(coll), 2)
    assert c.ok is True and c.compared == compared, c.detail


def test_real_v013_allreduce_was_failed_by_the_old_rule_and_a_planted_error_fails_now():
    text = real_v013("allreduce")
    # the old rule: rank 0's recvbuff = its sendbuff × 2 → 2 at offset 1, FlagCX printed 3
    assert "rank 0 recvbuff = 0.000000 3.000000" in text
    lines = text.splitlines()
    i = max(k for k, l in enumerate(lines) if l.startswith("rank 1 recvbuff"))
    lines[i] = lines[i].replace("27.000000", "26.000000")
    c = P.check_collective("allreduce", "\n".join(lines), 2)
    assert c.ok is False and "rank 1, size 1048576: recvbuff[9] = 26, expected 27" in c.detail


def test_real_v013_allgather_with_late_lines_then_a_noop():
    text = real_v013("allgather")
    # rank 1's size-131072 sendbuff arrives after rank 0's 262144 lines in this real output
    assert text.index("sendbuff = 1.000000") > text.index("Comm size: 262144")
    noop = re.sub(r"recvbuff = 0\.000000 1\.000000", "recvbuff = 0.000000 0.000000", text, count=1)
    c = P.check_collective("allgather", noop, 2)
    assert c.ok is False and "chunk 1 starts with 0, expected 1" in c.detail


def test_real_v013_broadcast_noop():
    noop = real_v013("broadcast").replace("recvbuff = 1.000000", "recvbuff = 0.000000")
    c = P.check_collective("broadcast", noop, 2)
    assert c.ok is False and "expected 8" in c.detail
