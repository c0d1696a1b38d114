"""The bad-input corpus: every wrong thing a user can type or write, run through the real CLI.

Each case must exit 2 with exactly two lines on stderr — `error: <cause>` then `  fix: <hint>` —
no traceback, and nothing created (no container or workspace volume, no overwritten file).
A case the product gets wrong today is marked xfail(strict=True) with what it does instead, so
the corpus shows it and flips to a failure (XPASS) once it is fixed.
"""
from __future__ import annotations

import importlib.util
import textwrap
import uuid
from dataclasses import dataclass, field

import pytest

from conftest import cli


@dataclass
class Case:
    id: str
    args: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)   # relative to the case's cwd
    env: dict[str, str] = field(default_factory=dict)
    docker: bool = False        # reaches the engine: count containers before/after
    expect: str = ""            # a substring of stderr (a suggestion, the key, the file)
    xfail: str = ""             # why it fails today (a product bug outside this test)
    needs: str = ""             # privileged-refused | memlock-limited | no-gpu-runtime | cluster
    unchanged: str = ""         # a file that must be byte-identical afterwards
    absent: str = ""            # a substring that must NOT be in stderr (a misleading cause)


def prof(body: str, image: str = "{img}") -> str:
    """A profile file; `{tok}` makes its name (and so its default container name) unique."""
    return f"name: bi-{{tok}}\nimage: {image}\nplatform: cpu\n" + textwrap.dedent(body)


UP = ["up", "--profile", "p.yaml", "--name", "{name}"]
VALIDATE = ["profile", "validate", "p.yaml"]
SHOW = ["profile", "show", "cpu-selftest"]

