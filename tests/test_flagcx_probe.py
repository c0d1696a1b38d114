"""The FlagCX probe reads a checkout's files and reports its interface. Each test builds a small
tree shaped like one FlagCX generation (facts: /work/shared/guide/flagcx-facts.md; shapes read
from the public release tags) — not FlagCX code, only the file names and the strings the probe
looks for — and checks what the probe concludes and what the stages would then do."""
from __future__ import annotations

from pathlib import Path

import pytest

from containerctl.flagcx import FlagCXInterface, parse_probe, probe_local

GETOPT_OLD = 'c = getopt_long(argc, argv, "b:e:f:w:n:p:r:s:R:h", longOpts, &i);'
GETOPT_MAIN = 'c = getopt_long(argc, argv, "b:e:f:w:n:p:r:s:R:o:d:h", longOpts,\n      &i);'
AR_V11 = '''printf("rank %d sendbuff = ", proc);
printf("rank %d recvbuff = ", proc);
printf("rank %d all-reduce correctness = %d\\n", proc, ok);
printf("rank %d reduce correctness = %d\\n", proc, ok);'''
AR_RUNBOOK = 'printf("sendbuff = ");\nprintf("recvbuff = ");'
AR_MAIN = 'printf("Comm size: %zu bytes;");'


def _w(root: Path, rel: str, text: str = "") -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def make_tree(root: Path, gen: str, json_filled: bool = False, gtest_filled: bool = False) -> Path:
    _w(root, "Makefile", "ifeq ($(USE_NVIDIA), 1)\nendif\nifeq ($(USE_KUNLUNXIN), 1)\nendif\n"
       + ("JSON_INCLUDE_DIR ?= $(abspath third-party/json/single_include)\n" if gen == "main" else ""))
    _w(root, "flagcx/core/x.cc", "#include <nlohmann/json.hpp>\n")
    (root / "third-party/json").mkdir(parents=True)
    (root / "third-party/googletest").mkdir(parents=True)
    if json_filled:
        _w(root, "third-party/json/single_include/nlohmann/json.hpp", "//")
    if gtest_filled:
        _w(root, "third-party/googletest/CMakeLists.txt", "#")
    getopt = GETOPT_MAIN if gen == "main" else GETOPT_OLD
    ar = {"runbook": AR_RUNBOOK, "v0.11": AR_V11, "v0.13": AR_V11, "main": AR_MAIN}[gen]
    _w(root, "test/tools.cc", getopt)
    if gen in ("runbook", "v0.11"):
        pdir = "test/perf"
        _w(root, f"{pdir}/Makefile", "MPI_LINK = -lmpi\n")
    else:
        pdir = "test/perf/host_api"
        _w(root, "test/perf/Makefile", "SUBDIRS := host_api\n")
        _w(root, f"{pdir}/Makefile", "include ../../make.inc\n")
        _w(root, "test/make.inc", "GTEST_DIR := $(PROJECT_ROOT)/third-party/googletest\n"
           + ("GTEST_DIR := /usr/src/googletest\n" if gen == "main" else ""))
    _w(root, f"{pdir}/test_allreduce.cpp", ar)
    _w(root, f"{pdir}/test_allgather.cpp", 'printf("sendbuff = ");' if gen != "main" else "")
    if gen == "runbook":
        pass
    elif gen == "v0.11":
        _w(root, "test/unittest/Makefile", "TARGET = main\n")
    else:
        _w(root, "test/unittest/Makefile", "COMPONENTS := adaptor core topo\n")
    if gen == "runbook":
        _w(root, "plugin/torch/setup.py", 'adaptor = os.environ.get("FLAGCX_ADAPTOR", "nvidia")\n'
           "if '--adaptor' in sys.argv: pass\n")
        _w(root, "plugin/torch/example/example.py", "#")
    else:
        _w(root, "plugin/torch/setup.py", "from _build_config import detect_adaptor\n")
        _w(root, "plugin/torch/_build_config.py",
           'adaptor = os.environ.get("FLAGCX_ADAPTOR", "").strip()\n'
           'if not adaptor and "--adaptor" in sys.argv: pass\n')
        _w(root, "plugin/torch/example/example.py", "#")
        _w(root, "setup.py", "sys.path.insert(0, 'plugin/torch')\nfrom _build_config import x\n")
        _w(root, "pyproject.toml", 'name = "flagcx"\nversion = "0.10.0"\n')
    return root


