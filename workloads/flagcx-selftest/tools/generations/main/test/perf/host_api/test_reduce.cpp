// FlagCX stand-in (selftest) -- reduce perf test, FlagCX interface after v0.13: sweeps
// every datatype and op of -d / -o (default float / sum), announcing each sweep; -p 1 prints no buffers and no
// verdict, as in FlagCX (only the unit tests say whether results are right).
// Input: sendbuff[i] = (i % 10) * 2^(rank % 30); recvbuff starts at -1.  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 1.0; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  for (size_t i = 0; i < count; i++) perfSetElement(ctx.send, i, ctx.type, (double)(i % 10) * (double)(1ULL << (ctx.rank % 30)));
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestReduce(ctx.send, ctx.recv, count, ctx.type, ctx.op, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {}

int main(int argc, char **argv) {
  const PerfCollective coll = {"reduce", true, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
