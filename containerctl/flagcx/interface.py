"""What one FlagCX checkout offers, as its probe (probe.sh) read it from the files.

FlagCX changes its perf layout, the perf options, what `-p 1` prints, how the torch plugin takes
its adaptor and which submodules it needs from release to release. Nothing here guesses from a
version number: every answer comes from the probe's facts, and a fact the probe did not find is
"unknown", never a default borrowed from another release. This module is the only place that
names a FlagCX path or option; the stages, the oracle, the cluster export and the reports ask it.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROBE_SCRIPT = Path(__file__).with_name("probe.sh")
PROBE_PREFIX = "FLAGCX_PROBE "    # probe.sh's lines (stages/markers.py lists it with the others)

# how FlagCX names a perf test, a unit-test suite, a datatype or an op: the one pattern every
# validator of such a name uses (profiles, variants, the runner's --coll)
WORD_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class FlagCXInterface:
    root: str = ""
    commit: str | None = None
    versions: dict[str, str] = field(default_factory=dict)   # source -> version text
    source_fingerprint: str | None = None
    make_flags: list[str] = field(default_factory=list)      # USE_<X> the Makefile knows
    json_override: str | None = None                          # JSON_INCLUDE_DIR on newer mains
    perf_layout: str | None = None       # host_api | test_perf | None (no perf tests)
    perf_dir: str | None = None          # where `make` builds them
    perf_bin_dir: str | None = None
    perf_bin_prefix: str | None = None   # perf_ | test_
    perf_colls: list[str] = field(default_factory=list)
    perf_getopt: str | None = None       # the getopt string; None = unknown
    allreduce_prints: str = "unknown"    # rank | plain | none | unknown
    verdict_kinds: list[str] = field(default_factory=list)  # e.g. ["all-reduce", "reduce", "p2p"]
    other_prints: str = "unknown"        # rank | plain | none | same | unknown
    unittest_layout: str = "none"        # components | single | none
    unittest_components: list[str] = field(default_factory=list)
    unittest_components_optional: list[str] = field(default_factory=list)  # only with COMPILE_KERNEL=1
    make_vars_read: list[str] = field(default_factory=list)   # COMPILE_KERNEL … a Makefile tests
    gtest_system_fallback: bool = False
    torch_dir: str | None = None
    torch_adaptor_env: bool = False      # setup reads FLAGCX_ADAPTOR
    torch_adaptor_argv: bool = False     # setup understands --adaptor
    torch_example: str | None = None
    torch_root_package: bool = False
    submodules: dict[str, str] = field(default_factory=dict)  # json|googletest -> present|empty|absent|linked
    needs_json: bool = False
    system_json: str | None = None
    system_gtest_include: str | None = None
    system_gtest_lib: str | None = None
    system_gtest_src: str | None = None
    errors: list[str] = field(default_factory=list)

    # -- identity -------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The checkout's version and where it was read, best source first. Only for display and
        records: no behaviour depends on it."""
        for src in ("git", "header", "file", "pyproject", "changelog"):
            if self.versions.get(src):
                return f"{self.versions[src]} ({src})"
        return "unknown"

    # -- perf -----------------------------------------------------------------------------------
    def accepts(self, letter: str) -> bool | None:
        """Whether the perf binaries accept option -<letter> (None: the getopt string was not
        found, so nobody knows)."""
        if self.perf_getopt is None or self.perf_getopt == "":
            return None
        return letter in self.perf_getopt.replace(":", "")

    def perf_binary(self, coll: str) -> str:
        """Path of the perf binary for `coll`, relative to the checkout root."""
        if not self.perf_bin_dir or not self.perf_bin_prefix:
            raise LookupError("this FlagCX checkout has no perf tests (neither test/perf/host_api "
                              "nor test/perf has a Makefile)")
        return f"{self.perf_bin_dir}/{self.perf_bin_prefix}{coll}"

    def perf_args(self, *, begin, end, factor=2, warmup=5, iters=20, print_buffer=1,
                  dtype: str | None = "float", op: str | None = "sum", root: int | None = None,
                  extra: list[str] | tuple = ()) -> list[str]:
        """argv after the binary. -d/-o only where this checkout's getopt has them: older
        releases reject them ("invalid option -- 'd'"), newer ones sweep every type and op
        without them."""
        a = ["-b", str(begin), "-e", str(end), "-f", str(factor), "-w", str(warmup),
             "-n", str(iters), "-p", str(int(print_buffer))]
        if dtype and self.accepts("d"):
            a += ["-d", str(dtype)]
        if op and self.accepts("o"):
            a += ["-o", str(op)]
        if root is not None and self.accepts("r"):
            a += ["-r", str(root)]
        return a + [str(x) for x in extra]

    def buffer_evidence(self, print_buffer: bool = True) -> str:
        """What correctness evidence a perf run of this checkout can print: `verdict+buffers`,
        `buffers`, or `none` — and the oracle says SKIP (not PASS) when it is `none`."""
        if not print_buffer or self.allreduce_prints == "none":
            return "none"
        if self.allreduce_prints == "unknown":
            return "unknown"
        return "verdict+buffers" if "all-reduce" in self.verdict_kinds else "buffers"

    # -- torch ----------------------------------------------------------------------------------
    def torch_install(self, adaptor: str) -> tuple[dict[str, str], list[str]]:
        """(environment, extra setup.py arguments) naming the adaptor ONE way: the variable where
        the checkout reads it (its --adaptor is consumed only without the variable, and with both
        setuptools fails on "option --adaptor not recognized"), else --adaptor."""
        if self.torch_adaptor_env:
            return {"FLAGCX_ADAPTOR": adaptor}, []
        if self.torch_adaptor_argv:
            return {}, ["--adaptor", adaptor]
        return {"FLAGCX_ADAPTOR": adaptor}, []

    # -- offline checkouts ----------------------------------------------------------------------
    def substitutions(self) -> tuple[list[dict], list[str]]:
        """For submodules a release tarball leaves empty: (what is substituted, what cannot be).
        Each substitution is {submodule, with, links: {path in the checkout: system path},
        make_vars}. The empty submodule is FILLED with links to the system's copy (so every
        Makefile rule that reads it — headers, googletest's own sources — finds what it wants),
        plus make variables where a Makefile points at files the submodule would only have after
        its own build (googletest's build/lib)."""
        subs: list[dict] = []
        problems: list[str] = []
        if self.submodules.get("json") in ("empty", "absent", "linked") and self.needs_json:
            if self.system_json:
                mv = {self.json_override: self.system_json} if self.json_override else {}
                subs.append({"submodule": "third-party/json", "with": f"{self.system_json}/nlohmann",
                             "links": {"third-party/json/single_include/nlohmann":
                                       f"{self.system_json}/nlohmann"},
                             "make_vars": mv})
            else:
                problems.append("third-party/json is empty and no system nlohmann/json.hpp was "
                                "found: install nlohmann-json3-dev in the image, or fill "
                                f"{self.root}/third-party/json (git submodule update --init)")
        if self.submodules.get("googletest") in ("empty", "absent", "linked") and \
                self.unittest_layout != "none":
            if self.system_gtest_include and self.system_gtest_lib:
                links = {}
                if self.system_gtest_src:
                    links = {"third-party/googletest/googletest":
                             f"{self.system_gtest_src}/googletest",
                             "third-party/googletest/googlemock":
                             f"{self.system_gtest_src}/googlemock"}
                mv = {"GTEST_INCLUDE": f"-I{self.system_gtest_include}",
                      "GTEST_LIB": self.system_gtest_lib}
                subs.append({"submodule": "third-party/googletest",
                             "with": (f"{self.system_gtest_src} (sources) + " if links else "")
                             + f"{self.system_gtest_include}/gtest + "
                               f"{self.system_gtest_lib}/libgtest", "links": links,
                             "make_vars": mv})
            else:
                problems.append("third-party/googletest is empty and no system gtest was found: "
                                "install libgtest-dev in the image, or fill "
                                f"{self.root}/third-party/googletest")
        return subs, problems

    def unittest_make_vars(self) -> dict[str, str]:
        subs, _ = self.substitutions()
        out: dict[str, str] = {}
        for s in subs:
            if s["submodule"] == "third-party/googletest":
                out.update(s["make_vars"])
        return out

    def build_make_vars(self) -> dict[str, str]:
        subs, _ = self.substitutions()
        out: dict[str, str] = {}
        for s in subs:
            if s["submodule"] == "third-party/json":
                out.update(s["make_vars"])
        return out

    # -- (de)serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FlagCXInterface":
        if not isinstance(d, dict):
            raise ValueError("a FlagCX interface record must be a mapping")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def describe(self) -> list[str]:
        """Human lines for logs and records."""
        ev = self.buffer_evidence()
        return [
            f"FlagCX {self.version}" + (f", commit {self.commit[:12]}" if self.commit else ""),
            f"perf: {self.perf_layout or 'none'}"
            + (f" ({self.perf_dir}, binaries {self.perf_bin_dir}/{self.perf_bin_prefix}<coll>)"
               if self.perf_dir else "")
            + f", options {self.perf_getopt or 'unknown'}, -p 1 prints {ev}",
            f"unit tests: {self.unittest_layout}"
            + (f" ({' '.join(self.unittest_components)})" if self.unittest_components else ""),
            f"torch plugin: {self.torch_dir or 'none'}"
            + (", adaptor via FLAGCX_ADAPTOR" if self.torch_adaptor_env else
               ", adaptor via --adaptor" if self.torch_adaptor_argv else ""),
            "submodules: " + ", ".join(f"{k} {v}" for k, v in sorted(self.submodules.items())),
        ]


