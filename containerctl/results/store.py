"""The results store: one directory per run under `paths.home() / "results"`.

    <run_id>/run.json           run metadata  (schema containerctl.run/1)
    <run_id>/<stage>.json       one record per stage  (schema containerctl.stage/1)
    <run_id>/logs/<stage>.log   the stage's raw output

Every write goes through `paths.atomic_write`, so a reader (a report running while the pipeline
writes) never sees half a file. The pipeline and `results import` build records through the same
helpers (`analyze_perf`, `analyze_torch`, `analyze_train`, `stage_record`, `write_stage`).

Every record is built here: `stage_record` and `run_record` are the only constructors, and they
take a `model.Status` (never a bare string: a typo or a run status on a stage is a TypeError at
the call, not a record that reads wrong later). The statuses themselves are decided in
results/verdict.py. `crash_status` is the one guard that turns Ctrl-C / an exception into the
run's `interrupted` / `error` and still writes the run's record on the way out.
"""
from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from .. import paths
from ..errors import ContainerctlError, NotFound, UsageError
from ..flagcx.colls import COLLS, normalize as normalize_coll   # loaded by parsers already
from . import parsers
from .parsers import Check

RUN_SCHEMA = "containerctl.run/1"
STAGE_SCHEMA = "containerctl.stage/1"
from .model import RUN_STATUSES, STAGE_STATUSES, Status  # noqa: E402  (the one status model)
IMPORT_KINDS = {"flagcx-perf": "perf", "nccl-tests": "perf", "torch-example": "torch", "flagscale": "train"}

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_STAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
LIST_HINT = "`containerctl results list` shows the stored runs; give a run id, a unique prefix, `latest`, or the path of a run directory or stage JSON"


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def results_dir() -> Path:
    return paths.home() / "results"


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _iso(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.astimezone()
        return v.isoformat(timespec="seconds")
    if isinstance(v, (int, float)):
        return datetime.fromtimestamp(v, timezone.utc).astimezone().isoformat(timespec="seconds")
    return str(v)


def _parse_iso(v: str) -> datetime:
    s = v.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s)


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{p}: no such file", hint=LIST_HINT) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ContainerctlError(f"{p}: unreadable JSON ({e})", hint="remove or fix the file; the other runs are unaffected") from None
    except RecursionError:     # a record nested past the interpreter's depth: not ours
        raise ContainerctlError(f"{p}: unreadable JSON (nested too deep to be a record)",
                                hint="remove or fix the file; the other runs are unaffected") from None


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def json_safe(obj: Any) -> Any:
    """Copy of obj with NaN/±inf floats replaced by None (JSON has no NaN; a NaN loss must still
    be recordable) and tuples turned into lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _checks(checks: Iterable[Check | dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Checks as stored: a Check as its dict; a dict as given, every key kept (a stage's own
    checks carry `evidence` and `compared`; validate_stage says what is wrong with a bad one)."""
    return [c.to_dict() if isinstance(c, Check) else dict(c) for c in checks or []]


def status_from_checks(checks: Iterable[Check | dict[str, Any]], exit_code: int | None = 0) -> Status:
    """The stage status its checks support (results/verdict.py: no pass without evidence)."""
    from .verdict import stage_status
    return Status(stage_status(_checks(checks), exit_code))


def _status(status: Any, allowed: tuple[str, ...], what: str) -> Status:
    """The status a record constructor was given, refused unless it is a `Status` member that a
    record of this kind can hold (a bare string is refused even when it spells one)."""
    if not isinstance(status, Status):
        raise TypeError(f"a {what} record takes a results.model.Status, not {status!r} "
                        f"({type(status).__name__}); decide it with results/verdict.py")
    if status.value not in allowed:
        raise UsageError(f"status {status.value!r} is not one of {', '.join(allowed)} "
                         f"(a {what} record)")
    return status


# --------------------------------------------------------------------------------------------
# ids and directories
# --------------------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"


def new_run_id(profile: str, *, now: datetime | None = None) -> str:
    """`YYYYmmdd-HHMMSS-<profile>` (local time), with `-2`, `-3`… if taken. The run directory is
    created here, so two concurrent callers never get the same id."""
    now = now or datetime.now()
    base = f"{now:%Y%m%d-%H%M%S}-{_safe(profile)}"
    root = paths.ensure(results_dir())
    for i in range(1, 10000):
        rid = base if i == 1 else f"{base}-{i}"
        try:
            (root / rid).mkdir()
            return rid
        except FileExistsError:
            continue
    raise ContainerctlError(f"could not allocate a run id for {profile!r} under {root}", hint="clean up old runs")


