"""Terminal control codes from a stage, a profile or a label never reach a terminal, a plain (CI)
log, the failure summary, `report`, `results show` or the md/JUnit reports (issue 18, item 7);
the stage log on disk stays raw. One function does it: containerctl/textsafe.py `printable`."""
from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import cli
from containerctl.textsafe import SafeStream, one_line, printable, xml_safe

EVIL = "\x1b]0;pwned\x07\x1b[2J\rEVIL"
BAD = ("\x1b", "\x07", "\x9b", "\r")


def _clean(text: str) -> bool:
    return not any(c in text for c in BAD)


@pytest.mark.parametrize("raw,want", [
    ("plain text\twith tab\n", "plain text\twith tab\n"),
    ("\x1b[01;31merror:\x1b[0m x", "error: x"),                  # colour dropped
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),                  # OSC: visible, inert
    ("\x1b[2J", "\\x1b[2J"),
    ("a\rb", "a\\rb"), ("a\r\nb", "a\nb"),
    ("\x9b2J", "\\x9b2J"), ("del\x7f", "del\\x7f"), ("nul\x00", "nul\\0"),
    ("bidi \u202egnp.exe", "bidi \\u202egnp.exe"),
    ("ünïcødé 名", "ünïcødé 名"),
])
def test_printable(raw, want):
    assert printable(raw) == want
    assert printable(printable(raw)) == printable(raw)      # idempotent


def test_one_line_and_xml_safe():
    assert one_line("a\nb\tc\rd") == "a\\nb c\\rd"
    x = xml_safe("ok \x1b[2J \x01 \ufffe \ud800 end")
    ET.fromstring(f"<a>{x}</a>")                              # well-formed XML 1.0
    assert "\x1b" not in x and "\ufffe" not in x


def test_safe_stream_is_the_views_stream():
    from containerctl.ui.model import RunModel
    from containerctl.ui.plain import PlainView
    buf = io.StringIO()
    v = PlainView(RunModel(), buf)
    assert isinstance(v.out, SafeStream)
    v.echo("build", EVIL)
    v.note(f"a note {EVIL}")
    out = buf.getvalue()
    assert _clean(out) and "EVIL" in out and "\\x1b]0;pwned" in out


def test_model_keeps_no_control_codes_for_the_live_view():
    from containerctl.ui.model import RunModel
    m = RunModel()
    m.echo("build", EVIL)
    m.up_line(EVIL)
    m.on_event("stage-end", "build", status="failed", message=EVIL, duration=1.0)
    st = m.stages["build"]
    assert _clean(st.last) and _clean(st.message) and _clean(m.up.last)
    assert all(_clean(ln) for ln in st.tail)


def _run_with(tmp_path: Path, message: str, detail: str, label: str) -> dict:
    d = tmp_path / "run-x"
    (d / "logs").mkdir(parents=True)
    (d / "logs" / "build.log").write_text(f"compiling\nerror: {EVIL}\n")
    rec = {"stage": "build", "status": "failed", "message": message, "exit_code": 3,
           "duration_s": 1.0, "log": "logs/build.log",
           "checks": [{"name": f"check {EVIL}", "ok": False, "detail": detail}]}
    return {"run_id": "run-x", "dir": str(d), "label": label, "status": "failed",
            "records": {"build": rec}, "problems": [f"problem {EVIL}"]}


def test_reports_and_failure_screen_units(tmp_path):
    from containerctl import report as rep
    from containerctl.ui.failure import failure_blocks
    run = _run_with(tmp_path, f"msg {EVIL}", f"detail {EVIL}", f"label {EVIL}")
    for fmt in ("table", "md", "junit"):
        text = rep.render([run], fmt)
        assert _clean(text), fmt
        assert "EVIL" in text, fmt                         # shown, not silently lost
    ET.fromstring(rep.render([run], "junit").split("\n", 1)[1])
    data = json.loads(rep.render([run], "json"))             # JSON keeps the data (escaped)
    assert data["runs"][0]["label"] == f"label {EVIL}"
    blocks = failure_blocks(run)
    assert blocks and all(_clean(t) and all(_clean(ln) for ln in lines) for t, lines in blocks)
    assert rep.rich_table(rep.run_sections(run)[0]) is not None
    assert _clean(rep.render_table([run]))


