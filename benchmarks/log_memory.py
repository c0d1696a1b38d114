"""Peak memory of reading a stage's output, whatever it prints (issue 18: a 150 MB-per-rank perf
log took 3.2 GB of RSS; `results import --nranks 100000000` took 7 GB).

Generates a perf log in FlagCX's real line format (containerctl's per-collective markers, v0.13
`# datatype: float, op: sum` sweep headers, `Comm size: … Bus bandwidth: … GB/s` lines from
1 KiB to 4 GiB, `-p 1` buffer lines of every rank, MPICH `[r] ` prefixes, FLAGCX INFO noise)
and measures, each phase in a fresh process (peak RSS = getrusage ru_maxrss):

  read-whole   baseline: the file read into memory (what any "read it all" parser starts from)
  stream       baseline: the file read in 1 MiB chunks and dropped
  runner       the runner's path: 64 KiB chunks → logread.ParseBuffer + LineSplitter →
               checks.run_parser("perf", buf.text(), ctx)
  unbounded    the old path (bytearray of everything, decode, run_parser with the old list-
               building line split) — on a smaller log (--old-mb), as the issue measured it
  import       `containerctl results import` of the generated log (refused past the limit) and
               of a log cut to the limit

    .venv/bin/python benchmarks/log_memory.py [--gb 1.0] [--old-mb 150] [--keep]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(path: Path, target: int, nranks: int = 8) -> int:
    """A perf stage's output of about `target` bytes: sweeps of 10 collectives repeated."""
    colls = ["allreduce", "allgather", "reducescatter", "broadcast", "alltoall", "reduce",
             "sendrecv", "gather", "scatter", "alltoallv"]
    sizes = [1024 << k for k in range(23)]                       # 1 KiB … 4 GiB
    block = []
    for coll in colls:
        block.append(f"=== containerctl coll={coll} nranks={nranks} ===")
        block.append("#\n# datatype: float, op: sum\n#")
        for size in sizes:
            for r in range(nranks):
                block.append(f"[{r}] FLAGCX INFO rank {r} comm 0x5581 nRanks {nranks} "
                             f"busId 1{r}000 - Init COMPLETE size {size}")
                vals = " ".join(f"{(i % 10) * (1 << r):.6f}" for i in range(8))
                block.append(f"[{r}] rank {r} sendbuff = {vals}")
                block.append(f"[{r}] rank {r} recvbuff = "
                             + " ".join(f"{(i % 10) * ((1 << nranks) - 1):.6f}" for i in range(8)))
                block.append(f"[{r}] rank {r} all-reduce correctness = 1")
            t = 2e-6 + size / 140e9
            bw = size / t / 1e9
            block.append(f"[0] Comm size: {size} bytes; Elapsed time: {t:.6f} sec; "
                         f"Algo bandwidth: {bw:.6f} GB/s; Bus bandwidth: "
                         f"{bw * 2 * (nranks - 1) / nranks:.6f} GB/s")
        block.append(f"=== containerctl end coll={coll} rc=0 ===")
    data = ("\n".join(block) + "\n").encode()
    written = 0
    with open(path, "wb") as f:
        while written < target:
            f.write(data)
            written += len(data)
    return written


PHASES = {
    "read-whole": """
data = open(LOG, 'rb').read()
print('bytes', len(data))
""",
    "stream": """
n = 0
with open(LOG, 'rb') as f:
    while chunk := f.read(1 << 20):
        n += len(chunk)
print('bytes', n)
""",
    "runner": """
from containerctl.logread import LineSplitter, ParseBuffer
from containerctl.stages import checks as C
buf, lines, shown = ParseBuffer(), LineSplitter(), 0
with open(LOG, 'rb') as f:
    while chunk := f.read(65536):          # as engine.exec hands the stream to on_output
        buf.extend(chunk)
        shown += len(lines.feed(chunk))
metrics, chks, _ = C.run_parser('perf', buf.text(), {'nranks': 8, 'perf': {'op': 'sum'}})
print('bytes', buf.total, 'kept', buf.total - buf.dropped, 'lines', shown,
      'colls', len(metrics['collectives']), 'checks', len(chks))
""",
    "unbounded": """
from containerctl.results import parsers as P
from containerctl.stages import checks as C
# the parsers' line split as it was (a list of every line, after two copies of the text)
P._lines = lambda text: [P.strip_prefix(l) for l in
                         text.replace("\\r\\n", "\\n").replace("\\r", "\\n").split("\\n")]
buf = bytearray()
with open(LOG, 'rb') as f:
    while chunk := f.read(65536):
        buf.extend(chunk)
text = buf.decode('utf-8', 'replace')
metrics, chks, _ = C.run_parser('perf', text, {'nranks': 8, 'perf': {'op': 'sum'}})
print('bytes', len(buf), 'colls', len(metrics['collectives']), 'checks', len(chks))
""",
}


