"""The results store, record helpers, import and references."""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from containerctl.errors import ContainerctlError, NotFound, UsageError
from containerctl.results import references as R
from containerctl.results import store
from containerctl.results.model import Status

FIX = Path(__file__).parent / "fixtures"
RB = FIX / "runbook"
HW = FIX / "handwritten"


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("CONTAINERCTL_HOME", str(h))
    return h


def _record(run_id: str, stage: str, status: Status = Status.PASSED, **kw):
    t0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    base = dict(status=status, started=t0, finished=t0 + timedelta(seconds=12.5), exit_code=0, message="ok",
                profile="nvidia-a800", platform="nvidia", container="c1",
                metrics=store.perf_metrics_from_text((RB / "a800_allreduce.txt").read_text(), "allreduce", 2),
                checks=[{"name": "x", "ok": True, "detail": "fine"}], repro={"cmd": "mpirun -np 2 ./test_allreduce"})
    base.update(kw)
    return store.stage_record(run_id, stage, **base)


# ---------------------------------------------------------------- ids, layout, atomic writes


def test_new_run_id_format_suffix_and_location(home):
    now = datetime(2026, 5, 17, 8, 9, 10)
    a = store.new_run_id("nvidia-a800", now=now)
    b = store.new_run_id("nvidia-a800", now=now)
    c = store.new_run_id("my profile/../x", now=now)
    assert a == "20260517-080910-nvidia-a800"
    assert b == "20260517-080910-nvidia-a800-2"
    assert re.fullmatch(r"20260517-080910-[A-Za-z0-9._-]+", c) and "/" not in c
    assert store.run_dir(a) == home / "results" / a and store.run_dir(a).is_dir()
    with pytest.raises(UsageError):
        store.run_dir("../etc")


def test_stage_roundtrip_and_layout(home):
    meta = store.start_run("nvidia-a800", platform="nvidia", container="c1", stages=["build", "perf"])
    rid = meta["run_id"]
    store.write_stage(rid, _record(rid, "build", metrics={}))
    store.write_stage(rid, _record(rid, "perf"))
    store.write_stage(rid, _record(rid, "torch", status=Status.FAILED, exit_code=1, message="boom"))
    d = store.run_dir(rid)
    assert sorted(p.name for p in d.iterdir()) == ["build.json", "perf.json", "run.json", "torch.json"]
    assert not list(d.glob(".*"))  # no temp files left behind by the atomic writes
    run = store.load_run(rid)
    assert run["schema"] == "containerctl.run/1" and run["status"] == "running"
    assert run["stages"] == ["build", "perf", "torch"]  # torch appended, order kept
    assert list(run["records"]) == ["build", "perf", "torch"]
    perf = run["records"]["perf"]
    assert perf["duration_s"] == 12.5 and perf["started"] == "2026-01-02T03:04:05+00:00"
    assert perf["log"] == "logs/perf.log"
    rows = perf["metrics"]["collectives"]["allreduce"]["sweeps"][0]["rows"]
    assert rows[-1] == {"size": 4294967296, "time_s": 0.02979, "algbw": 144.176214, "busbw": 144.176214}
    assert json.loads((d / "perf.json").read_text()) == perf
    fin = store.finish_run(rid)
    assert fin["status"] == "failed" and fin["finished"]


def test_log_path(home):
    rid = store.start_run("p")["run_id"]
    p = store.log_path(rid, "perf")
    assert p == home / "results" / rid / "logs" / "perf.log" and p.parent.is_dir()


@pytest.mark.parametrize("change,msg", [
    ({"status": "ok"}, "status"),
    ({"started": "yesterday"}, "started"),
    ({"checks": [{"name": "x", "ok": "yes"}]}, "checks[0]"),
    ({"metrics": {"collectives": {"allreduce": {"sweeps": [{"rows": [{"size": "4G"}]}]}}}}, "rows"),
    ({"exit_code": "1"}, "exit_code"),
    ({"stage": "run"}, "stage"),
    ({"schema": "other/1"}, "schema"),
])
def test_invalid_records_are_refused(home, change, msg):
    rid = store.start_run("p")["run_id"]
    rec = _record(rid, "perf")
    rec.update(change)
    assert any(msg in e for e in store.validate_stage(rec))
    with pytest.raises(UsageError):
        store.write_stage(rid, rec)
    assert not (store.run_dir(rid) / "perf.json").exists()


