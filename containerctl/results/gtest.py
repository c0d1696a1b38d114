"""GoogleTest results: the XML of `--gtest_output=xml:FILE` and gtest's console output, turned into
per-case results, with a list of known failures (gtest-filter patterns) and one summary verdict.

FlagCX's unit tests (test/unittest, ≥ v0.13) are gtest binaries `<component>_unit_tests` and
`<component>_mpi_tests`; after v0.13 they are the only place that says whether results are right.
Seen on 2×H200 with v0.13.0: topo_unit_tests 0 of 4 passed (P2pTopoTest.*: "No IB P2P devices
found"), core_mpi_tests ran 0 tests, symmem_mpi_tests exited 1 — a summary must tell these apart
from a pass. Pure functions (re, xml.etree).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Iterable

from .parsers import Check, strip_prefix

STATUSES = ("passed", "failed", "skipped", "known-failure")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class GtestCase:
    suite: str
    case: str
    status: str  # passed | failed | skipped | known-failure
    time_s: float | None = None
    message: str = ""

    @property
    def name(self) -> str:
        return f"{self.suite}.{self.case}"


@dataclass
class GtestRun:
    binary: str | None = None
    cases: list[GtestCase] = field(default_factory=list)
    ran: int | None = None  # from "[==========] N tests from M test suites ran." (None: no such line)
    summary: bool = False  # the summary line was printed (the binary got to its end)
    crashed: str | None = None  # why the run looks cut short, if it does

    def count(self, status: str) -> int:
        return sum(1 for c in self.cases if c.status == status)

    @property
    def failed(self) -> list[GtestCase]:
        return [c for c in self.cases if c.status == "failed"]


def _split(name: str) -> tuple[str, str]:
    suite, _, case = name.rpartition(".")
    return (suite, case) if suite else ("", name)


# ------------------------------------------------------------------------------------- XML


def parse_gtest_xml(xml_text: str, binary: str | None = None) -> GtestRun:
    """One `--gtest_output=xml` file's text. A file cut short (the binary died while writing it) or
    not XML at all gives a run marked crashed, never an exception."""
    run = GtestRun(binary)
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        run.crashed = f"the XML report is unreadable ({e}): the binary probably died before finishing it"
        return run
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        for tc in s.findall("testcase"):
            suite = tc.get("classname") or s.get("name") or ""
            case = tc.get("name") or ""
            try:
                t = float(tc.get("time")) if tc.get("time") not in (None, "") else None
            except ValueError:
                t = None
            fails = tc.findall("failure") + tc.findall("error")
            skipped = tc.find("skipped")
            if fails:
                msg = (fails[0].get("message") or fails[0].text or "").strip()
                run.cases.append(GtestCase(suite, case, "failed", t, msg))
            elif skipped is not None or tc.get("result") in ("skipped", "suppressed") or tc.get("status") == "notrun":
                msg = ((skipped.get("message") or skipped.text or "") if skipped is not None else "").strip()
                run.cases.append(GtestCase(suite, case, "skipped", t, msg or "not run"))
            else:
                run.cases.append(GtestCase(suite, case, "passed", t, ""))
    run.summary = True
    run.ran = sum(1 for c in run.cases if c.status != "skipped" or c.message != "not run")
    return run


# ------------------------------------------------------------------------------------- console

_RUN = re.compile(r"^\[ RUN      \] (\S+)")
_END = re.compile(r"^\[\s+(OK|FAILED|SKIPPED)\s+\] (\S+?)(?: \((\d+) ms\))?\s*$")
_RAN = re.compile(r"^\[==========\] (\d+) tests? from \d+ test (?:suites?|cases?) ran")
_START = re.compile(r"^\[==========\] Running (\d+) tests?")


def parse_gtest_console(text: str, binary: str | None = None) -> GtestRun:
    """gtest's console output of one binary (several ranks of an MPI test may interleave: a case is
    counted once, with its worst outcome). Colour codes and launcher prefixes are ignored."""
    run = GtestRun(binary)
    by: dict[str, GtestCase] = {}
    open_: dict[str, list[str]] = {}  # case -> output lines since its RUN
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    started = False
    for raw in _ANSI.sub("", text or "").replace("\r", "\n").split("\n"):
        line = strip_prefix(raw).rstrip()
        if _START.match(line):
            started = True
            continue
        m = _RAN.match(line)
        if m:
            run.ran = max(run.ran or 0, int(m.group(1)))
            run.summary = True
            continue
        m = _RUN.match(line)
        if m:
            open_[m.group(1)] = []
            continue
        m = _END.match(line)
        if m and (m.group(3) is not None or m.group(2) in open_):
            name = m.group(2)
            status = {"OK": "passed", "FAILED": "failed", "SKIPPED": "skipped"}[m.group(1)]
            out = open_.pop(name, [])
            msg = "\n".join(l for l in out if l.strip())[:2000] if status != "passed" else ""
            t = int(m.group(3)) / 1000 if m.group(3) is not None else None
            suite, case = _split(name)
            prev = by.get(name)
            if prev is None or rank[status] > rank[prev.status]:
                by[name] = GtestCase(suite, case, status, t, msg)
            continue
        for out in open_.values():
            out.append(line)
    for name, out in open_.items():  # a RUN that never ended: the binary died inside it
        suite, case = _split(name)
        last = next((l for l in reversed(out) if l.strip()), "")
        by[name] = GtestCase(suite, case, "failed", None, "crashed inside this test (no OK/FAILED line)"
                             + (f"; last output: {last}" if last else ""))
        run.crashed = f"the binary stopped inside {name}"
    run.cases = list(by.values())
    if not run.summary and run.crashed is None:
        run.crashed = ("no '[==========] N tests … ran' summary line: the binary did not get to its end"
                       if started or by else "no gtest output at all")
    return run


# ------------------------------------------------------------------------------------- verdict


def _patterns(patterns: Iterable[str] | str | None) -> list[str]:
    if not patterns:
        return []
    items = patterns.split(":") if isinstance(patterns, str) else list(patterns)
    out = []
    for p in items:
        for q in str(p).split(":"):
            q = q.strip().lstrip("-")  # a GTEST_FILTER's negative part lists the same names
            if q:
                out.append(q)
    return out


def matches(name: str, patterns: Iterable[str] | str | None) -> bool:
    """gtest filter semantics: `*` any string, `?` one character, `:` separates alternatives."""
    return any(fnmatchcase(name, p) for p in _patterns(patterns))


def apply_known_failures(run: GtestRun, known_failures: Iterable[str] | str | None) -> GtestRun:
    """Failed cases whose `Suite.Case` matches a pattern become status `known-failure` (in place)."""
    pats = _patterns(known_failures)
    if pats:
        for c in run.cases:
            if c.status == "failed" and matches(c.name, pats):
                c.status = "known-failure"
    return run


def check_gtest(run: GtestRun, *, name: str | None = None, known_failures: Iterable[str] | str | None = None,
                expect_tests: bool = True, exit_code: int | None = None) -> Check:
    """FAIL when a case failed that is not a known failure, when the binary crashed (no summary line,
    a case without an outcome, an unreadable XML), when it ran 0 tests while some were expected, or
    when it exited non-zero without saying why; PASS otherwise. The detail names the first failing
    case and its message."""
    apply_known_failures(run, known_failures)
    label = name or f"gtest {run.binary or 'tests'}"
    p, s, k = run.count("passed"), run.count("skipped"), run.count("known-failure")
    counts = f"{p} passed" + (f", {s} skipped" if s else "") + (f", {k} known failures" if k else "")
    bad = run.failed
    if bad:
        c = bad[0]
        msg = " ".join(c.message.split())[:300]
        more = f" (+{len(bad) - 1} more: {', '.join(b.name for b in bad[1:4])}{', …' if len(bad) > 4 else ''})" if len(bad) > 1 else ""
        return Check(label, False, f"{len(bad)} failed, {counts}: first {c.name}" + (f": {msg}" if msg else "") + more
                     + (f"; {run.crashed}" if run.crashed else ""))
    if run.crashed:
        return Check(label, False, f"crashed: {run.crashed}" + (f" ({counts} before)" if run.cases else "")
                     + (f"; exit code {exit_code}" if exit_code not in (None, 0) else ""))
    if expect_tests and not run.ran and not p:
        return Check(label, False, "ran 0 tests, expected some: the binary registered none (or a filter excluded all)"
                     + (f"; exit code {exit_code}" if exit_code not in (None, 0) else ""))
    if exit_code not in (None, 0):
        return Check(label, False, f"exited with code {exit_code} although no case failed ({counts})")
    known = [c.name for c in run.cases if c.status == "known-failure"]
    if not p:
        # every case skipped or a known failure: nothing was judged, so no pass (and no fail)
        return Check(label, None, f"judged nothing: {counts}"
                     + (f" (known: {', '.join(known[:4])}{', …' if len(known) > 4 else ''})" if known else ""))
    return Check(label, True, counts + (f" (known: {', '.join(known[:4])}{', …' if len(known) > 4 else ''})" if known else ""))
