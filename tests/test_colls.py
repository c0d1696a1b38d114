"""FlagCX's collectives: one list (containerctl/flagcx/colls.py), FlagCX's own spelling (read from
the real checkouts), the parser's busbw table taken from it, the earlier spelling read as an alias."""
from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from containerctl.errors import ProfileError, UsageError
from containerctl.flagcx import COLLS, DEFAULT_COLLS, KNOWN_COLLS
from containerctl.flagcx import colls as X
from containerctl.results import parsers as P
from containerctl.results import references as R
from containerctl.stages import checks as C

DEVICE = Path(__file__).resolve().parent.parent / ".device"
CHECKOUTS = sorted(DEVICE.glob("FlagCX-*.tar.gz"))


def test_every_known_collective_has_a_factor_a_source_and_a_binary():
    assert KNOWN_COLLS == tuple(COLLS) and len(set(KNOWN_COLLS)) == len(KNOWN_COLLS)
    for name, c in COLLS.items():
        assert c.bus in X.BUS_FACTORS
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
        assert c.source == f"test_{name}.cpp"
        assert c.binary("perf_") == f"perf_{name}" and c.binary("test_") == f"test_{name}"
        # the parser's table is this one: same names, same factor for every rank count
        for n in (1, 2, 3, 8):
            assert P.bus_factor(name, n) == pytest.approx(c.factor(n))
            assert P.bus_factor(c.binary("perf_"), n) == pytest.approx(c.factor(n))
    assert P.COLLECTIVES == KNOWN_COLLS
    assert set(DEFAULT_COLLS) < set(KNOWN_COLLS)
    assert DEFAULT_COLLS == ("allreduce", "allgather", "reducescatter", "alltoall", "broadcast",
                             "reduce", "sendrecv", "gather", "scatter")


@pytest.mark.parametrize("n", [2, 4, 8])
def test_factors_are_the_definitions(n):
    assert X.COLLS["allreduce"].factor(n) == pytest.approx(2 * (n - 1) / n)
    assert X.COLLS["allgather"].factor(n) == pytest.approx((n - 1) / n)
    assert X.COLLS["core_sendrecv"].factor(n) == 1.0


@pytest.mark.parametrize("alias,name", [("coresendrecv", "core_sendrecv"), ("ipcsendrecv", "ipc_sendrecv"),
                                        ("perf_core_sendrecv", "core_sendrecv"), ("core-sendrecv", "core_sendrecv"),
                                        ("all_reduce_perf", "allreduce"), ("AllReduce", "allreduce"),
                                        ("reducescat", "reducescatter"), ("./allgather", "allgather")])
def test_aliases_and_tool_names_resolve_to_flagcxs_name(alias, name):
    assert X.normalize(alias) == name == P.normalize_coll(alias)
    assert X.lookup(alias) is COLLS[name]


def test_an_unknown_collective_is_refused_naming_the_spelling():
    assert X.lookup("allscatterreduce") is None
    with pytest.raises(UsageError) as e:
        P.bus_factor("allscatterreduce", 2)
    assert "core_sendrecv" in e.value.hint and "coresendrecv" not in e.value.hint


def test_a_references_table_keyed_by_the_old_spelling_means_the_flagcx_name():
    assert list(R.validate_references({"coresendrecv": {"1M": 1.0}})) == ["core_sendrecv"]
    assert list(R.validate_references({"core_sendrecv": {"1M": 1.0}})) == ["core_sendrecv"]
    with pytest.raises(ProfileError):
        R.validate_references({"core_sendrecvx": {"1M": 1.0}})


def test_a_core_sendrecv_run_is_judged_against_its_reference():
    """The perf stage keys a run by the marker's name (FlagCX's); the references table by the
    normalised name: one spelling, so the reference is applied (it was `not run` before)."""
    rows = "".join(f"Comm size: {s} bytes; Elapsed time: {s / 1e10:.6f} sec; Algo bandwidth: 10.000000 GB/s; "
                   f"Bus bandwidth: 10.000000 GB/s\n" for s in (1 << 20, 1 << 24, 1 << 30))
    text = ("=== containerctl coll=core_sendrecv nranks=2 ===\n" + rows
            + "=== containerctl end coll=core_sendrecv rc=0 ===\n")
    metrics, checks, _ = C.run_parser("perf", text, {"nranks": 2, "references": {"coresendrecv": {"1M": 10.0}}})
    assert list(metrics["collectives"]) == ["core_sendrecv"]
    ref = [c for c in checks if c["name"].startswith("ref ")]
    assert [c["name"] for c in ref] == ["ref core_sendrecv busbw 1M"] and ref[0]["ok"] is True


# What FlagCX's own checkouts hold under test/perf (names, and whether the source prints a bus
# bandwidth), captured from release tarballs of the public repository (v0.10.0, v0.13.0, main at
# the commit named): facts read from the checkouts, no FlagCX code.
FACTS_FILE = Path(__file__).parent / "fixtures" / "flagcx-perf-tests.json"
FACTS = json.loads(FACTS_FILE.read_text())


def _facts_of(tarball) -> dict:
    with tarfile.open(tarball) as tf:
        out = {}
        for n in tf.getnames():
            m = re.search(r"/test/perf/(?:host_api/)?test_(\w+)\.cpp$", n)
            if m:
                text = tf.extractfile(n).read().decode(errors="replace")
                out[m.group(1)] = {"path": n.split("/", 1)[1], "bus_bandwidth": "Bus bandwidth" in text}
        return out


@pytest.mark.parametrize("checkout", sorted(FACTS), ids=str)
def test_the_spelling_is_flagcxs_own(checkout):
    """Every collective's perf test exists under that name in the real checkouts (put/get/… are
    newer than v0.10.0), and every perf test there that prints a bus bandwidth is a known one."""
    srcs = FACTS[checkout]["perf_tests"]
    assert srcs, f"no perf tests in {checkout}"
    assert set(DEFAULT_COLLS) <= set(srcs)
    assert {"core_sendrecv", "ipc_sendrecv"} <= set(srcs)
    for name, f in srcs.items():
        if f["bus_bandwidth"] and name not in COLLS:
            pytest.fail(f"{checkout}: {f['path']} measures a bus bandwidth but is not in flagcx/colls.py")
    if "v0.10" not in checkout:
        assert set(KNOWN_COLLS) <= set(srcs)


@pytest.mark.skipif(not CHECKOUTS, reason="refreshing the captured facts needs the FlagCX tarballs "
                    "in .device/ (never committed); the facts themselves are tested above")
@pytest.mark.parametrize("tarball", CHECKOUTS, ids=lambda p: p.name)
def test_the_captured_facts_match_the_checkout(tarball):
    assert FACTS.get(tarball.name, {}).get("perf_tests") == _facts_of(tarball), \
        f"tests/fixtures/flagcx-perf-tests.json is stale for {tarball.name}: capture it again"
