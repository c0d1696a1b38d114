"""Image cache benchmark: a cold build (--no-cache) of a small image whose last block is a
FlagCX-like source checkout plus a compile step, then a rebuild after changing ONLY the FlagCX
ref. Layer order (OS packages first, FlagCX last) should make the rebuild redo only the last
layers: ratio = rebuild / cold, goal <= 0.10.

Offline: the "FlagCX" source is a git repository made in a temporary directory with two commits
(or --repo PATH --refs A B for a real checkout), and the base is containerctl's bootstrapped
Debian (made with mmdebstrap if missing; that time is reported apart, not in the ratio).

    python benchmarks/image_cache.py            # prints times and the ratio
    python benchmarks/image_cache.py --keep     # keep the two images
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from containerctl import images  # noqa: E402
from containerctl.engine import Engine  # noqa: E402

GOAL = 0.10

SPEC = """\
name: bench-image-cache
description: image cache benchmark (benchmarks/image_cache.py); safe to delete
base:
  bootstrap:
    tool: mmdebstrap
    suite: bookworm
    mirror: http://deb.debian.org/debian
    variant: minbase
    include: [ca-certificates]
  tag: containerctl/base:debian-bookworm
blocks:
  - use: base-packages
    packages: [g++, make, git, procps]
  - use: python
    dev: false
  - use: sshd
    port: 8010
  - use: flagcx
    source: local
    path: {repo}
    submodules: false
    make: all
"""


def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@localhost",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@localhost")
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_fake_flagcx(root: Path) -> tuple[Path, str, str]:
    """A small FlagCX-shaped repository (sources + Makefile building a shared library) with two
    commits that differ in one source file."""
    repo = root / "FlagCX"
    (repo / "flagcx" / "core").mkdir(parents=True)
    _git(repo, "init", "-q")
    for i in range(40):
        (repo / "flagcx" / "core" / f"unit{i}.cc").write_text(textwrap.dedent(f"""\
            // generated unit {i}
            int flagcx_unit_{i}(int x) {{ return x * {i + 1} + {i}; }}
        """) + "// padding\n" * 200)
    (repo / "flagcx" / "core" / "version.cc").write_text('const char *flagcxVersion = "one";\n')
    (repo / "Makefile").write_text(textwrap.dedent("""\
        SRCS := $(wildcard flagcx/core/*.cc)
        all: build/lib/libflagcx.so
        build/lib/libflagcx.so: $(SRCS)
        \tmkdir -p build/lib
        \tg++ -O2 -fPIC -shared -o $@ $(SRCS)
    """))
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "flagcx" / "core" / "version.cc").write_text('const char *flagcxVersion = "two";\n')
    _git(repo, "commit", "-qam", "two")
    return repo, first, _git(repo, "rev-parse", "HEAD")


def timed_build(engine: Engine, spec, ref: str, nocache: bool,
                verbose: bool) -> tuple[str, float, int, int]:
    """(tag, seconds, steps, steps served from Docker's layer cache)"""
    steps = cached = 0

    def on_line(line: str) -> None:
        nonlocal steps, cached
        if line.startswith("Step ") and " : FROM " not in line:  # FROM is never "run"
            steps += 1
        if "Using cache" in line:
            cached += 1
        if verbose or line.startswith("Step ") or line.startswith("["):
            print("   ", line, flush=True)

    start = time.monotonic()
    tag = images.ensure_image(engine, spec, {"flagcx.ref": ref}, nocache=nocache,
                              force=nocache, on_line=on_line)
    return tag, time.monotonic() - start, steps, cached


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, help="a real FlagCX checkout instead of the fake one")
    ap.add_argument("--refs", nargs=2, metavar=("A", "B"), help="the two refs of --repo")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark images")
    ap.add_argument("--verbose", "-v", action="store_true", help="show all build output")
    args = ap.parse_args(argv)

    engine = Engine()
    if not engine.ping():
        print("no Docker engine answers", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="containerctl-bench-") as tmp:
        tmp_path = Path(tmp)
        if args.repo:
            if not args.refs:
                ap.error("--repo needs --refs A B")
            repo, first, second = args.repo.resolve(), args.refs[0], args.refs[1]
        else:
            repo, first, second = make_fake_flagcx(tmp_path)
        spec_file = tmp_path / "bench-image-cache.yaml"
        spec_file.write_text(SPEC.format(repo=repo))
        spec = images.load_image(spec_file)

        t0 = time.monotonic()
        images.ensure_base(engine, spec.base, on_line=lambda line: print("   ", line))
        base_s = time.monotonic() - t0
        print(f"base {spec.base.ref}: ready in {base_s:.1f}s (not part of the ratio)")

        print(f"cold build, --no-cache, FlagCX ref {first[:12]}:")
        tag_a, cold, steps_a, cached_a = timed_build(engine, spec, first, True, args.verbose)
        print(f"rebuild after changing only the FlagCX ref to {second[:12]}:")
        tag_b, warm, steps_b, cached_b = timed_build(engine, spec, second, False, args.verbose)
        print("again, unchanged inputs:")
        tag_c, hit, steps_c, _ = timed_build(engine, spec, second, False, args.verbose)
        assert tag_b == tag_c and steps_c == 0, "unchanged inputs must not rebuild"
        assert tag_a != tag_b, "a new ref must give a new tag"

        ratio = warm / cold if cold else float("nan")
        print()
        print(f"cold build (--no-cache)        {cold:8.1f} s  {steps_a - cached_a:2d} of {steps_a} "
              f"steps run  {tag_a}")
        print(f"rebuild, only FlagCX ref new   {warm:8.1f} s  {steps_b - cached_b:2d} of {steps_b} "
              f"steps run  {tag_b}")
        print(f"unchanged inputs (cache hit)   {hit:8.2f} s  no build")
        verdict = "meets" if ratio <= GOAL else "misses"
        print(f"ratio rebuild/cold = {ratio:.3f} ({verdict} the goal <= {GOAL:.2f})")
        if not args.keep:
            for tag in {tag_a, tag_b}:
                engine.remove_image(tag, force=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
