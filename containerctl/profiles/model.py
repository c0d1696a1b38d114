"""The profile model: the pydantic models of a platform profile (container, flagcx, stages,
references, limits), their validators and defaults, and the checks they share with the CLI
(sizes, timeouts, ulimits, image references, environment names, flagcx.dir). Reading files is
loader.py's part; nothing here touches the file system.
"""
from __future__ import annotations

import difflib
import os
import re
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import sizes
from ..errors import UsageError

# ---------------------------------------------------------------------------------------------
# sizes

from ..bounds import MAX_FACTOR, MAX_ITERS, MAX_PERF_BYTES, MAX_TIMEOUT_S  # noqa: E402,F401


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
                from ..names import check_name
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
        return check_make_assignments(v, "make flag", "USE_NVIDIA=1")

    _env = field_validator("env", mode="before")(classmethod(lambda cls, v: _env_strings(v)))
    _env_keys = field_validator("env")(classmethod(lambda cls, v: check_env_keys(v)))

    @field_validator("nranks")
    @classmethod
    def _nranks(cls, v):
        if isinstance(v, int) and not isinstance(v, bool) and not 1 <= v <= 4096:
            raise ValueError(f"nranks {v} must be between 1 and 4096, or auto (one rank per "
                             "device the container sees)")
        return v


from ..flagcx.interface import WORD_RE  # noqa: E402
from ..flagcx.variant_model import Variant, check_make_assignments  # noqa: E402  (the variant model lives with the FlagCX facts)


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
        from ..flagcx.variants import check_variant_names
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
        from ..flagcx.variants import check_variant_names
        check_variant_names(v)
        return v

    @field_validator("known_failures", "known_build_failures", "components", "exclude")
    @classmethod
    def _pat(cls, v):
        for x in v or []:
            if not re.match(r"^[A-Za-z0-9_.*?/-]+$", x):
                raise ValueError(f"{x!r}: use gtest-style names and patterns (Suite.Case, Suite.*)")
        return v


def _whole(v, what: str, least: int, auto: bool = False):
    """A whole number >= least (YAML or --set text "4" too), or "auto" where allowed; never a
    boolean (pydantic would read `true` as 1)."""
    if auto and v == "auto":
        return v
    if isinstance(v, str) and re.fullmatch(r"[0-9]+", v.strip()):
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise ValueError(f"{v!r} is not {what}")
    return v


def _number(v):
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a number")
    return v


def _one_line(v):
    if isinstance(v, str) and ("\n" in v or "\0" in v):
        raise ValueError(f"{v!r} must be one line")
    return v


# the torch example's arguments when the profile gives none (40-torch.yaml runs example.py)
TORCH_EXAMPLE_ARGS = ("-o", "allreduce")


class TorchOpts(_Strict):
    """stages.torch: the torch stage (40-torch.yaml: install PyTorch if missing, build the FlagCX
    plugin, run its example.py under torchrun)."""
    index_url: Optional[str] = None   # pip index for torch when the image has none (cu124 …)
    example_args: list[str] = Field(default_factory=lambda: list(TORCH_EXAMPLE_ARGS))
    master_port: int = 8281           # torchrun --master_port
    debug: bool = False               # the stage runs with CCTL_TORCH_DEBUG=1

    @field_validator("example_args", mode="before")
    @classmethod
    def _args(cls, v):
        """A string is split at whitespace; none or an empty list is the default."""
        if isinstance(v, str):
            v = v.split()
        return v or list(TORCH_EXAMPLE_ARGS)

    @field_validator("master_port", mode="before")
    @classmethod
    def _port(cls, v):
        n = _whole(v, "a TCP port from 1 to 65535", 1)
        if n > 65535:
            raise ValueError(f"{v!r} is not a TCP port from 1 to 65535")
        return n

    _lines = field_validator("index_url", "example_args")(classmethod(
        lambda cls, v: [_one_line(x) for x in v] if isinstance(v, list) else _one_line(v)))


