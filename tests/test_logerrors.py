"""First real error of a log, failure summaries, the NCCL adaptor mismatch line: on real H200 logs and
on planted excerpts in the tools' exact shapes (tests/fixtures/handwritten/logs)."""
from __future__ import annotations

from pathlib import Path

import pytest

from containerctl.results import logerrors as L

FIX = Path(__file__).parent / "fixtures"
LOGS = FIX / "handwritten" / "logs"
H = FIX / "h200"


@pytest.mark.parametrize("name,kind,needle", [
    ("build_nccl_adaptor.log", "nccl-api", "nccl_adaptor.cc:132:5: error: 'NCCL_DEV_COMM_REQUIREMENTS_INITIALIZER' was not declared"),
    ("link_mpi.log", "linker", "undefined reference to `MPI::Comm::Comm()'"),
    ("torch_adaptor_option.log", "setuptools", "error: option --adaptor not recognized"),
    ("torch_traceback.log", "python", "RuntimeError: flagcx error: cannot load _C"),
    ("mpirun_no_ssh.log", "mpirun", "FORCE-TERMINATE AT Not found:-13"),
    ("mpirun_not_found.log", "mpirun", "mpirun was unable to launch the specified application"),
    ("killed.log", "killed", "g++: fatal error: Killed signal terminated program cc1plus"),
    ("oom_signal9.log", "killed", "exited on signal 9 (Killed)"),
    ("pip_fail.log", "pip", "ERROR: Could not find a version that satisfies the requirement setuptools>=64"),
])
def test_first_error_on_planted_logs(name, kind, needle):
    e = L.first_error((LOGS / name).read_text())
    assert e is not None and e.kind == kind and needle in e.line, e
    assert (LOGS / name).read_text().splitlines()[e.lineno - 1].endswith(e.line)


def test_compiler_line_is_preferred_over_the_make_lines_around_it():
    text = (LOGS / "build_nccl_adaptor.log").read_text()
    e = L.first_error(text)
    assert e.lineno == 6 and "warning" not in e.line
    # with the compiler line gone, the make line is what is left
    rest = "\n".join(l for l in text.splitlines() if ": error:" not in l)
    assert L.first_error(rest).kind == "make" and "Error 1" in L.first_error(rest).line


def test_traceback_frames_are_not_the_error_and_prefixes_are_removed():
    e = L.first_error((LOGS / "torch_traceback.log").read_text())
    assert e.line == "RuntimeError: flagcx error: cannot load _C" and e.lineno == 6


def test_successful_logs_have_no_error():
    assert L.first_error((LOGS / "quiet_success.log").read_text()) is None
    for f in ("h200x2_torch.log", "h200x2_perf_all.log", "h200x2_v0.13.0_perf_p1.log", "h200x2_v0.13.0_torch.log"):
        assert L.first_error((H / f).read_text()) is None, f
    assert L.first_error("") is None


def test_real_unittest_build_log_names_the_missing_gtest_objects():
    e = L.first_error((H / "h200x2_v0.13.0_unit_build.log").read_text())
    assert e.kind == "make" and "No rule to make target" in e.line and "gtest-all.o" in e.line


def test_summarize_failure_has_error_tail_and_path():
    s = L.summarize_failure((LOGS / "link_mpi.log").read_text(), "/r/logs/perf.log")
    lines = s.splitlines()
    assert lines[0].startswith("first error (line 3, linker): ") and "undefined reference" in lines[0]
    assert lines[1] == "last lines:" and lines[-1] == "log: /r/logs/perf.log"
    assert lines[-2].strip().startswith("make: *** [Makefile:30") and len(lines) == 1 + 1 + 5 + 1
    empty = L.summarize_failure("", "/x.log")
    assert "empty" in empty and "first error" not in empty


