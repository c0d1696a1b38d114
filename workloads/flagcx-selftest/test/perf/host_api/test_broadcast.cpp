// Generated from tools/src/test/perf/host_api/test_broadcast.cpp (v0.13) by tools/export-generation.sh --sync-embedded: edit that file.
// FlagCX stand-in (selftest) -- broadcast perf test.  Runs once per root (-r R, or every rank
// in turn).  Input: every rank fills its sendbuff with its rank; recvbuff starts at -1.  What
// -p 1 prints in each interface generation: README.md, "What every generation prints".
// Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 1.0; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  for (size_t i = 0; i < count; i++) perfSetElement(ctx.send, i, ctx.type, ctx.rank);
  if (!ctx.printer) return;
  printf("root rank is %d\n", root);
  perfPrintBuffer("sendbuff = ", ctx.send, 10, 1);
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestBroadcast(ctx.send, ctx.recv, count, ctx.type, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (ctx.printer) perfPrintBuffer("recvbuff = ", ctx.recv, 10, 1);
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"broadcast", true, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