class TrainOpts(_Strict):
    """stages.train: the FlagScale training stage (50-train.yaml runs flagscale_train.py). The
    defaults are the driver's own (its argparse defaults, kept equal by tests/test_profiles_model.py);
    the runner passes every value (flagscale.driver_args). Unset `flagscale`: the stage does not
    apply."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True, coerce_numbers_to_str=True,
                              allow_inf_nan=False)
    flagscale: Optional[str] = None   # a FlagScale checkout, its flag_scale dir, or 'installed'
    # small (a few layers, mock data) | runbook (LLaMA3 from the example, real data) | auto:
    # runbook where data_path and tokenizer_path are set, else small
    preset: Literal["auto", "small", "runbook"] = "auto"
    model: Optional[str] = None       # example folder (llama3; llama in older FlagScale)
    size: str = "8b"                  # model config in the example's train/ folder
    backend: Literal["flagcx", "nccl"] = "flagcx"   # nccl: the baseline
    devices: Union[int, Literal["auto"]] = "auto"   # ranks per node; auto: the devices present
    nnodes: int = 1
    tp: Union[int, Literal["auto"]] = "auto"        # auto: the example's, shrunk to fit
    pp: Union[int, Literal["auto"]] = "auto"
    iterations: int = 20              # the iterations the verdict asks for
    min_loss_drop: float = Field(0.0, ge=0, lt=1)   # last loss ≤ first × (1 - this); 0: lower
    lr: float = 1e-3                  # learning rate of the small preset
    global_batch_size: int = 0        # 0: micro batch × data parallel × 2 (small), the example's
    train_samples: int = 0            # 0: the example's (runbook preset)
    data_path: str = ""               # data prefix (runbook preset)
    tokenizer_path: str = ""          # tokenizer dir (runbook preset)
    exp_dir: str = "./outputs_cctl_train"   # under the workspace (the stage runs there); a run-<time>-<backend> folder each
    # apply FlagScale's Megatron patches where the Megatron found is unpatched (true/false: yes/no)
    unpatch: Literal["auto", "yes", "no"] = "auto"
    poll_seconds: float = Field(5.0, gt=0)        # between looks at the job's log
    startup_seconds: float = Field(900.0, gt=0)   # bound to the first iteration
    stall_seconds: float = Field(300.0, gt=0)     # bound between two iterations
    time_limit: float = Field(3600.0, gt=0)       # bound on the whole run
    conda_env: Optional[str] = None   # conda environment to activate first
    env: dict[str, str] = Field(default_factory=dict)   # the job's extra environment
    checkpoint_load: Optional[str] = None   # checkpoint to load (runbook preset)

    @field_validator("devices", "tp", "pp", mode="before")
    @classmethod
    def _count(cls, v):
        return _whole(v, "auto or a positive whole number", 1, auto=True)

    @field_validator("nnodes", "iterations", "global_batch_size", "train_samples", mode="before")
    @classmethod
    def _int(cls, v):
        return _whole(v, "a whole number", 0)

    _numbers = field_validator("min_loss_drop", "lr", "poll_seconds", "startup_seconds",
                               "stall_seconds", "time_limit", mode="before")(
        classmethod(lambda cls, v: _number(v)))
    _lines = field_validator("flagscale", "model", "size", "data_path", "tokenizer_path",
                             "exp_dir", "conda_env", "checkpoint_load")(
        classmethod(lambda cls, v: _one_line(v)))

    @field_validator("unpatch", mode="before")
    @classmethod
    def _yes_no(cls, v):
        return ("yes" if v else "no") if isinstance(v, bool) else v   # YAML reads yes/no as bools

    _env = field_validator("env", mode="before")(classmethod(lambda cls, v: _env_strings(v)))

    @field_validator("env")
    @classmethod
    def _env_names(cls, v):
        for k in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                raise ValueError(f"environment variable name {k!r}: use letters, digits and _, "
                                 "not starting with a digit")
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
    torch: TorchOpts = Field(default_factory=TorchOpts)
    train: TrainOpts = Field(default_factory=TrainOpts)


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


def json_schema() -> dict:
    return Profile.model_json_schema()
