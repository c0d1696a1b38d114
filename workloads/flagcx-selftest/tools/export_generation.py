#!/usr/bin/env python3
"""Write the FlagCX stand-in (selftest) as a source tree of one FlagCX interface generation.

    export-generation.sh GEN DEST [FAULT]

GEN is one of runbook, v0.11, v0.13, main (README.md, "Interface generations", says what each
one is); DEST must not exist or be an empty directory.  FAULT, when given, is written to
DEST/.selftest-fault (README.md, "Fault injection").

The embedded tree (this script's parent directory) *is* the v0.13 generation, minus the JSON
dependency; the files that differ in the other generations live in tools/generations/:
  classic/  the <= v0.11 layout: test/perf/Makefile building test/perf/test_<coll>, and the
            single-binary test/unittest (build/bin/main)
  runbook/  test/perf/test_<coll>.cpp of FlagOpen <= v0.6 (rank 0 prints, no verdict)
  main/     test/tools.cc (-d/-o), test/make.inc (system gtest fallback) and
            test/perf/host_api/test_<coll>.cpp (no buffers) of FlagCX after v0.13
  json/     src/build_info.cc, which includes <nlohmann/json.hpp> (v0.11, v0.13, main)
An exported tree holds only its own generation's sources: a probe that greps it for getopt
strings or printf formats finds that generation's and no other.  Python 3 standard library only.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

GENERATIONS = ("runbook", "v0.11", "v0.13", "main")
FAULTS = ("corrupt", "corrupt-quiet", "noexchange", "exit0", "crash-rank1", "build")
JSON_GENERATIONS = ("v0.11", "v0.13", "main")

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ROOT / "tools" / "generations"

# What never leaves the embedded tree: this tool, build outputs, a planted fault.
SKIP_TOP = {"tools"}
SKIP_DIRS = {"build", "__pycache__"}
SKIP_SUFFIXES = {".o", ".d", ".so", ".pyc"}
SKIP_NAMES = {".selftest-fault"}

JSON_LINE = "JSON_INCLUDE :=\n"
JSON_SETTING = {
    "v0.11": "JSON_INCLUDE := -I$(SELFTEST_ROOT)/third-party/json/single_include\n",
    "v0.13": "JSON_INCLUDE := -I$(SELFTEST_ROOT)/third-party/json/single_include\n",
    "main": "JSON_INCLUDE_DIR ?= $(SELFTEST_ROOT)/third-party/json/single_include\n"
            "JSON_INCLUDE := -I$(JSON_INCLUDE_DIR)\n",
}
GENERATION_LINE = "SELFTEST_GENERATION := v0.13\n"


class ExportError(Exception):
    def __init__(self, cause: str, fix: str):
        super().__init__(cause)
        self.cause, self.fix = cause, fix


def _base_files() -> list[Path]:
    """Relative paths of the embedded tree's sources."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = Path(dirpath).relative_to(ROOT)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIP_DIRS and not (rel_dir == Path(".") and d in SKIP_TOP)
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name in SKIP_NAMES or path.suffix in SKIP_SUFFIXES:
                continue
            # perf binaries built in place (test/perf/test_<coll>, no suffix, executable)
            if name.startswith("test_") and not path.suffix and os.access(path, os.X_OK):
                continue
            out.append(rel_dir / name)
    return out


def _overlay(name: str) -> dict[Path, Path]:
    """Relative path -> source file of one overlay directory."""
    base = OVERLAYS / name
    return {p.relative_to(base): p for p in sorted(base.rglob("*")) if p.is_file()}


