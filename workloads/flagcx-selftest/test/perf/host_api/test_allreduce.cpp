// Generated from tools/src/test/perf/host_api/test_allreduce.cpp (v0.13) by tools/export-generation.sh --sync-embedded: edit that file.
// FlagCX stand-in (selftest) -- allreduce perf test.
// Input: sendbuff[i] = (i % 10) * 2^rank on every rank (recvbuff starts as a copy of it).
#include <math.h>
// What -p 1 prints in each interface generation: README.md, "What every generation prints".
// Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 2.0 * (n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  for (size_t i = 0; i < count; i++) send[i] = (float)((i % 10) * ldexp(1.0, ctx.rank));
  memcpy(ctx.recv, ctx.send, count * sizeof(float));
  if (ctx.opt.printBuffer) {  // every rank
    printf("rank %d sendbuff = ", ctx.rank);
    perfPrintFloats(send, 0, 10, 1);
    printf("\n");
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestAllReduce(ctx.send, ctx.recv, count, ctx.type, ctx.op, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  // Every rank prints its buffer and its own verdict over the whole of it (sum:
  // (i % 10) * (2^nranks - 1)), after the first wrong element if there is one.
  if (!ctx.opt.printBuffer) return;
  const float *recv = (const float *)ctx.recv;
  printf("rank %d recvbuff = ", ctx.rank);
  perfPrintFloats(recv, 0, 10, 1);
  printf("\n");
  // Fault injection (stand-in only): corrupt-quiet makes this verdict claim success.
  const bool lie = flagcxSelftestGetFault() == flagcxSelftestFaultCorruptQuiet;
  const double factor = ldexp(1.0, ctx.nranks) - 1;
  int correct = 1;
  for (size_t i = 0; i < count && !lie; i++) {
    float expected = (float)((i % 10) * factor);
    if (recv[i] != expected) {
      printf("rank %d wrong output at offset %zu, expected %f, got %f\n", ctx.rank, i, expected,
             recv[i]);
      correct = 0;
      break;
    }
  }
  printf("rank %d all-reduce correctness = %d\n", ctx.rank, correct);
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"allreduce", false, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
