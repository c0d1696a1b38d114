"""Pick the view for a command and wire it to the pipeline.

    view = make_view(quiet, verbose, title)
    with view:
        res = lifecycle.up(..., on_line=view.up_line, on_status=view.up_status)
        view.up_done(f"{res.name}: created")
        pipe = Pipeline(..., **pipeline_callbacks(Pipeline, view))
        plan(view, pipe, stages)
        run_id, outcomes = pipe.run(stages)
    code = view.finish(run_id, outcomes)
"""
from __future__ import annotations

import inspect
import shlex
import sys
from typing import Any

from .model import RunModel, expected_sizes
from .mode import interactive
from .plain import PlainView, QuietView, VerboseView


def make_view(quiet: bool = False, verbose: bool = False, title: str = "", out=None):
    model = RunModel()
    if quiet:
        return QuietView(model, out)
    if verbose:
        return VerboseView(model, out)
    if interactive(out or sys.stdout):
        from .live import LiveView     # start-up: rich (~40 ms), only for a terminal
        return LiveView(model, title=title)
    return PlainView(model, out)


def pipeline_callbacks(pipeline_cls: Any, view: Any) -> dict[str, Any]:
    """The keyword arguments for Pipeline(...): echo and status always; the event callback when
    the runner takes one (`events=`, called as events(kind, stage, **data))."""
    kw: dict[str, Any] = {"echo": view.echo, "status": view.status}
    try:
        params = inspect.signature(pipeline_cls.__init__).parameters
    except (TypeError, ValueError):
        params = {}
    for name in ("events", "on_event"):
        if name in params:
            kw[name] = view.on_event
            break
    return kw


def plan(view: Any, pipe: Any, stages: list[Any]) -> None:
    """Tell the view which stages will show, which do not apply, and what perf will sweep."""
    m = view.model
    with m.lock:
        for sd in stages:
            m.stage(sd.name)
        for sd in stages:
            try:
                na = pipe.not_applicable(sd)
            except Exception:
                na = None
            if na:
                m.mark_not_applicable(sd.name, f"not applicable: {na}")
        ctx = getattr(pipe, "ctx", {}) or {}
        perf = ctx.get("perf") or {}
        m.sizes = expected_sizes(perf.get("begin", "128K"), perf.get("end", "4G"),
                                 perf.get("factor", 2))
        try:
            m.planned_colls = shlex.split(ctx.get("colls") or "")
        except ValueError:
            m.planned_colls = []