def test_nan_values_are_stored_as_null(home):
    rid = store.start_run("p")["run_id"]
    rec = _record(rid, "train", metrics={"iterations": [{"lm_loss": float("nan"), "ms": float("inf"), "n": 1.5}]})
    assert rec["metrics"]["iterations"][0] == {"lm_loss": None, "ms": None, "n": 1.5}
    raw = dict(rec, metrics={"loss": float("nan")})
    assert any("JSON" in e for e in store.validate_stage(raw))  # the validator names the problem…
    store.write_stage(rid, raw)  # …and write_stage records it anyway, as null
    assert json.loads((store.run_dir(rid) / "train.json").read_text())["metrics"] == {"loss": None}


def test_stage_record_helper_refuses_bad_status(home):
    with pytest.raises(TypeError, match="Status"):
        store.stage_record("r", "perf", status="green", started=datetime.now())
    with pytest.raises(UsageError, match="status 'error' is not one of"):   # a run's status
        store.stage_record("r", "perf", status=Status.ERROR, started=datetime.now())


def test_write_stage_without_run_json_creates_it(home):
    rid = store.new_run_id("p")
    store.write_stage(rid, _record(rid, "perf"))
    run = store.load_run(rid)
    assert run["stages"] == ["perf"] and run["profile"] == "nvidia-a800"


def test_load_run_survives_a_corrupt_stage_file(home):
    rid = store.start_run("p")["run_id"]
    store.write_stage(rid, _record(rid, "perf"))
    (store.run_dir(rid) / "torch.json").write_text("{not json")
    run = store.load_run(rid)
    assert list(run["records"]) == ["perf"] and any("torch.json" in p for p in run["problems"])


# ---------------------------------------------------------------- list / resolve


def _run_at(profile: str, started: str) -> str:
    rid = store.new_run_id(profile)
    store.write_run({"run_id": rid, "profile": profile, "started": started, "status": "passed"})
    store.write_stage(rid, _record(rid, "perf"))
    return rid


def test_list_runs_newest_first_and_resolve(home, tmp_path):
    old = _run_at("alpha", "2026-01-01T00:00:00+00:00")
    new = _run_at("beta", "2026-03-01T00:00:00+00:00")
    mid = _run_at("gamma", "2026-02-01T00:00:00+00:00")
    assert [r["run_id"] for r in store.list_runs()] == [new, mid, old]
    assert store.list_runs()[0]["stage_status"] == {"perf": "passed"}
    assert store.resolve("latest") == new
    assert store.resolve(old) == old
    # unique prefix: ids share the timestamp prefix, so go one character into the profile
    assert store.resolve(old[:-3]) == old
    with pytest.raises(UsageError, match="ambiguous"):
        store.resolve(old[:8])
    assert store.resolve(str(store.run_dir(mid))) == mid
    assert store.resolve(str(store.run_dir(mid) / "perf.json")) == mid
    with pytest.raises(NotFound) as e:
        store.resolve("zzz")
    assert e.value.hint and "results list" in e.value.hint
    with pytest.raises(NotFound):
        store.resolve(str(tmp_path / "nope"))
    # a run copied out of the store (e.g. a CI artifact) resolves to its path and loads
    ext = tmp_path / "artifact" / "somerun"
    shutil.copytree(store.run_dir(mid), ext)
    ref = store.resolve(str(ext / "perf.json"))
    assert ref == str(ext.resolve())
    assert store.load_run(ref)["records"]["perf"]["run_id"] == mid


def test_resolve_latest_on_empty_store(home):
    with pytest.raises(NotFound) as e:
        store.resolve("latest")
    assert "import" in e.value.hint


def test_resolve_refuses_a_raw_text_file(home):
    with pytest.raises(UsageError, match="not a run directory"):
        store.resolve(str(RB / "a800_allreduce.txt"))


# ---------------------------------------------------------------- import


def test_import_runbook_outputs(home):
    rid = store.import_text(RB / "c550_allreduce.txt", label="C550", platform="metax-c550")
    run = store.load_run(rid)
    assert run["label"] == "C550" and run["imported"] is True and run["status"] == "passed"
    rec = run["records"]["perf"]
    assert rec["status"] == "passed"
    rows = rec["metrics"]["collectives"]["allreduce"]["sweeps"][0]["rows"]
    assert len(rows) == 16 and rows[-1]["busbw"] == pytest.approx(47.333872)
    names = {c["name"]: c["ok"] for c in rec["checks"]}
    assert names["allreduce bus factor"] is True and names["allreduce sum buffers"] is None
    buf = next(c for c in rec["checks"] if c["name"] == "allreduce sum buffers")
    assert "prints no buffers" in buf["detail"]  # the runbook's copy has no -p 1 lines: skipped, not passed
    assert names["ref allreduce busbw 4G"] is True
    assert (store.run_dir(rid) / "logs" / "perf.log").read_text() == (RB / "c550_allreduce.txt").read_text()


