#!/usr/bin/env python3
"""Write the FlagCX stand-in (selftest) as a source tree of one FlagCX interface generation.

    export-generation.sh GEN DEST [FAULT]
    export-generation.sh --check-embedded | --sync-embedded

GEN is one of runbook, v0.11, v0.13, main (README.md, "Interface generations", says what each
one is); DEST must not exist or be an empty directory.  FAULT, when given, is written to
DEST/.selftest-fault (README.md, "Fault injection").

An exported tree holds only its own generation's sources: a probe that greps it for getopt
strings or printf formats finds that generation's and no other.  Where they are:
  tools/src/          ONE source for each file whose code differs by generation (test/tools.cc,
                      test/make.inc, test/perf/host_api/test_<coll>.cpp), with the differing
                      parts between `#if CCTL_GEN_<GEN>` / `#elif` / `#else` / `#endif` lines.
                      resolve() keeps the branches of the generation being written and drops the
                      rest and the directives, as unifdef does (these four macros only).
  the embedded tree   (this script's parent directory) the v0.13 generation minus the JSON
                      dependency: what `--source selftest` builds and what the probe greps, so it
                      must hold v0.13's strings only -- its copies of the tools/src files are
                      written by --sync-embedded (resolved for v0.13, with a "generated" first
                      line) and --check-embedded (run by the tests) says when they have drifted.
  tools/generations/  files of one layout or dependency, whole:
    classic/  the <= v0.11 layout: test/perf/Makefile building test/perf/test_<coll>, and the
              single-binary test/unittest (build/bin/main)
    json/     src/build_info.cc, which includes <nlohmann/json.hpp> (v0.11, v0.13, main)
Python 3 standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

GENERATIONS = ("runbook", "v0.11", "v0.13", "main")
FAULTS = ("corrupt", "corrupt-quiet", "noexchange", "exit0", "crash-rank1", "build")
JSON_GENERATIONS = ("v0.11", "v0.13", "main")

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ROOT / "tools" / "generations"
SOURCES = ROOT / "tools" / "src"
EMBEDDED_GENERATION = "v0.13"
# The only macros resolve() knows: one per generation, true for the one being written.
MACROS = {gen: "CCTL_GEN_" + gen.upper().replace(".", "_") for gen in GENERATIONS}

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


# ---------------------------------------------------------------- resolving tools/src

_DIRECTIVE = re.compile(r"^[ \t]*#(if|ifdef|ifndef|elif|else|endif)\b(.*)$")
_TOKEN = re.compile(r"\s*(?:(CCTL_GEN_[A-Za-z0-9_]+)|(!|\|\||&&|\(|\)))")
_PYTHON_OP = {"!": " not ", "||": " or ", "&&": " and ", "(": "(", ")": ")"}


def _evaluate(expr: str, gen: str, where: str) -> bool:
    """Value of a `#if` expression over the CCTL_GEN_* macros (!, &&, ||, parentheses)."""
    pos, out = 0, []
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ExportError(f"{where}: cannot read {expr[pos:].strip()!r} in '#if {expr}'",
                              "write the condition with CCTL_GEN_* macros, !, &&, || and parentheses only")
        name, op = m.groups()
        if name is not None and name not in MACROS.values():
            raise ExportError(f"{where}: unknown macro {name}",
                              f"use one of: {' '.join(MACROS.values())}")
        out.append(str(name == MACROS[gen]) if name is not None else _PYTHON_OP[op])
        pos = m.end()
    try:  # only True/False, not/and/or and parentheses are left
        return bool(eval(" ".join(out), {"__builtins__": {}}, {}))  # noqa: S307
    except SyntaxError:
        raise ExportError(f"{where}: malformed condition '#if {expr}'",
                          "write the condition with CCTL_GEN_* macros, !, &&, || and parentheses only") from None


def resolve(text: str, gen: str, name: str = "<text>") -> str:
    """`text` with its CCTL_GEN_* conditionals resolved for `gen`, like unifdef: the lines of
    the branches taken stay, the others and the directives go.  Conditionals on anything else
    (`#ifdef X`, `#if defined(X)`, header guards) are kept as they are; they may hold ours and
    ours may hold them.  Directives are `#if` ... with no space after the `#` (a Makefile's
    `# if ...` comment is text)."""
    out: list[str] = []
    stack: list[dict] = []  # {"ours", "line", "taken", "on", "else"}

    def active() -> bool:
        return all(f["on"] for f in stack if f["ours"])

    for lineno, line in enumerate(text.splitlines(keepends=True), 1):
        where = f"{name}:{lineno}"
        m = _DIRECTIVE.match(line)
        if not m:
            if active():
                out.append(line)
            continue
        keyword, rest = m.group(1), re.sub(r"/\*.*?\*/|//.*", "", m.group(2)).strip()
        ours = "CCTL_GEN_" in rest
        top = stack[-1] if stack else None
        if keyword in ("ifdef", "ifndef") and ours:
            raise ExportError(f"{where}: #{keyword} {rest}: the CCTL_GEN_* macros are always defined",
                              "write #if CCTL_GEN_<GEN> (true for that generation only)")
        if keyword in ("elif", "else", "endif") and top is None:
            raise ExportError(f"{where}: #{keyword} without #if", "remove it or add the #if it closes")
        if keyword in ("if", "ifdef", "ifndef"):
            if ours:
                on = _evaluate(rest, gen, where)
                stack.append({"ours": True, "line": lineno, "taken": on, "on": on, "else": False})
            else:
                if active():
                    out.append(line)
                stack.append({"ours": False, "line": lineno})
        elif not top["ours"]:
            if keyword == "elif" and ours:
                raise ExportError(f"{where}: #elif {rest} continues an #if on other macros (line {top['line']})",
                                  "open a #if of its own for the CCTL_GEN_* condition")
            if active():
                out.append(line)
            if keyword == "endif":
                stack.pop()
        elif keyword == "endif":
            stack.pop()
        elif top["else"]:
            raise ExportError(f"{where}: #{keyword} after the #else of the #if at line {top['line']}",
                              "end that #if with #endif first")
        elif keyword == "elif":
            if not ours:
                raise ExportError(f"{where}: #elif {rest or '(nothing)'} in an #if on CCTL_GEN_* (line {top['line']})",
                                  "use CCTL_GEN_* macros in every branch, or nest an #if of its own")
            on = _evaluate(rest, gen, where) and not top["taken"]  # checked even after a taken branch
            top["on"], top["taken"] = on, top["taken"] or on
        else:  # else
            top["on"], top["taken"], top["else"] = not top["taken"], True, True
    if stack:
        raise ExportError(f"{name}:{stack[-1]['line']}: #if without #endif", "add the #endif it needs")
    result = "".join(out)
    if "CCTL_GEN_" in result:
        line = next(n for n, text in enumerate(result.splitlines(), 1) if "CCTL_GEN_" in text)
        raise ExportError(f"{name}: a CCTL_GEN_ macro outside #if/#elif (line {line} of the output)",
                          "use the macros in #if/#elif lines only")
    return result


def _generated_marker(rel: Path) -> str:
    lead = "#" if rel.suffix not in (".c", ".cc", ".cpp", ".h", ".hpp") else "//"
    return (f"{lead} Generated from tools/src/{rel.as_posix()} ({EMBEDDED_GENERATION}) by "
            "tools/export-generation.sh --sync-embedded: edit that file.\n")


def embedded_text(rel: Path) -> str:
    """What the embedded tree's copy of tools/src/<rel> must hold."""
    return _generated_marker(rel) + resolve((SOURCES / rel).read_text(), EMBEDDED_GENERATION,
                                            f"tools/src/{rel.as_posix()}")