def test_nccl_api_mismatch_fix_line():
    text = (LOGS / "build_nccl_adaptor.log").read_text()
    fix = L.nccl_api_mismatch(text, "2.28.9", "/opt/nccl")
    assert fix == ("this FlagCX release's NCCL adaptor does not match NCCL 2.28.9 found at /opt/nccl: use the NCCL "
                   "version this release was written for, or a newer FlagCX")
    unicode_quotes = "nccl_adaptor.cc:88:3: error: ‘ncclDevComm’ has no member named ‘lsaRank’\n"
    assert L.nccl_api_mismatch(unicode_quotes, "2.27.3") is not None
    assert L.nccl_api_mismatch((LOGS / "link_mpi.log").read_text(), "2.28.9") is None
    assert L.nccl_api_mismatch("foo.cc:1:1: error: 'bar' was not declared in this scope\n", "2.28.9") is None


# issue 20: v0.10.0 on a CUDA 13.0 toolkit stopped at a missing header, and the NCCL mismatch line
# blamed NCCL for it (the undeclared symbols after it follow from the header, not from NCCL)
MISSING_HEADER_LOG = """\
+ make USE_NVIDIA=1 DEVICE_HOME=/usr/local/cuda CCL_HOME=/var/tmp/nccl MPI_HOME=/usr/lib/x86_64-linux-gnu/openmpi -j16
NCCL_VERSION=2.28.9 CCL_HOME=/var/tmp/nccl
In file included from flagcx/adaptor/nvidia_adaptor.cc:3:
flagcx/adaptor/include/atomic_device.h:22:10: fatal error: cuda/atomic: No such file or directory
   22 | #include <cuda/atomic>
      |          ^~~~~~~~~~~~~
compilation terminated.
flagcx/adaptor/nccl_adaptor.cc:132:5: error: 'NCCL_DEV_COMM_REQUIREMENTS_INITIALIZER' was not declared in this scope
make: *** [Makefile:362: build/obj/adaptor/nvidia_adaptor.o] Error 1
"""


def test_missing_header_is_named_not_blamed_on_nccl():
    fix = L.nccl_api_mismatch(MISSING_HEADER_LOG, "2.28.9")
    assert fix is not None and fix.startswith("missing header cuda/atomic:"), fix
    assert "include/cccl" in fix and "NCCL" not in fix
    e = L.first_error(MISSING_HEADER_LOG)
    assert e is not None and "cuda/atomic: No such file or directory" in e.line


@pytest.mark.parametrize("header,needle", [
    ("nlohmann/json.hpp", "nlohmann-json3-dev"), ("gtest/gtest.h", "libgtest-dev"),
    ("mpi.h", "flagcx.mpi_home"), ("nccl.h", "flagcx.ccl_home"),
    ("foo/bar.h", "find the package or include path"),
])
def test_missing_header_says_where_it_comes_from(header, needle):
    line = f"src/x.cc:1:10: fatal error: {header}: No such file or directory"
    got = L.missing_header(line)
    assert got is not None and got.startswith(f"missing header {header}:") and needle in got
    assert L.missing_header("src/x.cc:1:1: error: 'x' was not declared in this scope") is None


def test_nccl_mismatch_still_found_when_it_is_the_first_error():
    text = ("nccl_adaptor.cc:132:5: error: 'NCCL_DEV_COMM_REQUIREMENTS_INITIALIZER' was not "
            "declared in this scope\nx.cc:1:10: fatal error: foo.h: No such file or directory\n")
    assert "NCCL 2.28.9" in L.nccl_api_mismatch(text, "2.28.9")


def test_real_v0_10_build_on_cuda13_after_the_cccl_path():
    """H100, CUDA 13.0, NCCL 2.28.9: with <cuda/atomic>'s CCCL path added by the build stage, the
    first error is the NCCL adaptor's, and that is what is named."""
    text = (FIX / "h100" / "v0.10.0_build_cuda13_nccl2.28.9.log").read_text()
    assert "which this CUDA toolkit keeps in /usr/local/cuda/include/cccl" in text
    assert "cuda/atomic: No such file" not in text
    fix = L.nccl_api_mismatch(text, "2.28.9")
    assert fix is not None and "NCCL 2.28.9" in fix and "missing header" not in fix