def test_import_below_reference_fails_with_a_clear_message(home, tmp_path):
    text = (RB / "a800_allreduce.txt").read_text().replace("Bus bandwidth: 144.176214", "Bus bandwidth: 120.000000")
    f = tmp_path / "slow.txt"
    f.write_text(text)
    rid = store.import_text(f, label="slow", platform="nvidia-a800")
    run = store.load_run(rid)
    assert run["status"] == "failed"
    bad = [c for c in run["records"]["perf"]["checks"] if c["ok"] is False]
    details = " | ".join(c["detail"] for c in bad)
    assert "allreduce 4 GiB busbw 120.00 GB/s < 144.18 × 0.90" in details
    # the bus-factor check also notices algbw ≠ busbw on that row
    assert any(c["name"] == "allreduce bus factor" for c in bad)


def test_import_hetero_needs_the_right_nranks(home):
    good = store.load_run(store.import_text(RB / "hetero_a800x2_c550x2.txt", label="hetero", nranks=4))
    bad = store.load_run(store.import_text(RB / "hetero_a800x2_c550x2.txt", label="hetero", nranks=2))
    assert good["status"] == "passed" and bad["status"] == "failed"


def test_import_other_kinds(home):
    t = store.load_run(store.import_text(RB / "torch_p800.txt", kind="torch-example", label="P800"))
    assert list(t["records"]) == ["torch"] and t["records"]["torch"]["status"] == "passed"
    n = store.load_run(store.import_text(HW / "nccl_tests_allreduce_2gpu.txt", kind="nccl-tests", label="nccl"))
    m = n["records"]["perf"]["metrics"]
    assert m["nccl_tests"]["out_of_bounds_ok"] is True
    row = m["collectives"]["allreduce"]["sweeps"][0]["rows"][-1]
    assert row["size"] == 1 << 30 and row["time_s"] == pytest.approx(8957.85e-6)
    f = store.load_run(store.import_text(HW / "flagscale_llama3_8b_tail.log", kind="flagscale", label="llama"))
    assert f["records"]["train"]["metrics"]["train"]["last_iteration"] == 5


