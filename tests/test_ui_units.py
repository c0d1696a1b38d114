"""What a person sees, without Docker: the protocol filter, aligned tables, the run model fed
with a real stage output, the plain/quiet views, the fast command parser, and that the fast
paths keep the CLI framework and rich out."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from containerctl.ui import filters, tables
from containerctl.ui.model import RunModel, expected_sizes
from containerctl.ui.plain import PlainView, QuietView, fmt_elapsed
from containerctl.results.model import Status

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# a perf stage's output as the runner streams it (the shape the cpu-selftest run prints)
PERF_OUT = """perf layout: host_api (test/perf/host_api)
+ make -C test/perf/host_api USE_CPU_SELFTEST=1
Compiling /workspace/FlagCX/build/bin/perf_allreduce
=== containerctl coll=allreduce nranks=2 ===
+ /usr/local/mpi/bin/mpirun -np 2 --allow-run-as-root build/bin/perf_allreduce -b 1K -e 4K -f 2
#
# datatype: float, op: sum
#
sendbuff = 0.000000 1.000000 2.000000
Comm size: 1024 bytes; Elapsed time: 0.000001 sec; Algo bandwidth: 1.345421 GB/s; Bus bandwidth: 1.345421 GB/s
recvbuff = 0.000000 2.000000 4.000000
sendbuff = 0.000000 1.000000 2.000000
Comm size: 2048 bytes; Elapsed time: 0.000002 sec; Algo bandwidth: 1.224514 GB/s; Bus bandwidth: 1.224514 GB/s
recvbuff = 0.000000 2.000000 4.000000
Comm size: 4096 bytes; Elapsed time: 0.000001 sec; Algo bandwidth: 2.787912 GB/s; Bus bandwidth: 2.787912 GB/s
=== containerctl end coll=allreduce rc=0 ===
=== containerctl coll=gather missing=build/bin/perf_gather ===
"""
DEPS_OUT = """DEP make status=found path=/usr/bin/make
DEP gtest status=installed include=/usr/include
installing: libgtest-dev
CCTL_MPI_HOME=/usr
FLAGCX_PROBE layout=host_api
deps: environment written to /workspace/.containerctl
"""


@pytest.mark.parametrize("line", ["DEP make status=found path=/usr/bin/make",
                                  "=== containerctl coll=allreduce nranks=2 ===",
                                  "=== containerctl end coll=allreduce rc=0 ===",
                                  "CCTL_MPI_HOME=/usr", "FLAGCX_PROBE layout=v0.12",
                                  "FLAGCX_COMMIT=0c72129", "+ make -j2", "++ nproc", "+++ id -u"])
def test_protocol_lines_are_recognised(line):
    assert filters.is_protocol_line(line) and not filters.is_shown(line)


@pytest.mark.parametrize("line", ["Compiling coll.c", "make: *** [Makefile:3: all] Error 2",
                                  "DEPS are fine", "== containerctl", "+1 more", "c++ -O2 x.cc",
                                  "Comm size: 1024 bytes; Elapsed time: 0.1 sec; Algo bandwidth: 1 GB/s; Bus bandwidth: 1 GB/s"])
def test_people_lines_are_not_protocol(line):
    assert not filters.is_protocol_line(line) and filters.is_shown(line)


def test_buffer_dumps_and_sweep_headers_are_not_shown():
    for line in ("sendbuff = 0.0 1.0", "[1,0]<stdout>:recvbuff = 0.0 2.0", "#", "# datatype: float, op: sum",
                 "rank 1 sendbuff = 0.000000 2.000000", "rank 0 all-reduce correctness = 1"):
        assert not filters.is_shown(line), line
    assert filters.is_shown("rank 0 all-reduce correctness = 0")      # a wrong verdict is shown


def test_markers_parse():
    assert filters.parse_dep("DEP mpi status=found home=/usr flavour=openmpi") == ("mpi", "found", "home=/usr flavour=openmpi")
    assert filters.parse_coll_marker("=== containerctl coll=allreduce nranks=2 ===") == ("start", "allreduce", {"nranks": "2"})
    assert filters.parse_coll_marker("=== containerctl end coll=reduce rc=3 ===") == ("end", "reduce", {"rc": "3"})
    assert filters.parse_coll_marker("=== something else ===") is None


def test_columns_align_and_never_truncate():
    long = "x" * 300
    lines = tables.columns(["name", "n", "detail"], [["a", 1, long], ["bbbbbb", 22, "short"]], "lrl")
    assert lines[0].split() == ["name", "n", "detail"]
    # every row's columns start where the header's do
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    for ln in lines[1:]:
        cells = [m.start() for m in re.finditer(r"\S+", ln)]
        assert cells[0] == starts[0] and cells[-1] == starts[2]
    assert long in lines[1] and "…" not in "".join(lines)
    assert lines[2].split()[1] == "22" and lines[1].index("1 ") == lines[2].index("22") + 1  # right-aligned


def test_expected_sizes_follow_begin_end_factor():
    assert expected_sizes("1K", "1M", 2) == [1024 << i for i in range(11)]
    assert expected_sizes("128K", "4G", 2)[-1] == 4 << 30 and len(expected_sizes("128K", "4G", 2)) == 16
    assert expected_sizes("1M", "1G", 4) == [1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, 1 << 30]
    assert expected_sizes("bad", "1M", 2) == []


def _feed(view, stage, text):
    for ln in text.splitlines():
        view.echo(stage, ln)


def test_model_builds_perf_rows_per_collective_and_deps_table():
    seen = []
    m = RunModel(["deps", "perf"], sizes=expected_sizes("1K", "4K", 2), colls=["allreduce", "gather"],
                 listener=lambda kind, stage, **d: seen.append((kind, stage, d)))
    m.status("deps: running (log /r/logs/deps.log)")
    for ln in DEPS_OUT.splitlines():
        m.echo("deps", ln)
    assert m.deps == [("make", "found", "path=/usr/bin/make"), ("gtest", "installed", "include=/usr/include")]
    assert m.stages["deps"].last == "deps: environment written to /workspace/.containerctl"
    m.status("perf: running (log /r/logs/perf.log)")
    assert m.stages["deps"].state == "done"          # ended; no record to say how (finish() settles it)
    for ln in PERF_OUT.splitlines():
        m.echo("perf", ln)
    ar = m.colls["allreduce"]
    assert [r.size for r in ar.rows] == [1024, 2048, 4096] and ar.done and ar.rc == 0 and ar.sweep == "float/sum"
    assert ar.rows[2].busbw == pytest.approx(2.787912)
    assert m.colls["gather"].missing == "build/bin/perf_gather"
    rows = [d for k, _, d in seen if k == "perf-row"]
    assert [(d["index"], d["total"]) for d in rows] == [(1, 3), (2, 3), (3, 3)]
    shown = [d["text"] for k, _, d in seen if k == "line"]
    assert not any(filters.is_protocol_line(t) or "buff =" in t for t in shown)
    assert "Compiling /workspace/FlagCX/build/bin/perf_allreduce" in shown


def test_an_ended_stage_takes_the_verdict_of_its_record(tmp_path):
    """The runner may go on after a failure (perf does not need unittest): the view reads the
    record it wrote rather than assuming a pass."""
    import json
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "unittest.json").write_text(json.dumps({"status": "failed", "message": "2 tests failed", "duration_s": 4.5}))
    m = RunModel(["build", "unittest", "perf"])
    m.status(f"unittest: running (log {run / 'logs' / 'unittest.log'})")
    assert m.stages["build"].state == "skipped"        # never started: already passed
    m.status(f"perf: running (log {run / 'logs' / 'perf.log'})")
    assert m.stages["unittest"].state == "failed" and m.stages["unittest"].message == "2 tests failed"
    assert m.stages["unittest"].elapsed() == 4.5 and m.stages["perf"].state == "running"


def test_stage_never_started_before_a_later_one_counts_as_skipped_and_outcomes_settle():
    m = RunModel(["deps", "build", "perf"])
    m.status("perf: running (log x)")
    assert m.stages["deps"].state == m.stages["build"].state == "skipped"
    m.finish([SimpleNamespace(name="perf", status="failed", message="exit code 2: boom", record={"duration_s": 3.0})])
    assert m.stages["perf"].state == "failed" and m.stages["perf"].message == "exit code 2: boom"
    assert m.stages["perf"].elapsed() == 3.0


def test_events_from_the_runner_take_precedence():
    m = RunModel(["deps", "build"])
    m.on_event("stage-start", "deps", timeout=1200, log="/x/deps.log")
    assert m.stages["deps"].timeout == 1200 and m.stages["deps"].state == "running"
    m.on_event("stage-end", "deps", status="failed", message="exit 1", duration=2.5)
    assert m.stages["deps"].state == "failed" and m.stages["deps"].elapsed() == 2.5
    m.status("build: running (log y)")          # with events, no inference about deps
    assert m.stages["deps"].state == "failed"


def test_plain_view_lines_are_timestamped_aligned_and_free_of_protocol():
    out = io.StringIO()
    v = PlainView(RunModel(["deps", "perf"], sizes=expected_sizes("1K", "4K", 2)), out)
    v.status("deps: running (log /r/logs/deps.log)")
    _feed(v, "deps", DEPS_OUT)
    v.status("perf: running (log /r/logs/perf.log)")
    _feed(v, "perf", PERF_OUT)
    text = out.getvalue()
    lines = text.splitlines()
    assert all(re.match(r"^\d\d:\d\d:\d\d (deps|perf)\s", ln) for ln in lines), text
    assert not ANSI.search(text) and "…" not in text
    for marker in ("DEP ", "=== containerctl", "CCTL_", "FLAGCX_PROBE", "+ make", "sendbuff", "recvbuff"):
        assert marker not in text, marker
    assert re.search(r"deps\s+make\s+found\s+path=/usr/bin/make", text)
    rows = [ln for ln in lines if re.search(r"KiB\s", ln)]
    assert len(rows) == 3 and rows[-1].rstrip().endswith("3/3")
    # perf rows are columns: the busbw figures end at the same position
    ends = {ln.index(f) + len(f) for ln, f in zip(rows, ("1.35", "1.22", "2.79"))}
    assert len(ends) == 1
    assert "gather: no test binary build/bin/perf_gather" in text
    assert "deps    ended in" in text


def test_quiet_summary_is_one_verdict_per_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTAINERCTL_HOME", str(tmp_path))
    from containerctl.results import store
    meta = store.start_run("cpu-selftest", stages=["deps", "perf"])
    rid = meta["run_id"]
    log = store.log_path(rid, "perf")
    log.write_text("Compiling x\nmake: *** [Makefile:9: perf_x] Error 1\nlast words\n")
    for st, status, msg in (("deps", "passed", "6 checks passed"), ("perf", "failed", "exit code 2: last words")):
        store.write_stage(rid, store.stage_record(rid, st, status=Status(status), started=store.now_iso(), exit_code=0 if status == "passed" else 2,
                                                  message=msg, log=f"logs/{st}.log"))
    outcomes = [SimpleNamespace(name="deps", status="passed", message="6 checks passed", record={"duration_s": 1.0}),
                SimpleNamespace(name="perf", status="failed", message="exit code 2: last words", record={"duration_s": 2.0})]
    out = io.StringIO()
    code = QuietView(RunModel(), out).finish(rid, outcomes)
    lines = out.getvalue().splitlines()
    assert code == 1
    assert lines[0].split()[:3] == ["deps", "passed", "1.0s"] and lines[1].split()[:3] == ["perf", "failed", "2.0s"]
    first = [ln for ln in lines if ln.strip().startswith("first error")]
    assert len(first) == 1 and first[0].endswith("make: *** [Makefile:9: perf_x] Error 1")
    assert lines[-1] == f"results: {store.run_dir(rid)}"
    assert len(lines) <= 2 + 2 + 1
    assert any(ln.strip() == f"log: {store.run_dir(rid) / 'logs' / 'perf.log'}" for ln in lines)


def test_plain_summary_shows_a_failure_in_one_screen(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTAINERCTL_HOME", str(tmp_path))
    from containerctl.results import store
    from containerctl.ui.failure import failure_blocks
    rid = store.start_run("p", stages=["build"])["run_id"]
    body = ["Compiling a.c"] * 40 + ["src/a.c:3:10: fatal error: nccl.h: No such file or directory", "compilation terminated.",
                                     "make: *** [Makefile:12: build/obj/a.o] Error 1", "=== containerctl end coll=x rc=2 ==="]
    store.log_path(rid, "build").write_text("\n".join(body) + "\n")
    store.write_stage(rid, store.stage_record(rid, "build", status=Status.FAILED, started=store.now_iso(), exit_code=2,
                                              message="exit code 2: make: *** Error 1", log="logs/build.log"))
    run = store.load_run(rid)
    (title, lines), = failure_blocks(run)
    assert title.startswith("build failed: exit code 2")
    text = "\n".join(lines)
    assert "nccl.h: No such file or directory" in text           # the first real error
    assert "make: *** [Makefile:12: build/obj/a.o] Error 1" in text  # the last lines
    assert str(store.run_dir(rid) / "logs" / "build.log") in text
    assert len(lines) <= 16                                       # one screen
    assert not any(filters.is_protocol_line(ln.strip()) for ln in lines)


def test_fmt_elapsed():
    assert fmt_elapsed(3.14) == "3.1s" and fmt_elapsed(65) == "1m05s" and fmt_elapsed(3700) == "1h01m"


def test_fast_command_parser():
    from containerctl.cli.fast import parse
    from containerctl.cli.options import EXEC_STAGE, STATUS, defaults
    assert parse(["exec-stage", "perf", "--name", "c", "-q", "--coll", "a", "--coll=b", "--set", "x=1", "--timeout", "9"]) == (
        "exec-stage", dict(defaults(EXEC_STAGE), stage="perf", name="c", quiet=True, coll=["a", "b"], set_=["x=1"],
                           timeout=9))
    assert parse(["status", "--json", "-p", "cpu-selftest"]) == ("status", {"json_out": True, "profile": "cpu-selftest",
                                                                          "name": None})
    for argv in (["exec-stage", "--help"], ["exec-stage"], ["exec-stage", "a", "b"], ["exec-stage", "perf", "--timeout", "0"],
                 ["exec-stage", "perf", "--timeout", "x"], ["exec-stage", "perf", "--bogus"], ["status", "--name"],
                 ["status", "extra"], ["run"], [], ["exec-stage", "perf", "--name", "a", "--name", "b"]):
        assert parse(argv) is None, argv


def test_exec_stage_and_status_paths_load_no_cli_framework_or_rich():
    """The fast path's imports: everything exec-stage -q and status need, and not typer/rich."""
    code = ("import sys, containerctl.cli.fast, containerctl.cli.stages, containerctl.ui.session, containerctl.ui.plain, "
            "containerctl.report, containerctl.ui.failure; "
            "print(','.join(m for m in ('typer', 'click', 'rich', 'rich.console', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    assert out == ""


def test_status_bad_name_through_the_fast_path_is_two_lines(tmp_path):
    exe = Path(sys.executable).parent / "containerctl"
    r = subprocess.run([str(exe), "status", "--name", "bad name!"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "CONTAINERCTL_HOME": str(tmp_path)})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error: ") and lines[1].startswith("  fix: ") and "Traceback" not in r.stderr
