"""The stage scripts' line protocol has one vocabulary: common.sh's `cctl_mark`/`cctl_tag` emit it,
containerctl/stages/markers.py reads it. Real bash runs the real common.sh; its output is parsed by
the real readers (markers.py, checks.py, ui/filters.py). And no stage def spells a marker by hand."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from containerctl.stages import checks as C
from containerctl.stages import markers as M
from containerctl.ui import filters

DEFS = Path(M.__file__).with_name("defs")
COMMON = DEFS / "common.sh"


def bash(tmp_path: Path, script: str, check: bool = True) -> subprocess.CompletedProcess:
    """`script` after the real common.sh (as every stage script starts), in real bash."""
    full = f'CCTL_DIR={tmp_path}/cctl\n{COMMON.read_text()}\n{script}\n'
    p = subprocess.run(["bash", "-c", full], capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def emit(tmp_path: Path, *args: str) -> str:
    q = " ".join("'" + a.replace("'", "'\\''") + "'" for a in args)
    return bash(tmp_path, f"cctl_mark {q}").stdout


# one example per kind: (kind, args)
EXAMPLES = [
    ("begin", ("coll=allreduce", "nranks=2")),
    ("begin", ("coll=alltoall", "missing=/w/FlagCX/test/perf/host_api/build/bin/perf_alltoall")),
    ("end", ("coll=allreduce", "rc=0")),
    ("unittest", ("none",)),
    ("ut-build", ("rc=2",)),
    ("ut-skip", ("bin=core_unit_tests",)),
    ("ut-run", ("bin=core_unit_tests", "kind=unit")),
    ("ut-end", ("bin=core_unit_tests", "rc=1")),
    ("ut-xml", ("bin=core_mpi_tests", "file=core_mpi_tests.0.xml")),
    ("ut-xml-end", ()),
    ("ut-missing", ("comp=device_api", "want=any")),
    ("dep", ("mpi", "status=found", "home=/usr mpirun=/usr/bin/mpirun flavour=openmpi")),
    ("dep", ("gtest", "status=missing", "")),
    ("commit", ("0123456789abcdef0123456789abcdef01234567",)),
    ("nccl", ("2.28.9", "CCL_HOME=/var/tmp/nccl")),
    ("torch", ("2.6.0+cu124",)),
    ("mpich", ("version=4.2.3", "home=/opt/mpich")),
    ("bin", ("coll=allreduce", "layout=host_api", "wdir=/w/b", "path=/w/b/perf_allreduce")),
    ("bin", ("coll=gather", "missing=/w/b/perf_gather")),
    ("stdbuf", ("/usr/bin/stdbuf",)),
    ("rankout", ("/root/.cctl/rankout.sh",)),
    ("hostenv", ("LD_LIBRARY_PATH=/w/FlagCX/build/lib:/opt/mpich/lib",)),
]


def test_every_kind_has_an_example_and_the_shell_knows_exactly_these_kinds():
    kinds = set(M.BLOCK_KINDS) | set(M.LINE_PREFIX)
    assert {k for k, _ in EXAMPLES} == kinds
    body = re.search(r"^cctl_mark\(\) \{\n(.*?)^\}", COMMON.read_text(), re.M | re.S).group(1)
    shell_kinds = {w for arm in re.findall(r"^\s+([\w|-]+)\)", body, re.M) for w in arm.split("|")}
    assert shell_kinds == kinds


@pytest.mark.parametrize("kind,args", EXAMPLES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(EXAMPLES)])
def test_shell_emitter_prints_what_markers_py_names(tmp_path, kind, args):
    out = emit(tmp_path, kind, *args)
    assert out == M.mark_line(kind, *args) + "\n"
    line = out.rstrip("\n")
    # a marker line is protocol (never on a person's screen) unless it is a fact for people too
    assert filters.is_protocol_line(line) is (kind not in M.SHOWN_KINDS)
    assert filters.is_shown(line) is (kind in M.SHOWN_KINDS)


def test_coll_markers_round_trip(tmp_path):
    out = bash(tmp_path, """
      cctl_mark begin coll=allreduce nranks=2
      echo "Comm size: 8 bytes; Elapsed time: 0.000010 sec; Algo bandwidth: 0.1 GB/s; Bus bandwidth: 0.1 GB/s"
      cctl_mark end coll=allreduce rc=0
      cctl_mark begin coll=alltoall "missing=/w/perf_alltoall"
      cctl_mark begin coll=broadcast nranks=2
      cctl_mark end coll=broadcast rc=137
    """).stdout
    assert list(M.split_colls(out)) == ["allreduce", "alltoall", "broadcast"]
    assert M.coll_ends(out) == {"allreduce": 0, "broadcast": 137}
    assert M.coll_missing(out) == {"alltoall": "/w/perf_alltoall"}
    lines = out.splitlines()
    assert M.parse_coll_marker(lines[0]) == ("start", "allreduce", {"nranks": "2"})
    assert M.parse_coll_marker(lines[2]) == ("end", "allreduce", {"rc": "0"})
    assert M.parse_coll_marker(lines[1]) is None
    assert "=== containerctl" not in M.strip_coll_ends(M.split_colls(out)["allreduce"])
    # the perf parser judges the same text: one failed launcher, one binary not built
    _, checks, _ = C.run_parser("perf", out, {"nranks": 2})
    by = {c["name"]: c for c in checks}
    assert by["alltoall built"]["ok"] is False and "/w/perf_alltoall" in by["alltoall built"]["detail"]
    assert by["broadcast ran"] == {"name": "broadcast ran", "ok": False, "detail": "the launcher exited 137"}
    assert by["allreduce output"]["ok"] is True


def test_rank_tags_round_trip_through_the_shipped_dump_ranks(tmp_path):
    """dump_ranks as the hetero stage ships it to another host (`declare -f dump_ranks cctl_tag`)
    into a bare bash that never saw common.sh: rank files come back tagged, judged rank by rank."""
    d = tmp_path / "ranks"
    d.mkdir()
    (d / "rank.0.out").write_text("I am 0\nsendbuff = 1 2\n")
    (d / "rank.10.out").write_text("I am 10\n")
    (d / "rank.2.out").write_text("I am 2\n")
    shipped = bash(tmp_path, "declare -f dump_ranks cctl_tag").stdout.rstrip("\n")   # as $(…) gives it
    p = subprocess.run(["bash", "-c", f"{shipped}; dump_ranks {d}"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == M.rank_tag(0) + "I am 0"
    assert M.rank_lines(p.stdout) == {0: ["I am 0", "sendbuff = 1 2"], 2: ["I am 2"], 10: ["I am 10"]}
    assert C.judged_text("live stream\n" + p.stdout) == "I am 0\nsendbuff = 1 2\nI am 2\nI am 10\n"


def test_unittest_markers_and_xml_tag_round_trip(tmp_path):
    xml = ('<?xml version="1.0"?>\n<testsuites tests="1" failures="0">\n<testsuite name="s" tests="1">'
           '<testcase name="a" classname="s" status="run" result="completed"></testcase></testsuite>\n'
           "</testsuites>\n")
    (tmp_path / "core_unit_tests.xml").write_text(xml)
    out = bash(tmp_path, f"""
      cctl_mark ut-build rc=0
      cctl_mark ut-run bin=core_unit_tests kind=unit
      echo "[  PASSED  ] 1 test."
      cctl_mark ut-end bin=core_unit_tests rc=0
      cctl_mark ut-xml bin=core_unit_tests file=core_unit_tests.xml
      sed "s/^/$(cctl_tag xml)/" {tmp_path}/core_unit_tests.xml; echo
      cctl_mark ut-xml-end
      cctl_mark ut-missing comp=device_api want=any
    """).stdout
    kinds = [(m.group(1), M.kv(m.group(2))) for m in M.UT_MARK_RE.finditer(out)]
    assert kinds == [("ut-build", {"rc": "0"}), ("ut-run", {"bin": "core_unit_tests", "kind": "unit"}),
                     ("ut-end", {"bin": "core_unit_tests", "rc": "0"}),
                     ("ut-xml", {"bin": "core_unit_tests", "file": "core_unit_tests.xml"}),
                     ("ut-xml-end", {}), ("ut-missing", {"comp": "device_api", "want": "any"})]
    body = out.split(M.mark_line("ut-xml", "bin=core_unit_tests", "file=core_unit_tests.xml"))[1]
    assert M.untag_xml(body.split(M.mark_line("ut-xml-end"))[0]).strip() == xml.strip()
    metrics, checks, _ = C.run_parser("unittest", out, {})
    by = {c["name"]: c for c in checks}
    assert by["unittest core_unit_tests"]["ok"] is True
    assert by["unittest device_api build"]["ok"] is False
    none = emit(tmp_path, "unittest", "none")
    assert C.run_parser("unittest", none, {})[0]["unittest"]["layout"] == "none"


def test_line_markers_round_trip(tmp_path):
    out = bash(tmp_path, """
      cctl_mark dep mpi status=found "home=/usr flavour=openmpi"
      cctl_mark dep gtest status=missing ""
      cctl_mark dep ssh status=absent note=mpirun_gets_--mca_plm_rsh_agent_false
      cctl_mark commit abc123
      cctl_mark nccl 2.28.9 CCL_HOME=/x
      cctl_mark torch 2.6.0
      cctl_mark hostenv "PATH=/opt/mpich/bin:/usr/bin"
      cctl_mark bin coll=allreduce layout=host_api wdir=/w path=/w/perf_allreduce
    """).stdout
    lines = out.splitlines()
    assert M.parse_dep(lines[0]) == ("mpi", "found", "home=/usr flavour=openmpi")
    assert M.parse_dep(lines[1]) == ("gtest", "missing", "")
    assert filters.parse_dep(lines[2]) == ("ssh", "absent", "note=mpirun_gets_--mca_plm_rsh_agent_false")
    metrics, checks, repro = C.run_parser("deps", out, {})
    assert metrics["deps"]["mpi"] == {"status": "found", "home": "/usr", "flavour": "openmpi"}
    assert [c["ok"] for c in checks] == [True, False]
    assert repro["deps"] == {"mpi": {"home": "/usr", "flavour": "openmpi"}}
    assert (M.first_value("commit", out), M.first_value("nccl", out), M.first_value("torch", out)) == \
        ("abc123", "2.28.9", "2.6.0")
    assert C.run_parser("build", out + "libflagcx.so\n", {})[0] == {"flagcx_commit": "abc123"}
    assert M.line_value("hostenv", lines[6]) == "PATH=/opt/mpich/bin:/usr/bin"
    assert M.kv(M.line_value("bin", lines[7])) == {"coll": "allreduce", "layout": "host_api",
                                                   "wdir": "/w", "path": "/w/perf_allreduce"}
    assert M.line_value("bin", lines[6]) is None


def test_unknown_kind_is_refused_with_its_name(tmp_path):
    p = bash(tmp_path, "cctl_mark colls coll=x", check=False)
    assert p.returncode == 2 and "unknown marker kind 'colls'" in p.stderr and p.stdout == ""
    p = bash(tmp_path, "cctl_tag ranks 1", check=False)
    assert p.returncode == 2 and p.stdout == ""
    with pytest.raises(ValueError):
        M.mark_line("colls")


# ------------------------------------------------------------------ no marker spelled by hand
_SPELLED = re.compile(
    r"(?<![\w$])(?:" + "|".join(re.escape(p.strip()) for p in
                                [*M.LINE_PREFIX.values(), M.BLOCK_OPEN, M.XML_TAG, "CCTL_RANK"]) + r")")


def hand_spelled(text: str) -> list[str]:
    """The lines of a script that print a marker themselves instead of calling cctl_mark/cctl_tag
    (the two functions' own bodies in common.sh excepted)."""
    text = re.sub(r"^cctl_(?:mark|tag)\(\) \{\n.*?^\}\n", "", text, flags=re.M | re.S)
    return [ln for ln in text.splitlines() if _SPELLED.search(ln) and not ln.lstrip().startswith("#")]


def test_scanner_catches_a_hand_spelled_marker():
    assert hand_spelled('  echo "=== containerctl coll=$coll nranks=2 ==="\n')
    assert hand_spelled("  printf 'DEP %s status=found\\n' x\n")
    assert hand_spelled('  sed "s/^/CCTL_RANK$r| /" f\n')
    assert hand_spelled('  echo "FLAGCX_COMMIT=$(git rev-parse HEAD)"\n')
    assert hand_spelled('  echo "CCTL_HOSTENV PATH=$PATH"\n')
    assert not hand_spelled('  cctl_mark begin "coll=$coll"\n  printf \'export CCTL_NCCL_VERSION=%q\\n\' x\n')


@pytest.mark.parametrize("path", sorted(DEFS.glob("*.yaml")) + [COMMON], ids=lambda p: p.name)
def test_no_stage_def_spells_a_marker_by_hand(path):
    assert hand_spelled(path.read_text()) == []


def test_hetero_build_lines_round_trip_through_the_cluster_reader(tmp_path):
    """hetero-build's `cctl_mark bin|stdbuf|rankout|hostenv` lines, as cluster/run.py reads them."""
    from containerctl.cluster.inventory import Host, HostEntry
    from containerctl.cluster.run import read_build_output
    from containerctl.profiles import load_profile
    out = bash(tmp_path, """
      cctl_mark mpich version=4.2.3 home=/opt/mpich
      cctl_mark bin coll=allreduce layout=host_api wdir=/w/bin path=/w/bin/perf_allreduce
      cctl_mark bin coll=gather missing=/w/bin/perf_gather
      cctl_mark stdbuf /usr/bin/stdbuf
      cctl_mark rankout /root/.cctl/rankout.sh
      cctl_mark hostenv "PATH=/opt/mpich/bin:/usr/bin"
      v=FLAGCX_DEBUG FLAGCX_DEBUG="INFO and more"; cctl_mark hostenv "$v=${!v}"
    """).stdout
    h = Host(entry=HostEntry(name="h1", profile="cpu-selftest"), profile=load_profile("cpu-selftest"),
             engine=None, container="c")
    read_build_output(h, out)
    assert h.bins == {"allreduce": ("host_api", "/w/bin", "/w/bin/perf_allreduce")}
    assert (h.stdbuf, h.rankout) == ("/usr/bin/stdbuf", "/root/.cctl/rankout.sh")
    assert h.env["PATH"] == "/opt/mpich/bin:/usr/bin" and h.env["FLAGCX_DEBUG"] == "INFO and more"


def test_the_train_assets_markers_are_the_named_ones():
    """The train asset runs as a script of its own in the container (it cannot import containerctl):
    the lines it prints and results/train.py reads are the ones markers.py names."""
    from containerctl.results import train
    asset = (Path(M.__file__).parent / "assets" / "flagscale_train.py").read_text()
    assert train.LOG_MARK == M.TRAIN_LOG and M.TRAIN_LOG in asset and M.TRAIN_LOG_TAIL in asset
    for tag in (M.TRAIN_EVENT, M.TRAIN_FLAGCX_TAG, M.TRAIN_TAIL_TAG):
        assert tag in asset and tag in Path(train.__file__).read_text()