def stale_embedded() -> list[Path]:
    """The embedded copies of tools/src files that differ from what --sync-embedded writes."""
    stale = []
    for rel in _tree(SOURCES):
        path = ROOT / rel
        if not path.is_file() or path.read_text() != embedded_text(rel):
            stale.append(rel)
    return stale


def sync_embedded() -> list[Path]:
    """Rewrite the embedded copies that differ; returns them."""
    texts = {rel: embedded_text(rel) for rel in stale_embedded()}  # every one resolves before any is written
    for rel, text in texts.items():
        (ROOT / rel).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / rel).write_text(text)
    return sorted(texts)


# ---------------------------------------------------------------- exporting

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


def _tree(base: Path) -> dict[Path, Path]:
    """Relative path -> file, for every file below base."""
    return {p.relative_to(base): p for p in sorted(base.rglob("*")) if p.is_file()}


def _overlay(name: str) -> dict[Path, Path]:
    """Relative path -> source file of one overlay directory."""
    return _tree(OVERLAYS / name)


def plan(gen: str) -> dict[Path, Path]:
    """Relative path in the exported tree -> the file it is made from (resolved for gen when
    it lies in tools/src, else copied)."""
    files = {rel: ROOT / rel for rel in _base_files()}
    files.update(_tree(SOURCES))  # the single sources, not the embedded tree's v0.13 copies
    host_api = Path("test/perf/host_api")
    if gen in ("runbook", "v0.11"):
        perf_tests = {rel: src for rel, src in files.items()
                      if rel.parent == host_api and rel.name.startswith("test_")}
        for rel in list(files):
            unit_layout = rel.parts[:2] == ("test", "unittest") and (
                rel.name in ("Makefile", "component.mk") or rel.name.startswith("main_"))
            if (rel.parts[:3] == ("test", "perf", "host_api") or unit_layout
                    or rel in (Path("test/perf/Makefile"), Path("test/make.inc"))):
                del files[rel]
        files.update(_overlay("classic"))
        files.update({Path("test/perf") / rel.name: src for rel, src in perf_tests.items()})
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
    # every single source resolves before anything is written
    texts = {rel: resolve(src.read_text(), gen, f"tools/src/{src.relative_to(SOURCES).as_posix()}")
             for rel, src in files.items() if src.is_relative_to(SOURCES)}
    if Path("Makefile") in files:
        texts[Path("Makefile")] = _rewrite_makefile(files[Path("Makefile")].read_text(), gen)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        for rel, src in sorted(files.items()):
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if rel in texts:
                out.write_text(texts[rel])
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


