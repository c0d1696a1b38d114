// FlagCX stand-in (selftest) -- sendrecv perf test, FlagCX interface after v0.13: sweeps
// every datatype of -d (default float / sum), announcing each sweep; -p 1 prints no buffers and no
// verdict, as in FlagCX (only the unit tests say whether results are right).
// Input: a ring (rank r sends to r + 1); sendbuff[i] = 100 * rank + (i % 10); recvbuff starts at -1.  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 1.0; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  for (size_t i = 0; i < count; i++) perfSetElement(ctx.send, i, ctx.type, (double)(100 * ctx.rank + i % 10));
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestSendRecv(ctx.send, ctx.recv, count, ctx.type, (ctx.rank + 1) % ctx.nranks,
                                (ctx.rank + ctx.nranks - 1) % ctx.nranks, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {}

int main(int argc, char **argv) {
  const PerfCollective coll = {"sendrecv", false, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