_LIST_KEYS = {"make_flags", "perf_colls", "verdict_kinds", "unittest_components",
              "unittest_components_optional", "make_vars_read"}
_BOOL_KEYS = {"gtest_system_fallback", "torch_adaptor_env", "torch_adaptor_argv",
              "torch_root_package", "needs_json"}


def parse_probe(text: str) -> FlagCXInterface:
    """The probe's `FLAGCX_PROBE <key> <value>` lines → FlagCXInterface (other lines ignored)."""
    fx = FlagCXInterface()
    for raw in text.splitlines():
        if not raw.startswith(PROBE_PREFIX):
            continue
        key, _, value = raw[len(PROBE_PREFIX):].partition(" ")
        value = value.strip()
        if key.startswith("version_"):
            fx.versions[key[len("version_"):]] = value
        elif key.startswith("submodule_"):
            fx.submodules[key[len("submodule_"):]] = value
        elif key == "error":
            fx.errors.append(value)
        elif key in _LIST_KEYS:
            setattr(fx, key, value.split())
        elif key in _BOOL_KEYS:
            setattr(fx, key, value == "1")
        elif key == "perf_layout":
            fx.perf_layout = None if value == "none" else value
        elif key == "perf_getopt":
            fx.perf_getopt = value or None
        elif key in FlagCXInterface.__dataclass_fields__:
            setattr(fx, key, value or None)
    return fx


