"""Reports: the runbook's three platforms imported and rendered as table, plot, JUnit, HTML (with a
headless-Chromium screenshot), Markdown, JSON, compare; and the CLI commands."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from containerctl import report as rep
from containerctl.errors import NotFound, UsageError
from containerctl.results import store
from containerctl.results.model import Status

FIX = Path(__file__).parent / "fixtures"
RB = FIX / "runbook"
ROOT = Path(__file__).resolve().parent.parent

RUNBOOK = [("a800", "nvidia-a800", "A800"), ("c550", "metax-c550", "C550"), ("p800", "kunlunxin-p800", "P800")]
# matplotlib's default cycle: the colours of the first three lines
LINE_RGB = [(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C)]


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("CONTAINERCTL_HOME", str(h))
    return h


@pytest.fixture
def three(home):
    """The runbook's A800, C550 and P800 allreduce outputs imported as three runs."""
    return [store.import_text(RB / f"{f}_allreduce.txt", label=label, platform=plat) for f, plat, label in RUNBOOK]


def _busbw_4g_from_fixture(name: str) -> str:
    last = (RB / f"{name}_allreduce.txt").read_text().strip().splitlines()[-1]
    return "%.2f" % float(re.search(r"Bus bandwidth: ([0-9.]+)", last).group(1))


# ---------------------------------------------------------------- the acceptance


def test_table_shows_runbook_4gib_busbw(three):
    text = rep.render_table(rep.load_runs(three), coll="allreduce")
    rows_4g = [l for l in text.splitlines() if re.match(r"^│\s+4 GiB │", l)]  # size column, not the checks
    assert len(rows_4g) == 3  # one perf table per run
    for expected, line in zip(("144.18", "47.33", "20.03"), rows_4g):
        assert expected in line
    # the values are the fixture's own (rounded), not something the renderer made up
    assert [_busbw_4g_from_fixture(n) for n, _, _ in RUNBOOK] == ["144.18", "47.33", "20.03"]
    assert text.index("A800") < text.index("C550") < text.index("P800")  # order as given
    assert len([l for l in text.splitlines() if re.match(r"^│\s+128 KiB │", l)]) == 3
    assert "FAIL" not in text


def test_plot_has_three_lines_on_a_log2_axis(three, tmp_path):
    runs = rep.load_runs(three)
    fig = rep.busbw_figure(runs, "allreduce")
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [l.get_label() for l in lines] == ["A800", "C550", "P800"]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "128K" and labels[-1] == "4G" and "1M" in labels and len(labels) == 16
    assert max(lines[0].get_ydata()) == pytest.approx(144.176214)
    out = tmp_path / "plots" / "busbw.png"
    assert rep.plot_busbw(runs, out, "allreduce") == 3
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    img = imread(out)
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert "matplotlib.pyplot" not in sys.modules  # Agg canvas only, no GUI backend machinery


def test_plot_without_perf_data_is_a_usage_error(home):
    rid = store.import_text(RB / "torch_a800.txt", kind="torch-example", label="A800")
    with pytest.raises(UsageError, match="nothing to plot"):
        rep.busbw_figure(rep.load_runs([rid]))


def test_junit_parses_with_junitparser(three, tmp_path):
    import junitparser

    # add a failing run so the file carries a failure with a message
    slow = tmp_path / "slow.txt"
    slow.write_text((RB / "p800_allreduce.txt").read_text().replace("Bus bandwidth: 20.027448", "Bus bandwidth: 11.000000"))
    bad = store.import_text(slow, label="P800-slow", platform="kunlunxin-p800")
    out = tmp_path / "junit.xml"
    out.write_text(rep.render_junit(rep.load_runs(three + [bad])))
    xml = junitparser.JUnitXml.fromfile(str(out))
    suites = list(xml)
    assert [s.name for s in suites] == three + [bad]
    for s, run in zip(suites[:3], rep.load_runs(three)):
        cases = list(s)
        n_checks = len(run["records"]["perf"]["checks"])
        assert n_checks >= 7     # output, bus factor, buffers, 4 references (+ plausibility …)
        assert s.tests == len(cases) == 1 + n_checks  # the perf stage + each of its checks
        assert s.failures == 0 and s.skipped == 1  # the -p 1 buffer check cannot be decided
    failed = [c for c in suites[3] if c.result and isinstance(c.result[0], junitparser.Failure)]
    names = {c.name for c in failed}
    assert {"perf", "ref allreduce busbw 4G", "allreduce bus factor"} <= names
    msg = next(c.result[0].message for c in failed if c.name == "ref allreduce busbw 4G")
    assert "11.00 GB/s < 20.03 × 0.90" in msg
    assert suites[3].failures == len(failed)


