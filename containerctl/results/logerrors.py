"""The first real error in a stage log, and a short failure summary built around it.

One extractor shared by every stage: a build log of 4000 lines that ends in `make: *** [...] Error 2`
should be reported by the compiler line that caused it; a torch run by its traceback's last line; an
mpirun by the line that says why the launch failed. Pure text functions (re only).

Kinds, strongest first when several lines qualify: a line of a *strong* kind (compiler, linker,
nccl-api, setuptools, pip, python, mpirun, killed) wins over any `make: *** … Error N` line, which
wins over a *generic* line that merely says error/fatal/failed. Among lines of the winning class the
earliest is the first real error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .parsers import strip_prefix

KINDS = ("compiler", "linker", "make", "setuptools", "pip", "python", "mpirun", "killed", "nccl-api", "generic")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class ErrorLine:
    line: str  # the line, launcher prefixes and colour codes removed, stripped
    lineno: int  # 1-based line number in the text
    kind: str  # one of KINDS

    def __str__(self) -> str:
        return f"line {self.lineno}: {self.line}"


# a C/C++/CUDA compiler diagnostic: file:line[:col]: [fatal ]error: … (gcc, clang, nvcc)
_COMPILER = re.compile(r"^\S.*?:\d+(?::\d+)?:\s+(?:fatal\s+)?error:\s|^\S+\(\d+\):\s+error\b|^(?:cc1plus|nvcc|g\+\+|gcc|c\+\+): (?:fatal )?error:")
_NCCL_SYM = re.compile(r"[‘'`\"]((?:struct\s+|enum\s+)?(?:NCCL_|nccl)\w*)[’'`\"]")
_NCCL_ERR = re.compile(r"was not declared|is not a member|has no member|undeclared|does not name a type|"
                       r"no matching function|too (?:few|many) arguments|cannot convert|incomplete type|"
                       r"has not been declared|is not a type", re.IGNORECASE)
_LINKER = re.compile(r"undefined reference to|(?:^|\s|/)ld(?:\.\w+)?: (?:cannot find|error)|collect2: error|"
                     r"cannot find -l\S+|relocation .* against|multiple definition of")
_MAKE = re.compile(r"^(?:g?make)(?:\[\d+\])?: \*\*\* (?P<what>.*)")
_SETUPTOOLS = re.compile(r"^error: (?:option|command|invalid command|Setup script exited|[A-Za-z].*not recognized)|"
                         r"^error: [a-z_]+ .*(?:failed|not found)")
_PIP = re.compile(r"^ERROR: |error: subprocess-exited-with-error|error: metadata-generation-failed|"
                  r"No matching distribution found|Could not find a version that satisfies")
_PY_EXC = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Interrupt|Exit|Failure|Warning)\b(?::|$)|"
                     r"^[A-Z]\w*(?:Error|Exception)$")
_MPIRUN = re.compile(r"mpirun was unable to|mpirun noticed that|mpirun has exited due to|ORTE .*FORCE-TERMINATE|"
                     r"FORCE-TERMINATE AT|There are not enough slots available|ORTE was unable to|"
                     r"prterun was unable|Primary job\s+terminated normally, but \d+ process returned|"
                     r"was unable to launch|MPI_ABORT was invoked|BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES|"
                     r"HYDU_\w+ .*error|\[mpiexec@.*\] .*error", re.IGNORECASE)
_KILLED = re.compile(r"^Killed\b|\bKilled\s+\S|exited on signal 9\b|\bsignal 9\b|SIGKILL|Out of memory: Killed|"
                     r"oom-kill|\bsignal: killed\b|Terminated by signal 9", re.IGNORECASE)
_GENERIC = re.compile(r"(?:^|[\s\[(])(?:error|fatal|failed|failure|abort(?:ed)?|segmentation fault|core dumped)\b"
                      r"(?!\s*(?:=\s*0|:\s*0\b|s?\s*=))", re.IGNORECASE)
_NOT_ERROR = re.compile(r"-Werror|-Wno-error|\b0 errors?\b|errors?=0|\bwarning:|error\.h\b|_error\b|\berror_|"
                        r"NCCL_DEBUG|FLAGCX_DEBUG|\bno errors?\b|Error \(ignored\)|\[\s+(?:OK|RUN|PASSED)\s+\]|"
                        r"#\s*(?:include|define)|^\s*\d+\s*\|", re.IGNORECASE)
_TRACEBACK = "Traceback (most recent call last):"


def _clean(text: str) -> list[str]:
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return [strip_prefix(l).rstrip() for l in text.split("\n")]


def _nccl_symbol(line: str) -> str | None:
    if not _NCCL_ERR.search(line):
        return None
    m = _NCCL_SYM.search(line)
    return m.group(1).split()[-1] if m else None


def _classify(line: str) -> str | None:
    s = line.strip()
    if not s:
        return None
    if _KILLED.search(s):  # before the rest: `g++: fatal error: Killed signal …`, `mpirun noticed … signal 9`
        return "killed"
    if _COMPILER.search(s):
        return "nccl-api" if _nccl_symbol(s) else "compiler"
    if _LINKER.search(s):
        return "linker"
    if _MPIRUN.search(s):
        return "mpirun"
    if _PIP.search(s):
        return "pip"
    if _SETUPTOOLS.search(s):
        return "setuptools"
    if _MAKE.search(s):
        return "make"
    if _NOT_ERROR.search(s):
        return None
    if _GENERIC.search(s):
        return "generic"
    return None


_STRONG = {"compiler", "linker", "nccl-api", "setuptools", "pip", "python", "mpirun", "killed"}


def _candidates(lines: list[str]) -> list[ErrorLine]:
    out: list[ErrorLine] = []
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith(_TRACEBACK):
            # the traceback's last line (the exception) is the error; the frames in between are not
            j = i + 1
            last = None
            while j < len(lines):
                t = lines[j]
                if not t.strip():
                    j += 1
                    continue
                if t.startswith((" ", "\t")) or t.strip().startswith(_TRACEBACK) or t.strip().startswith(("During handling", "The above exception")):
                    j += 1
                    continue
                last = j
                break
            if last is not None:
                out.append(ErrorLine(lines[last].strip(), last + 1, "python"))
                i = last + 1
                continue
            i = j
            continue
        if _PY_EXC.search(s) and ":" in s and not _COMPILER.search(s) and i and lines[i - 1].startswith((" ", "\t")):
            out.append(ErrorLine(s, i + 1, "python"))  # the end of a traceback whose head was cut off
            i += 1
            continue
        kind = _classify(s)
        if kind:
            out.append(ErrorLine(s, i + 1, kind))
        i += 1
    return out


def first_error(text: str) -> ErrorLine | None:
    """The first real error line of a log (see the module doc for what 'real' means), or None."""
    cands = _candidates(_clean(text or ""))
    for cls in (_STRONG, {"make"}, {"generic"}):
        hit = [c for c in cands if c.kind in cls]
        if hit:
            if cls == {"make"}:
                # `make: *** No rule to make target …` says what is wrong; `… Error 2` only that a
                # sub-make failed: prefer the innermost (first) one that names a cause
                named = [c for c in hit if "No rule to make target" in c.line or "missing separator" in c.line]
                return (named or hit)[0]
            return hit[0]
    return None


def summarize_failure(text: str, log_path: str | None, tail: int = 5) -> str:
    """`first error (line N): …`, then the last `tail` non-empty lines, then the log's path."""
    lines = _clean(text or "")
    err = first_error(text or "")
    parts: list[str] = []
    if err:
        parts.append(f"first error (line {err.lineno}, {err.kind}): {err.line}")
    last = [l for l in lines if l.strip()][-tail:]
    if last:
        parts.append("last lines:")
        parts += ["  " + l for l in last]
    else:
        parts.append("the log is empty")
    if log_path:
        parts.append(f"log: {log_path}")
    return "\n".join(parts)


