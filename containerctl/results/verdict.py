"""The one place where verdicts are made: a stage's status from its checks and its exit/outcome,
a run's status from its stages' outcomes, and what `report --strict` refuses. The pipeline
(stages/runner.py), the cluster's hetero stage (cluster/run.py), `results import` and
`report --strict` all call these; nothing else decides `passed`.

The rule every function keeps: **no pass without evidence**. A stage passes only when at least
one check PASSED (ok True) and none FAILED; a stage whose checks judged nothing (0 tests run,
every case excluded or a known failure, a perf run with no size line) is `failed` with a message
that starts "judged nothing:" and says why. A stage whose definition has no parser (no checks
by design) is judged on its exit code alone. A run is `passed` only when every stage it asked
for passed, or was skipped as already passed (or as not applicable), and at least one really
passed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .model import BAD_STATUSES, Status

JUDGED_NOTHING = "judged nothing"


@dataclass(frozen=True)
class StageVerdict:
    status: str
    message: str

    def __iter__(self):  # status, message = stage_verdict(...)
        return iter((self.status, self.message))


def _as_dict(c: Any) -> dict[str, Any]:
    if isinstance(c, Mapping):
        return {"name": str(c.get("name", "")), "ok": c.get("ok"),
                "detail": str(c.get("detail", "") or ""),
                "evidence": c.get("evidence", True) is not False}
    return {"name": str(getattr(c, "name", "")), "ok": getattr(c, "ok", None),
            "detail": str(getattr(c, "detail", "") or ""), "evidence": True}


def stage_verdict(checks: Iterable[Any], *, exit_code: int | None = 0, outcome: str = "ok",
                  timeout_s: int | None = None, cause: str = "",
                  expect_evidence: bool = True) -> StageVerdict:
    """(status, message) of one stage.

    outcome: "ok" (the stage's process ended by itself), "timeout" or "interrupted".
    exit_code: the stage's exit status (None: not known, e.g. an imported output).
    cause: the first error line of the output, named when the exit code is not 0.
    expect_evidence: False for a stage without a parser, judged on its exit code alone."""
    cs = [_as_dict(c) for c in checks or []]
    bad = [c for c in cs if c["ok"] is False]
    good = [c for c in cs if c["ok"] is True and c["evidence"]]   # an informational check
    # (where it ran, which hosts) is never evidence that the thing under test worked
    undecided = [c for c in cs if c["ok"] is None]
    if outcome == "timeout":
        return StageVerdict(Status.TIMEOUT.value,
                            f"timed out after {timeout_s}s; the stage's processes were killed"
                            if timeout_s is not None else "timed out; the stage's processes were killed")
    if outcome == "interrupted":
        return StageVerdict(Status.INTERRUPTED.value,
                            "interrupted; the stage's processes were killed")
    if exit_code not in (0, None):
        msg = f"exit code {exit_code}" + (f": {cause}" if cause else "")
        if bad and not bad[0]["name"].endswith(" built"):
            msg = f"{bad[0]['name']}: {bad[0]['detail']} (exit code {exit_code})" + (
                f"; {cause}" if cause else "")
        return StageVerdict(Status.FAILED.value, msg)
    if bad:
        return StageVerdict(Status.FAILED.value, f"{bad[0]['name']}: {bad[0]['detail']}")
    if not good and (expect_evidence or cs):
        return StageVerdict(Status.FAILED.value, judged_nothing_message(undecided))
    msg = f"{len(good)} checks passed" if good or cs else "exit code 0 (no checks for this stage)"
    if undecided:
        msg += f", {len(undecided)} not checkable (see the record)"
    return StageVerdict(Status.PASSED.value, msg)


def judged_nothing_message(undecided: list[dict[str, Any]]) -> str:
    if not undecided:
        return f"{JUDGED_NOTHING}: the stage produced no check at all (see the log)"
    first = undecided[0]
    more = f" (+{len(undecided) - 1} more not checkable)" if len(undecided) > 1 else ""
    return f"{JUDGED_NOTHING}: no check passed; {first['name']}: {first['detail']}{more}"


def stage_status(checks: Iterable[Any], exit_code: int | None = 0, *,
                 expect_evidence: bool = True) -> str:
    """The status alone (see stage_verdict)."""
    return stage_verdict(checks, exit_code=exit_code, expect_evidence=expect_evidence).status


def _oc(o: Any) -> tuple[str, str, str]:
    if isinstance(o, Mapping):
        return str(o.get("name") or o.get("stage") or ""), str(o.get("status") or ""), \
            str(o.get("message") or "")
    return str(getattr(o, "name", "")), str(getattr(o, "status", "")), \
        str(getattr(o, "message", "") or "")


def run_status(outcomes: Iterable[Any], asked: Iterable[str], crash: str | None = None) -> str:
    """A run is `passed` only when every stage it asked for passed, or was skipped because it
    already passed with the same inputs, or was skipped as not applicable to the profile — and
    at least one stage passed or was skipped as passed. Anything else names what happened:
    `crash` (interrupted / error) first, then the first bad stage status, then `error` when a
    stage asked for never ran or nothing passed. Outcomes: StageOutcome-likes or stage-record
    dicts (name or stage, status, message)."""
    if crash:
        return crash
    ocs = [_oc(o) for o in outcomes]
    by = {n: (s, m) for n, s, m in ocs}
    for _, s, _ in ocs:
        if s in BAD_STATUSES:
            return s
    for _, s, _ in ocs:
        if s not in (Status.PASSED.value, Status.SKIPPED.value):
            return Status.ERROR.value     # running, or not a stage status at all
    if any(n not in by for n in asked):
        return Status.ERROR.value          # a stage that was asked for never ran and nothing says why
    real = [n for n, s, m in ocs if s == Status.PASSED.value or
            (s == Status.SKIPPED.value and m.startswith("already passed"))]
    return Status.PASSED.value if real else Status.ERROR.value


def record_status(rec: Mapping[str, Any]) -> str:
    """What a stored stage record's own evidence supports: its status re-judged from its checks
    and exit code (a record that claims `passed` over checks that judged nothing is `failed`)."""
    st = str(rec.get("status") or "")
    if st != Status.PASSED.value:
        return st
    code = rec.get("exit_code")
    checks = rec.get("checks") or []
    return stage_verdict(checks, exit_code=code if isinstance(code, int) else None,
                         expect_evidence=bool(checks)).status


def strict_failures(run: Mapping[str, Any], checks: Iterable[tuple[str, Any]] = ()) -> list[str]:
    """Why `report --strict` refuses one loaded run (empty: it passes). A run passes only when
    its record says passed, it has no unreadable file, every stage record's own checks support
    its status, no check failed, and at least one stage passed with evidence."""
    why: list[str] = []
    st = run.get("status")
    if st != Status.PASSED.value:
        why.append(f"run status {st or 'unknown'}")
    if run.get("problems"):
        why.append("unreadable: " + "; ".join(str(p) for p in run["problems"])[:300])
    recs = run.get("records") or {}
    passed = 0
    for name, rec in recs.items():
        if not isinstance(rec, Mapping):
            why.append(f"{name}: not a record")
            continue
        got = record_status(rec)
        if got in BAD_STATUSES or got not in (Status.PASSED.value, Status.SKIPPED.value):
            why.append(f"{name}: {got}" + (f" ({rec.get('message')})" if rec.get("message") else ""))
        elif got == Status.PASSED.value:
            passed += 1
        elif got == Status.SKIPPED.value and str(rec.get("message", "")).startswith("already passed"):
            passed += 1
    for stage, c in checks:
        if _as_dict(c)["ok"] is False:
            why.append(f"{stage}: check {_as_dict(c)['name']} failed")
    if recs and not passed and not why:
        why.append("no stage passed")
    if not recs and st == Status.PASSED.value:
        why.append("no stage record")
    return why
