"""The live view on a terminal (rich Live): one line per stage with a spinner, its elapsed time
and its last meaningful line; under it what the running stage is doing — deps as a compact
found/installed table, perf as the runbook's table growing row by row per collective with a
progress bar over the sizes, any other stage as its last few lines. Everything is fitted to the
terminal's height and width; nothing is wrapped. When the run ends the live region is replaced
by the summary (stage verdicts, tables, checks, failures, results path)."""
from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..report import load_runs, rich_table, run_sections
from ..results import store
from ..sizes import human_size
from ..tabular import fmt_bw
from ..textsafe import printable
from .failure import failure_blocks
from .model import RunModel, StageState
from .plain import View, fmt_elapsed

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ICON = {"pending": ("·", "dim"), "passed": ("✓", "green"), "failed": ("✗", "bold red"),
        "timeout": ("✗", "bold red"), "interrupted": ("✗", "yellow"), "skipped": ("–", "dim"),
        "done": ("•", "")}


def _icon(st: StageState, now: float) -> tuple[str, str]:
    if st.state == "running":
        return SPINNER[int(now * 10) % len(SPINNER)], "cyan"
    return ICON.get(st.state, ("?", ""))


class LiveView(View):
    def __init__(self, model: RunModel, title: str = "", console=None):
        super().__init__(model)
        self.console = console or Console(highlight=False)
        self.title = title
        self.live = None

    def __enter__(self):
        if self.live is not None:      # already showing (run: up, then the stages)
            return self
        self.live = Live(console=self.console, refresh_per_second=8, transient=True,
                         redirect_stdout=False, redirect_stderr=False, get_renderable=self.render)
        self.live.start()
        return self

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def note(self, text: str) -> None:
        text = printable(text)
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False)
        else:
            self.console.print(text, markup=False, highlight=False)

    def on_model(self, kind: str, stage: str, **d: Any) -> None:
        if kind == "note":
            self.note(d["text"])

    # ------------------------------------------------------------------ rendering
    def stage_grid(self, now: float, final: bool = False):
        m = self.model
        rows = []
        if m.up.state != "pending" and not final:
            rows.append(m.up)
        rows += list(m.stages.values())
        # fixed widths: the last column is cropped to what is left, so rich never squeezes
        # the icon or the stage name to fit a narrow terminal
        namew = max([6] + [len(st.name) for st in rows])
        textw = max(10, self.console.size.width - (1 + namew + 7 + 3))
        g = Table.grid(padding=(0, 1))
        g.add_column(width=1, no_wrap=True)
        g.add_column(width=namew, no_wrap=True)
        g.add_column(justify="right", no_wrap=True, width=7)
        g.add_column(no_wrap=True, overflow="crop", width=textw)
        for st in rows:
            icon, style = _icon(st, now)
            el = st.elapsed(now)
            if st.state == "skipped":
                text = st.message or "skipped"
            elif st.state in ("failed", "timeout", "interrupted") or (final and st.message):
                text = st.message or st.last
            else:
                text = st.last
            g.add_row(Text(icon, style=style),
                      Text(st.name, style="bold" if st.state == "running" else ""),
                      Text(fmt_elapsed(el) if el is not None and st.state != "skipped" else "",
                           style="cyan" if st.state == "running" else "dim"),
                      Text(text or "", style="dim" if st.state in ("skipped", "pending") else ""))
        return g

    def render(self):
        m = self.model
        now = time.monotonic()
        h = self.console.size.height
        with m.lock:
            parts: list[Any] = []
            head = Text(self.title, style="bold")
            head.append(f"  {fmt_elapsed(now - m.started)}", style="dim")
            parts.append(head)
            grid = self.stage_grid(now)
            parts.append(grid)
            used = 1 + grid.row_count + 2          # title, stages, blank, footer
            cur = m.running()
            detail = self.detail(cur, max(3, h - used - 1)) if cur else []
            if detail:
                parts.append(Text(""))
                parts += detail
            if cur is not None and cur.log:
                parts.append(Text(f"log: {cur.log}", style="dim", no_wrap=True, overflow="crop"))
        return Group(*parts)

    def detail(self, st: StageState, room: int) -> list[Any]:
        if st.name == "perf" or (self.model.colls and st.name != "deps"):
            return self.perf_detail(room)
        if st.name == "deps" and self.model.deps:
            return self.deps_detail(room)
        return [Text(f"  {ln}", style="dim", no_wrap=True, overflow="crop")
                for ln in list(st.tail)[-min(room, 6):]]

    def deps_detail(self, room: int) -> list[Any]:
        t = Table.grid(padding=(0, 2))
        t.add_column(no_wrap=True)
        t.add_column(no_wrap=True)
        t.add_column(no_wrap=True, overflow="crop", ratio=1)
        colour = {"found": "green", "installed": "cyan", "missing": "bold red", "absent": "yellow"}
        for name, status, detail in self.model.deps[-room:]:
            t.add_row(Text(f"  {name}"), Text(status, style=colour.get(status, "")), Text(detail, style="dim"))
        return [t]

    def perf_detail(self, room: int) -> list[Any]:
        m = self.model
        out: list[Any] = []
        colls = list(m.colls.values())
        todo = [c for c in m.planned_colls if c not in m.colls]
        for c in colls:
            if c is colls[-1] and not c.done:
                break
            if c.missing:
                out.append(Text(f"  ✗ {c.name}: no test binary {c.missing}", style="red"))
                continue
            peak = max(c.rows, key=lambda r: r.busbw) if c.rows else None
            ok = c.rc in (0, None) and c.rows
            line = Text(f"  {'✓' if ok else '✗'} ", style="green" if ok else "red")
            line.append(f"{c.name}  {len(c.rows)} sizes")
            if peak:
                line.append(f"  peak busbw {fmt_bw(peak.busbw)} GB/s at {human_size(peak.size)}", style="dim")
            if c.rc not in (0, None):
                line.append(f"  exit code {c.rc}", style="red")
            out.append(line)
        cur = colls[-1] if colls and not colls[-1].done else None
        if cur is not None:
            total = max(len(m.sizes), len(cur.rows)) or 1
            bar = Table.grid(padding=(0, 1))
            bar.add_column(no_wrap=True)
            bar.add_column(width=28)
            bar.add_column(no_wrap=True)
            title = " · ".join(x for x in (cur.name, f"{cur.nranks} ranks" if cur.nranks else "", cur.sweep) if x)
            bar.add_row(Text(f"  {title}", style="bold"), ProgressBar(total=total, completed=len(cur.rows), width=28),
                        Text(f"{len(cur.rows)}/{total} sizes"))
            out.append(bar)
            t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1))
            for col in ("size", "time (s)", "algbw (GB/s)", "busbw (GB/s)"):
                t.add_column(col, justify="right", no_wrap=True)
            fit = max(1, room - len(out) - 3)
            rows = cur.rows[-fit:]
            for r in rows:
                t.add_row(human_size(r.size), f"{r.time_s:.6f}", fmt_bw(r.algbw), fmt_bw(r.busbw))
            out.append(Padding(t, (0, 0, 0, 2)))
        if todo:
            out.append(Text(f"  next: {' '.join(todo)}", style="dim"))
        return out

    # ------------------------------------------------------------------ the end
    def summary(self, run_id: str, outcomes: list[Any]) -> None:
        con = self.console
        con.print(Text(self.title, style="bold"))
        con.print(self.stage_grid(time.monotonic(), final=True))
        try:
            run = load_runs([run_id])[0]
        except Exception:
            run = None
        if run is not None:
            for sec in run_sections(run, stages=False):
                con.print(rich_table(sec))
            for title, lines in failure_blocks(run):
                con.print()
                con.print(Text(title, style="bold red"))
                for ln in lines:
                    con.print(Text(f"  {ln}"), soft_wrap=True)
        con.print(Text(f"results: {store.run_dir(run_id)}", style="bold"), soft_wrap=True)
        con.print(Text(f"  containerctl report {run_id}", style="dim"), soft_wrap=True)