def test_html_is_self_contained_with_inline_plot(three):
    page = rep.render_html(rep.load_runs(three), "allreduce")
    assert "<script" not in page and not re.search(r'(src|href)="(https?:|file:|//)', page)
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert m and base64.b64decode(m.group(1))[:4] == b"\x89PNG"
    for v in ("144.18", "47.33", "20.03"):
        assert v in page
    assert "ref allreduce busbw 4G" in page  # the checks table
    # the repro section of an imported run is the import command
    assert "containerctl results import" in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _screenshot(exe: str, html_file: Path, png: Path, tmp: Path) -> None:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp / 'chromium-profile'}", f"--screenshot={png}", "--window-size=1200,1600",
           html_file.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"chromium wrote no screenshot (rc {r.returncode}): {r.stderr[-2000:]}"


def _colour_pixels(png: Path) -> tuple[list[int], int]:
    import numpy as np
    from matplotlib.image import imread

    img = imread(png)[..., :3]
    px = (img * 255).astype(int) if img.dtype.kind == "f" else img.astype(int)
    counts = [int((np.abs(px - np.array(c)).sum(axis=2) < 40).sum()) for c in LINE_RGB]
    distinct = len(np.unique((px[..., 0] << 16) | (px[..., 1] << 8) | px[..., 2]))
    return counts, distinct


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_html_renders_in_headless_chromium_with_the_plot_visible(three, tmp_path):
    exe = _chromium()
    runs = rep.load_runs(three)
    page = tmp_path / "report.html"
    page.write_text(rep.render_html(runs, "allreduce"))
    shot = tmp_path / "shot.png"
    _screenshot(exe, page, shot, tmp_path)
    counts, distinct = _colour_pixels(shot)
    assert distinct > 50, "blank screenshot"
    # each of the three plot lines is on screen in its own colour
    assert all(c > 300 for c in counts), counts
    # control: the same page without the plot has none of those line colours
    bare = tmp_path / "bare.html"
    bare.write_text(rep.render_html(runs, "allreduce", plot=False))
    shot2 = tmp_path / "bare.png"
    _screenshot(exe, bare, shot2, tmp_path)
    counts2, distinct2 = _colour_pixels(shot2)
    assert distinct2 > 10 and all(c < 50 for c in counts2), counts2


# ---------------------------------------------------------------- other renderers


def test_markdown_and_json(three):
    runs = rep.load_runs(three)
    md = rep.render_markdown(runs, "allreduce")
    assert "| size | time (s) | algbw (GB/s) | busbw (GB/s) |" in md
    assert "| 4 GiB | 0.029790 | 144.18 | 144.18 |" in md
    data = json.loads(rep.render_json(runs))
    assert data["schema"] == "containerctl.report/1" and [r["run_id"] for r in data["runs"]] == three
    assert data["runs"][1]["records"]["perf"]["metrics"]["collectives"]["allreduce"]["sweeps"][0]["rows"][-1]["busbw"] == pytest.approx(47.333872)


def test_small_bandwidths_keep_their_digits(home):
    rid = store.import_text(RB / "hetero_a800x2_c550x2.txt", label="hetero", nranks=4)
    text = rep.render_table(rep.load_runs([rid]))
    line = next(l for l in text.splitlines() if "128 KiB" in l)
    assert "0.0152" in line and "0.0228" in line


def test_compare_ratio(three):
    a, b = rep.load_runs(three[:2])
    cmp = rep.compare(a, b, "allreduce")
    row = next(r for r in cmp["rows"] if r["size"] == 4 << 30)
    assert row["ratio"] == pytest.approx(47.333872 / 144.176214)
    assert 0 < cmp["geomean_ratio"] < 1
    assert rep.compare(a, a)["geomean_ratio"] == pytest.approx(1.0)
    text = rep.render_compare(cmp)
    assert "0.328" in text and "4 GiB" in text
    assert json.loads(rep.render_compare(cmp, "json"))["coll"] == "allreduce"
    with pytest.raises(UsageError):
        rep.compare(a, b, "allgather")


