"""Reports over stored runs: rich tables (the runbook's shape: size, time, algbw, busbw), Markdown,
JSON, JUnit XML, a self-contained HTML page, a busbw-vs-size plot, and a two-run comparison.

`rich` and `matplotlib` are imported inside the functions that need them; matplotlib only when a
plot is drawn, always on the Agg canvas (no display needed).
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any, BinaryIO, Iterable

from .errors import NotFound, UsageError
from .textsafe import json_text, printable, xml_safe
from .results import store
from .results.parsers import normalize_coll
from .results.references import human_size, primary_sweep, short_size
from .tabular import columns, fmt_bw, fmt_num

FORMATS = ("table", "md", "html", "json", "junit")
from .results.model import BAD_STATUSES as FAILED  # noqa: E402


# --------------------------------------------------------------------------------------------
# data access
# --------------------------------------------------------------------------------------------


def load_runs(refs: Iterable[str] | None = None, *, need_perf: bool = False,
              coll: str | None = None, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """Resolve and load runs (default: the latest); each only once, in the order given.

    `latest` means the newest run that holds what was asked: perf results when need_perf (a
    plot), that collective when coll is given. A newer run passed over is named in `notes`."""
    out, seen = [], set()
    for ref in list(refs or []) or ["latest"]:
        if str(ref) == "latest" and (need_perf or coll):
            run = latest_holding(coll, notes)
            rid = run["run_id"]
        else:
            rid = store.resolve(ref)
            run = None
        if rid in seen:
            continue
        seen.add(rid)
        out.append(run or store.load_run(rid))
    return out


def latest_holding(coll: str | None = None, notes: list[str] | None = None) -> dict[str, Any]:
    """The newest stored run with perf results (for `coll` when given)."""
    skipped = []
    for meta in store.list_runs():
        try:
            run = store.load_run(meta["run_id"])
        except Exception:
            continue
        if perf_series(run, coll):
            if skipped and notes is not None:
                what = f"{normalize_coll(coll)} perf results" if coll else "perf results"
                notes.append(f"latest run with {what}: {run['run_id']} (newer, without them: "
                             f"{', '.join(skipped[:3])}{f' and {len(skipped) - 3} more' if len(skipped) > 3 else ''})")
            return run
        skipped.append(meta["run_id"])
    what = f"{normalize_coll(coll)} perf results" if coll else "perf results"
    if not skipped:
        raise NotFound(f"no runs in {store.results_dir()}",
                             hint="run the stages first: containerctl run --profile P")
    raise UsageError(f"no stored run holds {what} ({len(skipped)} run(s) looked at)",
                     hint="run perf first (containerctl exec-stage perf"
                          + (f" --coll {normalize_coll(coll)}" if coll else "")
                          + "), or name a run: containerctl results list")


def run_label(run: dict[str, Any]) -> str:
    """The name a run goes by in tables and plot legends: its label (import --label), else its
    profile (nvidia-a800 — more specific than the platform family "nvidia"), else its platform."""
    return str(run.get("label") or run.get("profile") or run.get("platform") or run["run_id"])



SERIES_HEADER = ("size", "time (s)", "algbw (GB/s)", "busbw (GB/s)")


def series_cells(s: dict) -> list[list[str]]:
    """One perf series' rows as the cells every document format shows (markdown, HTML)."""
    return [[human_size(r["size"]), fmt_num(r.get("time_s"), ".6f"), fmt_bw(r.get("algbw")),
             fmt_bw(r.get("busbw"))] for r in s["rows"]]


def perf_series(run: dict[str, Any], coll: str | None = None, *, all_sweeps: bool = False) -> list[dict[str, Any]]:
    """Perf data of a run as a flat list: {stage, coll, nranks, datatype, op, rows}. With
    all_sweeps=False, only each collective's primary sweep (float/sum, or the header-less one)."""
    want = normalize_coll(coll) if coll else None
    out = []
    for stage, rec in (run.get("records") or {}).items():
        colls = ((rec.get("metrics") or {}).get("collectives")) or {}
        for cname, c in colls.items():
            if want and cname != want:
                continue
            sweeps = [s for s in c.get("sweeps") or [] if s.get("rows")] if all_sweeps else [primary_sweep(c.get("sweeps") or [])]
            for s in sweeps:
                if not s:
                    continue
                out.append({"stage": stage, "coll": cname, "nranks": c.get("nranks"), "datatype": s.get("datatype"),
                            "op": s.get("op"), "rows": s.get("rows") or [], "source": c.get("source")})
    return out


