"""The one record model: what a stage or a run can be, shared by the pipeline, the cluster's
hetero stage (the same executor), the Slurm backend and `results import`. Records are stored as
JSON (schema `containerctl.stage/1` / `containerctl.run/1`), built only by store.stage_record /
store.run_record (which take a `Status`, never a bare string: tests/test_records.py) and checked
against this by store.validate_stage / write_run."""
from __future__ import annotations

from enum import Enum
from typing import Any, Optional, TypedDict


class Status(str, Enum):
    """Compares equal to its value, so stored JSON strings and members mix freely."""
    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"        # a stage only: already passed with the same inputs, or n/a
    ERROR = "error"            # a run only: it broke off for a reason that is no stage's verdict
    RUNNING = "running"        # a run only: not finished (or its process died)

    def __str__(self) -> str:
        return self.value


STAGE_STATUSES = tuple(s.value for s in (Status.PASSED, Status.FAILED, Status.TIMEOUT,
                                         Status.INTERRUPTED, Status.SKIPPED))
RUN_STATUSES = tuple(s.value for s in (Status.RUNNING, Status.PASSED, Status.FAILED,
                                       Status.TIMEOUT, Status.INTERRUPTED, Status.ERROR))
# what makes a run (or `report --strict`) fail
BAD_STATUSES = tuple(s.value for s in (Status.FAILED, Status.TIMEOUT, Status.INTERRUPTED,
                                       Status.ERROR))


class CheckDict(TypedDict, total=False):
    name: str
    ok: Optional[bool]         # True PASS, False FAIL, None SKIP (with the reason in detail)
    detail: str
    compared: int
    evidence: bool             # False: informational (hosts, setup), never a pass on its own


class StageRecord(TypedDict, total=False):
    """One stage's record, `<run>/<stage>.json`."""
    schema: str                # containerctl.stage/1
    run_id: str
    stage: str                 # the stage's name, or hetero-build-<host> for a cluster host
    status: str                # one of STAGE_STATUSES
    started: str
    finished: str
    duration_s: float
    exit_code: Optional[int]
    message: str
    profile: str
    platform: str
    container: str
    metrics: dict[str, Any]
    checks: list[CheckDict]
    repro: dict[str, Any]
    log: str                   # logs/<stage>.log, relative to the run
    previous_run: str          # set when skipped as already passed


class RunRecord(TypedDict, total=False):
    """A run's metadata, `<run>/run.json`."""
    schema: str                # containerctl.run/1
    run_id: str
    profile: str
    platform: str
    container: str
    started: str
    finished: Optional[str]
    status: str                # one of RUN_STATUSES
    stages: list[str]
    outcomes: dict[str, str]
    error: str
    cluster: str
    hosts: list[str]