@pytest.mark.parametrize("gen,layout,binary,d_o,evidence,ut", [
    ("runbook", "test_perf", "test/perf/test_allreduce", False, "buffers", "none"),
    ("v0.11", "test_perf", "test/perf/test_allreduce", False, "verdict+buffers", "single"),
    ("v0.13", "host_api", "test/perf/host_api/build/bin/perf_allreduce", False,
     "verdict+buffers", "components"),
    ("main", "host_api", "test/perf/host_api/build/bin/perf_allreduce", True, "none",
     "components"),
])
def test_probe_generation(tmp_path, gen, layout, binary, d_o, evidence, ut):
    fx = probe_local(make_tree(tmp_path / gen, gen))
    assert fx.perf_layout == layout
    assert fx.perf_binary("allreduce") == binary
    args = fx.perf_args(begin="1K", end="1M")
    assert ("-d" in args and "-o" in args) is d_o
    assert ("-d" in args) is bool(fx.accepts("d"))
    assert fx.buffer_evidence() == evidence
    assert fx.buffer_evidence(print_buffer=False) == "none"
    assert fx.unittest_layout == ut
    assert "USE_NVIDIA" in fx.make_flags and "USE_KUNLUNXIN" in fx.make_flags
    assert fx.torch_dir == "plugin/torch" and fx.torch_example == "plugin/torch/example/example.py"
    # the adaptor goes one way only: never FLAGCX_ADAPTOR together with --adaptor
    env, argv = fx.torch_install("nvidia")
    assert env == {"FLAGCX_ADAPTOR": "nvidia"} and argv == []
    assert fx.submodules == {"json": "empty", "googletest": "empty"}


def test_probe_reads_version_sources_but_nothing_depends_on_them(tmp_path):
    fx = probe_local(make_tree(tmp_path / "t", "v0.13"))
    # v0.11.0's pyproject really says 0.10.0: the probe reports where a version came from
    assert fx.versions.get("pyproject") == "0.10.0"
    assert fx.version == "0.10.0 (pyproject)"
    fx2 = probe_local(make_tree(tmp_path / "u", "v0.11"))
    assert fx2.perf_layout != fx.perf_layout  # layout from files, not from the version text


def test_torch_argv_only_checkout(tmp_path):
    root = make_tree(tmp_path / "t", "v0.13")
    (root / "plugin/torch/_build_config.py").write_text('if "--adaptor" in sys.argv: pass\n')
    (root / "plugin/torch/setup.py").write_text("from _build_config import detect_adaptor\n")
    fx = probe_local(root)
    assert fx.torch_install("klx") == ({}, ["--adaptor", "klx"])


def test_offline_substitutions(tmp_path):
    fx = probe_local(make_tree(tmp_path / "t", "v0.13"))
    fx.system_json, fx.system_gtest_include, fx.system_gtest_lib = None, None, None
    subs, problems = fx.substitutions()
    assert subs == [] and len(problems) == 2
    assert "third-party/json" in problems[0] and "nlohmann-json3-dev" in problems[0]
    assert "libgtest-dev" in problems[1]
    fx.system_json = "/usr/include"
    fx.system_gtest_include, fx.system_gtest_lib = "/usr/include", "/usr/lib/x86_64-linux-gnu"
    subs, problems = fx.substitutions()
    assert problems == [] and {s["submodule"] for s in subs} == {"third-party/json",
                                                                 "third-party/googletest"}
    # v0.13's make.inc hard-codes the submodule: the command line overrides it
    assert fx.unittest_make_vars() == {"GTEST_INCLUDE": "-I/usr/include",
                                       "GTEST_LIB": "/usr/lib/x86_64-linux-gnu"}
    assert fx.build_make_vars() == {}   # the default include path finds /usr/include/nlohmann
    main = probe_local(make_tree(tmp_path / "m", "main"))
    main.system_json = "/usr/include"
    main.system_gtest_include, main.system_gtest_lib = "/usr/include", "/usr/lib/x86_64-linux-gnu"
    assert main.build_make_vars() == {"JSON_INCLUDE_DIR": "/usr/include"}
    # once the submodule is filled with links, main's make.inc takes it and looks for
    # third-party/googletest/build/lib, which only the submodule's own build makes: override
    assert main.unittest_make_vars() == {"GTEST_INCLUDE": "-I/usr/include",
                                         "GTEST_LIB": "/usr/lib/x86_64-linux-gnu"}
    main.system_gtest_src = "/usr/src/googletest"
    links = {k: v for s in main.substitutions()[0] for k, v in s["links"].items()}
    assert links == {
        "third-party/json/single_include/nlohmann": "/usr/include/nlohmann",
        "third-party/googletest/googletest": "/usr/src/googletest/googletest",
        "third-party/googletest/googlemock": "/usr/src/googletest/googlemock"}