def _embedded(action: str) -> int:
    try:
        if action == "--sync-embedded":
            for rel in sync_embedded():
                print(f"rewrote {rel.as_posix()} from tools/src/{rel.as_posix()}")
            return 0
        stale = stale_embedded()
    except ExportError as e:
        print(f"error: {e.cause}\n  fix: {e.fix}", file=sys.stderr)
        return 2
    if stale:
        print(f"error: the embedded tree's {', '.join(r.as_posix() for r in stale)} differ from tools/src "
              f"resolved for {EMBEDDED_GENERATION}\n"
              "  fix: edit tools/src/<same path>, then run tools/export-generation.sh --sync-embedded",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv in (["--check-embedded"], ["--sync-embedded"]):
        return _embedded(argv[0])
    if len(argv) not in (2, 3) or argv[0] in ("-h", "--help"):
        print("usage: export-generation.sh GEN DEST [FAULT]\n"
              "       export-generation.sh --check-embedded | --sync-embedded\n"
              f"  GEN:   {' | '.join(GENERATIONS)}\n"
              f"  FAULT: {' | '.join(FAULTS)} (written to DEST/.selftest-fault)\n"
              f"  --check-embedded: exit 1 when this tree's copies of tools/src differ from {EMBEDDED_GENERATION}'s\n"
              "  --sync-embedded:  rewrite them",
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
