#!/usr/bin/env bash
# Bandwidth cost of running FlagCX through containerctl, in one run on a GPU host:
#   1. containerctl run --profile nvidia-h200 (deps → build → perf allreduce 128K..4G)
#   2. the same FlagCX binary (copied out of the container) on the bare host, same mpirun args
#   3. nccl-tests all_reduce_perf -g 2 (the reference every user compares with)
# and prints busbw per size from 256 MiB up with the ratios (goals: ≥ 0.99 × bare metal,
# ≥ 0.98 × nccl-tests).
# Usage: [NRANKS=2] benchmarks/gpu_bandwidth.sh FLAGCX_SRC_DIR NCCL_TESTS_BUILD_DIR [PROFILE]
# With NRANKS=1 (a one-GPU host) busbw is 0 by definition, so algbw is compared instead.
# nccl-tests is taken by path: build it by hand beforehand; nothing here builds it.
set -euo pipefail
src=${1:?FlagCX source dir}; nccl_bin=${2:?nccl-tests build dir (with all_reduce_perf)}
profile=${3:-nvidia-h200}
out=${OUT:-/tmp/gpu_bandwidth}; mkdir -p "$out"
cctl=${CONTAINERCTL:-containerctl}
export CONTAINERCTL_HOME=${CONTAINERCTL_HOME:-$out/home}
name=cctl-$profile
args=(-b 128K -e 4G -f 2 -w 5 -n 20)
nranks=${NRANKS:-2}
visible=$(seq -s, 0 $((nranks - 1)))

echo "== 1. containerctl run --profile $profile --until perf"
$cctl run --profile "$profile" --source "$src" --until perf -q \
  --set stages.perf.warmup=5 --set stages.perf.iters=20 --set stages.perf.begin=128K \
  --set stages.perf.end=4G --set flagcx.nranks="$nranks" --set flagcx.visible_devices="$visible" \
  --set stages.perf.colls='[allreduce]' | tee "$out/containerctl_run.txt"
run_id=$($cctl results list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
cp "$CONTAINERCTL_HOME/results/$run_id/logs/perf.log" "$out/containerctl_perf.log"

echo "== 2. the same binary on the bare host"
rm -rf /tmp/bare && mkdir -p /tmp/bare
docker cp "$name:/workspace/FlagCX" /tmp/bare/FlagCX
docker cp "$name:/workspace/.containerctl" /tmp/bare/.containerctl
. /tmp/bare/.containerctl/ccl.env 2>/dev/null || true
export LD_LIBRARY_PATH=/tmp/bare/FlagCX/build/lib:/tmp/bare/.containerctl/nccl/lib:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 CUDA_VISIBLE_DEVICES=$visible
(cd /tmp/bare/FlagCX/test/perf && mpirun --allow-run-as-root -np "$nranks" --bind-to none \
   -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x CUDA_VISIBLE_DEVICES -x TORCH_SYMM_MEM_DISABLE_MULTICAST \
   -x NVSHMEM_DISABLE_NVLS ./test_allreduce "${args[@]}" -p 1) > "$out/bare_perf.log" 2>&1

echo "== 3. nccl-tests all_reduce_perf -g $nranks"
CUDA_VISIBLE_DEVICES=$visible "$nccl_bin/all_reduce_perf" "${args[@]}" -g "$nranks" > "$out/nccl_tests.log" 2>&1

metric=busbw; [ "$nranks" = 1 ] && metric=algbw
echo "== $metric (GB/s) from 256 MiB up, $nranks rank(s)"
python3 - "$out" "$metric" <<'PY'
import sys
from pathlib import Path
from containerctl.results import parsers as P
out, metric = Path(sys.argv[1]), sys.argv[2]
def flagcx(f):
    rows = [r for s in P.parse_flagcx_perf((out / f).read_text()) for r in s.rows]
    return {r.size: getattr(r, metric) for r in rows}
cc, bare = flagcx("containerctl_perf.log"), flagcx("bare_perf.log")
nt = P.parse_nccl_tests((out / "nccl_tests.log").read_text())
nccl = {r.size: getattr(r.oop, metric) for r in nt.rows}
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