def all_checks(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(stage, c) for stage, rec in (run.get("records") or {}).items() for c in rec.get("checks") or []]


def _verdict(ok: Any) -> str:
    return {True: "PASS", False: "FAIL", None: "SKIP"}.get(ok, "SKIP")


def _series_title(run: dict[str, Any], s: dict[str, Any]) -> str:
    parts = [run_label(run), s["coll"]]
    if s.get("nranks"):
        parts.append(f"{s['nranks']} ranks")
    if s.get("datatype") or s.get("op"):
        parts.append(f"{s.get('datatype') or '?'}/{s.get('op') or '?'}")
    if s["stage"] != "perf":
        parts.append(f"stage {s['stage']}")
    return " · ".join(parts)


# --------------------------------------------------------------------------------------------
# rich tables
# --------------------------------------------------------------------------------------------


def table_renderables(runs: list[dict[str, Any]], coll: str | None = None) -> list[Any]:
    from rich.table import Table   # start-up: rich (~40 ms), only for a terminal
    from rich.text import Text

    out: list[Any] = []
    for run in runs:
        head = Text(f"{run_label(run)}  ", style="bold")
        head.append(f"run {run['run_id']}  status {run.get('status') or '?'}"
                    + (f"  platform {run['platform']}" if run.get("platform") else "")
                    + (f"  container {run['container']}" if run.get("container") else ""))
        out.append(head)
        recs = run.get("records") or {}
        if recs:
            t = Table(title="stages", title_justify="left")
            for col in ("stage", "status", "duration (s)", "exit", "message"):
                t.add_column(col, justify="right" if col in ("duration (s)", "exit") else "left", overflow="fold")
            for stage, rec in recs.items():
                st = rec.get("status") or "?"
                t.add_row(stage, Text(st, style="green" if st == "passed" else ("red" if st in FAILED else "yellow")),
                          fmt_num(rec.get("duration_s"), ".1f"), "—" if rec.get("exit_code") is None else str(rec["exit_code"]),
                          rec.get("message") or "")
            out.append(t)
        for s in perf_series(run, coll, all_sweeps=True):
            t = Table(title=_series_title(run, s), title_justify="left")
            t.add_column("size", justify="right")
            t.add_column("time (s)", justify="right")
            t.add_column("algbw (GB/s)", justify="right")
            t.add_column("busbw (GB/s)", justify="right")
            for r in s["rows"]:
                t.add_row(human_size(r["size"]), fmt_num(r.get("time_s"), ".6f"), fmt_bw(r.get("algbw")),
                          fmt_bw(r.get("busbw")))
            out.append(t)
        checks = all_checks(run)
        if checks:
            t = Table(title="checks", title_justify="left")
            t.add_column("stage", overflow="fold")
            t.add_column("check", overflow="fold")
            t.add_column("result", overflow="fold")
            t.add_column("detail", overflow="fold")
            for stage, c in checks:
                v = _verdict(c.get("ok"))
                t.add_row(stage, c.get("name", ""), Text(v, style={"PASS": "green", "FAIL": "bold red"}.get(v, "yellow")),
                          c.get("detail", ""))
            out.append(t)
        for p in run.get("problems") or []:
            out.append(Text(f"warning: {p}", style="yellow"))
    return out


def render_table(runs: list[dict[str, Any]], coll: str | None = None, width: int = 140) -> str:
    """The tables as plain text (what `report` prints, without colour)."""
    from rich.console import Console   # start-up: rich (~40 ms), only for a terminal

    con = Console(file=io.StringIO(), width=width, record=True, color_system=None, highlight=False)
    for r in table_renderables(runs, coll):
        con.print(r)
    return printable(con.export_text())


# --------------------------------------------------------------------------------------------
# sections: the same tables for plain text (aligned columns) and the terminal (rich)
# --------------------------------------------------------------------------------------------