def test_import_errors(home, tmp_path):
    with pytest.raises(NotFound):
        store.import_text(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("mpirun: command not found\n")
    with pytest.raises(UsageError, match="no FlagCX perf lines"):
        store.import_text(empty)
    with pytest.raises(UsageError, match="kind"):
        store.import_text(RB / "a800_allreduce.txt", kind="csv")
    with pytest.raises(UsageError):
        store.import_text(RB / "a800_allreduce.txt", coll="allsum")
    assert store.list_runs() == []  # failed imports leave no run behind


# ---------------------------------------------------------------- references


def test_default_references_come_from_the_runbook():
    for plat, v in (("nvidia-a800", 144.18), ("metax-c550", 47.33), ("kunlunxin-p800", 20.03)):
        ref = R.load_references(plat)["allreduce"][4 << 30]
        assert (ref.value, ref.lower, ref.upper, ref.unit) == (v, -0.10, None, "GB/s")
    assert R.load_references("A800") == R.load_references("nvidia-a800")
    assert R.load_references("nvidia-h200") == {}


def test_reference_overrides():
    refs = R.load_references("nvidia-a800", {"allreduce": {"4G": [150.0, -0.05], "1GiB": None, 2**27: {"value": 120, "upper": 0.2}},
                                             "all_gather": {"128K": 3}})
    assert refs["allreduce"][4 << 30].value == 150.0 and refs["allreduce"][4 << 30].lower == -0.05
    assert 1 << 30 not in refs["allreduce"]
    assert refs["allreduce"][1 << 27].upper == 0.2 and refs["allreduce"][1 << 27].lower == -0.10
    assert refs["allgather"][128 << 10].value == 3.0
    for bad in ({"allreduce": {"4G": [150, 0.1]}}, {"allreduce": {"4X": 1}}, {"allreduce": {"4G": "fast"}},
                {"allreduce": {"4G": {"value": 1, "lowr": -0.1}}}, {"allreduce": {"4G": -5}}):
        with pytest.raises(UsageError):
            R.load_references("nvidia-a800", bad)


def test_evaluate_pass_fail_undecided():
    metrics = store.perf_metrics_from_text((RB / "p800_allreduce.txt").read_text(), "allreduce", 2)
    refs = R.load_references("kunlunxin-p800", {"allreduce": {"8G": 25.0, "128K": [4.0, -0.1, 0.1]}})
    got = {c.name: c for c in R.evaluate(metrics, refs)}
    assert got["ref allreduce busbw 4G"].ok is True
    assert got["ref allreduce busbw 8G"].ok is None and "not measured" in got["ref allreduce busbw 8G"].detail
    hi = got["ref allreduce busbw 128K"]  # 5.40 > 4.0 × 1.10
    assert hi.ok is False and "> 4 × 1.10" in hi.detail
    four = store.perf_metrics_from_text((RB / "p800_allreduce.txt").read_text(), "allreduce", 4)
    assert {c.ok for c in R.evaluate(four, R.load_references("kunlunxin-p800"))} == {None}
    # a collective the run did not measure is said (skipped), never silently dropped
    (c,) = R.evaluate(metrics, {"allgather": {1024: R.Reference(1.0), 4 << 30: R.Reference(2.0)}})
    assert c.ok is None and "allgather was not run" in c.detail and "1K, 4G" in c.detail


def test_one_bad_reference_is_named_not_silently_dropping_the_table():
    from containerctl.errors import ProfileError
    bad = {"allreduce": {"1K": 1000, "2K": "fast"}}
    with pytest.raises(ProfileError) as e:
        R.validate_references(bad, "p.yaml: references")
    assert e.value.exit_code == 2 and "p.yaml: references.allreduce.2K" in e.value.message and "'fast'" in e.value.message
    assert e.value.hint and "number" in e.value.hint
    with pytest.raises(ProfileError, match="allreduse: unknown collective") as e:
        R.validate_references({"allreduse": {"1K": 1}})
    assert "did you mean allreduce" in e.value.hint
    for junk in ("x", {"allreduce": [1]}, {"allreduce": {"1X": 1}}, {"allreduce": {"1K": {"value": 1, "nranks": "two"}}},
                 {"allreduce": {"1K": [1, "low"]}}, {"allreduce": {"1K": True}}):
        with pytest.raises(ProfileError):
            R.validate_references(junk)
    good = R.validate_references({"all_reduce": {"1K": 1000, "2K": None}, "gather": None})
    assert good["allreduce"][1024].value == 1000.0 and good["allreduce"][2048] is None and good["gather"] is None
    # the stage parser turns a bad table into a failed check instead of dropping every reference
    from containerctl.stages import checks as C
    _, checks, _ = C.run_parser("perf", "=== containerctl coll=allreduce nranks=2 ===\n"
                                "Comm size: 1024 bytes; Elapsed time: 0.1 sec; Algo bandwidth: 1 GB/s; Bus bandwidth: 1 GB/s\n",
                                {"nranks": 2, "platform_key": "nvidia-a800", "references": bad})
    ref = next(c for c in checks if c["name"] == "references")
    assert ref["ok"] is False and "allreduce.2K" in ref["detail"]


@pytest.mark.parametrize("busbw,ok", [(129.70, False), (129.80, True), (1000.0, True)])
def test_evaluate_tolerance_boundary(busbw, ok):
    # 144.18 × (1 - 0.10) = 129.762: just below fails, just above passes, no upper bound by default
    metrics = store.perf_metrics_from_text((RB / "a800_allreduce.txt").read_text(), "allreduce", 2)
    metrics["collectives"]["allreduce"]["sweeps"][0]["rows"][-1]["busbw"] = busbw
    (c,) = [c for c in R.evaluate(metrics, R.load_references("nvidia-a800")) if c.name.endswith(" 4G")]
    assert c.ok is ok


def test_sizes():
    assert R.parse_size("128K") == 131072 and R.parse_size("4G") == 4 << 30 and R.parse_size("4GiB") == 4 << 30
    assert R.parse_size(4096) == 4096 and R.parse_size("1.5M") == 1572864
    assert R.human_size(131072) == "128 KiB" and R.human_size(4 << 30) == "4 GiB" and R.human_size(1000) == "1000 B"
    assert R.short_size(131072) == "128K" and R.short_size(4 << 30) == "4G"
    with pytest.raises(UsageError):
        R.parse_size("0.3K")


def test_corrupt_run_json_is_a_containerctl_error(home):
    rid = store.start_run("p")["run_id"]
    (store.run_dir(rid) / "run.json").write_text("[")
    with pytest.raises(ContainerctlError):
        store.load_run(rid)


def test_a_run_json_nested_too_deep_is_unreadable_not_a_crash(home):
    """A run.json nested 100,000 deep made `results list` exit 70 (RecursionError): it is
    listed as unreadable like any other damaged file, and the cli says so with exit 0."""
    import subprocess
    import sys
    good = _run_at("alpha", "2026-01-01T00:00:00+00:00")
    bad = store.results_dir() / "20260101-000000-deep"
    bad.mkdir(parents=True)
    (bad / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ContainerctlError, match="nested too deep"):
        store._read_json(bad / "run.json")
    r = subprocess.run([sys.executable, "-m", "containerctl", "results", "list"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert good in r.stdout
