"""What a run looks like while it happens, built from the runner's callbacks: which stage runs
and since when, its last meaningful line, the perf table row by row per collective, the deps
found/installed. Both views (live and plain) read this model; it knows nothing of screens.

Callbacks it understands (the runner calls them; see ui/README in events.py):
  echo(stage, line)      every output line of a stage
  status(msg)            `<stage>: running (log PATH)` when a stage starts
  on_event(kind, stage, **data)
      kind "stage-start": timeout=seconds, log=path (optional)
      kind "stage-end":   status=passed|failed|timeout|interrupted|skipped, message=…,
                          duration=seconds
Without on_event, a stage ends when the next one starts, with the verdict of the record the
runner wrote for it (<run>/<stage>.json); the outcomes Pipeline.run returns settle the rest."""
from __future__ import annotations

import json
import re
import threading
from collections import deque
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..results.parsers import PERF_LINE_RE, PerfRow, strip_prefix  # PerfRow: one row type for parser and view
from ..results.references import parse_size
from . import filters
from ..textsafe import printable

_STATUS_RE = re.compile(r"^(?P<stage>[A-Za-z0-9][A-Za-z0-9_-]*): running(?: \(log (?P<log>.+)\))?$")
DONE = ("passed", "failed", "timeout", "interrupted", "skipped")


@dataclass
class CollState:
    name: str
    nranks: str = ""
    sweep: str = ""             # "float/sum" from the `# datatype:` header (>= v0.13)
    rows: list[PerfRow] = field(default_factory=list)
    done: bool = False
    rc: int | None = None
    missing: str = ""


@dataclass
class StageState:
    name: str
    state: str = "pending"      # pending running passed failed timeout interrupted skipped
    started: float | None = None
    ended: float | None = None
    duration: float | None = None
    last: str = ""              # the last line worth reading
    message: str = ""
    log: str = ""
    timeout: int | None = None
    lines: int = 0
    tail: deque = field(default_factory=lambda: deque(maxlen=6))

    def elapsed(self, now: float | None = None) -> float | None:
        if self.duration is not None:
            return self.duration
        if self.started is None:
            return None
        return (self.ended or now or time.monotonic()) - self.started


def _record(run_dir: Path | None, stage: str) -> dict:
    if run_dir is None:
        return {}
    try:
        rec = json.loads((run_dir / f"{stage}.json").read_text())
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def expected_sizes(begin: Any, end: Any, factor: Any) -> list[int]:
    """The sizes a FlagCX perf test sweeps for -b/-e/-f (K/M/G are 1024-based)."""
    try:
        b, e, f = parse_size(begin), parse_size(end), int(factor)
    except Exception:
        return []
    if f < 2 or b > e:
        return [b] if b <= e else []
    out, s = [], b
    while s <= e and len(out) < 64:
        out.append(s)
        s *= f
    return out