def _dur(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}s"


def run_sections(run: dict[str, Any], coll: str | None = None, *, stages: bool = True,
                 checks: bool = True) -> list[dict[str, Any]]:
    """A run as titled tables: {title, headers, rows, align}. Cells are plain strings."""
    out: list[dict[str, Any]] = []
    recs = run.get("records") or {}
    if stages and recs:
        out.append({"title": "stages", "headers": ["stage", "status", "time", "exit", "message"],
                    "align": "llrrl",
                    "rows": [[st, rec.get("status") or "?",
                              "-" if rec.get("status") == "skipped" else _dur(rec.get("duration_s")),
                              "-" if rec.get("exit_code") is None else str(rec["exit_code"]),
                              rec.get("message") or ""] for st, rec in recs.items()]})
    vrows = variant_rows(recs)
    if stages and vrows:   # issue 20: the variants of a stage side by side
        out.append({"title": "variants", "headers": ["stage", "variant", "status", "ranks",
                                                       "environment / options", "peak busbw",
                                                       "communicator", "ci step"],
                    "align": "lllrlrll", "rows": vrows})
    for srs in perf_series(run, coll, all_sweeps=True):
        out.append({"title": _series_title(run, srs),
                    "headers": ["size", "time (s)", "algbw (GB/s)", "busbw (GB/s)"], "align": "rrrr",
                    "rows": [[human_size(r["size"]), fmt_num(r.get("time_s"), ".6f"), fmt_bw(r.get("algbw")),
                              fmt_bw(r.get("busbw"))] for r in srs["rows"]]})
    cks = all_checks(run)
    if checks and cks:
        out.append({"title": "checks", "headers": ["stage", "check", "result", "detail"], "align": "llll",
                    "rows": [[stage, c.get("name", ""), _verdict(c.get("ok")), c.get("detail", "")]
                             for stage, c in cks]})
    return out


def variant_rows(recs: dict[str, Any]) -> list[list[str]]:
    """One row per variant record (metrics.variant, flagcx/variants.py): what it set, its
    verdict, its best busbw over every collective and size, which path FlagCX took."""
    rows = []
    for st, rec in recs.items():
        v = (rec.get("metrics") or {}).get("variant")
        if not isinstance(v, dict):
            continue
        peak = [r.get("busbw") for c in ((rec.get("metrics") or {}).get("collectives") or {}).values()
                for s in (c.get("sweeps") or []) for r in (s.get("rows") or [])
                if isinstance(r.get("busbw"), (int, float))]
        what = " ".join([f"{k}={x}" for k, x in (v.get("env") or {}).items()] +
                        [str(a) for a in v.get("extra_args") or []]) or "-"
        rows.append([str(v.get("of") or st), str(v.get("name") or st), rec.get("status") or "?",
                     str(v.get("nranks") or "-"), what, fmt_bw(max(peak)) if peak else "-",
                     str((rec.get("metrics") or {}).get("communicator") or "-"),
                     str(v.get("ci") or "")])
    return rows


def run_heading(run: dict[str, Any]) -> str:
    return (f"{run_label(run)}  run {run['run_id']}  status {run.get('status') or '?'}"
            + (f"  platform {run['platform']}" if run.get("platform") else "")
            + (f"  container {run['container']}" if run.get("container") else ""))


def compare_sections(runs: list[dict[str, Any]], coll: str | None = None) -> list[dict[str, Any]]:
    """For exactly two runs: per collective both hold, busbw per size with the delta B − A."""
    if len(runs) != 2:
        return []
    a, b = runs
    ca = {s["coll"] for s in perf_series(a, coll)}
    cb = {s["coll"] for s in perf_series(b, coll)}
    out = []
    for c in sorted(ca & cb):
        cmp = compare(a, b, c)
        out.append({"title": f"{c} busbw: B = {cmp['b']['label']} ({b['run_id']}) vs "
                             f"A = {cmp['a']['label']} ({a['run_id']}); geometric mean B/A "
                             f"{fmt_num(cmp['geomean_ratio'], '.3f')}",
                    "headers": ["size", "A busbw (GB/s)", "B busbw (GB/s)", "delta (GB/s)", "B/A"],
                    "align": "rrrrr",
                    "rows": [[human_size(r["size"]), fmt_bw(r["busbw_a"]), fmt_bw(r["busbw_b"]),
                              _delta(r.get("delta")), fmt_num(r["ratio"], ".3f")] for r in cmp["rows"]]})
    return out


