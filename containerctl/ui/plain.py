"""Plain, line-oriented output for pipes, CI logs, NO_COLOR and TERM=dumb: every line stamped
with the time and the stage, protocol lines and bash traces left to the stage log, perf rows as
aligned columns as they arrive, and at the end the run's tables as aligned columns (never cut
to a width). QuietView (-q) prints one verdict per stage and where the results are;
VerboseView (-v) streams the raw output as it comes."""
from __future__ import annotations

import sys
import time
from typing import Any

from ..results import store
from ..sizes import human_size
from ..tabular import columns, fmt_bw
from ..textsafe import SafeStream, printable
from .model import RunModel

STATUS_WORD = {"passed": "passed", "failed": "FAILED", "timeout": "TIMED OUT",
               "interrupted": "interrupted", "skipped": "skipped", "done": "ended"}


def fmt_elapsed(s: float | None) -> str:
    if s is None:
        return ""
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def exit_code(outcomes: list[Any]) -> int:
    bad = [o for o in outcomes if o.status not in ("passed", "skipped")]
    return 0 if not bad else (130 if bad[0].status == "interrupted" else 1)


class View:
    """The runner's callbacks (echo, status, on_event) and lifecycle.up's (up_line,
    up_status), fed into a RunModel; subclasses decide what reaches the screen."""

    def __init__(self, model: RunModel, out=None):
        self.model = model
        # everything a view prints passes printable(): no stage, profile or label text can
        # act on the terminal or a CI log viewer (the stage log on disk stays raw)
        self.out = SafeStream(out or sys.stdout)
        model.listener = self.on_model

    # callbacks ---------------------------------------------------------------
    def echo(self, stage: str, line: str) -> None:
        self.model.echo(stage, line)

    def status(self, msg: str) -> None:
        self.model.status(msg)

    def on_event(self, kind: str, stage: str, **data: Any) -> None:
        self.model.on_event(kind, stage, **data)

    def up_line(self, text: str) -> None:
        self.model.up_line(text)

    def up_status(self, msg: str) -> None:
        self.model.up_status(msg)

    def up_done(self, text: str) -> None:
        self.model.up_done(text)

    def on_model(self, kind: str, stage: str, **data: Any) -> None:
        pass

    # lifecycle -------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        pass

    def note(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def finish(self, run_id: str, outcomes: list[Any]) -> int:
        self.model.finish(outcomes)
        self.close()
        self.summary(run_id, outcomes)
        return exit_code(outcomes)

    def summary(self, run_id: str, outcomes: list[Any]) -> None:
        # start-up: report (html, base64) and failure (logerrors' patterns) are 3 ms each that
        # an exec-stage -q whose stages pass never uses
        from ..report import load_runs, render_plain
        from .failure import failure_blocks
        run = load_runs([run_id])[0]
        self.out.write("\n" + render_plain([run]))
        for title, lines in failure_blocks(run):
            self.out.write(f"\n{title}\n" + "".join(f"  {ln}\n" for ln in lines))
        self.out.write(f"\nresults: {store.run_dir(run_id)}   (containerctl report {run_id})\n")
        self.out.flush()


class PlainView(View):
    """`HH:MM:SS stage   text` lines."""

    def __init__(self, model: RunModel, out=None):
        super().__init__(model, out)
        self._titled: set[tuple[str, str]] = set()

    def _say(self, stage: str, text: str) -> None:
        w = max([6] + [len(n) for n in self.model.stages])
        self.out.write(f"{time.strftime('%H:%M:%S')} {stage:<{w}}  {text}\n")
        self.out.flush()

    def up_done(self, text: str) -> None:
        self.model.up_done(text)

    def on_model(self, kind: str, stage: str, **d: Any) -> None:
        if kind in ("line", "up-line", "up-done"):
            self._say(stage, d["text"].rstrip())
        elif kind == "note":
            self._say("note", d["text"].rstrip())
        elif kind == "stage-start":
            extra = []
            if d.get("timeout"):
                extra.append(f"timeout {d['timeout']}s")
            if d.get("log"):
                extra.append(f"log {d['log']}")
            self._say(stage, "started" + (f" ({', '.join(extra)})" if extra else ""))
        elif kind == "stage-end":
            st = d.get("status") or "?"
            took = fmt_elapsed(d.get("duration"))
            msg = d.get("message") or ""
            self._say(stage, f"{STATUS_WORD.get(st, st)}" + (f" in {took}" if took and st != "skipped" else "")
                      + (f": {msg}" if msg else ""))
        elif kind == "dep":
            self._say(stage, f"{d['name']:<8} {d['status']:<10} {d['detail']}".rstrip())
        elif kind == "coll-start" and d.get("missing"):
            self._say(stage, f"{d['coll']}: no test binary {d['missing']}")
        elif kind == "coll-end":
            if d.get("rc") not in (0, None) or not d.get("rows"):
                self._say(stage, f"{d['coll']}: {d.get('rows', 0)} sizes, exit code {d.get('rc')}")
        elif kind == "perf-row":
            r = d["row"]
            key = (d["coll"], d.get("sweep") or "")
            if d["index"] == 1 or key not in self._titled:
                self._titled.add(key)
                title = " · ".join(x for x in (d["coll"], f"{d['nranks']} ranks" if d.get("nranks") else "",
                                               d.get("sweep") or "") if x)
                self._say(stage, title)
                self._say(stage, f"{'size':>9}  {'time (s)':>10}  {'algbw (GB/s)':>12}  {'busbw (GB/s)':>12}  progress")
            self._say(stage, f"{human_size(r.size):>9}  {r.time_s:>10.6f}  {fmt_bw(r.algbw):>12}  "
                             f"{fmt_bw(r.busbw):>12}  {d['index']}/{d['total']}")


class QuietView(View):
    """-q: nothing while it runs (warnings go to stderr); then one verdict line per stage and
    the results path."""

    def on_model(self, kind: str, stage: str, **d: Any) -> None:
        if kind == "note":
            sys.stderr.write(printable(d["text"].rstrip()) + "\n")

    def summary(self, run_id: str, outcomes: list[Any]) -> None:
        rows = []
        for oc in outcomes:
            rec = oc.record or {}
            took = fmt_elapsed(rec.get("duration_s")) if oc.status != "skipped" else ""
            rows.append([oc.name, oc.status, took, oc.message])
        for line in columns(["stage", "status", "time", "message"], rows, "llrl")[1:]:
            self.out.write(line + "\n")
        blocks: list = []
        if any(oc.status in ("failed", "timeout", "interrupted") for oc in outcomes):
            # only a failed stage has a block (failure_blocks): a passed run is not read back
            from ..report import load_runs   # start-up: as in View.summary
            from .failure import failure_blocks
            try:
                run = load_runs([run_id])[0]
            except Exception:
                run = None
            blocks = failure_blocks(run) if run else []
        for title, lines in blocks:
            first = next((ln for ln in lines if ln.startswith("first error")), None)
            log = next((ln for ln in lines if ln.startswith("log:")), None)
            for ln in (first, log):
                if ln:
                    self.out.write(f"  {ln}\n")
        self.out.write(f"results: {store.run_dir(run_id)}\n")
        self.out.flush()


class VerboseView(View):
    """-v: the raw stage output as it comes (`stage | line`), protocol and traces included."""

    def echo(self, stage: str, line: str) -> None:
        self.model.echo(stage, line)
        self.out.write(f"{stage:>6} | {line}\n")
        self.out.flush()

    def on_model(self, kind: str, stage: str, **d: Any) -> None:
        if kind in ("up-line", "up-done", "note"):
            self.out.write(f"{stage or 'note':>6} | {d['text']}\n")
            self.out.flush()