class RunModel:
    def __init__(self, stages: list[str] | None = None, sizes: list[int] | None = None,
                 colls: list[str] | None = None, listener: Callable[..., None] | None = None):
        self.lock = threading.RLock()
        self.stages: dict[str, StageState] = {s: StageState(s) for s in stages or []}
        self.sizes = list(sizes or [])
        self.planned_colls = list(colls or [])
        self.colls: dict[str, CollState] = {}
        self.current_coll: str | None = None
        self.deps: list[tuple[str, str, str]] = []
        self.events_seen = False
        self.started = time.monotonic()
        self.up: StageState = StageState("up")
        # the views' hook: listener(kind, stage, **data) for what plain mode prints as it comes
        self.listener = listener or (lambda *a, **k: None)

    # ---------------------------------------------------------------- helpers
    def stage(self, name: str) -> StageState:
        st = self.stages.get(name)
        if st is None:
            st = self.stages[name] = StageState(name)
        return st

    def running(self) -> StageState | None:
        for st in self.stages.values():
            if st.state == "running":
                return st
        return None

    def mark_not_applicable(self, name: str, why: str) -> None:
        why = printable(why)
        with self.lock:
            st = self.stage(name)
            st.state, st.message = "skipped", why

    # ---------------------------------------------------------------- the runner's callbacks
    def status(self, msg: str) -> None:
        msg = printable(msg)
        m = _STATUS_RE.match(msg.strip())
        if not m:
            self.listener("note", "", text=msg)
            return
        self._start(m.group("stage"), log=m.group("log") or "")

    def on_event(self, kind: str, stage: str, **data: Any) -> None:
        self.events_seen = True
        if kind == "stage-start":
            self._start(stage, timeout=data.get("timeout"), log=data.get("log") or "")
        elif kind == "stage-end":
            self._end(stage, str(data.get("status") or "passed"), str(data.get("message") or ""),
                      data.get("duration"))

    def echo(self, stage: str, line: str) -> None:
        line = printable(line.rstrip("\r\n"))   # nothing a stage prints acts on the terminal
        with self.lock:
            st = self.stage(stage)
            st.lines += 1
            if st.state == "pending":       # output before any start signal (prepare_source)
                self._start(stage)
            if stage == "deps":
                dep = filters.parse_dep(line)
                if dep:
                    self.deps.append(dep)
                    self.listener("dep", stage, name=dep[0], status=dep[1], detail=dep[2])
                    return
            mk = filters.parse_coll_marker(line)
            if mk:
                self._coll_marker(stage, *mk)
                return
            if self._perf_line(stage, line):
                return
            if not filters.is_shown(line):
                return
            cur = self.colls.get(self.current_coll or "")
            if not (cur and cur.rows and not cur.done):   # a sweep in progress keeps its n/total
                st.last = line.strip()
            st.tail.append(line.rstrip())
        self.listener("line", stage, text=line)

    # ---------------------------------------------------------------- image build / up
    def up_line(self, text: str) -> None:
        text = printable(text)
        with self.lock:
            if self.up.started is None:
                self.up.started, self.up.state = time.monotonic(), "running"
            m = re.match(r"^Step (\d+)/(\d+) : (.*)$", text.strip())
            self.up.last = f"image step {m.group(1)}/{m.group(2)}: {m.group(3)}" if m else text.strip()
        self.listener("up-line", "up", text=self.up.last)

    def up_status(self, msg: str) -> None:
        msg = printable(msg)
        with self.lock:
            if self.up.started is None:
                self.up.started, self.up.state = time.monotonic(), "running"
            self.up.last = msg
        self.listener("up-line", "up", text=msg)

    def up_done(self, text: str) -> None:
        text = printable(text)
        with self.lock:
            if self.up.started is not None:
                self.up.ended = time.monotonic()
            self.up.state, self.up.last = "passed", text
        self.listener("up-done", "up", text=text)

    # ---------------------------------------------------------------- internals
    def _start(self, stage: str, timeout: Any = None, log: str = "") -> None:
        with self.lock:
            st = self.stage(stage)
            if timeout is not None:
                st.timeout = int(timeout)
            if log:
                st.log = log
            if st.state == "running":
                return
            now = time.monotonic()
            order = list(self.stages)
            # stages before this one that were still open have ended: their verdict is the
            # record the runner wrote before going on (<run>/<stage>.json, next to logs/)
            if not self.events_seen:
                run_dir = Path(st.log).parent.parent if st.log else None
                for name in order[:order.index(stage)]:
                    prev = self.stages[name]
                    if prev.state not in ("running", "pending"):
                        continue
                    rec = _record(run_dir, name)
                    if rec.get("status") in DONE:
                        self._end(name, rec["status"], str(rec.get("message") or ""),
                                  rec.get("duration_s") if prev.state == "running" else None, now=now)
                    elif prev.state == "running":
                        self._end(name, "done", "", None, now=now)
                    else:
                        prev.state = "skipped"
                        self.listener("stage-end", name, status="skipped", message=prev.message,
                                      duration=None)
            st.state, st.started, st.ended, st.duration = "running", now, None, None
        self.listener("stage-start", stage, timeout=st.timeout, log=st.log)

    def _end(self, stage: str, status: str, message: str, duration: Any, now: float | None = None):
        message = printable(message)
        with self.lock:
            st = self.stage(stage)
            was = st.state
            st.state = status if status in DONE or status == "done" else "failed"
            st.message = message or st.message
            st.ended = now or time.monotonic()
            if duration is not None:
                st.duration = float(duration)
            if stage == "perf" and self.current_coll:
                self.colls[self.current_coll].done = True
        if was != st.state or message:
            self.listener("stage-end", stage, status=st.state, message=st.message,
                          duration=st.elapsed())

    def finish(self, outcomes: list[Any]) -> None:
        """Settle every stage from Pipeline.run's outcomes (StageOutcome: name, status,
        message, record)."""
        for oc in outcomes:
            rec = getattr(oc, "record", None) or {}
            st = self.stages.get(oc.name)
            dur = rec.get("duration_s")
            if st is not None and st.state == oc.status and st.state in DONE:
                with self.lock:     # already said; only the record's figures are finer
                    st.message = oc.message or st.message
                    if dur is not None:
                        st.duration = float(dur)
                continue
            self._end(oc.name, oc.status, oc.message, dur)

    def _coll_marker(self, stage: str, kind: str, coll: str, kv: dict[str, str]) -> None:
        if kind == "start":
            c = self.colls.get(coll) or CollState(coll)
            c.nranks = kv.get("nranks", c.nranks)
            if "missing" in kv:
                c.missing, c.done = kv["missing"], True
            self.colls[coll] = c
            self.current_coll = None if c.missing else coll
            self.stage(stage).last = f"{coll}: no test binary {c.missing}" if c.missing else \
                f"{coll}: starting"
            self.listener("coll-start", stage, coll=coll, nranks=c.nranks, missing=c.missing)
        else:
            c = self.colls.get(coll) or CollState(coll)
            self.colls[coll] = c
            c.done = True
            try:
                c.rc = int(kv.get("rc", ""))
            except ValueError:
                c.rc = None
            if self.current_coll == coll:
                self.current_coll = None
            self.listener("coll-end", stage, coll=coll, rc=c.rc, rows=len(c.rows))

    def _perf_line(self, stage: str, line: str) -> bool:
        s = strip_prefix(line)
        h = re.search(r"#\s*datatype:\s*([^,\s]+)\s*,\s*op:\s*(\S+)", s)
        if h:
            c = self._cur(stage)
            if c.rows:                     # a second sweep of the same collective
                c.rows = []
            c.sweep = f"{h.group(1)}/{h.group(2)}"
            return True
        m = PERF_LINE_RE.search(s)
        if not m:
            return False
        c = self._cur(stage)
        row = PerfRow(int(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4)))
        if c.rows and row.size <= c.rows[-1].size:
            c.rows = []
        c.rows.append(row)
        total = max(len(self.sizes), len(c.rows))
        self.stage(stage).last = f"{c.name}: {len(c.rows)}/{total} sizes"
        self.listener("perf-row", stage, coll=c.name, row=row, index=len(c.rows), total=total,
                      sweep=c.sweep, nranks=c.nranks)
        return True

    def _cur(self, stage: str) -> CollState:
        name = self.current_coll or (self.planned_colls[0] if len(self.planned_colls) == 1
                                     else "perf")
        c = self.colls.get(name)
        if c is None:
            c = self.colls[name] = CollState(name)
        self.current_coll = name
        return c
