// FlagCX stand-in (selftest) -- allreduce perf test, FlagCX interface after v0.13: sweeps
// every datatype and op of -d / -o (default float / sum), announcing each sweep; -p 1 prints no buffers and no
// verdict, as in FlagCX (only the unit tests say whether results are right).
// Input: sendbuff[i] = (i % 10) * 2^(rank % 30) in the sweep's datatype (recvbuff starts as a copy).  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 2.0 * (n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  for (size_t i = 0; i < count; i++) perfSetElement(ctx.send, i, ctx.type, (double)(i % 10) * (double)(1ULL << (ctx.rank % 30)));
  memcpy(ctx.recv, ctx.send, size);
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestAllReduce(ctx.send, ctx.recv, count, ctx.type, ctx.op, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {}

int main(int argc, char **argv) {
  const PerfCollective coll = {"allreduce", false, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