def plan(gen: str) -> dict[Path, Path]:
    """Relative path in the exported tree -> the file it is copied from."""
    files = {rel: ROOT / rel for rel in _base_files()}
    host_api = Path("test/perf/host_api")
    if gen in ("runbook", "v0.11"):
        rank_prints = {rel: src for rel, src in files.items()
                       if rel.parent == host_api and rel.name.startswith("test_")}
        for rel in list(files):
            unit_layout = rel.parts[:2] == ("test", "unittest") and (
                rel.name in ("Makefile", "component.mk") or rel.name.startswith("main_"))
            if (rel.parts[:3] == ("test", "perf", "host_api") or unit_layout
                    or rel in (Path("test/perf/Makefile"), Path("test/make.inc"))):
                del files[rel]
        files.update(_overlay("classic"))
        if gen == "v0.11":  # the v0.9 - v0.13 prints, in the <= v0.11 place
            files.update({Path("test/perf") / rel.name: src for rel, src in rank_prints.items()})
        else:
            files.update(_overlay("runbook"))
    elif gen == "main":
        for rel in list(files):
            if rel.parent == host_api and rel.name.startswith("test_"):
                del files[rel]
        files.update(_overlay("main"))
    if gen in JSON_GENERATIONS:
        files.pop(Path("src/build_info.c"), None)
        files.update(_overlay("json"))
    return files


def _rewrite_makefile(text: str, gen: str) -> str:
    for needed in (GENERATION_LINE, JSON_LINE):
        if needed not in text:
            raise ExportError(f"the stand-in's Makefile has no line {needed.strip()!r} to rewrite",
                              "restore workloads/flagcx-selftest/Makefile from git")
    text = text.replace(GENERATION_LINE, f"SELFTEST_GENERATION := {gen}\n", 1)
    if gen in JSON_SETTING:
        text = text.replace(
            "# JSON headers: this tree needs none (exported v0.11 / v0.13 / main trees include\n"
            "# <nlohmann/json.hpp> from third-party/json/single_include, as FlagCX does).\n",
            "# JSON headers: src/build_info.cc includes <nlohmann/json.hpp> from the json submodule,\n"
            "# as FlagCX does; with the submodule empty only a system copy (/usr/include/nlohmann)\n"
            "# lets it compile.\n", 1)
        text = text.replace(JSON_LINE, JSON_SETTING[gen], 1)
    return text


def export(gen: str, dest: Path, fault: str | None = None) -> Path:
    if gen not in GENERATIONS:
        raise ExportError(f"unknown generation {gen!r}", f"use one of: {' '.join(GENERATIONS)}")
    if fault is not None and fault not in FAULTS:
        raise ExportError(f"unknown fault {fault!r}", f"use one of: {' '.join(FAULTS)}")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ExportError(f"{dest} exists and is not an empty directory",
                          "give a new directory (it is created) or remove this one first")
    files = plan(gen)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        for rel, src in sorted(files.items()):
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if rel == Path("Makefile"):
                out.write_text(_rewrite_makefile(src.read_text(), gen))
                shutil.copymode(src, out)
            else:
                shutil.copy2(src, out)
        # as in a release tarball: the submodules' directories, empty
        for sub in ("third-party/json", "third-party/googletest"):
            (dest / sub).mkdir(parents=True, exist_ok=True)
        if fault is not None:
            (dest / ".selftest-fault").write_text(fault + "\n")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # nothing half made
        raise
    return dest


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] in ("-h", "--help"):
        print("usage: export-generation.sh GEN DEST [FAULT]\n"
              f"  GEN:   {' | '.join(GENERATIONS)}\n"
              f"  FAULT: {' | '.join(FAULTS)} (written to DEST/.selftest-fault)",
              file=sys.stderr if argv[:1] not in (["-h"], ["--help"]) else sys.stdout)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    try:
        dest = export(argv[0], Path(argv[1]), argv[2] if len(argv) == 3 else None)
    except ExportError as e:
        print(f"error: {e.cause}\n  fix: {e.fix}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write the tree: {e}\n  fix: check DEST's parent directory and the free space",
              file=sys.stderr)
        return 2
    print(f"FlagCX stand-in (selftest), generation {argv[0]}: {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
