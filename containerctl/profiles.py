"""Platform profiles: YAML files validated by pydantic, with `extends:`, a site overlay and
`--set a.b=c`. Every error names the file, the line and the key, and suggests the nearest key.

Search order for a profile name: ./profiles, $CONTAINERCTL_PROFILE_PATH (colon separated),
~/.config/containerctl/profiles, then the built-in profiles. A path to a .yaml file works too.
"""
from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import paths, sizes, yamlio
from .errors import NotFound, ProfileError, UsageError

# ---------------------------------------------------------------------------------------------
# sizes

from .bounds import MAX_FACTOR, MAX_ITERS, MAX_PERF_BYTES, MAX_TIMEOUT_S  # noqa: E402,F401


# '128G', '64g', '100gb', '8MiB', 1024 → bytes: the one parser (sizes.py), 0 allowed, truncated
parse_size = sizes.parse_size


def check_perf_size(value: Union[str, int], what: str = "perf size") -> int:
    """A perf message size, in bytes, at most MAX_PERF_BYTES."""
    n = parse_size(value, what)
    if n > MAX_PERF_BYTES:
        raise ValueError(f"{what} {value!r} is above 1T (no device holds a buffer that large): "
                         "use a size such as 4G")
    return n


def check_perf_range(begin: Union[str, int], end: Union[str, int]) -> None:
    """-b ≤ -e: a sweep whose first size is above its last measures nothing."""
    b, e = check_perf_size(begin, "perf begin"), check_perf_size(end, "perf end")
    if b > e:
        raise ValueError(f"perf begin {begin} is above end {end}: the sweep would measure "
                         "nothing (make begin ≤ end)")