def test_filled_submodules_need_nothing(tmp_path):
    fx = probe_local(make_tree(tmp_path / "t", "v0.13", json_filled=True, gtest_filled=True))
    assert fx.substitutions() == ([], [])


def test_no_perf_tests(tmp_path):
    (tmp_path / "x").mkdir()
    fx = probe_local(tmp_path / "x")
    assert fx.perf_layout is None and fx.unittest_layout == "none"
    with pytest.raises(LookupError):
        fx.perf_binary("allreduce")


def test_unknown_getopt_adds_no_options():
    fx = parse_probe("FLAGCX_PROBE perf_layout host_api\nFLAGCX_PROBE perf_getopt \n")
    assert fx.accepts("d") is None
    assert "-d" not in fx.perf_args(begin="1K", end="2K")


def test_interface_roundtrip(tmp_path):
    fx = probe_local(make_tree(tmp_path / "t", "main"))
    again = FlagCXInterface.from_dict(fx.to_dict())
    assert again == fx
    with pytest.raises(ValueError):
        FlagCXInterface.from_dict(["not", "a", "dict"])


def test_probe_error_on_missing_dir():
    fx = parse_probe("FLAGCX_PROBE error cannot enter /nope\n")
    assert fx.errors == ["cannot enter /nope"]


def test_torch_stage_gets_the_adaptor_one_way(tmp_path):
    """The rendered torch stage names the adaptor through FLAGCX_ADAPTOR for checkouts that read
    it, through --adaptor only for those that do not — never both."""
    from containerctl.profiles import load_profile
    from containerctl.stages.catalog import get_def
    from containerctl.stages.render import render
    from containerctl.stages.context import make_context
    prof = load_profile("nvidia-h200", site=False)
    fx = probe_local(make_tree(tmp_path / "t", "v0.13"))
    env = make_context(prof, {}, fx)["env"]
    assert env["CCTL_TORCH_ADAPTOR_ENV"] == "nvidia" and env["CCTL_TORCH_SETUP_ARGS"] == ""
    script = render(get_def("torch"), make_context(prof, {}, fx))
    assert "export CCTL_TORCH_ADAPTOR_ENV=nvidia" in script
    fx.torch_adaptor_env = False   # a checkout that only knows --adaptor
    env = make_context(prof, {}, fx)["env"]
    assert env["CCTL_TORCH_ADAPTOR_ENV"] == "" and env["CCTL_TORCH_SETUP_ARGS"] == "--adaptor\nnvidia"


def test_submodule_filled_by_links_is_reported_linked_and_refilled(tmp_path):
    """A checkout whose empty submodule containerctl filled with links (an earlier build in the
    same container) still records the substitution on the next build."""
    root = make_tree(tmp_path / "t", "v0.13")
    (root / "third-party/googletest/googletest").symlink_to("/usr/src/googletest/googletest")
    fx = probe_local(root)
    assert fx.submodules["googletest"] == "linked"
    fx.system_gtest_include, fx.system_gtest_lib = "/usr/include", "/usr/lib/x86_64-linux-gnu"
    subs, problems = fx.substitutions()
    assert any(s["submodule"] == "third-party/googletest" for s in subs) and not problems