def phase(name: str, log: Path) -> tuple[float, float, str]:
    code = (f"import resource, sys; sys.path.insert(0, {str(ROOT)!r}); LOG = {str(log)!r}\n"
            + PHASES[name] +
            "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        return float("nan"), dt, r.stderr.strip().splitlines()[-1][:200]
    lines = r.stdout.strip().splitlines()
    peak = int(lines[-1].split()[1]) / 1024
    return peak, dt, " ".join(lines[:-1])


def cli_peak(args: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Peak RSS (MiB) of the containerctl CLI, through a wrapper whose only child it is."""
    exe = str(Path(sys.executable).parent / "containerctl")
    wrap = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], "
            "capture_output=True, text=True); print(r.returncode); print(r.stderr.strip()"
            ".splitlines()[0] if r.stderr.strip() else ''); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    r = subprocess.run([sys.executable, "-c", wrap, exe, *args], capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    rc, said, peak = r.stdout.strip().splitlines()[-3:]
    return int(peak) / 1024, int(rc), said


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gb", type=float, default=1.0, help="size of the generated log (GB)")
    ap.add_argument("--old-mb", type=float, default=150, help="log size for the unbounded path")
    ap.add_argument("--keep", action="store_true", help="keep the generated logs")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cctl-logmem-"))
    os.environ.setdefault("CONTAINERCTL_HOME", str(work / "home"))
    big, old = work / "perf-big.log", work / "perf-old.log"
    n = generate(big, int(a.gb * 1e9))
    m = generate(old, int(a.old_mb * 1e6))
    from containerctl.logread import parse_limit
    print(f"generated {n / 1e9:.2f} GB ({big}) and {m / 1e6:.0f} MB; parse limit "
          f"{parse_limit() >> 20} MiB (CONTAINERCTL_PARSE_LIMIT_MB)")
    print(f"{'phase':<12} {'log':>8} {'peak RSS':>10} {'time':>7}  result")
    rows = [("read-whole", big), ("stream", big), ("runner", big), ("runner", old),
            ("unbounded", old)]
    for name, log in rows:
        peak, dt, said = phase(name, log)
        print(f"{name:<12} {log.stat().st_size / 1e6:>6.0f}MB {peak:>8.0f}MiB {dt:>6.1f}s  {said}")
    for label, path, env in (("import", big, None), ("import", old, None)):
        peak, rc, said = cli_peak(["results", "import", str(path), "--nranks", "8"], env)
        print(f"{label:<12} {path.stat().st_size / 1e6:>6.0f}MB {peak:>8.0f}MiB {'':>7}  "
              f"exit {rc}: {said[:110]}")
    cut = work / "perf-cut.log"
    generate(cut, parse_limit() - (1 << 20))
    peak, rc, said = cli_peak(["results", "import", str(cut), "--nranks", "8"])
    print(f"{'import':<12} {cut.stat().st_size / 1e6:>6.0f}MB {peak:>8.0f}MiB {'':>7}  "
          f"exit {rc}: {said[:110]}")
    peak, rc, said = cli_peak(["results", "import", str(cut), "--nranks", "100000000"])
    print(f"{'import -n 1e8':<12} {'':>8} {peak:>8.0f}MiB {'':>7}  exit {rc}: {said[:110]}")
    if not a.keep:
        for p in (big, old, cut):
            p.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