def run_dir(run_id: str) -> Path:
    """The directory of a run: a store id, or (as `resolve` returns for runs outside the store) an
    absolute path."""
    rid = str(run_id)
    if os.sep in rid or "/" in rid:
        if not os.path.isabs(rid):
            raise UsageError(f"invalid run id {rid!r}", hint="use `resolve()` for paths; " + LIST_HINT)
        return Path(rid)
    if not _ID_RE.match(rid) or rid in (".", ".."):
        raise UsageError(f"invalid run id {rid!r}", hint=LIST_HINT)
    return results_dir() / rid


def log_path(run_id: str, stage: str, *, create: bool = True) -> Path:
    """Where a stage's raw output goes (`logs/<stage>.log`); the logs directory is created."""
    _check_stage_name(stage)
    p = run_dir(run_id) / "logs" / f"{stage}.log"
    if create:
        paths.ensure(p.parent)
    return p


def _check_stage_name(stage: Any) -> None:
    if not isinstance(stage, str) or not _STAGE_RE.match(stage) or stage == "run":
        raise UsageError(f"invalid stage name {stage!r}", hint="letters, digits, '-' and '_' only (and not 'run')")


# --------------------------------------------------------------------------------------------
# run metadata
# --------------------------------------------------------------------------------------------


def _validate_run(meta: dict[str, Any]) -> list[str]:
    errs = []
    if not isinstance(meta.get("run_id"), str) or not meta["run_id"]:
        errs.append("run_id must be a non-empty string")
    if meta.get("status") is not None and meta["status"] not in RUN_STATUSES:
        errs.append(f"status {meta['status']!r} is not one of {', '.join(RUN_STATUSES)}")
    if not isinstance(meta.get("stages", []), list):
        errs.append("stages must be a list of stage names")
    for k in ("started", "finished"):
        v = meta.get(k)
        if v is not None:
            try:
                _parse_iso(str(v))
            except ValueError:
                errs.append(f"{k} {v!r} is not ISO 8601")
    return errs


def write_run(meta: dict[str, Any]) -> dict[str, Any]:
    """Write `<run_id>/run.json` (whole metadata; see `update_run` to change fields)."""
    m: dict[str, Any] = {
        "schema": RUN_SCHEMA,
        "run_id": None,
        "profile": None,
        "platform": None,
        "container": None,
        "started": None,
        "finished": None,
        "status": "running",
        "stages": [],
    }
    m.update({k: v for k, v in meta.items() if k not in ("records", "dir", "problems", "stage_status")})
    m["schema"] = RUN_SCHEMA
    m["started"], m["finished"] = _iso(m["started"]), _iso(m["finished"])
    errs = _validate_run(m)
    if errs:
        raise UsageError("invalid run metadata: " + "; ".join(errs))
    atomic = run_dir(m["run_id"]) / "run.json"
    paths.atomic_write(atomic, _dump(m))
    return m


def _read_meta(d: Path) -> dict[str, Any] | None:
    p = d / "run.json"
    if not p.is_file():
        return None
    meta = _read_json(p)
    if not isinstance(meta, dict):
        raise ContainerctlError(f"{p}: not a JSON object", hint="remove or fix the file")
    bad = [k for k, t in (("run_id", str), ("status", (str, type(None))),
                          ("stages", (list, type(None)))) if not isinstance(meta.get(k), t)]
    if bad:
        raise ContainerctlError(f"{p}: not a containerctl run record (bad or missing "
                                f"{', '.join(bad) or 'run_id'})", hint="remove or fix the file")
    return meta


def run_record(run_id: str, *, status: Status, profile: str | None, platform: str | None,
               container: str | None, started: str | None, stages: Iterable[str],
               finished: str | None = None, **extra: Any) -> dict[str, Any]:
    """A run's metadata (run.json), to hand to `write_run` now and `end_run` at its end. The
    dict is the caller's to add fields to while the run goes on (extra fields keep their
    order after the standard ones)."""
    return {"schema": RUN_SCHEMA, "run_id": run_id, "profile": profile, "platform": platform,
            "container": container, "started": started, "finished": finished,
            "status": _status(status, RUN_STATUSES, "run"), "stages": list(stages), **extra}