def test_junit_for_a_pipeline_style_run_with_timeout(home):
    meta = store.start_run("nvidia-a800", platform="nvidia", container="c", stages=["build", "perf"])
    rid = meta["run_id"]
    store.write_stage(rid, store.stage_record(rid, "build", status=Status.PASSED, started="2026-01-01T00:00:00+00:00",
                                              finished="2026-01-01T00:01:00+00:00", exit_code=0))
    store.write_stage(rid, store.stage_record(rid, "perf", status=Status.TIMEOUT, started="2026-01-01T00:01:00+00:00",
                                              finished="2026-01-01T00:31:00+00:00", exit_code=None,
                                              message="killed after 1800 s \x1b[31mred\x1b[0m"))
    store.finish_run(rid)
    import junitparser

    xml = junitparser.JUnitXml.fromstring(rep.render_junit(rep.load_runs([rid])))
    (suite,) = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    cases = {c.name: c for c in suite}
    assert cases["build"].result == [] and cases["build"].time == pytest.approx(60.0)
    (fail,) = cases["perf"].result
    assert fail.type == "timeout" and "killed after 1800 s red" in fail.message


# ---------------------------------------------------------------- CLI


@pytest.fixture
def app():
    from containerctl.cli import report as cli_report

    a = typer.Typer()

    @a.callback()
    def _root():  # a group, as in the real CLI
        pass

    cli_report.register(a)
    return a


