"""The mutation harness (tests/mutation/run_mutants.py) works: a real bug in run_status is
killed by the run_status tests, an equivalent change (a docstring) survives, a mutant whose code
moved is reported stale — and the package's own files are untouched afterwards. The full mutant
list is a tool, run by hand (`python tests/mutation/run_mutants.py`), not part of CI."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "mutation"))

import run_mutants  # noqa: E402
from mutants import MUTANTS  # noqa: E402


def _digest() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "containerctl").rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()


def test_harness_kills_a_bug_keeps_an_equivalent_change_and_flags_a_stale_mutant():
    real = next(m for m in MUTANTS if m["id"] == "run-status-crash-ignored")
    equivalent = dict(id="docstring", file="results/verdict.py", tier="unit", why="no behaviour",
                      edits=[('"""A run is `passed` only when', '"""A run is PASSED only when')])
    stale = dict(id="stale", file="results/verdict.py", tier="unit", why="code moved",
                 edits=[("this text is not in verdict.py", "x")])
    before = _digest()
    out = run_mutants.run([real, equivalent, stale], timeout=120, log=lambda *_: None,
                          tests=["tests/test_runner_verdicts.py::test_run_status_rules"])
    assert _digest() == before     # the real package was never edited
    got = {r["id"]: r for r in out["results"]}
    assert got["run-status-crash-ignored"]["result"] == "killed"
    assert "test_run_status_rules" in got["run-status-crash-ignored"]["by"]
    assert got["docstring"]["result"] == "survived"
    assert got["stale"]["result"] == "stale"
    assert out["counts"] == {"killed": 1, "survived": 1, "stale": 1}


def test_every_mutant_is_well_formed_and_applies_once():
    ids = [m["id"] for m in MUTANTS]
    assert len(ids) == len(set(ids)) and len(ids) >= 25
    for m in MUTANTS:
        text = (ROOT / "containerctl" / m["file"]).read_text()
        assert m["tier"] in ("unit", "docker") and m["why"]
        mutated = run_mutants.apply(text, m["edits"])
        assert mutated is not None, f"{m['id']}: its code moved; update tests/mutation/mutants.py"
        assert mutated != text