def check_timeout(value: Any, what: str = "timeout") -> int:
    """A timeout in seconds, from 1 to MAX_TIMEOUT_S (a week)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TIMEOUT_S:
        raise ValueError(f"{what} {value!r}: give whole seconds from 1 to {MAX_TIMEOUT_S} "
                         "(a week)")
    return value


ULIMIT_NAMES = ["core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
                "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as"]


def parse_ulimit(name: str, value: Any) -> tuple[int, int]:
    """memlock: -1 | unlimited | 8M | "65535:65535" | {soft:, hard:} → (soft, hard)."""
    def one(v):
        if v in (-1, "-1", "unlimited"):
            return -1
        if isinstance(v, int):
            return v
        if name in ("memlock", "stack", "fsize", "data", "rss", "as", "core") and isinstance(v, str) \
                and sizes.has_unit(v):
            return parse_size(v, f"ulimit {name}")
        try:
            return int(str(v))
        except ValueError:
            raise ValueError(f"ulimit {name}: {v!r} is not a number, a size or -1") from None
    if isinstance(value, dict):
        extra = set(value) - {"soft", "hard"}
        if extra:
            raise ValueError(f"ulimit {name}: unknown keys {sorted(extra)} (use soft and hard)")
        soft = one(value.get("soft", value.get("hard")))
        hard = one(value.get("hard", value.get("soft")))
        return _ulimit_pair(name, soft, hard)
    if isinstance(value, str) and ":" in value:
        s, h = value.split(":", 1)
        return _ulimit_pair(name, one(s), one(h))
    v = one(value)
    return _ulimit_pair(name, v, v)


def _ulimit_pair(name: str, soft: int, hard: int) -> tuple[int, int]:
    """The engine refuses these only at start, with a raw runc message."""
    for v in (soft, hard):
        if v < -1:
            raise ValueError(f"ulimit {name}: {v} is negative (use -1 or unlimited for no limit)")
    if hard != -1 and (soft == -1 or soft > hard):
        raise ValueError(f"ulimit {name}: soft {soft} is above hard {hard}")
    return soft, hard


# ---------------------------------------------------------------------------------------------
# image references, environment names, host mounts

_PATH_COMP = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_DOMAIN_COMP = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"^{_DOMAIN_COMP}(?:\.{_DOMAIN_COMP})*(?::[0-9]+)?$")
_PATH_RE = re.compile(rf"^{_PATH_COMP}(?:/{_PATH_COMP})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")


def check_image_ref(ref: str) -> str:
    """A Docker image reference ([domain/]path[:tag][@digest], Docker's grammar: the repository
    path is lowercase), or ValueError saying what is wrong (the engine's own answer is a raw
    "invalid reference format")."""
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError("image must be an image reference or a spec from `containerctl image "
                         "list`")
    rest, digest = (ref.split("@", 1) + [None])[:2] if "@" in ref else (ref, None)
    if digest is not None and not _DIGEST_RE.match(digest):
        raise ValueError(f"image {ref!r}: digest {digest!r} is not algorithm:hex")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise ValueError(f"image {ref!r}: tag {tag!r} may hold letters, digits, '_', '.' and "
                             "'-' (at most 128, not starting with '.' or '-')")
    path = name
    if "/" in name:
        first, remainder = name.split("/", 1)
        if "." in first or ":" in first or first == "localhost" or first.lower() != first:
            if not _DOMAIN_RE.match(first):
                raise ValueError(f"image {ref!r}: registry {first!r} is not a host[:port]")
            path = remainder
    if not _PATH_RE.match(path):
        why = ("repository names must be lowercase" if path.lower() != path and
               _PATH_RE.match(path.lower()) else "use lowercase letters, digits and separators "
               "'.', '_', '-', '/' between them")
        raise ValueError(f"image {ref!r} is not a valid image reference: {why}")
    if len(name) > 255:
        raise ValueError(f"image {ref[:40]!r}…: the repository name is longer than 255")
    return ref


def check_env_keys(v, what: str = "environment variable"):
    """Environment variable names: not empty, no '=', no whitespace or NUL (the engine would
    split `A=B=c` at the first '=' and set another variable than the one written)."""
    if isinstance(v, dict):
        for k in v:
            k = str(k)
            if not k or "=" in k or any(ch.isspace() or ch == "\0" for ch in k):
                raise ValueError(f"{what} name {k!r} is not a variable name (no '=', spaces or "
                                 "empty names): write NAME: value")
    return v


# a mount of one of these gives the container the host itself
_HOST_MOUNTS = {
    "/": "the host's root file system",
    "/etc": "the host's /etc (its users, passwords, services)",
    "/var/run/docker.sock": "the Docker socket (root on the host)",
    "/run/docker.sock": "the Docker socket (root on the host)",
    "/var/run": "the directory holding the Docker socket (root on the host)",
    "/run": "the directory holding the Docker socket (root on the host)",
}


def host_mount_warnings(profile: "Profile") -> list[str]:
    """Volumes that hand the container the host (its root, /etc, the Docker socket), unless the
    profile says container.allow_host_mounts: true on purpose."""
    c = profile.container
    if c.allow_host_mounts:
        return []
    out = []
    for v in c.volumes:
        src = v.split(":")[0]
        if not src.startswith("/"):
            continue
        norm = os.path.normpath(src)
        norm = "/" if norm.startswith("//") and not norm.strip("/") else norm
        if norm in _HOST_MOUNTS:
            out.append(f"profile {profile.name}: volume {v!r} mounts {_HOST_MOUNTS[norm]} into "
                       "the container; set container.allow_host_mounts: true if that is meant")
    return out


# ---------------------------------------------------------------------------------------------
# models

def _env_strings(v):
    """env maps: YAML numbers, booleans and null become the strings a process sees."""
    if isinstance(v, dict):
        return {str(k): ("" if val is None else str(val)) for k, val in v.items()}
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, coerce_numbers_to_str=True)


class ContainerOpts(_Strict):
    """What `docker run` gets. Field names follow the Engine API."""
    privileged: bool = False
    network_mode: Optional[str] = None        # host | bridge | none | <network>
    pid_mode: Optional[str] = None            # host
    ipc_mode: Optional[str] = None            # host | private | shareable
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    security_opt: list[str] = Field(default_factory=list)
    shm_size: Optional[Union[str, int]] = None
    ulimits: dict[str, Any] = Field(default_factory=dict)
    group_add: list[str] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)   # /dev/xpu0, /dev/xpu*, src:dst[:rwm]
    gpus: Optional[Union[str, int]] = None              # "all" | N  (needs NVIDIA runtime)
    cdi_devices: list[str] = Field(default_factory=list)  # nvidia.com/gpu=all
    volumes: list[str] = Field(default_factory=list)    # src:dst[:ro]; src may be a volume name
    workspace: Optional[str] = "/workspace"             # a named volume kept across recreate
    env: dict[str, str] = Field(default_factory=dict)
    workdir: Optional[str] = None
    hostname: Optional[str] = None
    command: list[str] = Field(default_factory=lambda: ["sleep", "infinity"])
    init: bool = True   # docker --init: an init that reaps the stages' exited processes
    optional_devices: bool = False   # true: a device glob matching nothing is a warning
    allow_host_mounts: bool = False  # true: mounting /, /etc or the Docker socket is meant

    @field_validator("shm_size")
    @classmethod
    def _shm(cls, v):
        if v is None:
            return v
        if parse_size(v, "shm_size") == 0:
            raise ValueError("shm_size 0 would silently become Docker's default 64M: give a "
                             "size like 1G, or leave the key out for the default")
        return v

    @field_validator("ulimits")
    @classmethod
    def _ul(cls, v):
        for k, val in v.items():
            if k not in ULIMIT_NAMES:
                near = difflib.get_close_matches(k, ULIMIT_NAMES, n=1)
                raise ValueError(f"ulimit {k!r} is not a ulimit: " +
                                 (f"did you mean {near[0]}?" if near else
                                  "use one of " + ", ".join(ULIMIT_NAMES)))
            parse_ulimit(k, val)
        return v

    _env = field_validator("env", mode="before")(classmethod(lambda cls, v: _env_strings(v)))
    _env_keys = field_validator("env")(classmethod(lambda cls, v: check_env_keys(v)))

    @field_validator("volumes")
    @classmethod
    def _vols(cls, v):
        for spec in v:
            parts = spec.split(":")
            if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1].startswith("/"):
                raise ValueError(f"volume {spec!r} must be SRC:/container/path[:ro|rw]")
            if len(parts) == 3 and parts[2] not in ("ro", "rw", "z", "Z", "ro,z", "rw,z"):
                raise ValueError(f"volume {spec!r}: mode must be ro or rw")
            if not parts[0].startswith("/"):   # a named volume: Docker's name rule
                from .names import check_name
                try:
                    check_name(parts[0], "volume name")
                except UsageError as exc:
                    raise ValueError(f"volume {spec!r}: {exc.message} (a source that is not an "
                                     "absolute host path is a volume name)") from None
        return v


class FlagCXOpts(_Strict):
    """How FlagCX is built and run on this platform."""
    source: str = "https://github.com/FlagOpen/FlagCX.git"
    ref: Optional[str] = None
    make_flags: list[str] = Field(default_factory=list)   # USE_NVIDIA=1 …
    torch_adaptor: Optional[str] = None                    # nvidia, klx, metax …
    device_home: Optional[str] = None
    ccl_home: Optional[str] = None
    mpi_home: Optional[str] = None
    mpi_link: Optional[str] = None        # e.g. "-lmpi_cxx -lmpi"
    visible_devices_env: Optional[str] = None              # CUDA_VISIBLE_DEVICES …
    visible_devices: Optional[str] = None                  # "0,1" | auto (from nranks)
    nranks: Union[int, Literal["auto"]] = 2                # auto: one rank per device seen
    compile_kernel: Union[bool, Literal["auto"]] = False   # auto: COMPILE_KERNEL=1 where read
    dir: str = "/workspace/FlagCX"                         # where the source lives in the container
    env: dict[str, str] = Field(default_factory=dict)      # carried into every stage and mpirun -x

    @field_validator("make_flags")
    @classmethod
    def _flags(cls, v):
        for f in v:
            if not re.match(r"^[A-Z][A-Z0-9_]*=\S+$", f):
                raise ValueError(f"make flag {f!r} must look like USE_NVIDIA=1")
        return v

    _env = field_validator("env", mode="before")(classmethod(lambda cls, v: _env_strings(v)))
    _env_keys = field_validator("env")(classmethod(lambda cls, v: check_env_keys(v)))

    @field_validator("nranks")
    @classmethod
    def _nranks(cls, v):
        if isinstance(v, int) and not isinstance(v, bool) and not 1 <= v <= 4096:
            raise ValueError(f"nranks {v} must be between 1 and 4096, or auto (one rank per "
                             "device the container sees)")
        return v


from .flagcx.interface import WORD_RE  # noqa: E402
from .flagcx.variant_model import Variant  # noqa: E402  (the variant model lives with the FlagCX facts)


class PerfOpts(_Strict):
    colls: list[str] = Field(default_factory=lambda: ["allreduce"])
    dtype: Optional[str] = "float"   # -d, passed only where the checkout's perf tests accept it
    op: Optional[str] = "sum"        # -o, likewise
    begin: str = "128K"
    end: str = "4G"
    factor: int = Field(2, ge=2, le=MAX_FACTOR)
    warmup: int = Field(5, ge=0, le=MAX_ITERS)
    iters: int = Field(20, ge=1, le=MAX_ITERS)
    print_buffer: bool = True
    extra_args: list[str] = Field(default_factory=list)
    mpirun_args: list[str] = Field(default_factory=list)
    variants: dict[str, Variant] = Field(default_factory=dict)   # exec-stage perf --variant NAME|all

    @field_validator("variants")
    @classmethod
    def _vnames(cls, v):
        from .flagcx.variants import check_variant_names
        check_variant_names(v)
        return v

    @field_validator("colls")
    @classmethod
    def _colls(cls, v):
        for c in v:
            if not WORD_RE.match(c):
                raise ValueError(f"collective {c!r}: a FlagCX perf test name such as allreduce")
        return v

    @field_validator("dtype", "op")
    @classmethod
    def _word(cls, v):
        if v is not None and not WORD_RE.match(v):
            raise ValueError(f"{v!r}: a FlagCX datatype or op name such as float, sum, all")
        return v

    @field_validator("begin", "end", mode="before")
    @classmethod
    def _sizes(cls, v):
        check_perf_size(v)
        return str(v)

    @field_validator("end")
    @classmethod
    def _order(cls, v, info):
        check_perf_range(info.data.get("begin", "128K"), v)
        return v


class UnittestOpts(_Strict):
    """FlagCX's own gtest suites (test/unittest), the correctness signal of releases whose perf
    tests print nothing."""
    known_failures: list[str] = Field(default_factory=list)   # gtest patterns: Suite.Case, Suite.*
    known_build_failures: list[str] = Field(default_factory=list)  # components allowed not to build
    exclude: list[str] = Field(default_factory=list)   # not run at all (--gtest_filter=-…): cases
                                                       # that hang on this platform
    timeout_per_binary: int = Field(600, ge=1, le=MAX_TIMEOUT_S)
    components: Optional[list[str]] = None   # default: every component the checkout lists
    skip_binaries: list[str] = Field(default_factory=list)   # not run here, e.g. runner_mpi_tests
    variants: dict[str, Variant] = Field(default_factory=dict)   # exec-stage unittest --variant

    @field_validator("variants")
    @classmethod
    def _vnames(cls, v):
        from .flagcx.variants import check_variant_names
        check_variant_names(v)
        return v

    @field_validator("known_failures", "known_build_failures", "components", "exclude")
    @classmethod
    def _pat(cls, v):
        for x in v or []:
            if not re.match(r"^[A-Za-z0-9_.*?/-]+$", x):
                raise ValueError(f"{x!r}: use gtest-style names and patterns (Suite.Case, Suite.*)")
        return v


class StageOpts(_Strict):
    only: Optional[list[str]] = None      # the stages that apply (default: all that can)
    timeouts: dict[str, int] = Field(default_factory=dict)
    perf: PerfOpts = Field(default_factory=PerfOpts)

    @field_validator("timeouts")
    @classmethod
    def _timeouts(cls, v):
        for stage, t in v.items():
            check_timeout(t, f"stages.timeouts.{stage}")
        return v
    unittest: UnittestOpts = Field(default_factory=UnittestOpts)
    torch: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)


class LimitsOpts(_Strict):
    """What the hardware can move at most: a measured number above it cannot be true (the
    perf stage's plausibility check, results/verdict.py). Set from the vendor's published
    figures, with the source in a YAML comment (profiles/*.yaml)."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    max_busbw_gbps: Optional[float] = Field(None, gt=0)


class Profile(_Strict):
    name: str
    description: str = ""
    platform: str = Field("generic", pattern=r"^[a-z0-9_]+$")  # nvidia, kunlunxin, metax, … cpu
    vendor_tool: Optional[str] = None  # nvidia-smi, xpu-smi … (doctor, detect)
    extends: Optional[str] = None
    image: str
    image_args: dict[str, Any] = Field(default_factory=dict)
    container: ContainerOpts = Field(default_factory=ContainerOpts)
    flagcx: FlagCXOpts = Field(default_factory=FlagCXOpts)
    stages: StageOpts = Field(default_factory=StageOpts)
    references: dict[str, Any] = Field(default_factory=dict)
    limits: LimitsOpts = Field(default_factory=LimitsOpts)
    notes: list[str] = Field(default_factory=list)
    # where it came from (not part of the file)
    source_file: Optional[str] = Field(None, exclude=True)

    @field_validator("name", mode="before")
    @classmethod
    def _name_text(cls, v):
        if not isinstance(v, str):
            raise ValueError(f"name {v!r} must be text: quote it (name: \"{v}\")")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not re.match(r"^[a-z0-9][a-z0-9_.-]*$", v):
            raise ValueError(f"name {v!r}: use lowercase letters, digits, '-', '_' or '.'")
        if len(v) > 100:
            raise ValueError(f"name {v[:30]!r}… is {len(v)} characters: at most 100 (it names "
                             "the container cctl-<name> and its volume)")
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v):
        return check_image_ref(v)


# ---------------------------------------------------------------------------------------------
# YAML with line numbers

_NON_TEXT_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"}


class _Located:
    """Maps a key path (tuple) to the line where it appears in a YAML file."""

    MAX_NODES = 100_000

    def __init__(self, node, file: str):
        self.file = file
        self.lines: dict[tuple, int] = {}
        self.literal_names: dict[tuple, str] = {}   # `name:` scalars YAML would not read as text
        self._count = 0
        self._active: set[int] = set()
        if node is not None:
            self._walk(node, ())

    def _walk(self, node, path):
        self._count += 1
        # a plain scalar's style: None from the pure-Python parser, '' from libyaml's
        if isinstance(node, yaml.ScalarNode) and not node.style and node.tag in _NON_TEXT_TAGS \
                and ((path and path[-1] == "name") or
                     (":" in node.value and node.tag != "tag:yaml.org,2002:bool")):
            # YAML 1.1 reads `name: 010` as octal 8, `name: 1e3` as a float and `9:8` as the
            # base-60 number 548: a name, and anything written with a colon, is the text as
            # written
            self.literal_names[path] = node.value
        if id(node) in self._active:
            raise ProfileError(f"{self.file}:{node.start_mark.line + 1}: a YAML alias refers to "
                               "itself", "replace the recursive alias (&x … *x) with plain values")
        if len(path) > 64:
            raise ProfileError(f"{self.file}:{node.start_mark.line + 1}: nesting deeper than 64 "
                               "levels", "a profile is a few levels deep: flatten it")
        if self._count > self.MAX_NODES:
            raise ProfileError(f"{self.file}: more than {self.MAX_NODES} YAML nodes (aliases "
                               "expanding without bound?)", "a profile is a small file: remove "
                               "the nested aliases")
        self.lines.setdefault(path, node.start_mark.line + 1)
        self._active.add(id(node))
        try:
            self._walk_children(node, path)
        finally:
            self._active.discard(id(node))

    def _walk_children(self, node, path):
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode):
                    raise ProfileError(f"{self.file}:{k.start_mark.line + 1}: a key must be a "
                                       "name, not a list or mapping", "write `key: value`")
                key = k.value
                if key != "<<":
                    if key in seen:
                        where = ".".join(str(p) for p in path + (key,))
                        raise ProfileError(
                            f"{self.file}:{k.start_mark.line + 1}: duplicate key `{where}` "
                            f"(first given on line {seen[key]}); YAML would silently keep only "
                            "the last one", "keep one of them (merge their values into it)")
                    seen[key] = k.start_mark.line + 1
                self.lines[path + (key,)] = k.start_mark.line + 1
                self._walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self.lines[path + (i,)] = v.start_mark.line + 1
                self._walk(v, path + (i,))

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def read_yaml(path: Path) -> tuple[dict, _Located]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file", "check the path") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read ({exc.__class__.__name__})",
                           "give a readable UTF-8 YAML file") from None
    try:
        node = yamlio.compose(text)
        loc = _Located(node, str(path))   # before loading: rejects recursive/explosive aliases
        data = yamlio.construct(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError(f"{where}: YAML syntax error: {problem}",
                           "fix the indentation/quoting on that line") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}:1: a profile must be a mapping of keys, got "
                           f"{type(data).__name__}", "start the file with `name: ...`")
    _check_keys(data, loc, ())
    for key_path, text in loc.literal_names.items():
        _set_literal(data, key_path, text)
    return data, loc


def _set_literal(data, key_path: tuple, text: str) -> None:
    """Put the literal text of a `name:` scalar back where YAML put a number/bool/null."""
    cur = data
    for k in key_path[:-1]:
        if isinstance(cur, dict) and k in cur:
            cur = cur[k]
        elif isinstance(cur, list) and isinstance(k, int) and k < len(cur):
            cur = cur[k]
        else:
            return
    if isinstance(cur, dict) and key_path[-1] in cur and not isinstance(cur[key_path[-1]], str) \
            and not isinstance(cur[key_path[-1]], (dict, list)):
        cur[key_path[-1]] = text


def _check_keys(data, loc: "_Located", path: tuple) -> None:
    """Keys must be strings (YAML allows `1: 2`; a profile does not)."""
    if isinstance(data, dict):
        for k, v in data.items():
            if not isinstance(k, str):
                line = loc.line(path)
                raise ProfileError(f"{loc.file}:{line or 1}: key {k!r} under "
                                   f"`{'.'.join(map(str, path)) or '(top)'}` is not a name",
                                   "keys are names like shm_size; quote it if you meant text")
            _check_keys(v, loc, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _check_keys(v, loc, path + (i,))


def _model_for(path: tuple, root: type[BaseModel] | None = None):
    """The pydantic model that owns the last key of `path` (for key suggestions); list and
    optional fields of models are followed too."""
    model = root or Profile
    for key in path[:-1]:
        if isinstance(key, int):
            continue
        f = model.model_fields.get(key)
        if f is None:
            return None
        ann = f.annotation
        args = getattr(ann, "__args__", ())
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            model = args[0]
        else:
            return None
    return model


def _format_validation(exc: ValidationError, loc: _Located, origin: dict[tuple, _Located] | None,
                       root: type[BaseModel] | None = None,
                       missing_hint: str = "to the profile (or `extends:` one that has it)",
                       type_hint: str = "see `containerctl profile schema` for the expected type"
                       ) -> ProfileError:
    """The first validation error as `file:line: …` with a fix (nearest key for unknown ones).
    Shared by every YAML file containerctl reads (profiles, overlays, hosts inventories)."""
    err = exc.errors()[0]
    path = tuple(err["loc"])
    where_loc = (origin or {}).get(path[:1], loc) if origin else loc
    line = where_loc.line(path) if path else None
    where = f"{where_loc.file}:{line or 1}"
    key = ".".join(str(p) for p in path) or "(top)"
    if err["type"] == "extra_forbidden":
        model = _model_for(path, root)
        choices = [f for f in model.model_fields if f != "source_file"] if model else []
        near = difflib.get_close_matches(str(path[-1]), choices, n=1)
        hint = f"did you mean `{'.'.join(str(p) for p in path[:-1] + (near[0],))}`?" if near \
            else f"valid keys here: {', '.join(choices)}"
        return ProfileError(f"{where}: unknown key `{key}`", hint)
    if err["type"] == "missing":
        return ProfileError(f"{where}: missing required key `{key}`",
                            f"add `{path[-1]}:` {missing_hint}")
    msg = err["msg"].removeprefix("Value error, ")
    return ProfileError(f"{where}: `{key}`: {msg}", type_hint)


# ---------------------------------------------------------------------------------------------
# search, merge, overrides

def search_dirs() -> list[Path]:
    dirs = [Path.cwd() / "profiles"]
    for p in os.environ.get("CONTAINERCTL_PROFILE_PATH", "").split(":"):
        if p:
            dirs.append(Path(p))
    dirs.append(paths.config_dir() / "profiles")
    dirs.append(paths.data_dir("profiles"))
    return dirs


def find_profile_file(name: str) -> Path:
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or os.sep in name:
        if p.is_file():
            return p
        raise NotFound(f"profile file {name} does not exist", "check the path, or give a "
                       "profile name from `containerctl profile list`")
    for d in search_dirs():
        for ext in (".yaml", ".yml"):
            f = d / f"{name}{ext}"
            if f.is_file():
                return f
    names = sorted(all_profile_names())
    near = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean `{near[0]}`?" if near else "see `containerctl profile list`"
    raise NotFound(f"no profile named `{name}`", hint)


def all_profile_names() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in reversed(search_dirs()):   # earlier dirs win
        if d.is_dir():
            for f in sorted(list(d.glob("*.yaml")) + list(d.glob("*.yml"))):
                out[f.stem] = f
    return out


def deep_merge(base: dict, over: dict) -> dict:
    """Dicts merge recursively; lists and scalars replace, except a key written `key+` whose
    list is appended to the base's list (site overlays add volumes this way)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(k, str) and k.endswith("+"):
            real = k[:-1]
            cur = out.get(real) or []
            if not isinstance(cur, list) or not isinstance(v, list):
                raise UsageError(f"`{k}` appends to a list, but `{real}` is not a list",
                                 f"write `{real}:` to replace it instead")
            out[real] = cur + [x for x in v if x not in cur]
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_set(expr: str) -> tuple[list[str], Any]:
    if "=" not in expr:
        raise UsageError(f"--set {expr!r} is not KEY=VALUE",
                         "write e.g. --set container.shm_size=64G")
    key, _, raw = expr.partition("=")
    key = key.strip()
    if not key or not re.match(r"^[A-Za-z0-9_.+\-]+$", key):
        raise UsageError(f"--set {expr!r}: bad key", "write e.g. --set container.privileged=false")
    keys = key.split(".")
    if keys == ["extends"]:
        raise UsageError("--set extends=… cannot change what a profile extends",
                         "write a profile file with `extends:` and pass it with --profile FILE")
    if keys[-1] == "name":   # a name is the text as typed (`010` is not the number 8)
        return keys, raw.strip()
    try:
        value = yamlio.safe_load(raw) if raw.strip() else ""   # depth-bounded
    except yaml.YAMLError:
        value = raw
    if isinstance(value, (int, float)) and not isinstance(value, bool) and ":" in raw:
        value = raw.strip()   # YAML 1.1 base 60: `nofile=9:8` is not the number 548
    return keys, value


def apply_sets(data: dict, sets: list[str]) -> dict:
    out = copy.deepcopy(data)
    for expr in sets or []:
        keys, value = parse_set(expr)
        cur = out
        for k in keys[:-1]:
            nxt = cur.get(k)
            if nxt is None:
                nxt = cur[k] = {}
            if not isinstance(nxt, dict):
                raise UsageError(f"--set {expr}: `{k}` is not a mapping", "set a leaf key")
            cur = nxt
        cur[keys[-1]] = value
        if keys[-1].endswith("+"):
            # appends: allow `--set container.volumes+=[a:b]` and a single value
            if not isinstance(value, list):
                cur[keys[-1]] = [value]
            merged = deep_merge({k: v for k, v in cur.items() if k != keys[-1]},
                               {keys[-1]: cur[keys[-1]]})
            cur.clear()
            cur.update(merged)
    return out


def site_overlay_file() -> Path | None:
    env = os.environ.get("CONTAINERCTL_SITE")
    if env:
        p = Path(env)
        if not p.is_file():
            raise NotFound(f"site overlay {env} (from CONTAINERCTL_SITE) does not exist",
                           "create it or unset CONTAINERCTL_SITE")
        return p
    p = paths.config_dir() / "site.yaml"
    return p if p.is_file() else None


MAX_EXTENDS = 32


def _load_raw(name: str, seen: tuple[str, ...] = ()) -> tuple[dict, _Located, dict]:
    """`seen` holds the resolved files of the chain so far: a loop is found whether its links
    are written as names or as paths (./a.yaml → b → ../x/a.yaml)."""
    f = find_profile_file(name)
    data, loc = read_yaml(f)
    origin = {(k,): loc for k in data}
    parent = data.get("extends")
    here = str(f.resolve())
    if parent:
        if not isinstance(parent, str):
            raise ProfileError(f"{f}:{loc.line(('extends',))}: `extends` must be a profile name",
                               "write e.g. `extends: nvidia-a800`")
        try:
            pfile = str(find_profile_file(parent).resolve())
        except NotFound:
            pfile = None
        if parent == f.stem or pfile == here or (pfile is not None and pfile in seen):
            chain = " → ".join([Path(x).name for x in seen] + [f.name, parent])
            raise ProfileError(f"{f}:{loc.line(('extends',))}: `extends: {parent}` makes a loop "
                               f"({chain})", "break the cycle of extends")
        if len(seen) >= MAX_EXTENDS:
            raise ProfileError(f"{f}:{loc.line(('extends',))}: more than {MAX_EXTENDS} levels of "
                               "extends", "a profile extends a few others at most: shorten it")
        pdata, _ploc, porigin = _load_raw(parent, seen + (here,))
        pdata.pop("name", None)
        merged = deep_merge(pdata, data)
        porigin.update(origin)
        return merged, loc, porigin
    return data, loc, origin


def load_profile(name: str, sets: list[str] | None = None, site: bool = True) -> Profile:
    """Load, merge (extends → profile → site overlay → --set) and validate a profile."""
    data, loc, origin = _load_raw(name)
    file = find_profile_file(name)
    if site:
        sf = site_overlay_file()
        if sf:
            sdata, sloc = read_yaml(sf)
            for k in ("name", "extends"):
                if k in sdata:
                    raise ProfileError(
                        f"{sf}:{sloc.line((k,))}: a site overlay cannot set `{k}`: it is merged "
                        "into every profile (it would " + ("rename every profile's container"
                                                           if k == "name" else
                                                           "be ignored") + ")",
                        f"remove `{k}:` from {sf.name}; " + (
                            "use --name N or a profile of your own for another name"
                            if k == "name" else "write a profile with `extends:` instead"))
            # a site overlay may carry per-profile sections: profiles: {name: {...}}
            per = sdata.pop("profiles", {}) or {}
            if not isinstance(per, dict):
                raise ProfileError(f"{sf}:{sloc.line(('profiles',))}: `profiles` must be a mapping",
                                   "write profiles: {<name>: {...}}")
            mine = per.get(data.get("name", file.stem)) or {}
            if not isinstance(mine, dict):
                raise ProfileError(f"{sf}:{sloc.line(('profiles', data.get('name', file.stem)))}: "
                                   "a per-profile section must be a mapping",
                                   "write profiles: {<name>: {container: {...}}}")
            for k in ("name", "extends"):
                if k in mine:
                    pname = data.get("name", file.stem)
                    raise ProfileError(
                        f"{sf}:{sloc.line(('profiles', pname, k))}: a site overlay's section "
                        f"for {pname} cannot set `{k}`",
                        f"remove `{k}:` there; write a profile of your own that `extends: "
                        f"{pname}` instead")
            for part in (sdata, mine):
                for k in part:
                    origin[(k.rstrip("+"),)] = sloc
                data = deep_merge(data, part)
    if sets:
        data = apply_sets(data, sets)
    data.setdefault("name", file.stem)
    data.pop("extends", None)
    data = {k: v for k, v in data.items() if k != "source_file"}
    try:
        prof = Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        err_key = ".".join(str(p) for p in err["loc"])
        set_keys = [x.split("=")[0].rstrip("+").strip() for x in sets or []]
        if any(err_key.startswith(k) or k.startswith(err_key + ".") for k in set_keys):
            raise _format_validation(exc, _Located(None, "--set"), None) from None
        raise _format_validation(exc, loc, origin) from None
    _check_references(prof.references, loc, origin, sets)
    _check_flagcx_dir(prof, loc, origin, sets)
    prof.source_file = str(file)
    return prof


# system directories flagcx.dir may never be in (containerctl empties and fills flagcx.dir), and
# top-level directories it may be under only inside the workspace
_SYSTEM_DIRS = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot",
                "/dev", "/proc", "/sys", "/run")
_NOT_WHOLE = ("/var", "/root", "/home", "/opt", "/tmp", "/srv", "/mnt", "/media", "/snap")


def flagcx_dir_problem(path: Any, roots: list[str]) -> str | None:
    """Why `path` cannot be flagcx.dir, or None. `roots`: the workspace (container.workspace,
    container.workdir); flagcx.dir must sit strictly below one of them when any is set."""
    import posixpath
    if not isinstance(path, str) or not path.startswith("/"):
        return f"{path!r} is not an absolute path"
    norm = "/" + posixpath.normpath(path).lstrip("/")
    if norm != path:
        return f"{path!r} is not a normalised path (it means {norm})"
    if path == "/":
        return "/ is the container's root directory"
    for s in _SYSTEM_DIRS:
        if path == s or path.startswith(s + "/"):
            return f"{path} is in the system directory {s}"
    if path in _NOT_WHOLE:
        return f"{path} is a whole system directory"
    good = [r for r in ("/" + posixpath.normpath(r).lstrip("/") for r in roots
                        if isinstance(r, str) and r.startswith("/")) if r != "/"]
    inside = any(path.startswith(r + "/") for r in good)
    if path in good and not inside:
        return f"{path} is the workspace itself, not a directory below it"
    if good and not inside:
        return f"{path} is not under the workspace ({' or '.join(dict.fromkeys(good))})"
    for s in ("/var", "/root"):
        if path.startswith(s + "/") and not inside:
            return f"{path} is in the system directory {s}, outside any workspace"
    return None


def _check_flagcx_dir(prof: "Profile", loc: _Located, origin: dict,
                      sets: list[str] | None) -> None:
    """flagcx.dir is where containerctl copies (and, when it filled it, empties) the FlagCX
    checkout: an absolute, normalised path below the workspace, never a system directory."""
    c = prof.container
    roots = [r for r in (c.workspace, c.workdir) if r]
    why = flagcx_dir_problem(prof.flagcx.dir, roots)
    if why is None:
        return
    if "dir" not in prof.flagcx.model_fields_set:
        # not given: the default follows the workspace (container.workspace: /data → /data/FlagCX)
        for r in roots:
            moved = r.rstrip("/") + "/FlagCX"
            if flagcx_dir_problem(moved, roots) is None:
                prof.flagcx.dir = moved
                return
    from_set = any(x.split("=")[0].strip() in ("flagcx.dir", "flagcx") for x in sets or [])
    src = _Located(None, "--set") if from_set else origin.get(("flagcx",), loc)
    where = src.file if from_set else f"{src.file}:{src.line(('flagcx', 'dir')) or 1}"
    base = next((r.rstrip("/") for r in roots if r.startswith("/") and r != "/"), "/workspace")
    raise ProfileError(f"{where}: `flagcx.dir`: {why}: containerctl copies FlagCX there and may "
                       "empty it", f"give a directory below the workspace, e.g. --set "
                       f"flagcx.dir={base}/FlagCX (or `flagcx: {{dir: {base}/FlagCX}}` in the "
                       "profile)")


def _check_references(refs: dict, loc: _Located, origin: dict, sets: list[str] | None) -> None:
    """A bad `references:` entry is exit 2 naming file:line (or --set) and the entry."""
    if not refs:
        return
    from .results.references import validate_references
    from_set = any(x.split("=")[0].strip().startswith("references") for x in sets or [])
    src = _Located(None, "--set") if from_set else origin.get(("references",), loc)
    for coll, table in refs.items():
        line = src.line(("references", coll)) or 1
        validate_references({coll: table}, f"{src.file}:{line}: references")


def input_files(name: str) -> list[str]:
    """Every path whose content or existence decides what `load_profile(name)` returns: the
    extends chain, every search-path candidate that could shadow a file of it, the site overlay
    (for the no-op `up` fast path)."""
    out: list[str] = []
    seen: set[str] = set()
    cur: str | None = name
    while cur and cur not in seen:
        seen.add(cur)
        if not (Path(cur).suffix in (".yaml", ".yml") or os.sep in cur):
            out += [str(d / f"{cur}{ext}") for d in search_dirs() for ext in (".yaml", ".yml")]
        f = find_profile_file(cur)
        out.append(str(f))
        try:
            cur = (yamlio.safe_load(f.read_text()) or {}).get("extends")
        except (yaml.YAMLError, AttributeError):
            cur = None
    env = os.environ.get("CONTAINERCTL_SITE")
    out.append(env if env else str(paths.config_dir() / "site.yaml"))
    return out


def validate_file(path: str) -> Profile:
    """Validate one file on its own terms (extends resolved through the search path)."""
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"{path}: no such file", "check the path")
    return load_profile(str(p), site=False)


def list_profiles() -> list[tuple[str, Path, Profile | None, str | None]]:
    rows = []
    for name, f in sorted(all_profile_names().items()):
        try:
            rows.append((name, f, load_profile(name, site=False), None))
        except Exception as exc:  # report, don't crash the listing
            rows.append((name, f, None, getattr(exc, "message", str(exc))))
    return rows


def json_schema() -> dict:
    return Profile.model_json_schema()


def profile_yaml(p: Profile) -> str:
    data = p.model_dump(exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