def test_cli_import_report_compare(app, home, tmp_path):
    r = CliRunner()
    ids = []
    for f, plat, label in RUNBOOK:
        res = r.invoke(app, ["results", "import", str(RB / f"{f}_allreduce.txt"), "--label", label, "--platform", plat])
        assert res.exit_code == 0, res.output
        ids.append(res.stdout.strip().splitlines()[-1])
    assert [store.load_run(i)["label"] for i in ids] == ["A800", "C550", "P800"]
    junit, html_out, png = tmp_path / "r.xml", tmp_path / "r.html", tmp_path / "p.png"
    res = r.invoke(app, ["report", *ids, "--format", "junit", "--output", str(junit), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert junit.read_text().startswith("<?xml") and png.read_bytes()[:4] == b"\x89PNG"
    res = r.invoke(app, ["report", ids[0], "-f", "html", "-o", str(html_out)])
    assert res.exit_code == 0 and "data:image/png;base64," in html_out.read_text()
    res = r.invoke(app, ["report", "-f", "md"])  # default: latest
    assert res.exit_code == 0 and "20.03" in res.stdout and "144.18" not in res.stdout
    res = r.invoke(app, ["results", "compare", ids[0], ids[2], "-f", "md"])
    assert res.exit_code == 0 and "| 4 GiB | 144.18 | 20.03 | 0.139 |" in res.stdout
    res = r.invoke(app, ["results", "list", "--json"])
    assert [x["run_id"] for x in json.loads(res.stdout)] == ids[::-1]
    res = r.invoke(app, ["results", "show", ids[1], "-f", "json"])
    assert json.loads(res.stdout)["runs"][0]["label"] == "C550"
    res = r.invoke(app, ["report", *ids, "--strict"])
    assert res.exit_code == 0


def test_cli_errors_are_containerctl_errors(app, home):
    r = CliRunner()
    res = r.invoke(app, ["report", "nope"])
    assert isinstance(res.exception, NotFound)
    res = r.invoke(app, ["report", "--format", "pdf"])
    assert isinstance(res.exception, UsageError) and "pdf" in res.exception.message
    res = r.invoke(app, ["results", "import", str(RB / "torch_a800.txt")])
    assert isinstance(res.exception, UsageError)  # not a perf output


def test_cli_strict_exit_on_failure(app, home, tmp_path):
    slow = tmp_path / "slow.txt"
    slow.write_text((RB / "a800_allreduce.txt").read_text().replace("Bus bandwidth: 144.176214", "Bus bandwidth: 100.000000"))
    rid = store.import_text(slow, label="slow", platform="nvidia-a800")
    res = CliRunner().invoke(app, ["report", rid, "--strict", "-f", "md"])
    assert res.exit_code == 1


def test_cli_module_imports_nothing_heavy():
    code = ("import sys, containerctl.cli.report as m, typer; app = typer.Typer(); m.register(app); "
            "heavy = [x for x in ('rich.console', 'matplotlib', 'numpy', 'containerctl.report', 'containerctl.results.store') "
            "if x in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    assert out == ""


# ---------------------------------------------------------------- what a person reads (H5)


def test_plain_tables_are_aligned_columns_without_boxes(three):
    text = rep.render_plain(rep.load_runs(three[:1]), "allreduce")
    assert not re.search("[│┃━─┏└]", text) and "…" not in text and "\x1b[" not in text
    row = next(l for l in text.splitlines() if l.strip().startswith("4 GiB"))
    assert row.split() == ["4", "GiB", "0.029790", "144.18", "144.18"]
    head = next(l for l in text.splitlines() if "busbw (GB/s)" in l)
    assert head.index("busbw (GB/s)") + len("busbw (GB/s)") == len(row)  # right-aligned under its header


def test_report_latest_is_the_newest_run_holding_what_was_asked(three, home):
    newer = store.start_run("cpu-selftest", stages=["deps"])["run_id"]  # no perf in it
    store.write_stage(newer, store.stage_record(newer, "deps", status=Status.PASSED, started=store.now_iso(), exit_code=0))
    assert rep.load_runs()[0]["run_id"] == newer                     # plain latest: the newest
    notes: list[str] = []
    picked = rep.load_runs(None, need_perf=True, notes=notes)
    assert picked[0]["run_id"] == three[-1] and newer in notes[0]
    assert rep.load_runs(["latest"], coll="allreduce")[0]["run_id"] == three[-1]
    with pytest.raises(UsageError, match="no stored run holds allgather perf results"):
        rep.load_runs(None, coll="allgather")


def test_report_two_runs_shows_deltas_per_size(three):
    runs = rep.load_runs(three[:2])
    (sec,) = rep.compare_sections(runs)
    assert sec["headers"][3] == "delta (GB/s)"
    row = next(r for r in sec["rows"] if r[0] == "4 GiB")
    assert row[1:] == ["144.18", "47.33", "-96.84", "0.328"]
    assert "-96.84" in rep.render_plain(runs)
    cmp = rep.compare(*runs, "allreduce")
    r4 = next(r for r in cmp["rows"] if r["size"] == 4 << 30)
    assert r4["delta"] == pytest.approx(47.333872 - 144.176214)


def test_cli_report_off_a_terminal_is_plain_and_json_flag(app, three):
    r = CliRunner()
    res = r.invoke(app, ["report", three[0], three[2]])
    assert res.exit_code == 0, res.output
    assert "│" not in res.stdout and "…" not in res.stdout
    assert re.search(r"4 GiB\s+144\.18\s+20\.03\s+-124\.15\s+0\.139", res.stdout)
    res = r.invoke(app, ["report", three[1], "--json"])
    assert json.loads(res.stdout)["runs"][0]["label"] == "C550"
    res = r.invoke(app, ["results", "show", three[1], "--json"])
    assert json.loads(res.stdout)["runs"][0]["run_id"] == three[1]
    res = r.invoke(app, ["results", "list"])
    lines = res.stdout.splitlines()
    assert lines[0].split()[:4] == ["run", "label", "platform", "status"] and len(lines) == 4


def test_a_record_under_the_old_collective_spelling_reads_as_flagcx_names_it(app, home):
    """Runs imported before flagcx/colls.py keyed core_sendrecv as `coresendrecv`: report
    --coll core_sendrecv finds them (the name read through flagcx/colls.py); the file is left as it was."""
    rid = store.import_text(RB / "a800_allreduce.txt", label="old", platform="nvidia-a800",
                            coll="core_sendrecv")
    f = next(p for p in Path(store.run_dir(rid)).glob("*.json") if p.name != "run.json")
    old = f.read_text().replace('"core_sendrecv"', '"coresendrecv"')   # as the old version wrote it
    assert '"coresendrecv"' in old
    f.write_text(old)
    assert rep.load_runs(["latest"], coll="core_sendrecv")[0]["run_id"] == rid
    assert {s["coll"] for s in rep.perf_series(store.load_run(rid))} == {"core_sendrecv"}
    for spelling in ("core_sendrecv", "coresendrecv"):
        res = CliRunner().invoke(app, ["report", "--coll", spelling, "-f", "md"])
        assert res.exit_code == 0, res.output
        assert "core_sendrecv" in res.stdout and _busbw_4g_from_fixture("a800") in res.stdout
    assert f.read_text() == old
    # a record holding both spellings keeps both (neither hides the other)
    both = json.loads(old)
    both["metrics"]["collectives"]["core_sendrecv"] = both["metrics"]["collectives"]["coresendrecv"]
    f.write_text(json.dumps(both))
    assert set(store.load_run(rid)["records"][both["stage"]]["metrics"]["collectives"]) == {
        "coresendrecv", "core_sendrecv"}