CASES = [
    # --- YAML syntax --------------------------------------------------------------------------
    Case("yaml-unclosed-bracket", VALIDATE,
         {"p.yaml": "name: x\nimage: a\ncontainer: {devices: [/dev/a\n"}, expect="p.yaml:"),
    Case("yaml-mapping-in-scalar", VALIDATE,
         {"p.yaml": "name: x\nimage: a\ncontainer:\n  shm_size: 1G\n    ipc_mode: host\n"},
         expect="p.yaml:"),
    Case("yaml-tab-indent", VALIDATE,
         {"p.yaml": "name: x\nimage: a\ncontainer:\n\tshm_size: 1G\n"}, expect="YAML syntax"),
    Case("yaml-unclosed-quote", VALIDATE, {"p.yaml": 'name: "x\nimage: a\n'},
         expect="YAML syntax"),
    Case("yaml-undefined-alias", VALIDATE, {"p.yaml": "name: x\nimage: *nope\n"},
         expect="YAML syntax"),
    Case("yaml-top-level-list", VALIDATE, {"p.yaml": "- name: x\n- image: a\n"},
         expect="mapping"),
    Case("yaml-top-level-scalar", VALIDATE, {"p.yaml": "just some text\n"}, expect="mapping"),
    Case("yaml-not-utf8", VALIDATE, {"p.yaml": b"name: x\nimage: \xff\xfe\x00\n"},
         expect="p.yaml"),
    Case("yaml-empty-file", VALIDATE, {"p.yaml": ""}, expect="image"),
    Case("yaml-recursive-alias", VALIDATE, {"p.yaml": "name: x\nimage: a\nnotes: &x [*x]\n"},),
    # --- unknown keys -------------------------------------------------------------------------
    Case("unknown-top-level-key", VALIDATE, {"p.yaml": prof("imagee: b\n")},
         expect="did you mean `image`?"),
    Case("unknown-nested-key", VALIDATE, {"p.yaml": prof("container:\n  shm_sise: 1G\n")},
         expect="did you mean `container.shm_size`?"),
    Case("unknown-deep-key", VALIDATE, {"p.yaml": prof("stages:\n  perf:\n    iter: 3\n")},
         expect="did you mean `stages.perf.iters`?"),
    # --- wrong types --------------------------------------------------------------------------
    Case("type-bool", VALIDATE, {"p.yaml": prof("container:\n  privileged: maybe\n")},
         expect="container.privileged"),
    Case("type-int", VALIDATE, {"p.yaml": prof("flagcx:\n  nranks: two\n")},
         expect="flagcx.nranks"),
    Case("type-str-for-list", VALIDATE, {"p.yaml": prof("container:\n  cap_add: SYS_PTRACE\n")},
         expect="container.cap_add"),
    Case("type-list-for-str", VALIDATE,
         {"p.yaml": "name: x\nimage: [a, b]\n"}, expect="image"),
    Case("type-list-for-mapping", VALIDATE, {"p.yaml": prof("container:\n  env: [A=1]\n")},
         expect="container.env"),
    Case("type-section-scalar", VALIDATE, {"p.yaml": prof("container: host\n")},
         expect="container"),
    # --- sizes and ulimits --------------------------------------------------------------------
    Case("size-12XB", VALIDATE, {"p.yaml": prof("container:\n  shm_size: 12XB\n")},
         expect="12XB"),
    Case("size-negative", VALIDATE, {"p.yaml": prof("container:\n  shm_size: -1G\n")},
         expect="shm_size"),
    Case("size-perf-begin", VALIDATE, {"p.yaml": prof("stages:\n  perf:\n    begin: 1Q\n")},
         expect="1Q"),
    Case("ulimit-not-a-number", VALIDATE,
         {"p.yaml": prof("container:\n  ulimits: {memlock: lots}\n")}, expect="memlock"),
    Case("ulimit-unknown-subkey", VALIDATE,
         {"p.yaml": prof("container:\n  ulimits: {nofile: {soft: 1, max: 2}}\n")},
         expect="nofile"),
    # --- volume specs -------------------------------------------------------------------------
    Case("volume-no-colon", VALIDATE, {"p.yaml": prof("container:\n  volumes: [/data]\n")},
         expect="/data"),
    Case("volume-relative-target", VALIDATE,
         {"p.yaml": prof("container:\n  volumes: ['/tmp:data']\n")}, expect="/tmp:data"),
    Case("volume-bad-mode", VALIDATE,
         {"p.yaml": prof("container:\n  volumes: ['/tmp:/data:rx']\n")}, expect="ro or rw"),
    # --- profile names, files, extends --------------------------------------------------------
    Case("unknown-profile-name", ["profile", "show", "nvidia-a80"],
         expect="did you mean `nvidia-a800`?"),
    Case("unknown-profile-on-up", ["up", "--profile", "cpu-selftst", "--name", "{name}"],
         expect="did you mean `cpu-selftest`?"),
    Case("profile-file-missing", ["up", "--profile", "./nope.yaml", "--name", "{name}"],
         expect="nope.yaml"),
    Case("profile-file-is-directory", ["profile", "show", "dir.yaml/"],
         files={"dir.yaml/x": "x"}, expect="dir.yaml"),
    Case("extends-loop", ["profile", "show", "bi-a"],
         {"profs/bi-a.yaml": "name: bi-a\nextends: bi-b\nimage: a\n",
          "profs/bi-b.yaml": "name: bi-b\nextends: bi-a\nimage: a\n"},
         env={"CONTAINERCTL_PROFILE_PATH": "profs"}, expect="loop"),
    Case("extends-self", ["profile", "show", "bi-self"],
         {"profs/bi-self.yaml": "name: bi-self\nextends: bi-self\nimage: a\n"},
         env={"CONTAINERCTL_PROFILE_PATH": "profs"}, expect="loop"),
    Case("extends-unknown", VALIDATE, {"p.yaml": "name: x\nextends: nvidia-a80\n"},
         expect="did you mean `nvidia-a800`?"),
    Case("extends-not-a-name", VALIDATE, {"p.yaml": "name: x\nextends: [a, b]\nimage: a\n"},
         expect="extends"),
    # --- --set --------------------------------------------------------------------------------
    Case("set-without-equals", SHOW + ["--set", "container.shm_size"], expect="KEY=VALUE"),
    Case("set-bad-value", SHOW + ["--set", "container.shm_size=12XB"], expect="12XB"),
    Case("set-bad-bool", SHOW + ["--set", "container.privileged=maybe"], expect="privileged"),
    Case("set-on-non-mapping", SHOW + ["--set", "container.shm_size.x=1"],
         expect="not a mapping"),
    Case("set-unknown-key", SHOW + ["--set", "container.shm_sz=1G"],
         expect="did you mean `container.shm_size`?"),
    Case("set-empty-key", SHOW + ["--set", "=1"], expect="bad key"),
    Case("set-append-to-scalar", SHOW + ["--set", "container.shm_size+=1"],
         expect="not a list"),
    # --- stages -------------------------------------------------------------------------------
    Case("exec-stage-unknown", ["exec-stage", "perff", "--name", "{name}"],
         expect="did you mean `perf`?"),
    Case("exec-stage-malformed-stage-file", ["exec-stage", "perf", "--name", "{name}"],
         {"stages/00-bad.yaml": "name: [\n"}, expect="00-bad.yaml"),
    Case("exec-stage-invalid-stage-def", ["exec-stage", "perf", "--name", "{name}"],
         {"stages/00-bad.yaml": "name: bad\nscript: true\ntimeout: soon\n"},
         expect="00-bad.yaml"),
    Case("run-only-unknown-stage", ["run", "--profile", "p.yaml", "--name", "{name}",
                                    "--only", "perff", "-q"],
         {"p.yaml": prof("")}, docker=True, expect="did you mean `perf`?",),
    Case("run-from-unknown-stage", ["run", "--profile", "p.yaml", "--name", "{name}",
                                    "--from", "biuld", "-q"],
         {"p.yaml": prof("")}, docker=True, expect="did you mean `build`?",),
    # --- lifecycle ----------------------------------------------------------------------------
    Case("exec-no-command", ["exec", "--name", "{name}"], expect="containerctl exec --"),
    Case("down-missing-container", ["down", "--name", "{name}"], docker=True,
         expect="{name}"),
    Case("logs-missing-container", ["logs", "--name", "{name}"], docker=True,
         expect="{name}"),
    Case("up-missing-volume-source", UP,
         {"p.yaml": prof("container:\n  volumes: ['/nonexistent/cctl-{tok}:/data']\n")},
         docker=True, expect="/nonexistent/cctl-{tok}"),
    Case("up-missing-device", UP,
         {"p.yaml": prof("container:\n  devices: [/dev/cctl-nonexistent0]\n")},
         docker=True, expect="/dev/cctl-nonexistent0"),
    Case("up-device-glob-matches-nothing", UP,
         {"p.yaml": prof("container:\n  devices: ['/dev/cctlnope[0-9]*']\n")},
         docker=True, expect="/dev/cctlnope"),
    Case("up-privileged-refused", UP, {"p.yaml": prof("container:\n  privileged: true\n")},
         docker=True, needs="privileged-refused", expect="privileged"),
    Case("up-cap-add-all-refused", UP, {"p.yaml": prof("container:\n  cap_add: [ALL]\n")},
         docker=True, needs="privileged-refused", expect="cap_add"),
    Case("up-memlock-refused", UP,
         {"p.yaml": prof("container:\n  ulimits: {memlock: -1}\n")},
         docker=True, needs="memlock-limited", expect="memlock"),
    Case("up-gpus-refused", UP, {"p.yaml": prof("container:\n  gpus: all\n")},
         docker=True, needs="no-gpu-runtime", expect="gpus"),
    Case("up-image-missing", UP, {"p.yaml": prof("", image="containerctl-test/nope:{tok}")},
         docker=True, expect="containerctl-test/nope:{tok}"),
    Case("up-daemon-unreachable", UP, {"p.yaml": prof("")},
         env={"DOCKER_HOST": "unix:///nonexistent.sock"}, expect="/nonexistent.sock"),
    Case("ps-daemon-unreachable", ["ps"], env={"DOCKER_HOST": "unix:///nonexistent.sock"},
         expect="/nonexistent.sock"),
    # --- site overlay -------------------------------------------------------------------------
    Case("site-overlay-missing", SHOW, env={"CONTAINERCTL_SITE": "nope-site.yaml"},
         expect="CONTAINERCTL_SITE"),
    Case("site-overlay-yaml-error", SHOW, {"site.yaml": "container: {shm_size: 1G\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="site.yaml"),
    Case("site-overlay-unknown-key", SHOW, {"site.yaml": "container:\n  shm_sise: 1G\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="site.yaml"),
    Case("site-overlay-profiles-not-mapping", SHOW, {"site.yaml": "profiles: 5\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="profiles"),
    # --- profile new, doctor ------------------------------------------------------------------
    Case("profile-new-exists", ["profile", "new", "mine", "--from", "cpu-selftest",
                                "--dir", "out"],
         {"out/mine.yaml": "# mine, hand-written\n"}, expect="--force",
         unchanged="out/mine.yaml"),
    Case("profile-new-unknown-base", ["profile", "new", "mine", "--from", "nvidia-a80",
                                      "--dir", "out"], expect="did you mean `nvidia-a800`?"),
    Case("profile-new-bad-name", ["profile", "new", "My Site", "--from", "cpu-selftest",
                                  "--dir", "out"], expect="lowercase"),
    Case("doctor-unknown-profile", ["doctor", "--profile", "nvidia-a80"],
         expect="did you mean `nvidia-a800`?"),
    # --- command-line syntax (click) ----------------------------------------------------------
    Case("unknown-option", ["up", "--bogus-flag"], expect="--bogus-flag",),
    Case("missing-required-option", ["profile", "new", "mine"], expect="--from",),
]


def inv(body: str) -> str:
    """A hosts inventory (examples/hosts-*.yaml shape) around `body`'s hosts / overrides."""
    return textwrap.dedent(body)


def chain(n: int) -> dict[str, str]:
    """n profile files, each extending the next by path (no loop, just too long)."""
    files = {f"c{i}.yaml": f"name: bi-c{i}\nextends: ./c{i + 1}.yaml\n" for i in range(n)}
    files[f"c{n}.yaml"] = "name: bi-end\nimage: local/none:none\n"
    return files


CPS = ["cluster", "ps", "--hosts", "h.yaml"]
GOOD_HOST = "  - {name: a, profile: cpu-selftest}\n"
LONG = "a" * 129

CASES += [
    # --- names (Docker's rule; nothing may escape the state directory) ------------------------
    Case("name-dotdot-up", ["up", "--profile", "p.yaml", "--name", "../../{tok}"],
         {"p.yaml": prof("")}, docker=True, expect="'../../{tok}' is not a valid container name"),
    Case("name-slash-up", ["up", "--profile", "p.yaml", "--name", "a/{tok}"],
         {"p.yaml": prof("")}, docker=True, expect="contains '/'"),
    Case("name-leading-dash", ["up", "--profile", "p.yaml", "--name=-{tok}"],
         {"p.yaml": prof("")}, docker=True, expect="start with a letter or digit"),
    Case("name-leading-dot", ["up", "--profile", "p.yaml", "--name", ".{tok}"],
         {"p.yaml": prof("")}, docker=True, expect="start with a letter or digit"),
    Case("name-space", ["up", "--profile", "p.yaml", "--name", "a {tok}"],
         {"p.yaml": prof("")}, docker=True, expect="contains ' '"),
    Case("name-colon", ["up", "--profile", "p.yaml", "--name", "a:{tok}"],
         {"p.yaml": prof("")}, docker=True, expect="contains ':'"),
    Case("name-non-ascii", ["up", "--profile", "p.yaml", "--name", "名{tok}"],
         {"p.yaml": prof("")}, docker=True, expect="not a valid container name"),
    Case("name-too-long", ["up", "--profile", "p.yaml", "--name", LONG],
         {"p.yaml": prof("")}, docker=True, expect="at most 128"),
    Case("name-empty", ["up", "--profile", "p.yaml", "--name="],
         {"p.yaml": prof("")}, docker=True, expect="is empty"),
    Case("name-workspace-volume-too-long", ["up", "--profile", "p.yaml", "--name", "b" * 125],
         {"p.yaml": prof("")}, docker=True, expect="workspace volume name"),
    Case("name-dry-run-slash", ["up", "--dry-run", "--profile", "p.yaml", "--name", "a/b"],
         {"p.yaml": prof("")}, expect="contains '/'"),
    Case("name-down-dotdot", ["down", "--name", "../{tok}"], expect="not a valid container name"),
    Case("name-logs-slash", ["logs", "--name", "a/{tok}"], expect="contains '/'"),
    Case("name-exec-slash", ["exec", "--name", "a/{tok}", "--", "true"], expect="contains '/'"),
    Case("name-restart-slash", ["restart", "--name", "a/{tok}"], expect="contains '/'"),
    Case("name-shell-slash", ["shell", "--name", "a/{tok}"], expect="contains '/'"),
    Case("name-status-slash", ["status", "--name", "a/{tok}"], expect="contains '/'"),
    Case("name-exec-stage-slash", ["exec-stage", "perf", "--name", "a/{tok}"],
         expect="contains '/'"),
    Case("name-run-slash", ["run", "--profile", "p.yaml", "--name", "a/{tok}", "-q"],
         {"p.yaml": prof("")}, docker=True, expect="contains '/'"),
    Case("name-profile-too-long", VALIDATE, {"p.yaml": "name: " + "p" * 101 + "\nimage: a\n"},
         expect="at most 100"),
    Case("name-profile-uppercase", VALIDATE, {"p.yaml": "name: Bad\nimage: a\n"},
         expect="lowercase"),
    Case("name-profile-list", VALIDATE, {"p.yaml": "name: [a, b]\nimage: a\n"},
         expect="must be text"),
    Case("name-profile-mapping", VALIDATE, {"p.yaml": "name: {a: 1}\nimage: a\n"},
         expect="must be text"),
    Case("name-volume-slash", VALIDATE, {"p.yaml": prof("container:\n  volumes: ['a/b:/data']\n")},
         expect="volume name"),
    Case("name-volume-relative-dir", VALIDATE,
         {"p.yaml": prof("container:\n  volumes: ['./data:/data']\n")}, expect="absolute"),
    Case("name-volume-tilde", VALIDATE,
         {"p.yaml": prof("container:\n  volumes: ['~/data:/data']\n")}, expect="volume name"),
    # --- duplicate YAML keys (profiles, overlays, inventories) ---------------------------------
    Case("dup-top-level-key", VALIDATE, {"p.yaml": prof("platform: gpu\n")},
         expect="p.yaml:4: duplicate key `platform`"),
    Case("dup-nested-key", VALIDATE,
         {"p.yaml": prof("container:\n  shm_size: 1G\n  ipc_mode: host\n  shm_size: 2G\n")},
         expect="p.yaml:7: duplicate key `container.shm_size` (first given on line 5)"),
    Case("dup-flow-mapping-key", VALIDATE,
         {"p.yaml": prof("container: {init: true, init: false}\n")},
         expect="duplicate key `container.init`"),
    Case("dup-deep-key", VALIDATE,
         {"p.yaml": prof("stages:\n  perf:\n    iters: 3\n    iters: 4\n")},
         expect="duplicate key `stages.perf.iters`"),
    Case("dup-env-key", VALIDATE,
         {"p.yaml": prof("container:\n  env:\n    A: 1\n    A: 2\n")},
         expect="duplicate key `container.env.A`"),
    Case("dup-key-site-overlay", SHOW,
         {"site.yaml": "container:\n  shm_size: 1G\n  shm_size: 2G\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="site.yaml:3: duplicate key"),
    Case("dup-key-extended-parent", ["profile", "show", "bi-kid"],
         {"profs/bi-kid.yaml": "name: bi-kid\nextends: bi-par\n",
          "profs/bi-par.yaml": "name: bi-par\nimage: a\nimage: b\n"},
         env={"CONTAINERCTL_PROFILE_PATH": "profs"}, expect="bi-par.yaml:3: duplicate key"),
    # --- extends through file paths ------------------------------------------------------------
    Case("extends-loop-by-path", VALIDATE,
         {"p.yaml": "name: bi-a\nextends: ./q.yaml\nimage: a\n",
          "q.yaml": "name: bi-b\nextends: ./p.yaml\nimage: a\n"}, expect="loop"),
    Case("extends-loop-three-files", VALIDATE,
         {"p.yaml": "name: bi-a\nextends: sub/q.yaml\n",
          "sub/q.yaml": "name: bi-b\nextends: ./r.yaml\n",
          "r.yaml": "name: bi-c\nextends: sub/../p.yaml\n"}, expect="loop"),
    Case("extends-self-by-path", VALIDATE, {"p.yaml": "name: bi-a\nextends: ./p.yaml\n"},
         expect="loop"),
    Case("extends-name-and-path-loop", ["profile", "show", "bi-n"],
         {"profs/bi-n.yaml": "name: bi-n\nextends: ./m.yaml\n",
          "m.yaml": "name: bi-m\nextends: bi-n\n"},
         env={"CONTAINERCTL_PROFILE_PATH": "profs"}, expect="loop"),
    Case("extends-too-deep", ["profile", "validate", "c0.yaml"], chain(40),
         expect="levels of extends"),
    # --- image references ---------------------------------------------------------------------
    Case("image-uppercase", VALIDATE, {"p.yaml": prof("", image="Local/Busybox")},
         expect="must be lowercase"),
    Case("image-uppercase-single", VALIDATE, {"p.yaml": prof("", image="BusyBox:1")},
         expect="must be lowercase"),
    Case("image-space", VALIDATE, {"p.yaml": prof("", image="'busy box'")},
         expect="not a valid image reference"),
    Case("image-bad-tag", VALIDATE, {"p.yaml": prof("", image="'busybox:-x'")},
         expect="tag '-x'"),
    Case("image-bad-digest", VALIDATE, {"p.yaml": prof("", image="busybox@sha256:xyz")},
         expect="digest"),
    Case("image-empty", VALIDATE, {"p.yaml": prof("", image="''")}, expect="image"),
    Case("image-double-colon", VALIDATE, {"p.yaml": prof("", image="'a::b'")},
         expect="not a valid image reference"),
    Case("image-trailing-slash", VALIDATE, {"p.yaml": prof("", image="a/")},
         expect="not a valid image reference"),
    Case("image-bad-registry", VALIDATE, {"p.yaml": prof("", image="'reg:port/x'")},
         expect="registry"),
    Case("image-uppercase-on-up", UP, {"p.yaml": prof("", image="Local/Busybox")},
         docker=True, expect="must be lowercase", absent="invalid reference format"),
    # --- environment names --------------------------------------------------------------------
    Case("env-key-with-equals", VALIDATE, {"p.yaml": prof("container:\n  env: {'A=B': 1}\n")},
         expect="'A=B'"),
    Case("env-key-empty", VALIDATE, {"p.yaml": prof("container:\n  env: {'': 1}\n")},
         expect="container.env"),
    Case("env-key-space", VALIDATE, {"p.yaml": prof("container:\n  env: {'A B': 1}\n")},
         expect="'A B'"),
    Case("flagcx-env-key-with-equals", VALIDATE,
         {"p.yaml": prof("flagcx:\n  env: {'NCCL=X': 1}\n")}, expect="flagcx.env"),
    # --- sizes and ulimits --------------------------------------------------------------------
    Case("shm-size-zero", VALIDATE, {"p.yaml": prof("container:\n  shm_size: 0\n")},
         expect="64M"),
    Case("shm-size-zero-with-unit", VALIDATE, {"p.yaml": prof("container:\n  shm_size: 0G\n")},
         expect="64M"),
    Case("ulimit-unknown-name", VALIDATE,
         {"p.yaml": prof("container:\n  ulimits: {memlok: -1}\n")}, expect="did you mean memlock"),
    Case("ulimit-soft-above-hard", VALIDATE,
         {"p.yaml": prof("container:\n  ulimits: {nofile: '4096:1024'}\n")},
         expect="soft 4096 is above hard 1024"),
    Case("ulimit-negative", VALIDATE,
         {"p.yaml": prof("container:\n  ulimits: {nofile: -5}\n")}, expect="negative"),
    Case("up-ulimit-nofile-refused", UP,
         {"p.yaml": prof("container:\n  ulimits: {nofile: 1073741816}\n")}, docker=True,
         expect="nofile", absent="memlock"),
    # --- site overlay: keys that would touch every profile ------------------------------------
    Case("site-overlay-name", SHOW, {"site.yaml": "name: everyone\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="site.yaml:1: a site overlay cannot set `name`"),
    Case("site-overlay-extends", SHOW, {"site.yaml": "extends: nvidia-a800\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="cannot set `extends`"),
    Case("site-overlay-per-profile-name", SHOW,
         {"site.yaml": "profiles:\n  cpu-selftest:\n    name: other\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="site.yaml:3:"),
    Case("site-overlay-per-profile-extends", SHOW,
         {"site.yaml": "profiles:\n  cpu-selftest:\n    extends: nvidia-a800\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="cannot set `extends`"),
    Case("site-overlay-shm-zero", SHOW, {"site.yaml": "container:\n  shm_size: 0\n"},
         env={"CONTAINERCTL_SITE": "site.yaml"}, expect="site.yaml"),
    # --- --set --------------------------------------------------------------------------------
    Case("set-name-uppercase", SHOW + ["--set", "name=Bad"], expect="lowercase"),
    Case("set-name-slash", SHOW + ["--set", "name=a/b"], expect="name"),
    Case("set-extends", SHOW + ["--set", "extends=nvidia-a800"], expect="extends"),
    Case("set-image-uppercase", SHOW + ["--set", "image=Local/X"], expect="lowercase"),
    Case("set-shm-zero", SHOW + ["--set", "container.shm_size=0"], expect="64M"),
    Case("set-env-key-with-equals", SHOW + ["--set", "container.env={A=B: 1}"], expect="'A=B'"),
    Case("set-ulimit-unknown", SHOW + ["--set", "container.ulimits.nofiles=10"],
         expect="did you mean nofile"),
    Case("set-ulimit-soft-above-hard", SHOW + ["--set", "container.ulimits.nofile=9:8"],
         expect="above hard"),
    Case("set-volume-name-invalid", SHOW + ["--set", "container.volumes=[a/b:/data]"],
         expect="volume name"),
    Case("set-perf-iters-zero", SHOW + ["--set", "stages.perf.iters=0"], expect="iters"),
    Case("set-nranks-zero", SHOW + ["--set", "flagcx.nranks=0"], expect="nranks"),
    Case("set-allow-host-mounts-bad", SHOW + ["--set", "container.allow_host_mounts=maybe"],
         expect="allow_host_mounts"),
    Case("set-into-list", SHOW + ["--set", "container.command.0=x"], expect="--set"),
    Case("ulimit-base60-soft-above-hard", VALIDATE,
         {"p.yaml": prof("container:\n  ulimits: {nofile: 9:8}\n")}, expect="above hard"),
    Case("set-key-with-space", SHOW + ["--set", "container.shm size=1G"], expect="bad key"),
    # --- stage options ------------------------------------------------------------------------
    Case("run-timeout-negative", ["run", "--timeout", "-1", "--name", "{name}", "-q"],
         expect="--timeout"),
    Case("run-timeout-zero", ["run", "--timeout", "0", "--name", "{name}", "-q"],
         expect="--timeout"),
    Case("exec-stage-timeout-negative", ["exec-stage", "perf", "--timeout", "-5",
                                         "--name", "{name}"], expect="--timeout"),
    Case("exec-stage-timeout-huge", ["exec-stage", "perf", "--timeout", "99999999",
                                     "--name", "{name}"], expect="--timeout"),
    Case("run-timeout-huge", ["run", "--timeout", "99999999", "--name", "{name}", "-q"],
         expect="--timeout"),
    Case("cluster-run-begin-above-end", ["cluster", "run", "--hosts",
                                         "examples/hosts-local-selftest.yaml", "-b", "64K",
                                         "-e", "1K"], expect="begin 64K is above end 1K"),
    Case("cluster-run-timeout-zero", ["cluster", "run", "--hosts",
                                      "examples/hosts-local-selftest.yaml", "--timeout", "0"],
         expect="--timeout 0"),
    # --- references (validated where the profile is loaded) ----------------------------------
    Case("references-unknown-collective", VALIDATE,
         {"p.yaml": prof("references:\n  allreduce: {4G: 144}\n  allreduc: {1G: 3}\n")},
         expect="p.yaml:6: references.allreduc"),
    Case("references-bad-size", VALIDATE,
         {"p.yaml": prof("references:\n  allreduce:\n    4Q: 144\n")},
         expect="p.yaml:5: references.allreduce.4Q"),
    Case("references-bad-value", SHOW + ["--set", "references={allreduce: {4G: abc}}"],
         expect="--set"),
    # --- hosts inventories (cluster) ----------------------------------------------------------
    Case("inv-dup-key-cluster", CPS,
         {"h.yaml": inv("cluster:\n  name: c1\n  name: c2\nhosts:\n") + GOOD_HOST},
         needs="cluster", expect="h.yaml:3: duplicate key `cluster.name`"),
    Case("inv-dup-key-host", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - name: a\n    profile: cpu-selftest\n"
                    "    profile: nvidia-a800\n"},
         needs="cluster", expect="h.yaml:5: duplicate key `hosts.0.profile`"),
    Case("inv-dup-top-level", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n" + GOOD_HOST + "hosts:\n" + GOOD_HOST},
         needs="cluster", expect="duplicate key `hosts`"),
    Case("inv-missing-cluster", CPS, {"h.yaml": "hosts:\n" + GOOD_HOST}, needs="cluster",
         expect="cluster"),
    Case("inv-missing-hosts", CPS, {"h.yaml": "cluster: {name: c1}\n"}, needs="cluster",
         expect="hosts"),
    Case("inv-empty-hosts", CPS, {"h.yaml": "cluster: {name: c1}\nhosts: []\n"},
         needs="cluster", expect="hosts"),
    Case("inv-top-level-list", CPS, {"h.yaml": "- cluster: {name: c1}\n"}, needs="cluster",
         expect="mapping"),
    Case("inv-unknown-key", CPS,
         {"h.yaml": "cluster: {name: c1, ssh_prot: 22}\nhosts:\n" + GOOD_HOST},
         needs="cluster", expect="ssh_port"),
    Case("inv-host-name-bad", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: A/B, profile: cpu-selftest}\n"},
         needs="cluster", expect="host name"),
    Case("inv-host-name-twice", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n" + GOOD_HOST + GOOD_HOST},
         needs="cluster", expect="twice"),
    Case("inv-docker-http", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "docker: 'http://x'}\n"}, needs="cluster", expect="ssh://"),
    Case("inv-slots-zero", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "slots: 0}\n"}, needs="cluster", expect="slots"),
    Case("inv-ssh-port-zero", CPS,
         {"h.yaml": "cluster: {name: c1, ssh_port: 0}\nhosts:\n" + GOOD_HOST},
         needs="cluster", expect="ssh_port"),
    Case("inv-env-key-bad", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "env: {'A=B': 1}}\n"}, needs="cluster", expect="A=B"),
    Case("inv-mpi-openmpi", CPS,
         {"h.yaml": "cluster: {name: c1, mpi: openmpi}\nhosts:\n" + GOOD_HOST},
         needs="cluster", expect="mpich"),
    Case("inv-workspace-relative", CPS,
         {"h.yaml": "cluster: {name: c1, workspace: ws}\nhosts:\n" + GOOD_HOST},
         needs="cluster", expect="absolute"),
    Case("inv-address-bad", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "address: 'a b'}\n"}, needs="cluster", expect="address"),
    Case("inv-cluster-name-upper", CPS,
         {"h.yaml": "cluster: {name: Demo}\nhosts:\n" + GOOD_HOST}, needs="cluster",
         expect="cluster name"),
    Case("inv-cluster-name-list", CPS,
         {"h.yaml": "cluster: {name: [a]}\nhosts:\n" + GOOD_HOST}, needs="cluster",
         expect="cluster.name"),
    Case("inv-yaml-syntax", CPS, {"h.yaml": "cluster: {name: c1\nhosts:\n"}, needs="cluster",
         expect="YAML syntax"),
    Case("inv-file-missing", ["cluster", "ps", "--hosts", "nope.yaml"], needs="cluster",
         expect="nope.yaml"),
    # --- engine URLs (engineurl.py), bounds and depth (issue 18 items 6-7) ----------------------
    Case("inv-docker-ssh-option-user", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "docker: 'ssh://-oProxyCommand=true@127.0.0.1:22'}\n"}, needs="cluster",
         expect="starts with '-'"),
    Case("inv-docker-ssh-option-host", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "docker: 'ssh://root@-oProxyCommand=true'}\n"}, needs="cluster",
         expect="the host"),
    Case("inv-docker-port-99999", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "docker: 'tcp://h:99999'}\n"}, needs="cluster", expect="the port '99999'"),
    Case("inv-docker-port-abc", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "docker: 'ssh://h:abc'}\n"}, needs="cluster", expect="the port 'abc'"),
    Case("inv-docker-ipv6-unclosed", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "docker: 'ssh://[::1'}\n"}, needs="cluster", expect="closing ']'"),
    Case("inv-address-leading-dash", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n  - {name: a, profile: cpu-selftest, "
                    "address: '-oProxyCommand=x'}\n"}, needs="cluster", expect="address"),
    Case("docker-host-port-99999", ["ps"], env={"DOCKER_HOST": "tcp://127.0.0.1:99999"},
         expect="the port '99999'"),
    Case("docker-host-ipv6-unclosed", ["ps"], env={"DOCKER_HOST": "ssh://[::1"},
         expect="closing ']'"),
    Case("yaml-nested-5000", VALIDATE,
         {"p.yaml": prof("notes: " + "[" * 5000 + "]" * 5000 + "\n")},
         expect="p.yaml:4: YAML syntax error: nested more than 64"),
    Case("inv-yaml-nested-5000", CPS,
         {"h.yaml": "cluster: {name: c1}\nhosts:\n" + GOOD_HOST + "x: " + "{a: " * 3000
                    + "1" + "}" * 3000 + "\n"}, needs="cluster", expect="nested more than 64"),
    Case("perf-begin-above-end", VALIDATE,
         {"p.yaml": prof("stages:\n  perf: {begin: 8G, end: 4G}\n")}, expect="above end"),
    Case("perf-size-above-1t", SHOW + ["--set", "stages.perf.end=4T"], expect="above 1T"),
    Case("timeouts-zero", VALIDATE, {"p.yaml": prof("stages:\n  timeouts: {perf: 0}\n")},
         expect="stages.timeouts.perf"),
    Case("timeouts-huge", SHOW + ["--set", "stages.timeouts.perf=9999999999"],
         expect="604800"),
    Case("import-nranks-huge", ["results", "import", "p.yaml", "--nranks", "100000000"],
         {"p.yaml": "x\n"}, expect="4096"),
]

HAS_CLUSTER = importlib.util.find_spec("containerctl.cli.cluster") is not None


def _params():
    out = []
    for c in CASES:
        marks = []
        if c.xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=c.xfail))
        if c.needs == "cluster" and not HAS_CLUSTER:
            marks.append(pytest.mark.skip(reason="containerctl/cli/cluster.py does not exist"))
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def test_corpus_is_large_enough():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def local_image(request):
    """An image that is on the host (no registry is used): any tagged one, else cpu-selftest."""
    engine = request.getfixturevalue("engine")
    for img in sorted(engine.images(), key=lambda i: i.get("Size") or 0):
        for tag in img.get("RepoTags") or []:
            if tag and tag != "<none>:<none>":
                return tag
    return request.getfixturevalue("selftest_image")


def _ours(engine, tok: str, name: str) -> list[str]:
    """Managed containers (and workspace volumes) that this case could have made."""
    rows = [c.name for c in engine.list()
            if c.name == name or tok in c.name or tok in c.labels.get("io.containerctl.profile", "")]
    vols = [v["Name"] for v in (engine.api.volumes().get("Volumes") or [])
            if v["Name"].startswith(name) or tok in v["Name"]]
    return rows + vols


def _needs_ok(engine, image: str, needs: str) -> str | None:
    """Why this host cannot show the refusal the case needs (then the case is skipped)."""
    from containerctl import hostcheck
    if needs == "privileged-refused":
        ok, _ = engine.probe(image, {"privileged": True})
        return "this engine allows --privileged" if ok else None
    if needs == "memlock-limited":
        lim = hostcheck.dockerd_memlock_hard()
        return "dockerd's memlock is unlimited (or unreadable)" if lim in (None, -1) else None
    if needs == "no-gpu-runtime":
        return "this engine has the NVIDIA runtime" if hostcheck.gpu_runtime_available(engine) \
            else None
    return None


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Case, tmp_path, request, unique_name):
    tok = uuid.uuid4().hex[:8]
    engine = image = None
    if case.docker or case.needs:
        engine = request.getfixturevalue("engine")
        image = request.getfixturevalue("local_image")
        why = _needs_ok(engine, image, case.needs) if case.needs else None
        if why:
            pytest.skip(why)

    def fill(s: str) -> str:
        return s.replace("{img}", image or "local/none:none").replace("{tok}", tok) \
                .replace("{name}", unique_name)

    for rel, content in case.files.items():
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            f.write_bytes(content)
        else:
            f.write_text(fill(content))
    before_file = (tmp_path / case.unchanged).read_bytes() if case.unchanged else None
    env = {k: (str(tmp_path / v) if k in ("CONTAINERCTL_PROFILE_PATH", "CONTAINERCTL_SITE")
               else v) for k, v in case.env.items()}
    before = _ours(engine, tok, unique_name) if engine else []
    assert before == []

    r = cli(*[fill(a) for a in case.args], env=env, cwd=str(tmp_path), timeout=300)

    out = f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    lines = r.stderr.splitlines()
    assert "Traceback" not in r.stderr + r.stdout, out
    assert r.returncode == 2, out
    assert len(lines) == 2, out
    assert lines[0].startswith("error: ") and len(lines[0]) > len("error: "), out
    assert lines[1].startswith("  fix: ") and len(lines[1]) > len("  fix: "), out
    if case.expect:
        assert fill(case.expect) in r.stderr, out
    if case.absent:
        assert fill(case.absent) not in r.stderr, out
    if engine is not None:
        assert _ours(engine, tok, unique_name) == [], out + "\n(something was created)"
    if case.unchanged:
        assert (tmp_path / case.unchanged).read_bytes() == before_file
    if not case.files and "profile" in case.args[:1] and "new" in case.args[:2]:
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
