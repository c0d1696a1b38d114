#!/usr/bin/env bash
# Bandwidth cost of running FlagCX through containerctl, in one run on a GPU host:
#   1. containerctl run --profile nvidia-h200 (deps → build → perf allreduce 128K..4G)
#   2. the same FlagCX binary (copied out of the container) on the bare host, same mpirun args
#   3. nccl-tests all_reduce_perf -g 2 (the reference every user compares with)
# and prints busbw per size from 256 MiB up with the ratios (goals: ≥ 0.99 × bare metal,
# ≥ 0.98 × nccl-tests).
# Usage: benchmarks/gpu_bandwidth.sh FLAGCX_SRC_DIR NCCL_TESTS_BUILD_DIR [PROFILE]
# nccl-tests is taken by path: build it by hand beforehand; nothing here builds it.
set -euo pipefail
src=${1:?FlagCX source dir}; nccl_bin=${2:?nccl-tests build dir (with all_reduce_perf)}
profile=${3:-nvidia-h200}
out=${OUT:-/tmp/gpu_bandwidth}; mkdir -p "$out"
cctl=${CONTAINERCTL:-containerctl}
export CONTAINERCTL_HOME=${CONTAINERCTL_HOME:-$out/home}
name=cctl-$profile
args=(-b 128K -e 4G -f 2 -w 5 -n 20)

echo "== 1. containerctl run --profile $profile --until perf"
$cctl run --profile "$profile" --source "$src" --until perf -q \
  --set stages.perf.warmup=5 --set stages.perf.iters=20 --set stages.perf.begin=128K \
  --set stages.perf.end=4G | tee "$out/containerctl_run.txt"
run_id=$($cctl results list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
cp "$CONTAINERCTL_HOME/results/$run_id/logs/perf.log" "$out/containerctl_perf.log"

echo "== 2. the same binary on the bare host"
rm -rf /tmp/bare && mkdir -p /tmp/bare
docker cp "$name:/workspace/FlagCX" /tmp/bare/FlagCX
docker cp "$name:/workspace/.containerctl" /tmp/bare/.containerctl
. /tmp/bare/.containerctl/ccl.env 2>/dev/null || true
export LD_LIBRARY_PATH=/tmp/bare/FlagCX/build/lib:/tmp/bare/.containerctl/nccl/lib:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 CUDA_VISIBLE_DEVICES=0,1
(cd /tmp/bare/FlagCX/test/perf && mpirun --allow-run-as-root -np 2 --bind-to none \
   -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x CUDA_VISIBLE_DEVICES -x TORCH_SYMM_MEM_DISABLE_MULTICAST \
   -x NVSHMEM_DISABLE_NVLS ./test_allreduce "${args[@]}" -p 1) > "$out/bare_perf.log" 2>&1

echo "== 3. nccl-tests all_reduce_perf -g 2"
CUDA_VISIBLE_DEVICES=0,1 "$nccl_bin/all_reduce_perf" "${args[@]}" -g 2 > "$out/nccl_tests.log" 2>&1

echo "== busbw (GB/s) from 256 MiB up"
python3 - "$out" <<'PY'
import sys
from pathlib import Path
from containerctl.results import parsers as P
out = Path(sys.argv[1])
def flagcx(f):
    rows = [r for s in P.parse_flagcx_perf((out / f).read_text()) for r in s.rows]
    return {r.size: r.busbw for r in rows}
cc, bare = flagcx("containerctl_perf.log"), flagcx("bare_perf.log")
nt = P.parse_nccl_tests((out / "nccl_tests.log").read_text())
nccl = {r.size: r.oop.busbw for r in nt.rows}
print(f"{'size':>10} {'containerctl':>13} {'bare metal':>11} {'nccl-tests':>11} {'cc/bare':>8} {'cc/nccl':>8}")
worst_b = worst_n = None
for size in sorted(cc):
    if size < 256 * 1024**2:
        continue
    b, n = bare.get(size), nccl.get(size)
    rb = cc[size] / b if b else float("nan"); rn = cc[size] / n if n else float("nan")
    worst_b = rb if worst_b is None else min(worst_b, rb); worst_n = rn if worst_n is None else min(worst_n, rn)
    print(f"{size:>10} {cc[size]:>13.2f} {b or 0:>11.2f} {n or 0:>11.2f} {rb:>8.3f} {rn:>8.3f}")
print(f"worst ratio vs bare metal {worst_b:.3f} (goal >= 0.99); vs nccl-tests {worst_n:.3f} (goal >= 0.98)")
PY
