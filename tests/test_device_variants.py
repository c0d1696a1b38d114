"""Issue 20 on real GPUs: the variant records a device run wrote (tests/fixtures/<card>/variants/,
see its README.md for the command, card and release), re-judged from their logs here with the
same parsers and verdict rule: every verdict must come out as it did on the device. No GPU is
needed; the logs are the device's real output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from containerctl.results.verdict import stage_verdict
from containerctl.stages import checks as C

FIX = Path(__file__).parent / "fixtures"
RECORDS = sorted(FIX.glob("*/variants/*/*.json"))


def _ctx(rec: dict) -> dict:
    """What the stage was judged with: the profile's context (known failures, references,
    limits) at the variant's rank count."""
    from containerctl.profiles import load_profile
    from containerctl.stages.context import make_context
    v = (rec.get("metrics") or {}).get("variant") or {}
    ctx = make_context(load_profile(rec["profile"], site=False), {"nranks": v.get("nranks") or 1})
    ctx.update(nranks=v.get("nranks") or 1, expect_hybrid=bool(v.get("expect_hybrid")))
    return ctx


@pytest.mark.parametrize("rec_file", RECORDS, ids=[f"{p.parts[-4]}/{p.parts[-2]}/{p.stem}"
                                                   for p in RECORDS])
def test_device_variant_verdict_reproduces(rec_file):
    rec = json.loads(rec_file.read_text())
    if rec["status"] == "skipped":
        assert rec["message"].startswith("variant ") and "not applicable" in rec["message"]
        return
    log = rec_file.with_suffix(".log").read_text()
    parse = "perf" if rec["stage"].startswith("perf") else "unittest"
    _, checks, _ = C.run_parser(parse, log, _ctx(rec))
    status, _ = stage_verdict(checks, exit_code=rec.get("exit_code"), outcome="ok")
    assert status == rec["status"], (rec["stage"], rec["message"],
                                     [c for c in checks if c.get("ok") is False][:3])


def test_device_fixtures_exist_or_say_why():
    dirs = sorted(FIX.glob("*/variants/*"))
    readme = [d.parent / "README.md" for d in dirs]
    assert all(r.is_file() for r in readme), readme