def end_run(meta: dict[str, Any], status: Status, finished: str, **changes: Any) -> dict[str, Any]:
    """The closing write of a run whose metadata the caller holds: its final status (a Status,
    as results/verdict.run_status decided it), when it finished and any other changed fields.
    `meta` is updated in place and written."""
    meta.update(finished=finished, status=_status(status, RUN_STATUSES, "run"), **changes)
    return write_run(meta)


class Crash:
    """What ended a guarded run early: `status` Status.INTERRUPTED (Ctrl-C, SIGTERM/SIGHUP as
    the CLI maps them) or Status.ERROR (any other exception), None when it ended by itself;
    `error` the exception's one-line message."""
    __slots__ = ("status", "error")

    def __init__(self) -> None:
        self.status: Status | None = None
        self.error: str | None = None


@contextmanager
def crash_status(finish: Callable[[Crash], None]) -> Iterator[Crash]:
    """The one guard around a run's body (the pipeline, the cluster's hetero stage, a Slurm
    run): however the body ends, `finish(crash)` runs — that is where the caller writes the
    run's record, with verdict.run_status(…, crash.status) — and the exception goes on."""
    crash = Crash()
    try:
        yield crash
    except KeyboardInterrupt:
        crash.status = Status.INTERRUPTED
        raise
    except BaseException as exc:
        crash.status = Status.ERROR
        crash.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        raise
    finally:
        finish(crash)


def mark_interrupted(run_path: str | os.PathLike, run_id: Any, why: str) -> tuple[str | None, str | None]:
    """Rewrite the run.json in `run_path` — a run directory of any home, as a run marker in a
    container names it — to `interrupted` (with `why` as its error) when it is run `run_id`'s
    and still says running. Returns (its path, or None when it is not there, not that run's or
    not writable; the status it had)."""
    f = Path(run_path) / "run.json"
    try:
        meta = json.loads(f.read_text())
    except (OSError, ValueError):
        return None, None
    if not isinstance(meta, dict) or meta.get("run_id") != run_id:
        return None, None
    if meta.get("status") != Status.RUNNING:
        return str(f), meta.get("status")
    meta["status"] = Status.INTERRUPTED
    meta["finished"] = meta.get("finished") or datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta["error"] = why
    try:
        paths.atomic_write(f, _dump(json_safe(meta)))
    except OSError:
        return None, Status.RUNNING.value
    return str(f), Status.RUNNING.value


def update_run(run_id: str, **changes: Any) -> dict[str, Any]:
    meta = _read_meta(run_dir(run_id)) or {"run_id": run_dir(run_id).name}
    meta.update(changes)
    return write_run(meta)


