"""Records are built only by the store's constructors, with a results.model.Status; one guard
(store.crash_status) turns Ctrl-C / an exception into the run's `interrupted` / `error` and
still writes the run's record."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from containerctl.errors import UsageError
from containerctl.results import store
from containerctl.results.model import RunRecord, StageRecord, Status

PKG = Path(__file__).resolve().parent.parent / "containerctl"
# the record keys, from the model itself (a key added there is scanned for too)
RECORD_KEYS = (set(StageRecord.__annotations__) | set(RunRecord.__annotations__)) - {"status"}
# where records may be built: the store and the model
BUILDERS = {PKG / "results" / "store.py", PKG / "results" / "model.py"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTAINERCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _const_keys(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Dict):
        return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {k.arg for k in node.keywords if k.arg}
    return set()


def hand_built_records(path: Path) -> list[str]:
    """Where a module builds or rewrites a run / stage record itself: a dict literal (or dict(…))
    with a "status" and three or more other record keys (a stage's state entry — status,
    inputs, run_id, finished — is not a record), a record schema string, or a status set by
    hand (`x["status"] = …`, `x.update(status=…)`)."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        keys = _const_keys(node)
        if "status" in keys and len(keys & RECORD_KEYS) >= 3:
            found.append(f"{path.name}:{node.lineno}: a record dict with keys {sorted(keys)}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.startswith(("containerctl.run/", "containerctl.stage/")):
            found.append(f"{path.name}:{node.lineno}: the record schema {node.value!r}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "update" and any(k.arg == "status" for k in node.keywords):
            found.append(f"{path.name}:{node.lineno}: sets a record's status by hand (update)")
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant) \
                        and t.slice.value == "status":
                    found.append(f"{path.name}:{node.lineno}: sets a record's status by hand")
    return found


def test_no_module_outside_the_store_builds_a_record_by_hand():
    bad = [f for p in sorted(PKG.rglob("*.py")) if p not in BUILDERS for f in hand_built_records(p)]
    assert not bad, "build records with results/store.py (stage_record, run_record, end_run, " \
                    "mark_interrupted):\n" + "\n".join(bad)


def test_the_scan_finds_a_hand_built_record(tmp_path):
    # the scanner itself can fail: each of the three shapes it looks for is found
    src = tmp_path / "m.py"
    src.write_text('meta = {"schema": "containerctl.run/1", "run_id": r, "status": "running",\n'
                   '        "started": t, "stages": []}\n'
                   'rec = dict(run_id=r, stage="perf", status=s, started=t, exit_code=0)\n'
                   'meta["status"] = "interrupted"\n'
                   'state = {"status": s, "inputs": i, "run_id": r, "finished": f}\n'
                   'meta.update(finished=t, status=run_status(o, a, c))\n')
    got = hand_built_records(src)
    assert sorted(g.split(":")[1] for g in got) == ["1", "1", "3", "4", "6"], got


def test_constructors_take_only_a_status(home):
    t = "2026-01-01T00:00:00+00:00"
    for bad in ("passed", "green", "Passed", None, 1):
        with pytest.raises(TypeError, match="Status"):
            store.stage_record("r", "perf", status=bad, started=t)
        with pytest.raises(TypeError, match="Status"):
            store.run_record("r", status=bad, profile="p", platform=None, container=None,
                             started=t, stages=[])
    with pytest.raises(UsageError, match="'running' is not one of"):      # a run's only
        store.stage_record("r", "perf", status=Status.RUNNING, started=t)
    with pytest.raises(UsageError, match="'skipped' is not one of"):      # a stage's only
        store.run_record("r", status=Status.SKIPPED, profile="p", platform=None, container=None,
                         started=t, stages=[])
    meta = store.start_run("p", stages=["perf"])
    with pytest.raises(TypeError, match="Status"):
        store.end_run(meta, "passed", t)
    with pytest.raises(TypeError, match="Status"):
        store.finish_run(meta["run_id"], "passed")
    assert json.loads((store.run_dir(meta["run_id"]) / "run.json").read_text())["status"] == "running"


def test_a_status_is_stored_as_its_string(home):
    meta = store.start_run("p", stages=["perf"])
    rid = meta["run_id"]
    rec = store.stage_record(rid, "perf", status=Status.PASSED, started=store.now_iso(),
                             checks=[{"name": "x", "ok": True, "detail": "", "evidence": False}])
    store.write_stage(rid, rec)
    store.end_run(meta, Status.FAILED, store.now_iso(), outcomes={"perf": "passed"})
    text = (store.run_dir(rid) / "perf.json").read_text()
    assert '"status": "passed"' in text and '"evidence": false' in text   # every check key kept
    run = (store.run_dir(rid) / "run.json").read_text()
    assert '"status": "failed"' in run and json.loads(run)["outcomes"] == {"perf": "passed"}
    assert list(json.loads(run))[:9] == ["schema", "run_id", "profile", "platform", "container",
                                         "started", "finished", "status", "stages"]


@pytest.mark.parametrize("exc, status, error", [
    (KeyboardInterrupt(), Status.INTERRUPTED, None),
    (RuntimeError("disk gone"), Status.ERROR, "RuntimeError: disk gone"),
    (UsageError("bad input", hint="fix it"), Status.ERROR, "bad input"),
    (None, None, None),
])
def test_a_crashed_run_still_writes_its_record(home, exc, status, error):
    from containerctl.results.verdict import run_status
    meta = store.start_run("p", stages=["perf"])
    seen = []

    def finish(crash: store.Crash) -> None:
        seen.append((crash.status, crash.error))
        store.end_run(meta, Status(run_status([{"name": "perf", "status": "passed"}], ["perf"],
                                              crash.status)), store.now_iso())

    def body():
        with store.crash_status(finish):
            if exc is not None:
                raise exc

    if exc is None:
        body()
    else:
        with pytest.raises(type(exc)):     # the guard records, and lets the exception go on
            body()
    assert seen == [(status, error)]
    run = json.loads((store.run_dir(meta["run_id"]) / "run.json").read_text())
    assert run["status"] == (status or Status.PASSED) and run["finished"]


def _functions_using_the_guard(path: Path) -> dict[str, bool]:
    tree = ast.parse(path.read_text())
    out = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef):
            uses = any(isinstance(w, ast.With) and any(
                isinstance(i.context_expr, ast.Call) and isinstance(i.context_expr.func, ast.Attribute)
                and i.context_expr.func.attr == "crash_status" for i in w.items) for w in ast.walk(fn))
            out[fn.name] = uses
    return out


def test_every_run_loop_uses_the_one_crash_guard():
    for rel, fn in (("stages/runner.py", "_run_locked"), ("cluster/run.py", "hetero"),
                    ("slurm/backend.py", "_run_locked")):
        path = PKG / rel
        assert _functions_using_the_guard(path).get(fn), f"{rel}: {fn} does not use store.crash_status"
        tree = ast.parse(path.read_text())
        own = [h for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler)
               and isinstance(h.type, ast.Name) and h.type.id == "KeyboardInterrupt"
               and any(isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "crash"
                                                         for t in s.targets) for s in h.body)]
        assert not own, f"{rel}: a crash = … handler of its own (line {own[0].lineno})"
