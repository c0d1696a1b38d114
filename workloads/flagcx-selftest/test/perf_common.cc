// FlagCX stand-in (selftest) -- the perf-test engine (see include/perf_common.h).
// Not FlagCX's code.  It prints what every generation of FlagCX's perf tests prints in
// common: "I am R of N" lines and, per size on rank 0,
//   Comm size: %zu bytes; Elapsed time: %lf sec; Algo bandwidth: %lf GB/s; Bus bandwidth: %lf GB/s
// The buffer lines are the business of each test_<coll>.cpp.

#include "perf_common.h"

#include <stdarg.h>
#include <stdint.h>

#include <algorithm>

bool perfParseSize(const char *text, size_t *out) {
  char *end = NULL;
  double value = strtod(text, &end);
  if (end == text || value < 0) return false;
  double unit = 1;
  if (*end != '\0') {
    switch (*end) {
    case 'K': case 'k': unit = 1024.0; break;
    case 'M': case 'm': unit = 1024.0 * 1024.0; break;
    case 'G': case 'g': unit = 1024.0 * 1024.0 * 1024.0; break;
    default: return false;
    }
    if (end[1] != '\0' && !((end[1] == 'B' || end[1] == 'b') && end[2] == '\0')) return false;
  }
  double bytes = value * unit;
  if (bytes >= 18446744073709551615.0) return false;
  *out = (size_t)bytes;
  return true;
}