def start_run(profile: str, *, platform: str | None = None, container: str | None = None,
              stages: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """New run id + run.json with status "running"; returns the metadata (meta["run_id"])."""
    rid = new_run_id(profile)
    return write_run(run_record(rid, status=Status.RUNNING, profile=profile, platform=platform,
                                container=container, started=now_iso(), stages=stages or [], **extra))


def finish_run(run_id: str, status: Status | None = None) -> dict[str, Any]:
    """Set `finished` and the run status (default: results/verdict.run_status over the stage
    records, each re-judged from its own checks)."""
    if status is None:
        from .verdict import record_status, run_status
        loaded = load_run(run_id)
        recs = [dict(r, name=n, status=record_status(r)) for n, r in loaded["records"].items()]
        status = Status(run_status(recs, [str(s) for s in loaded.get("stages") or []] or
                                   [r["name"] for r in recs]))
    return update_run(run_id, finished=now_iso(), status=_status(status, RUN_STATUSES, "run"))


# --------------------------------------------------------------------------------------------
# stage records
# --------------------------------------------------------------------------------------------


def validate_stage(record: dict[str, Any]) -> list[str]:
    """Problems with a stage record (empty list = valid)."""
    errs: list[str] = []
    if not isinstance(record, dict):
        return ["record must be a JSON object"]
    if record.get("schema") != STAGE_SCHEMA:
        errs.append(f"schema must be {STAGE_SCHEMA!r}")
    for k in ("run_id", "stage"):
        if not isinstance(record.get(k), str) or not record.get(k):
            errs.append(f"{k} must be a non-empty string")
    if isinstance(record.get("stage"), str) and (not _STAGE_RE.match(record["stage"]) or record["stage"] == "run"):
        errs.append(f"stage {record['stage']!r}: letters, digits, '-' and '_' only, not 'run'")
    if record.get("status") not in STAGE_STATUSES:
        errs.append(f"status {record.get('status')!r} is not one of {', '.join(STAGE_STATUSES)}")
    for k in ("started", "finished"):
        v = record.get(k)
        if v is None and k == "finished":
            continue
        ok = isinstance(v, str)
        if ok:
            try:
                _parse_iso(v)
            except ValueError:
                ok = False
        if not ok:
            errs.append(f"{k} {v!r} is not an ISO 8601 string")
    d = record.get("duration_s")
    if d is not None and (not isinstance(d, (int, float)) or isinstance(d, bool) or d < 0 or not math.isfinite(d)):
        errs.append("duration_s must be a non-negative number or null")
    ec = record.get("exit_code")
    if ec is not None and (not isinstance(ec, int) or isinstance(ec, bool)):
        errs.append("exit_code must be an integer or null")
    if not isinstance(record.get("message", ""), str):
        errs.append("message must be a string")
    for k in ("profile", "platform", "container", "log"):
        if record.get(k) is not None and not isinstance(record[k], str):
            errs.append(f"{k} must be a string or null")
    for k in ("metrics", "repro"):
        if not isinstance(record.get(k, {}), dict):
            errs.append(f"{k} must be an object")
    checks = record.get("checks", [])
    if not isinstance(checks, list):
        errs.append("checks must be a list")
    else:
        for i, c in enumerate(checks):
            if not isinstance(c, dict) or not isinstance(c.get("name"), str) or c.get("ok") not in (True, False, None):
                errs.append(f"checks[{i}] must be {{name: str, ok: true|false|null, detail: str}}")
    colls = record.get("metrics", {}).get("collectives") if isinstance(record.get("metrics"), dict) else None
    if colls is not None:
        if not isinstance(colls, dict):
            errs.append("metrics.collectives must be an object")
        else:
            for cname, c in colls.items():
                if not isinstance(c, dict) or not isinstance(c.get("sweeps", []), list):
                    errs.append(f"metrics.collectives.{cname} must be {{nranks, sweeps: [...]}}")
                    continue
                for s in c.get("sweeps", []):
                    rows = s.get("rows") if isinstance(s, dict) else None
                    if not isinstance(rows, list) or any(not isinstance(r, dict) or not isinstance(r.get("size"), int) for r in rows):
                        errs.append(f"metrics.collectives.{cname}.sweeps[].rows must be [{{size:int, time_s, algbw, busbw}}]")
                        break
    try:
        json.dumps(record, allow_nan=False)
    except (TypeError, ValueError) as e:
        errs.append(f"not JSON-serialisable: {e}")
    return errs


def stage_record(
    run_id: str,
    stage: str,
    *,
    status: Status,
    started: datetime | str | float,
    finished: datetime | str | float | None = None,
    exit_code: int | None = None,
    message: str = "",
    profile: str | None = None,
    platform: str | None = None,
    container: str | None = None,
    metrics: dict[str, Any] | None = None,
    checks: Iterable[Check | dict[str, Any]] | None = None,
    repro: dict[str, Any] | None = None,
    duration_s: float | None = None,
    log: str | None = "default",
    **extra: Any,
) -> dict[str, Any]:
    """Build a valid stage record (raises UsageError listing the problems otherwise; TypeError
    when `status` is not a Status). `started`/`finished` may be datetimes, epoch seconds or ISO
    strings; duration_s is derived from them when not given; `log` defaults to `logs/<stage>.log`."""
    _status(status, STAGE_STATUSES, "stage")
    if duration_s is None and isinstance(started, (datetime, int, float)) and isinstance(finished, (datetime, int, float)):
        t0 = started if isinstance(started, datetime) else datetime.fromtimestamp(started, timezone.utc)
        t1 = finished if isinstance(finished, datetime) else datetime.fromtimestamp(finished, timezone.utc)
        try:
            duration_s = round(max(0.0, (t1 - t0).total_seconds()), 3)
        except TypeError:  # naive and aware datetimes mixed
            duration_s = None
    rec: dict[str, Any] = {
        "schema": STAGE_SCHEMA,
        "run_id": run_id,
        "stage": stage,
        "status": status,
        "started": _iso(started),
        "finished": _iso(finished),
        "duration_s": duration_s,
        "exit_code": exit_code,
        "message": message or "",
        "profile": profile,
        "platform": platform,
        "container": container,
        "metrics": metrics or {},
        "checks": _checks(checks),
        "repro": repro or {},
        "log": f"logs/{stage}.log" if log == "default" else log,
        **extra,
    }
    rec = json_safe(rec)
    if rec["duration_s"] is None and rec["started"] and rec["finished"]:
        try:
            rec["duration_s"] = round(max(0.0, (_parse_iso(rec["finished"]) - _parse_iso(rec["started"])).total_seconds()), 3)
        except (ValueError, TypeError):
            pass
    errs = validate_stage(rec)
    if errs:
        raise UsageError(f"invalid {stage} stage record: " + "; ".join(errs))
    return rec


def write_stage(run_id: str, record: dict[str, Any]) -> Path:
    """Validate and write `<run_id>/<stage>.json`; the stage is appended to run.json's `stages`
    (run.json is created if the pipeline has not written one). NaN/inf values are stored as null."""
    rec = json_safe(dict(record))
    rec.setdefault("run_id", run_dir(run_id).name)
    errs = validate_stage(rec)
    if errs:
        raise UsageError(f"invalid stage record for run {run_id}: " + "; ".join(errs))
    d = run_dir(run_id)
    p = d / f"{rec['stage']}.json"
    paths.atomic_write(p, _dump(rec))
    meta = _read_meta(d) or {"run_id": d.name, "profile": rec.get("profile"), "platform": rec.get("platform"),
                             "container": rec.get("container"), "started": rec.get("started")}
    stages = list(meta.get("stages") or [])
    if rec["stage"] not in stages:
        stages.append(rec["stage"])
        meta["stages"] = stages
        write_run(meta)
    elif not (d / "run.json").exists():
        write_run(meta)
    return p


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def _stage_files(d: Path) -> list[Path]:
    return sorted(p for p in d.glob("*.json") if p.name != "run.json" and not p.name.startswith("."))


def _flagcx_coll_names(rec: dict[str, Any]) -> dict[str, Any]:
    """The record with its collectives keyed by FlagCX's names (flagcx/colls.py): records made or
    imported before issue 22 spell core_sendrecv `coresendrecv`. Only what is read: the file keeps
    its bytes; an unknown name, or one whose FlagCX name the record also holds, stays as it is."""
    m = rec.get("metrics")
    colls = m.get("collectives") if isinstance(m, dict) else None
    if not isinstance(colls, dict):
        return rec
    names = {k: normalize_coll(k) if isinstance(k, str) else k for k in colls}
    targets = list(names.values())
    names = {k: n if n in COLLS and n not in colls and targets.count(n) == 1 else k
             for k, n in names.items()}
    if all(k == n for k, n in names.items()):
        return rec
    return {**rec, "metrics": {**m, "collectives": {names[k]: v for k, v in colls.items()}}}


def load_run(run_id: str) -> dict[str, Any]:
    """Run metadata plus "records": {stage: record} (in run order) and "dir". Unreadable stage
    files are listed under "problems" instead of failing the whole run."""
    d = run_dir(run_id)
    if not d.is_dir():
        raise NotFound(f"no run {run_id!r} in {results_dir()}", hint=LIST_HINT)
    meta = _read_meta(d)
    problems: list[str] = []
    records: dict[str, dict[str, Any]] = {}
    for p in _stage_files(d):
        try:
            rec = _read_json(p)
        except ContainerctlError as e:
            problems.append(e.message)
            continue
        if isinstance(rec, dict) and rec.get("schema") == STAGE_SCHEMA and isinstance(rec.get("stage"), str):
            records[rec["stage"]] = _flagcx_coll_names(rec)
        else:
            # a file in a run's folder that is not a stage record: say so, never drop it silently
            problems.append(f"{p}: not a containerctl stage record (remove or fix the file)")
    if meta is None:
        if not records:
            raise NotFound(f"{d} holds no run.json and no stage records", hint=LIST_HINT)
        first = min(records.values(), key=lambda r: str(r.get("started") or ""))
        meta = {"schema": RUN_SCHEMA, "run_id": d.name, "profile": first.get("profile"), "platform": first.get("platform"),
                "container": first.get("container"), "started": first.get("started"), "finished": None,
                "status": None, "stages": []}
        problems.append("run.json missing (run interrupted before it was written?)")
    order = [s for s in meta.get("stages") or [] if s in records]
    order += sorted((s for s in records if s not in order), key=lambda s: str(records[s].get("started") or ""))
    out = dict(meta)
    out["stages"] = list(dict.fromkeys(list(meta.get("stages") or []) + order))
    out["records"] = {s: records[s] for s in order}
    out["dir"] = str(d)
    if problems:
        out["problems"] = problems
    return out


def list_runs() -> list[dict[str, Any]]:
    """All stored runs, newest first: metadata plus "stage_status" {stage: status}."""
    root = results_dir()
    if not root.is_dir():
        return []
    runs = []
    for d in root.iterdir():
        if not d.is_dir() or d.name.startswith(".") or not _ID_RE.match(d.name):
            continue
        try:
            r = load_run(d.name)
        except ContainerctlError as e:
            # listed, not hidden: an unreadable run is something the user should see
            r = {"run_id": d.name, "status": "unreadable", "stages": [], "records": {},
                 "problems": [e.message], "dir": str(d)}
        r["stage_status"] = {s: rec.get("status") for s, rec in r.pop("records").items()}
        runs.append(r)
    runs.sort(key=lambda r: (str(r.get("started") or ""), r["run_id"]), reverse=True)
    return runs


def _run_ids() -> list[str]:
    root = results_dir()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if d.is_dir() and _ID_RE.match(d.name)
                  and ((d / "run.json").is_file() or _stage_files(d)))