STAGE = r"""name: noisy
description: test stage - prints terminal control codes, then fails
requires: []
timeout: 60
script: |
  printf 'compiling \033]0;pwned\007\033[2J\rEVIL\n'
  printf 'error: \033]0;pwned\007 boom \033[2J\r\n'
  exit 3
"""


def test_stage_output_end_to_end(tmp_path, unique_name, selftest_image):
    """A custom stage (./stages/) prints an OSC window title, a clear-screen and a \r: the plain
    output, `results show`, `report` (table, md, JUnit) carry none of them; the log keeps them."""
    cwd = tmp_path / "cwd"
    (cwd / "stages").mkdir(parents=True)
    (cwd / "stages" / "95-noisy.yaml").write_text(STAGE)
    assert cli("up", "--profile", "cpu-selftest", "--name", unique_name).returncode == 0
    r = cli("exec-stage", "noisy", "--name", unique_name, cwd=str(cwd), timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert _clean(r.stdout) and _clean(r.stderr), (r.stdout + r.stderr)[-2000:]
    assert "EVIL" in r.stdout and "boom" in r.stdout          # shown, visibly escaped
    home = Path(os.environ["CONTAINERCTL_HOME"])
    run_dir = sorted((home / "results").glob("*/run.json"))[-1].parent
    raw = (run_dir / "logs" / "noisy.log").read_bytes()
    assert b"\x1b]0;pwned\x07\x1b[2J\r" in raw                # the evidence stays raw
    rid = run_dir.name
    for args in (["results", "show", rid], ["report", rid], ["report", rid, "-f", "md"],
                 ["report", rid, "-f", "junit"], ["results", "list"]):
        out = cli(*args)
        assert out.returncode in (0, 1), (args, out.stderr)
        assert _clean(out.stdout) and _clean(out.stderr), args
    ET.fromstring(cli("report", rid, "-f", "junit").stdout.split("\n", 1)[1])


def test_imported_label_end_to_end(tmp_path):
    """A label is user text too: `results import --label` with a \r and an OSC sequence."""
    f = tmp_path / "perf.txt"
    f.write_text("".join(f"Comm size: {1 << k} bytes; Elapsed time: 0.001 sec; Algo bandwidth: "
                         f"1.0 GB/s; Bus bandwidth: 1.0 GB/s\n" for k in range(10, 14)))
    r = cli("results", "import", str(f), "--label", f"A800{EVIL}\x9b2J")
    assert r.returncode == 0, r.stderr
    rid = r.stdout.strip()
    assert _clean(r.stderr)
    for args in (["results", "show", rid], ["results", "list"], ["report", rid, "-f", "md"],
                 ["report", rid, "-f", "junit"], ["report", rid], ["results", "show", rid, "--json"],
                 ["results", "list", "--json"], ["report", rid, "--json"]):
        out = cli(*args)
        assert _clean(out.stdout) and _clean(out.stderr), (args, out.stdout)
        assert "EVIL" in out.stdout, args


def test_json_keeps_the_data_but_nothing_raw():
    from containerctl.textsafe import json_text
    value = {"label": f"x{EVIL}\x9b2J\u202e\x7f"}
    text = json_text(json.dumps(value, ensure_ascii=False))
    assert json.loads(text) == value
    assert not any(c in text for c in ("\x1b", "\x07", "\x9b", "\r", "\u202e", "\x7f"))


def test_error_lines_quote_user_text_inertly():
    """A profile name (or path, or label) the user typed comes back in `error:` — inert."""
    r = cli("profile", "show", f"nv{EVIL}")
    assert r.returncode == 2 and _clean(r.stderr) and "\\x1b]0;pwned" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2