def _delta(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return ("+" if v > 0 else "") + fmt_bw(v)


def render_plain(runs: list[dict[str, Any]], coll: str | None = None, *, extra: list[dict[str, Any]] | None = None) -> str:
    """Aligned columns, like `docker ps`: no boxes, no colour, nothing cut to fit a width."""
    lines: list[str] = []
    for run in runs:
        lines += [run_heading(run), ""]
        for sec in run_sections(run, coll):
            lines += [sec["title"]] + columns(sec["headers"], sec["rows"], sec["align"]) + [""]
        for p in run.get("problems") or []:
            lines.append(f"warning: {p}")
    for sec in (extra if extra is not None else compare_sections(runs, coll)):
        lines += [sec["title"]] + columns(sec["headers"], sec["rows"], sec["align"]) + [""]
    return "\n".join(lines).rstrip() + "\n"


def rich_table(sec: dict[str, Any]):
    """One section as a rich Table for a terminal: light rules, cells folded (never `…`)."""
    from rich import box   # start-up: rich (~40 ms), only for a terminal
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for h, al in zip(sec["headers"], sec["align"]):
        t.add_column(h, justify="right" if al == "r" else "left", overflow="fold")
    styles = {"passed": "green", "PASS": "green", "failed": "bold red", "FAIL": "bold red",
              "timeout": "red", "interrupted": "yellow", "skipped": "yellow", "SKIP": "yellow"}
    for r in sec["rows"]:
        t.add_row(*[Text(printable(str(v)), style=styles.get(str(v), "")) for v in r])
    return Group(Text(""), Text(printable(sec["title"]), style="bold"), t)


# --------------------------------------------------------------------------------------------
# Markdown / JSON
# --------------------------------------------------------------------------------------------


def _md_cell(s: Any) -> str:
    return printable(str(s)).replace("|", "\\|").replace("\n", " ")


def render_markdown(runs: list[dict[str, Any]], coll: str | None = None) -> str:
    lines = ["# containerctl report", ""]
    for run in runs:
        lines += [f"## {_md_cell(run_label(run))} — `{run['run_id']}`", ""]
        meta = [("status", run.get("status")), ("profile", run.get("profile")), ("platform", run.get("platform")),
                ("container", run.get("container")), ("started", run.get("started")), ("finished", run.get("finished")),
                ("source", run.get("source"))]
        lines += [f"- {k}: {_md_cell(v)}" for k, v in meta if v]
        lines.append("")
        recs = run.get("records") or {}
        if recs:
            lines += ["| stage | status | duration (s) | exit | message |", "| --- | --- | ---: | ---: | --- |"]
            for stage, rec in recs.items():
                lines.append(f"| {stage} | {rec.get('status')} | {fmt_num(rec.get('duration_s'), '.1f')} | "
                             f"{'—' if rec.get('exit_code') is None else rec['exit_code']} | {_md_cell(rec.get('message') or '')} |")
            lines.append("")
            vrows = variant_rows(recs)
            if vrows:
                lines += ["### variants", "", "| stage | variant | status | ranks | environment / options | "
                          "peak busbw (GB/s) | communicator | FlagCX CI step |",
                          "| --- | --- | --- | ---: | --- | ---: | --- | --- |"]
                lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in vrows] + [""]
        for s in perf_series(run, coll, all_sweeps=True):
            lines += [f"### {_md_cell(_series_title(run, s))}", "",
                      "| " + " | ".join(SERIES_HEADER) + " |", "| ---: | ---: | ---: | ---: |"]
            lines += ["| " + " | ".join(cells) + " |" for cells in series_cells(s)]
            lines.append("")
        checks = all_checks(run)
        if checks:
            lines += ["### checks", "", "| stage | check | result | detail |", "| --- | --- | --- | --- |"]
            for stage, c in checks:
                lines.append(f"| {stage} | {_md_cell(c.get('name', ''))} | {_verdict(c.get('ok'))} | {_md_cell(c.get('detail', ''))} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_json(runs: list[dict[str, Any]]) -> str:
    return json_text(json.dumps({"schema": "containerctl.report/1", "generated": store.now_iso(),
                                 "runs": runs}, indent=2, ensure_ascii=False)) + "\n"


# --------------------------------------------------------------------------------------------
# JUnit
# --------------------------------------------------------------------------------------------

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _x(s: Any) -> str:
    return xml_safe("" if s is None else str(s))   # textsafe: visible escapes, valid XML 1.0


def render_junit(runs: list[dict[str, Any]]) -> str:
    """One <testsuite> per run; a <testcase> per stage (failure for failed/timeout/interrupted,
    skipped for skipped) and per check (failure for ok=false, skipped for ok=null)."""
    import xml.etree.ElementTree as ET   # start-up: 2 ms, only for junit

    root = ET.Element("testsuites", name="containerctl")
    tot = {"tests": 0, "failures": 0, "skipped": 0}
    total_time = 0.0
    for run in runs:
        rid = run["run_id"]
        suite = ET.SubElement(root, "testsuite", name=_x(rid))
        props = ET.SubElement(suite, "properties")
        for k in ("label", "profile", "platform", "container", "status", "started", "finished", "source"):
            if run.get(k) is not None:
                ET.SubElement(props, "property", name=k, value=_x(run[k]))
        n = {"tests": 0, "failures": 0, "skipped": 0}
        t_suite = 0.0
        recs = run.get("records") or {}

        def case(classname: str, name: str, time_s: Any = None) -> ET.Element:
            n["tests"] += 1
            tc = ET.SubElement(suite, "testcase", classname=_x(classname), name=_x(name))
            tc.set("time", f"{float(time_s):.3f}" if isinstance(time_s, (int, float)) and math.isfinite(time_s) else "0")
            return tc

        for stage, rec in recs.items():
            st = rec.get("status")
            tc = case(f"containerctl.{rid}", stage, rec.get("duration_s"))
            t_suite += rec.get("duration_s") or 0.0
            if st in FAILED:
                n["failures"] += 1
                msg = rec.get("message") or st
                f = ET.SubElement(tc, "failure", message=_x(f"{st}: {msg}"), type=_x(st))
                f.text = _x(f"stage {stage} {st} (exit code {rec.get('exit_code')}): {msg}\nlog: {rec.get('log')}")
            elif st == "skipped":
                n["skipped"] += 1
                ET.SubElement(tc, "skipped", message=_x(rec.get("message") or "skipped"))
            if rec.get("log"):
                ET.SubElement(tc, "system-out").text = _x(f"log: {Path(run.get('dir') or '') / rec['log']}")
            for c in rec.get("checks") or []:
                tc = case(f"containerctl.{rid}.{stage}", c.get("name", "?"))
                if c.get("ok") is False:
                    n["failures"] += 1
                    ET.SubElement(tc, "failure", message=_x(c.get("detail") or "check failed"), type="check").text = _x(c.get("detail"))
                elif c.get("ok") is None:
                    n["skipped"] += 1
                    ET.SubElement(tc, "skipped", message=_x(c.get("detail") or "not decided"))
        if not recs:
            tc = case(f"containerctl.{rid}", "run")
            if run.get("status") in FAILED or run.get("status") in (None, "running"):
                n["failures"] += 1
                ET.SubElement(tc, "failure", message=_x(f"run {run.get('status') or 'incomplete'} with no stage records"), type="run")
        suite.set("tests", str(n["tests"]))
        suite.set("failures", str(n["failures"]))
        suite.set("errors", "0")
        suite.set("skipped", str(n["skipped"]))
        suite.set("time", f"{t_suite:.3f}")
        if run.get("started"):
            suite.set("timestamp", _x(run["started"]))
        for k in tot:
            tot[k] += n[k]
        total_time += t_suite
        if not len(props):
            suite.remove(props)
    for k, v in tot.items():
        root.set(k, str(v))
    root.set("errors", "0")
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------


def plot_series(runs: list[dict[str, Any]], coll: str | None = None) -> list[dict[str, Any]]:
    """One line per run and collective (primary sweep), labelled with the run's label (platform)."""
    series = []
    for run in runs:
        ss = perf_series(run, coll)
        for s in ss:
            series.append({**s, "run_id": run["run_id"], "run_label": run_label(run)})
    colls = {s["coll"] for s in series}
    for s in series:
        label = s["run_label"]
        same_run = [t for t in series if t["run_id"] == s["run_id"] and t["coll"] == s["coll"]]
        if len(colls) > 1:
            label += f" · {s['coll']}"
        if len(same_run) > 1:
            label += f" · {s['stage']}"
        s["label"] = label
    labels = [s["label"] for s in series]
    for s in series:  # two runs of the same platform: tell them apart by id
        if labels.count(s["label"]) > 1:
            s["label"] += f" ({s['run_id']})"
    return series


def busbw_figure(runs: list[dict[str, Any]], coll: str | None = None):
    """A matplotlib Figure (Agg canvas): busbw vs size, log2 x axis labelled 128K…4G."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg   # start-up: matplotlib, only when a plot is drawn
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    series = plot_series(runs, coll)
    pts = [[(r["size"], r["busbw"]) for r in s["rows"] if r.get("busbw") is not None and r["size"] > 0] for s in series]
    if not any(pts):
        what = f"{normalize_coll(coll)} " if coll else ""
        raise UsageError(f"nothing to plot: the runs hold no {what}perf results",
                         hint="pick runs with a perf stage (`containerctl results list`), or another --coll")
    fig = Figure(figsize=(10, 5.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    sizes: set[int] = set()
    for s, p in zip(series, pts):
        if not p:
            continue
        xs, ys = zip(*p)
        sizes.update(xs)
        ax.plot(xs, ys, marker="o", markersize=4, linewidth=2, label=s["label"])
    ax.set_xscale("log", base=2)
    ticks = sorted(sizes)
    if len(ticks) > 24:
        ticks = ticks[:: math.ceil(len(ticks) / 24)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([short_size(t) for t in ticks], rotation=45, ha="right")
    colls = sorted({s["coll"] for s in series})
    ax.set_title(f"{', '.join(colls)} bus bandwidth vs message size")
    ax.set_xlabel("message size (bytes, 1024-based)")
    ax.set_ylabel("bus bandwidth (GB/s)")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def plot_busbw(runs: list[dict[str, Any]], out: str | Path | BinaryIO, coll: str | None = None) -> int:
    """Write the busbw plot as PNG to a path or a binary file object; returns the number of lines."""
    fig = busbw_figure(runs, coll)
    if isinstance(out, (str, Path)):
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(p)
    else:
        fig.savefig(out, format="png")
    return len(fig.axes[0].get_lines())


def plot_png_bytes(runs: list[dict[str, Any]], coll: str | None = None) -> bytes:
    buf = io.BytesIO()
    plot_busbw(runs, buf, coll)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1b1f23;background:#fff}
h1{font-size:1.6em;margin:0 0 4px} h2{margin-top:32px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{margin:18px 0 6px;font-size:1.05em}
table{border-collapse:collapse;margin:6px 0 12px;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:3px 8px;vertical-align:top} th{background:#f3f5f7;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#116329;font-weight:600}.fail{color:#b3261e;font-weight:700}.skip{color:#8a6d00}
.meta td:first-child{font-weight:600;background:#f8f9fa}
img.plot{max-width:100%;border:1px solid #d0d7de}
pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:.85em}
.summary{font-size:1.05em;margin:8px 0}
"""


def _h(s: Any) -> str:
    return html.escape("" if s is None else str(s))


def _cls(ok: Any) -> str:
    return {True: "pass", False: "fail"}.get(ok, "skip")


def render_html(runs: list[dict[str, Any]], coll: str | None = None, *, plot: bool = True) -> str:
    """A single self-contained page: summary, the busbw plot (inline base64 PNG), per-run stage
    tables, perf tables, checks, and the repro information of every stage."""
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>containerctl report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>containerctl report</h1>",
             f"<p>generated {_h(store.now_iso())} · {len(runs)} run(s)"
             + (f" · collective {_h(normalize_coll(coll))}" if coll else "") + "</p>"]
    # summary
    parts.append('<table class="summary"><tr><th>run</th><th>label</th><th>status</th><th>stages</th><th>checks</th></tr>')
    for run in runs:
        checks = all_checks(run)
        npass = sum(1 for _, c in checks if c.get("ok") is True)
        nfail = sum(1 for _, c in checks if c.get("ok") is False)
        nskip = len(checks) - npass - nfail
        st = run.get("status") or "?"
        stages = ", ".join(f"{s}: {r.get('status')}" for s, r in (run.get("records") or {}).items())
        parts.append(f"<tr><td><a href=\"#{_h(run['run_id'])}\">{_h(run['run_id'])}</a></td><td>{_h(run_label(run))}</td>"
                     f"<td class=\"{_cls(True if st == 'passed' else (False if st in FAILED else None))}\">{_h(st)}</td>"
                     f"<td>{_h(stages)}</td>"
                     f"<td><span class=pass>{npass} pass</span> · <span class=fail>{nfail} fail</span> · "
                     f"<span class=skip>{nskip} skip</span></td></tr>")
    parts.append("</table>")
    if plot and any(perf_series(r, coll) for r in runs):
        try:
            png = plot_png_bytes(runs, coll)
        except ImportError:
            parts.append("<p class=skip>plot unavailable: matplotlib is not installed "
                         "(<code>pip install 'containerctl[plot]'</code>)</p>")
        else:
            parts.append("<h2>Bus bandwidth</h2>")
            parts.append(f'<img class="plot" id="busbw-plot" alt="bus bandwidth vs message size" '
                         f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    for run in runs:
        rid = run["run_id"]
        parts.append(f'<h2 id="{_h(rid)}">{_h(run_label(run))} — {_h(rid)}</h2>')
        parts.append('<table class="meta">')
        for k in ("status", "profile", "platform", "container", "label", "started", "finished", "source", "dir"):
            if run.get(k):
                parts.append(f"<tr><td>{k}</td><td>{_h(run[k])}</td></tr>")
        parts.append("</table>")
        for p in run.get("problems") or []:
            parts.append(f"<p class=skip>warning: {_h(p)}</p>")
        recs = run.get("records") or {}
        if recs:
            parts.append("<h3>stages</h3><table><tr><th>stage</th><th>status</th><th>duration (s)</th><th>exit</th>"
                         "<th>message</th><th>log</th></tr>")
            for stage, rec in recs.items():
                st = rec.get("status")
                parts.append(f"<tr><td>{_h(stage)}</td><td class=\"{_cls(True if st == 'passed' else (False if st in FAILED else None))}\">"
                             f"{_h(st)}</td><td class=n>{fmt_num(rec.get('duration_s'), '.1f')}</td>"
                             f"<td class=n>{'—' if rec.get('exit_code') is None else _h(rec['exit_code'])}</td>"
                             f"<td>{_h(rec.get('message'))}</td><td>{_h(rec.get('log'))}</td></tr>")
            parts.append("</table>")
        from .results.train import html_section as _train_html   # start-up: 3 ms (statistics), html only
        parts.append(_train_html(run, _h))
        for s in perf_series(run, coll, all_sweeps=True):
            parts.append(f"<h3>{_h(_series_title(run, s))}</h3><table><tr>"
                         + "".join(f"<th>{h}</th>" for h in SERIES_HEADER) + "</tr>")
            parts += ["<tr>" + "".join(f"<td class=n>{_h(c)}</td>" for c in cells) + "</tr>"
                      for cells in series_cells(s)]
            parts.append("</table>")
        checks = all_checks(run)
        if checks:
            parts.append("<h3>checks</h3><table><tr><th>stage</th><th>check</th><th>result</th><th>detail</th></tr>")
            for stage, c in checks:
                parts.append(f"<tr><td>{_h(stage)}</td><td>{_h(c.get('name'))}</td>"
                             f"<td class={_cls(c.get('ok'))}>{_verdict(c.get('ok'))}</td><td>{_h(c.get('detail'))}</td></tr>")
            parts.append("</table>")
        repro = {s: r.get("repro") for s, r in recs.items() if r.get("repro")}
        if repro:
            parts.append("<h3>reproduce</h3>")
            for stage, rp in repro.items():
                parts.append(f"<p><b>{_h(stage)}</b></p><pre>{_h(json.dumps(rp, indent=2, ensure_ascii=False))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------


def _primary_rows(run: dict[str, Any], coll: str) -> dict[int, dict[str, Any]]:
    ss = perf_series(run, coll)
    if not ss:
        raise UsageError(f"run {run['run_id']} has no {coll} perf results",
                         hint="`containerctl results show RUN` lists what a run holds; pick another --coll")
    return {r["size"]: r for r in ss[0]["rows"]}


def compare(run_a: dict[str, Any], run_b: dict[str, Any], coll: str = "allreduce") -> dict[str, Any]:
    """busbw of B relative to A per size: ratio = B / A (None where either is missing or zero)."""
    c = normalize_coll(coll)
    a, b = _primary_rows(run_a, c), _primary_rows(run_b, c)
    rows = []
    logs = []
    for size in sorted(set(a) | set(b)):
        va = (a.get(size) or {}).get("busbw")
        vb = (b.get(size) or {}).get("busbw")
        ratio = vb / va if va and vb is not None else None
        if ratio and ratio > 0:
            logs.append(math.log(ratio))
        delta = vb - va if va is not None and vb is not None else None
        rows.append({"size": size, "busbw_a": va, "busbw_b": vb, "delta": delta, "ratio": ratio})
    return {"coll": c, "a": {"run_id": run_a["run_id"], "label": run_label(run_a)},
            "b": {"run_id": run_b["run_id"], "label": run_label(run_b)}, "rows": rows,
            "geomean_ratio": math.exp(sum(logs) / len(logs)) if logs else None}


def render_compare(cmp: dict[str, Any], fmt: str = "table", width: int = 140) -> str:
    a, b = cmp["a"], cmp["b"]
    if fmt == "json":
        return json_text(json.dumps(cmp, indent=2, ensure_ascii=False)) + "\n"
    if fmt == "md":
        lines = [f"# {cmp['coll']}: {_md_cell(b['label'])} (B) vs {_md_cell(a['label'])} (A)", "",
                 f"A = `{a['run_id']}`, B = `{b['run_id']}`", "",
                 "| size | A busbw (GB/s) | B busbw (GB/s) | B/A | delta (GB/s) |", "| ---: | ---: | ---: | ---: | ---: |"]
        for r in cmp["rows"]:
            lines.append(f"| {human_size(r['size'])} | {fmt_bw(r['busbw_a'])} | {fmt_bw(r['busbw_b'])} | {fmt_num(r['ratio'], '.3f')} | {_delta(r.get('delta'))} |")
        lines += ["", f"geometric mean B/A: {fmt_num(cmp['geomean_ratio'], '.3f')}"]
        return printable("\n".join(lines) + "\n")
    lines = [f"{cmp['coll']} busbw  A = {a['label']} ({a['run_id']})  B = {b['label']} ({b['run_id']})"]
    lines += columns(["size", "A busbw (GB/s)", "B busbw (GB/s)", "B/A", "delta (GB/s)"],
                     [[human_size(r["size"]), fmt_bw(r["busbw_a"]), fmt_bw(r["busbw_b"]), fmt_num(r["ratio"], ".3f"),
                       _delta(r.get("delta"))] for r in cmp["rows"]], "rrrrr")
    lines.append(f"geometric mean B/A: {fmt_num(cmp['geomean_ratio'], '.3f')}")
    return printable("\n".join(lines) + "\n")


def render(runs: list[dict[str, Any]], fmt: str, coll: str | None = None) -> str:
    # text from stages, profiles and labels is made printable where it leaves as text (the
    # HTML escapes it, JSON keeps the data and escapes it as JSON, JUnit through _x)
    if fmt == "table":
        return printable(render_plain(runs, coll))
    if fmt == "md":
        return printable(render_markdown(runs, coll))
    if fmt == "json":
        return render_json(runs)
    if fmt == "junit":
        return render_junit(runs)
    if fmt == "html":
        return render_html(runs, coll)
    raise UsageError(f"unknown report format {fmt!r}", hint="one of: " + ", ".join(FORMATS))