def resolve(ref: str | os.PathLike) -> str:
    """A run reference → run id. Accepts a full id, a unique id prefix, `latest`, or the path of a
    run directory / stage JSON / run.json. A run directory outside the store resolves to its
    absolute path (which `run_dir`/`load_run` accept too)."""
    s = str(ref).strip()
    if not s:
        raise UsageError("empty run reference", hint=LIST_HINT)
    root = results_dir()
    if s == "latest":
        runs = list_runs()
        if not runs:
            raise NotFound(f"no runs stored in {root}",
                           hint="run the stages first, or `containerctl results import FILE --label L --platform P`")
        return runs[0]["run_id"]
    if _ID_RE.match(s) and (root / s).is_dir() and ((root / s / "run.json").is_file() or _stage_files(root / s)):
        return s
    p = Path(s).expanduser()
    looks_like_path = os.sep in s or "/" in s or s.endswith(".json") or p.exists()
    if looks_like_path:
        if not p.exists():
            raise NotFound(f"{s}: no such file or directory", hint=LIST_HINT)
        d = p.parent if p.is_file() else p
        if p.is_file() and p.suffix != ".json":
            raise UsageError(f"{s} is not a run directory or a stage JSON file",
                             hint="to read a raw test output, `containerctl results import FILE --label L --platform P` first")
        if not ((d / "run.json").is_file() or _stage_files(d)):
            raise NotFound(f"{d} is not a run directory (no run.json, no stage records)", hint=LIST_HINT)
        d = d.resolve()
        if root.exists() and d.parent == root.resolve():
            return d.name
        return str(d)
    matches = [r for r in _run_ids() if r.startswith(s)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (f" (+{len(matches) - 5} more)" if len(matches) > 5 else "")
        raise UsageError(f"run prefix {s!r} is ambiguous: {shown}", hint="give more characters of the run id")
    raise NotFound(f"no run matches {s!r}", hint=LIST_HINT)


# --------------------------------------------------------------------------------------------
# analysis shared by the pipeline and `results import`
# --------------------------------------------------------------------------------------------


def _row_dict(r: parsers.PerfRow) -> dict[str, Any]:
    return {"size": r.size, "time_s": _finite(r.time_s), "algbw": _finite(r.algbw), "busbw": _finite(r.busbw)}


def perf_metrics_from_sweeps(sweeps: list[parsers.PerfSweep], coll: str, nranks: int) -> dict[str, Any]:
    c = parsers.normalize_coll(coll)
    return {"collectives": {c: {"nranks": int(nranks), "sweeps": [
        {"datatype": s.datatype, "op": s.op, "rows": [_row_dict(r) for r in s.rows]} for s in sweeps]}}}


def perf_metrics_from_text(text: str, coll: str, nranks: int) -> dict[str, Any]:
    """Raw FlagCX perf output → {"collectives": {coll: {"nranks", "sweeps": [{datatype, op, rows}]}}}."""
    parsers.bus_factor(coll, nranks)  # validates coll and nranks
    return perf_metrics_from_sweeps(parsers.parse_flagcx_perf(text), coll, nranks)


def merge_perf_metrics(*metrics: dict[str, Any]) -> dict[str, Any]:
    """Combine perf metrics of several collectives (later ones win on the same collective)."""
    out: dict[str, Any] = {"collectives": {}}
    for m in metrics:
        for k, v in (m or {}).items():
            if k == "collectives":
                out["collectives"].update(v)
            else:
                out[k] = v
    return out


def perf_checks_from_text(text: str, coll: str, nranks: int, max_busbw_gbps: float | None = None) -> list[Check]:
    """Checks derivable from the output alone: rows present, bus factor consistent with nranks,
    the numbers plausible (parsers.check_plausible) and the -p 1 buffer check where one exists
    for the collective."""
    c = parsers.normalize_coll(coll)
    sweeps = parsers.parse_flagcx_perf(text)
    nrows = sum(len(s.rows) for s in sweeps)
    checks = [Check(f"{c} perf output", nrows > 0,
                    f"{nrows} size lines in {len(sweeps)} sweep(s)" if nrows else "no 'Comm size: … Bus bandwidth: …' line")]
    if nrows:
        checks.append(parsers.check_bus_factor(sweeps, c, nranks))
        part = perf_metrics_from_sweeps(sweeps, c, nranks)["collectives"][c]
        checks.append(parsers.check_plausible(c, part, max_busbw_gbps, nranks))
    checks.append(parsers.check_collective(c, parsers.parse_perf_buffers(text), nranks))
    return checks


def _reference_checks(metrics: dict[str, Any], platform: str | None, references: dict[str, Any] | None) -> list[Check]:
    if not platform and not references:
        return []
    from . import references as refs_mod

    refs = refs_mod.load_references(platform, references)
    return refs_mod.evaluate(metrics, refs) if refs else []


def analyze_perf(text: str, coll: str, nranks: int, *, platform: str | None = None,
                 references: dict[str, Any] | None = None,
                 max_busbw_gbps: float | None = None) -> tuple[dict[str, Any], list[Check]]:
    """(metrics, checks) for a FlagCX perf output: output checks plus the platform's references
    (defaults for the platform, overridden by `references`, the profile's own dict)."""
    metrics = perf_metrics_from_text(text, coll, nranks)
    checks = perf_checks_from_text(text, coll, nranks, max_busbw_gbps) + _reference_checks(metrics, platform, references)
    return metrics, checks


def analyze_nccl_tests(text: str, coll: str, nranks: int, *, platform: str | None = None,
                       references: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[Check]]:
    res = parsers.parse_nccl_tests(text)
    c = parsers.normalize_coll(coll or res.test or "allreduce")
    sweeps: dict[tuple[str, str], parsers.PerfSweep] = {}
    for r in res.rows:
        sweeps.setdefault((r.type, r.redop), parsers.PerfSweep(r.type, r.redop, [])).rows.append(
            parsers.PerfRow(r.size, r.oop.time_us / 1e6, r.oop.algbw, r.oop.busbw))
    metrics = perf_metrics_from_sweeps(list(sweeps.values()), c, nranks)
    metrics["collectives"][c]["source"] = "nccl-tests (out-of-place)"
    metrics["nccl_tests"] = {"test": res.test, "out_of_bounds": res.out_of_bounds,
                             "out_of_bounds_ok": res.out_of_bounds_ok, "avg_busbw": _finite(res.avg_busbw)}
    checks = [Check(f"{c} perf output", bool(res.rows), f"{len(res.rows)} nccl-tests rows" if res.rows else "no nccl-tests result rows")]
    checks += parsers.check_nccl_tests(res) + _reference_checks(metrics, platform, references)
    return metrics, checks


def analyze_torch(text: str) -> tuple[dict[str, Any], list[Check]]:
    parsed = parsers.parse_torch_example(text)
    metrics = {"torch": {"nranks": parsed.nranks,
                         "before": {str(k): v for k, v in sorted(parsed.before.items())},
                         "after": [{"rank": a.rank, "op": a.op, "tensor": a.tensor, "values": a.values, "group": a.group}
                                   for a in parsed.after]}}
    return metrics, parsers.check_torch_example(parsed)


def analyze_train(text: str) -> tuple[dict[str, Any], list[Check]]:
    iters = parsers.parse_flagscale_iterations(text)
    steady = [i["ms_per_iter"] for i in iters[1:] if i["ms_per_iter"] is not None]
    metrics = {"train": {
        "iterations": iters,
        "last_iteration": iters[-1]["iteration"] if iters else None,
        "last_lm_loss": iters[-1]["lm_loss"] if iters else None,
        "mean_ms_per_iter_after_first": (sum(steady) / len(steady)) if steady else None,
    }}
    return metrics, parsers.check_training(iters)


# --------------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------------


def _profile_bound(profile: str | None) -> float | None:
    """The named profile's limits.max_busbw_gbps, for the plausibility check of an import (None
    when no profile is named or it does not load: the check then says it had no bound)."""
    if not profile:
        return None
    try:
        from ..profiles import load_profile
        v = load_profile(profile).limits.max_busbw_gbps
    except Exception:
        return None
    return float(v) if v else None


def import_text(
    path: str | os.PathLike,
    kind: str = "flagcx-perf",
    label: str | None = None,
    platform: str | None = None,
    coll: str = "allreduce",
    nranks: int = 2,
    *,
    profile: str | None = None,
    references: dict[str, Any] | None = None,
) -> str:
    """Turn a saved raw output (the runbook's tables, a bare-metal run) into a stored run with one
    stage record ("perf", "torch" or "train" depending on `kind`). Returns the run id."""
    if kind not in IMPORT_KINDS:
        raise UsageError(f"unknown import kind {kind!r}", hint="one of: " + ", ".join(IMPORT_KINDS))
    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFound(f"{path}: no such file", hint="give the path of a saved test output")
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ContainerctlError(f"{path}: cannot read ({e.strerror})", hint="check the file's permissions") from None
    stage = IMPORT_KINDS[kind]
    if kind == "flagcx-perf":
        if not any(s.rows for s in parsers.parse_flagcx_perf(text)):
            raise UsageError(f"{path} contains no FlagCX perf lines",
                             hint="expected lines like 'Comm size: 131072 bytes; Elapsed time: … sec; Algo bandwidth: … GB/s; Bus bandwidth: … GB/s'")
        metrics, checks = analyze_perf(text, coll, nranks, platform=platform, references=references,
                                       max_busbw_gbps=_profile_bound(profile))
    elif kind == "nccl-tests":
        if not parsers.parse_nccl_tests(text).rows:
            raise UsageError(f"{path} contains no nccl-tests result rows",
                             hint="expected the table printed by all_reduce_perf & co (size count type redop root time algbw busbw #wrong …)")
        metrics, checks = analyze_nccl_tests(text, coll, nranks, platform=platform, references=references)
    elif kind == "torch-example":
        if not parsers.parse_torch_example(text).before:
            raise UsageError(f"{path} contains no 'rank N before allreduce' lines",
                             hint="import the output of plugin/torch/example/example.py (run.sh)")
        metrics, checks = analyze_torch(text)
    else:
        if not parsers.parse_flagscale_iterations(text):
            raise UsageError(f"{path} contains no 'iteration N/M |' lines", hint="import <exp_dir>/logs/host_0_localhost.output")
        metrics, checks = analyze_train(text)
    prof = profile or label or (platform if platform else "import")
    rid = new_run_id(prof)
    started = now_iso()
    write_run(run_record(rid, status=Status.RUNNING, profile=profile, platform=platform, container=None,
                         started=started, stages=[stage], label=label, imported=True,
                         source=str(p.resolve()), kind=kind, source_mtime=_iso(p.stat().st_mtime)))
    paths.atomic_write(log_path(rid, stage), text)
    status = status_from_checks(checks)
    rec = stage_record(
        rid, stage, status=status, started=started, finished=now_iso(), exit_code=None,
        message=f"imported {kind} output from {p.name}", profile=profile, platform=platform, container=None,
        metrics=metrics, checks=checks,
        repro={"imported_from": str(p.resolve()), "kind": kind, "coll": parsers.normalize_coll(coll), "nranks": nranks,
               "command": f"containerctl results import {p} --kind {kind}" + (f" --label {label}" if label else "")
               + (f" --platform {platform}" if platform else "") + f" --coll {coll} --nranks {nranks}"},
    )
    write_stage(rid, rec)
    update_run(rid, finished=now_iso(), status=status)
    return rid