def nccl_api_mismatch(text: str, nccl_version: str | None, nccl_home: str | None = None) -> str | None:
    """A fix line when the build failed on a compiler error naming an NCCL symbol (NCCL_*, nccl*) that
    is undeclared or not a member: FlagCX releases track NCCL's device API (v0.9.0's adaptor does not
    compile against NCCL 2.28.9). None when the log shows no such error."""
    # only the FIRST compiler error is a cause; the errors after it may follow from it (a missing
    # header leaves every symbol it declares undeclared: that is not an NCCL mismatch)
    first = next((l.strip() for l in _clean(text or "") if _COMPILER.search(l.strip())), None)
    if first is None:
        return None
    hdr = missing_header(first)
    if hdr is not None:
        return hdr
    if _nccl_symbol(first):
        ver = nccl_version or "(version unknown)"
        where = f" found at {nccl_home}" if nccl_home else ""
        return (f"this FlagCX release's NCCL adaptor does not match NCCL {ver}{where}: use the NCCL version this "
                f"release was written for, or a newer FlagCX")
    return None


_MISSING = re.compile(r"fatal error:\s*([\w./+-]+):\s*No such file or directory")
# where a header a FlagCX build includes comes from (the package, or where a toolkit keeps it)
_HEADER_HOME = [
    (re.compile(r"^(?:cuda/|nv/|cub/|thrust/)"),
     "it is CUDA's libcu++/CCCL: CUDA 13 keeps it under $CUDA_HOME/include/cccl (not on g++'s "
     "path: add -I$CUDA_HOME/include/cccl, e.g. CPLUS_INCLUDE_PATH=/usr/local/cuda/include/cccl; the "
     "build stage adds it where the checkout includes such a header and the toolkit keeps it there), "
     "CUDA 12 under $CUDA_HOME/include"),
    (re.compile(r"^nlohmann/"), "it comes from nlohmann-json3-dev (or FlagCX's third-party/json "
                                "submodule)"),
    (re.compile(r"^gtest/|^gmock/"), "it comes from libgtest-dev (or FlagCX's third-party/googletest "
                                     "submodule)"),
    (re.compile(r"^mpi\.h$"), "it comes from the MPI development package (libopenmpi-dev / mpich): set "
                              "flagcx.mpi_home to where include/mpi.h lies"),
    (re.compile(r"^nccl\.h$|^nccl_"), "it comes from NCCL (libnccl-dev, or the nvidia-nccl wheel's "
                                     "include/): set flagcx.ccl_home"),
    (re.compile(r"^cuda_runtime|^cuda\.h$"), "it comes from the CUDA toolkit: set flagcx.device_home to "
                                             "it (e.g. /usr/local/cuda)"),
]


def missing_header(line: str) -> str | None:
    """'missing header X: <where it comes from>' for a compiler line that says a header was not
    found; None for any other line."""
    m = _MISSING.search(line or "")
    if not m:
        return None
    h = m.group(1)
    where = next((w for rx, w in _HEADER_HOME if rx.search(h)), "no package is known for it here: "
                 "find the package or include path that provides it")
    return f"missing header {h}: {where}"