# FlagCX's INIT log (flagcx.cc, FLAGCX_DEBUG=INFO FLAGCX_DEBUG_SUBSYS=INIT) prints the
# cluster-to-cluster schedule of every communicator; a hybrid one has a round whose send or
# receive cluster is another cluster than the rank's own.
_C2C = re.compile(r"cluster (\d+) c2cSchedule\[(\d+)\] sendCluster (\d+) recvCluster (\d+)")


def hybrid_evidence(text: str) -> tuple[bool | None, str]:
    """(True, FlagCX's line) when its log shows a hybrid communicator (a schedule round to
    another cluster), (False, its line) when it logged a single-cluster schedule only, (None,
    why) when it logged no schedule at all (its INIT log was off)."""
    homo = None
    for m in _C2C.finditer(text):
        own, send, recv = int(m.group(1)), int(m.group(3)), int(m.group(4))
        line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end()) % (len(text) + 1)
                    or len(text)].strip()
        if send != own or recv != own:
            return True, line
        homo = homo or line
    if homo:
        return False, homo
    return None, ("FlagCX printed no c2cSchedule line (its INIT log is off: set FLAGCX_DEBUG=INFO "
                  "FLAGCX_DEBUG_SUBSYS=INIT)")


def assumed_oldest() -> FlagCXInterface:
    """What a job export writes when no checkout could be probed: the oldest perf layout
    (test/perf/test_<coll>, no -d/-o), marked as an assumption in `errors` so callers say so."""
    return FlagCXInterface(perf_layout="test_perf", perf_dir="test/perf", perf_bin_dir="test/perf",
                           perf_bin_prefix="test_", perf_getopt="b:e:f:w:n:p:r:s:R:h",
                           errors=["assumed: no FlagCX checkout was probed"])


def probe_local(path: Path | str, timeout: float = 60) -> FlagCXInterface:
    """Probe a checkout on this machine (the same script the stages run in the container)."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{p} is not a directory")
    out = subprocess.run(["bash", str(PROBE_SCRIPT), str(p)], capture_output=True, text=True,
                         timeout=timeout)
    return parse_probe(out.stdout)