bool perfParseLong(const char *text, long lo, long hi, long *out) {
  char *end = NULL;
  long v = strtol(text, &end, 0);
  if (end == text || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool perfSetOption(int c, const char *arg, PerfOptions *opt) {
  long v = 0;
  switch (c) {
  case 'b':
    if (!perfParseSize(arg, &opt->minBytes)) perfUsageExit("invalid minbytes value '%s'", arg);
    break;
  case 'e':
    if (!perfParseSize(arg, &opt->maxBytes)) perfUsageExit("invalid maxbytes value '%s'", arg);
    break;
  case 'f':
    if (!perfParseLong(arg, 2, 1L << 30, &v))
      perfUsageExit("invalid stepfactor value '%s' (an integer >= 2)", arg);
    opt->stepFactor = (size_t)v;
    break;
  case 'w':
    if (!perfParseLong(arg, 0, 1L << 30, &v)) perfUsageExit("invalid warmupiters value '%s'", arg);
    opt->warmupIters = (int)v;
    break;
  case 'n':
    if (!perfParseLong(arg, 1, 1L << 30, &v)) perfUsageExit("invalid iters value '%s' (>= 1)", arg);
    opt->iters = (int)v;
    break;
  case 'p':
    if (!perfParseLong(arg, 0, 1, &v)) perfUsageExit("invalid printbuffer value '%s' (0 or 1)", arg);
    opt->printBuffer = (int)v;
    break;
  case 'r':
    if (!perfParseLong(arg, -1, 1L << 30, &v)) perfUsageExit("invalid root value '%s'", arg);
    opt->root = (int)v;
    break;
  case 's':
    if (!perfParseLong(arg, 0, 0, &v))
      perfUsageExit("split mask '%s' is not supported by the FlagCX stand-in (selftest); use 0", arg);
    opt->splitMask = 0;
    break;
  case 'R':
    if (!perfParseLong(arg, 0, 2, &v)) perfUsageExit("invalid localregister value '%s' (0, 1 or 2)", arg);
    opt->localRegister = (int)v;
    break;
  default:
    return false;
  }
  return true;
}

const char *perfTypeName(flagcxSelftestDataType_t type) {
  switch (type) {
  case flagcxSelftestInt8: return "int8";
  case flagcxSelftestUint8: return "uint8";
  case flagcxSelftestInt32: return "int32";
  case flagcxSelftestUint32: return "uint32";
  case flagcxSelftestInt64: return "int64";
  case flagcxSelftestUint64: return "uint64";
  case flagcxSelftestFloat: return "float";
  case flagcxSelftestDouble: return "double";
  default: return "unknown";
  }
}

const char *perfOpName(flagcxSelftestRedOp_t op) {
  switch (op) {
  case flagcxSelftestSum: return "sum";
  case flagcxSelftestProd: return "prod";
  case flagcxSelftestMax: return "max";
  case flagcxSelftestMin: return "min";
  default: return "unknown";
  }
}

void perfUsageExit(const char *fmt, const char *arg) {
  fprintf(stderr, "FlagCX stand-in (selftest): ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  fflush(stderr);
  exit(1);
}

void perfPrintFloats(const void *buf, size_t first, size_t n, size_t stride) {
  const float *f = (const float *)buf;
  for (size_t k = 0; k < n; k++) printf("%f ", f[first + k * stride]);
}

void perfPrintBuffer(const char *label, const void *buf, size_t n, size_t stride) {
  printf("%s", label);
  perfPrintFloats(buf, 0, n, stride);
  printf("\n");
}

void perfSetElement(void *buf, size_t i, flagcxSelftestDataType_t type, double v) {
  long long w = (long long)v;
  switch (type) {
  case flagcxSelftestFloat: ((float *)buf)[i] = (float)v; break;
  case flagcxSelftestDouble: ((double *)buf)[i] = v; break;
  case flagcxSelftestInt8: ((int8_t *)buf)[i] = (int8_t)w; break;
  case flagcxSelftestUint8: ((uint8_t *)buf)[i] = (uint8_t)w; break;
  case flagcxSelftestInt32: ((int32_t *)buf)[i] = (int32_t)w; break;
  case flagcxSelftestUint32: ((uint32_t *)buf)[i] = (uint32_t)w; break;
  case flagcxSelftestInt64: ((int64_t *)buf)[i] = (int64_t)w; break;
  case flagcxSelftestUint64: ((uint64_t *)buf)[i] = (uint64_t)w; break;
  default: break;
  }
}

namespace {

int gRank = 0;

void check(flagcxSelftestResult_t res, const char *what) {
  if (res == flagcxSelftestSuccess) return;
  fprintf(stderr, "rank %d: %s failed: %s\n", gRank, what, flagcxSelftestGetErrorString(res));
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

// sendbuff = 0 and recvbuff = -1 over the part a size uses (at least 16 elements, so that
// the ten printed floats are always initialised).
void resetBuffers(PerfContext &ctx, size_t count) {
  size_t typeSize = flagcxSelftestTypeSize(ctx.type);
  size_t n = std::min(std::max(count, (size_t)16), ctx.allocBytes / typeSize);
  memset(ctx.send, 0, n * typeSize);
  for (size_t i = 0; i < n; i++) perfSetElement(ctx.recv, i, ctx.type, -1.0);
}

// One timed measurement: warm-up, barrier, iters runs; the mean time per run over ranks.
double timeRuns(PerfContext &ctx, const PerfCollective &coll, size_t count, int root) {
  for (int i = 0; i < ctx.opt.warmupIters; i++) check(coll.run(ctx, count, root), coll.name);
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int i = 0; i < ctx.opt.iters; i++) check(coll.run(ctx, count, root), coll.name);
  double elapsed = (MPI_Wtime() - t0) / ctx.opt.iters;
  MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  elapsed /= ctx.nranks;
  // A clock tick longer than the runs would give 0 and an "inf" bandwidth: never less than 1 ns.
  return elapsed > 1e-9 ? elapsed : 1e-9;
}

void printResult(size_t size, double elapsed, double busFactor) {
  double algBw = (double)size / 1.0e9 / elapsed;
  double busBw = algBw * busFactor;
  printf("Comm size: %zu bytes; Elapsed time: %lf sec; Algo bandwidth: %lf GB/s; "
         "Bus bandwidth: %lf GB/s\n",
         size, elapsed, algBw, busBw);
}

// Fault injection (stand-in only): SELFTEST_FAULT=crash-rank1 makes rank 1 abort once the
// first size of the first sweep is done.
void maybeCrash(const PerfContext &ctx) {
  if (ctx.rank != 1 || flagcxSelftestGetFault() != flagcxSelftestFaultCrashRank1) return;
  fprintf(stderr, "FlagCX stand-in (selftest): fault injection crash-rank1: rank 1 aborts now\n");
  fflush(stderr);
  fflush(stdout);
  abort();
}

void sweep(PerfContext &ctx, const PerfCollective &coll, bool *crashPoint) {
  const size_t typeSize = flagcxSelftestTypeSize(ctx.type);
  const int firstRoot = coll.rooted ? (ctx.opt.root < 0 ? 0 : ctx.opt.root) : -1;
  const int lastRoot = coll.rooted ? (ctx.opt.root < 0 ? ctx.nranks - 1 : ctx.opt.root) : -1;
  for (size_t size = ctx.opt.minBytes;;) {
    size_t count = size / typeSize;
    if (coll.rooted) {
      double sumElapsed = 0;
      for (int root = firstRoot; root <= lastRoot; root++) {
        resetBuffers(ctx, count);
        coll.init(ctx, size, count, root);
        MPI_Barrier(MPI_COMM_WORLD);
        sumElapsed += timeRuns(ctx, coll, count, root);
        MPI_Barrier(MPI_COMM_WORLD);
        coll.check(ctx, size, count, root);
      }
      if (ctx.rank == 0) printResult(size, sumElapsed / (lastRoot - firstRoot + 1), coll.busFactor(ctx.nranks));
    } else {
      resetBuffers(ctx, count);
      coll.init(ctx, size, count, -1);
      MPI_Barrier(MPI_COMM_WORLD);
      double elapsed = timeRuns(ctx, coll, count, -1);
      if (ctx.rank == 0) printResult(size, elapsed, coll.busFactor(ctx.nranks));
      MPI_Barrier(MPI_COMM_WORLD);
      coll.check(ctx, size, count, -1);
    }
    if (*crashPoint) {
      *crashPoint = false;
      maybeCrash(ctx);
    }
    if (size > ctx.opt.maxBytes / ctx.opt.stepFactor) break;  // the next step would pass maxBytes
    size *= ctx.opt.stepFactor;
  }
}

}  // namespace

int perfMain(int argc, char **argv, const PerfCollective &coll) {
  PerfContext ctx;
  perfParseOptions(argc, argv, &ctx.opt);  // before MPI_Init, as in FlagCX

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &ctx.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ctx.nranks);
  gRank = ctx.rank;
  setvbuf(stdout, NULL, _IOLBF, 0);  // whole lines, as they happen
  printf("I am %d of %d\n", ctx.rank, ctx.nranks);
  printf("I am %d of %d in group %d\n", ctx.rank, ctx.nranks, 0);
  ctx.printer = ctx.opt.printBuffer && perfPrintsBuffers(ctx.rank, ctx.nranks);
  if (ctx.opt.root >= 0) ctx.opt.root %= ctx.nranks;

  check(flagcxSelftestCommInitWorld(&ctx.comm), "communicator init");
  ctx.allocBytes = std::max(ctx.opt.maxBytes, (size_t)128);
  ctx.allocBytes = (ctx.allocBytes + 7) / 8 * 8;
  ctx.send = malloc(ctx.allocBytes);
  ctx.recv = malloc(ctx.allocBytes);
  if (ctx.send == NULL || ctx.recv == NULL) {
    fprintf(stderr, "rank %d: cannot allocate 2 x %zu bytes of host memory\n", ctx.rank,
            ctx.allocBytes);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

  bool crashPoint = true;
  for (flagcxSelftestDataType_t type : ctx.opt.types) {
    // Collectives without an op run once per datatype, under the first op's name.
    size_t nops = coll.reduces ? ctx.opt.ops.size() : 1;
    for (size_t o = 0; o < nops; o++) {
      ctx.type = type;
      ctx.op = ctx.opt.ops[o];
      if (ctx.rank == 0) perfAnnounceSweep(perfTypeName(ctx.type), perfOpName(ctx.op));
      sweep(ctx, coll, &crashPoint);
    }
  }

  MPI_Barrier(MPI_COMM_WORLD);
  free(ctx.send);
  free(ctx.recv);
  check(flagcxSelftestCommDestroy(ctx.comm), "communicator destroy");
  MPI_Finalize();
  return 0;
}
