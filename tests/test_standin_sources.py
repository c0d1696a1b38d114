"""The FlagCX stand-in's single sources (workloads/flagcx-selftest/tools/src): the generation
conditionals resolve as unifdef would, bad ones are refused, and the embedded tree's copies
cannot drift from them.  Pure Python and file copies: no MPI, no make.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from standins import GENERATIONS, WORKLOAD

_spec = importlib.util.spec_from_file_location("export_generation", WORKLOAD / "tools" / "export_generation.py")
eg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eg)

FOUR_WAY = """top
#if CCTL_GEN_RUNBOOK
runbook
#elif CCTL_GEN_V0_11
v0.11
#elif CCTL_GEN_MAIN
main
#else
v0.13
#endif
#if !CCTL_GEN_MAIN && !(CCTL_GEN_RUNBOOK || CCTL_GEN_V0_11)  // a comment
not-main-nor-classic
#endif
bottom
"""


@pytest.mark.parametrize("gen", GENERATIONS)
def test_resolve_keeps_the_branch_of_the_generation(gen: str) -> None:
    out = eg.resolve(FOUR_WAY, gen)
    last = ["not-main-nor-classic"] if gen == "v0.13" else []
    assert out.splitlines() == ["top", gen, *last, "bottom"]


def test_resolve_nests_and_leaves_other_conditionals_alone() -> None:
    text = ("#ifndef GUARD_H\n"
            "#define GUARD_H\n"
            "#if CCTL_GEN_MAIN\n"
            "#ifdef __linux__\n"
            "linux-main\n"
            "#else\n"
            "other-main\n"
            "#endif\n"
            "#if CCTL_GEN_MAIN\n"
            "inner-main\n"
            "#endif\n"
            "#else\n"
            "#if defined(X)\n"
            "x-classic\n"
            "#elif defined(Y)\n"
            "y-classic\n"
            "#endif\n"
            "#endif\n"
            "# if this were a Makefile comment, it is text\n"
            "#endif\n")
    assert eg.resolve(text, "main") == ("#ifndef GUARD_H\n#define GUARD_H\n#ifdef __linux__\nlinux-main\n#else\n"
                                        "other-main\n#endif\ninner-main\n"
                                        "# if this were a Makefile comment, it is text\n#endif\n")
    assert eg.resolve(text, "runbook") == ("#ifndef GUARD_H\n#define GUARD_H\n#if defined(X)\nx-classic\n"
                                           "#elif defined(Y)\ny-classic\n#endif\n"
                                           "# if this were a Makefile comment, it is text\n#endif\n")


@pytest.mark.parametrize("text, cause", [
    ("#if CCTL_GEN_V0_12\n#endif\n", "unknown macro CCTL_GEN_V0_12"),
    ("#if CCTL_GEN_MAIN\nx\n", "#if without #endif"),
    ("x\n#endif\n", "#endif without #if"),
    ("#if CCTL_GEN_MAIN\n#else\n#else\n#endif\n", "#else after the #else"),
    ("#if CCTL_GEN_MAIN\n#else\n#elif CCTL_GEN_RUNBOOK\n#endif\n", "#elif after the #else"),
    ("#ifdef CCTL_GEN_MAIN\n#endif\n", "always defined"),
    ("#if CCTL_GEN_MAIN\n#elif defined(X)\n#endif\n", "in an #if on CCTL_GEN_*"),
    ("#ifdef X\n#elif CCTL_GEN_MAIN\n#endif\n", "continues an #if on other macros"),
    ("#if CCTL_GEN_MAIN ||\n#endif\n", "malformed condition"),
    ("#if CCTL_GEN_MAIN + 1\n#endif\n", "cannot read"),
    ("int g = CCTL_GEN_MAIN;\n", "outside #if/#elif"),
])
def test_resolve_refuses_bad_conditionals(text: str, cause: str) -> None:
    with pytest.raises(eg.ExportError) as err:
        eg.resolve(text, "v0.13", "t.cc")
    assert cause in err.value.cause and err.value.cause.startswith("t.cc"), err.value.cause
    assert err.value.fix


def test_every_single_source_resolves_for_every_generation() -> None:
    sources = sorted(eg.SOURCES.rglob("*"))
    assert any(p.name == "tools.cc" for p in sources) and any(p.name == "test_allreduce.cpp" for p in sources)
    for path in (p for p in sources if p.is_file()):
        text = path.read_text()
        assert "CCTL_GEN_" in text, f"{path} has no generation conditional: it belongs in the embedded tree"
        outs = {gen: eg.resolve(text, gen, str(path)) for gen in GENERATIONS}
        assert len(set(outs.values())) > 1, f"{path} resolves the same for every generation"


def test_embedded_copies_are_the_sources_resolved_for_v013() -> None:
    res = subprocess.run(["bash", str(WORKLOAD / "tools" / "export-generation.sh"), "--check-embedded"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert not eg.stale_embedded()


def _copy_workload(dest: Path) -> Path:
    shutil.copytree(WORKLOAD, dest, ignore=shutil.ignore_patterns("build", "*.o", "*.d", ".selftest-fault"))
    return dest


def test_check_embedded_catches_drift_and_sync_repairs_it(tmp_path: Path) -> None:
    root = _copy_workload(tmp_path / "selftest")
    script = root / "tools" / "export-generation.sh"
    tools_cc = root / "test" / "tools.cc"
    good = tools_cc.read_text()
    tools_cc.write_text(good.replace('"b:e:f:w:n:p:r:s:R:h"', '"b:e:f:w:n:p:r:s:R:x:h"'))
    res = subprocess.run(["bash", str(script), "--check-embedded"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.startswith("error: the embedded tree's test/tools.cc differ") and "\n  fix: " in res.stderr
    res = subprocess.run(["bash", str(script), "--sync-embedded"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout == "rewrote test/tools.cc from tools/src/test/tools.cc\n", res.stdout
    assert tools_cc.read_text() == good
    res = subprocess.run(["bash", str(script), "--check-embedded"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_a_broken_source_stops_the_export_and_makes_nothing(tmp_path: Path) -> None:
    root = _copy_workload(tmp_path / "selftest")
    src = root / "tools" / "src" / "test" / "perf" / "host_api" / "test_reduce.cpp"
    src.write_text(src.read_text().replace("#if CCTL_GEN_MAIN\n", "#if CCTL_GEN_MIAN\n", 1))
    dest = tmp_path / "out"
    res = subprocess.run(["bash", str(root / "tools" / "export-generation.sh"), "runbook", str(dest)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.startswith("error: tools/src/test/perf/host_api/test_reduce.cpp:") and \
        "unknown macro CCTL_GEN_MIAN" in res.stderr and "\n  fix: use one of: CCTL_GEN_RUNBOOK" in res.stderr
    assert not dest.exists()
    res = subprocess.run(["bash", str(root / "tools" / "export-generation.sh"), "--sync-embedded"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.startswith("error: tools/src/"), res.stderr
