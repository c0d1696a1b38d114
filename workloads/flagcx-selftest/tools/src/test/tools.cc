#if CCTL_GEN_MAIN
// FlagCX stand-in (selftest) -- perf-test options of the FlagCX interface after v0.13: the
// older ones plus -d <datatype|all> and -o <op|all>.  Each datatype/op sweep is announced by
// rank 0 as "#", "# datatype: <type>, op: <op>", "#".  Not FlagCX's code.
//
// Datatypes: int8 uint8 int32 uint32 int64 uint64 float double ("all": these, in this
// order); half and bfloat16 are FlagCX datatypes this stand-in does not have (an error).
// Ops: sum prod max min ("all": these); avg is not supported (an error).  An unknown name
// falls back to float / sum with a note on stdout, as FlagCX does.
#else
// FlagCX stand-in (selftest) -- perf-test options of the FlagCX interface up to v0.13:
// -b -e -f -w -n -p -r -s -R -h and nothing else.  As in those releases, -d and -o are not
// options: getopt reports "invalid option -- 'd'", the usage follows, and the program stops
// (FlagCX itself carries on with its defaults; the stand-in stops so that nobody mistakes
// that for a run with the given datatype).  Not FlagCX's code.
#endif

#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#if CCTL_GEN_MAIN
#include <string.h>
#endif

#include "tools.h"

namespace {

#if CCTL_GEN_MAIN
const flagcxSelftestDataType_t kAllTypes[] = {flagcxSelftestInt8,  flagcxSelftestUint8,
                                              flagcxSelftestInt32, flagcxSelftestUint32,
                                              flagcxSelftestInt64, flagcxSelftestUint64,
                                              flagcxSelftestFloat, flagcxSelftestDouble};
const flagcxSelftestRedOp_t kAllOps[] = {flagcxSelftestSum, flagcxSelftestProd, flagcxSelftestMax,
                                         flagcxSelftestMin};

#endif
void printUsage(char *prog) {
  printf("FlagCX stand-in (selftest) perf test\n"
         "Usage: %s [-b <minbytes K/M/G>] [-e <maxbytes K/M/G>] [-f <stepfactor>]\n"
         "       [-w <warmupiters>] [-n <iters>] [-p <printbuffer 0/1>] [-r <root>]\n"
#if CCTL_GEN_MAIN
         "       [-s <splitmask>] [-R <localregister 0/1/2>] [-d <datatype/all>] [-o <op/all>] [-h]\n"
         "Defaults: -b 1M -e 1G -f 2 -w 5 -n 20 -p 0 -r -1 -s 0 -R 0 -d float -o sum\n",
#else
         "       [-s <splitmask>] [-R <localregister 0/1/2>] [-h]\n"
         "Defaults: -b 1M -e 1G -f 2 -w 5 -n 20 -p 0 -r -1 -s 0 -R 0\n",
#endif
         basename(prog));
}
#if CCTL_GEN_MAIN

std::vector<flagcxSelftestDataType_t> parseTypes(const char *name) {
  if (strcmp(name, "all") == 0)
    return std::vector<flagcxSelftestDataType_t>(kAllTypes, kAllTypes + sizeof(kAllTypes) / sizeof(kAllTypes[0]));
  for (flagcxSelftestDataType_t t : kAllTypes)
    if (strcmp(name, perfTypeName(t)) == 0) return {t};
  if (strcmp(name, "half") == 0 || strcmp(name, "bfloat16") == 0)
    perfUsageExit("datatype '%s' is not supported by the FlagCX stand-in (selftest); it has int8 "
                  "uint8 int32 uint32 int64 uint64 float double",
                  name);
  printf("invalid datatype '%s', defaulting to float\n", name);
  return {flagcxSelftestFloat};
}

std::vector<flagcxSelftestRedOp_t> parseOps(const char *name) {
  if (strcmp(name, "all") == 0)
    return std::vector<flagcxSelftestRedOp_t>(kAllOps, kAllOps + sizeof(kAllOps) / sizeof(kAllOps[0]));
  for (flagcxSelftestRedOp_t o : kAllOps)
    if (strcmp(name, perfOpName(o)) == 0) return {o};
  if (strcmp(name, "avg") == 0)
    perfUsageExit("op '%s' is not supported by the FlagCX stand-in (selftest); it has sum prod max min", name);
  printf("invalid op '%s', defaulting to sum\n", name);
  return {flagcxSelftestSum};
}
#endif

}  // namespace

void perfAnnounceSweep(const char *typeName, const char *opName) {
#if CCTL_GEN_MAIN
  printf("#\n# datatype: %s, op: %s\n#\n", typeName, opName);
#else
  // This interface has one datatype and one op; its perf tests announce nothing.
  (void)typeName;
  (void)opName;
#endif
}

bool perfPrintsBuffers(int rank, int nranks) {
#if CCTL_GEN_RUNBOOK
  return rank == 0;  // FlagOpen FlagCX <= v0.6: rank 0 alone
#elif CCTL_GEN_MAIN
  return false;  // the perf tests print no buffers after v0.13
#else
  return rank == 0 || rank == nranks - 1;  // FlagCX v0.9 - v0.13: the first and the last rank
#endif
}

void perfParseOptions(int argc, char **argv, PerfOptions *opt) {
  static struct option longOpts[] = {{"minbytes", required_argument, 0, 'b'},
                                     {"maxbytes", required_argument, 0, 'e'},
                                     {"stepfactor", required_argument, 0, 'f'},
                                     {"warmup_iters", required_argument, 0, 'w'},
                                     {"iters", required_argument, 0, 'n'},
                                     {"print_buffer", required_argument, 0, 'p'},
                                     {"root", required_argument, 0, 'r'},
                                     {"split_mask", required_argument, 0, 's'},
                                     {"local_register", required_argument, 0, 'R'},
#if CCTL_GEN_MAIN
                                     {"op", required_argument, 0, 'o'},
                                     {"datatype", required_argument, 0, 'd'},
#endif
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  int c;
#if CCTL_GEN_MAIN
  while ((c = getopt_long(argc, argv, "b:e:f:w:n:p:r:s:R:o:d:h", longOpts, NULL)) != -1) {
#else
  while ((c = getopt_long(argc, argv, "b:e:f:w:n:p:r:s:R:h", longOpts, NULL)) != -1) {
#endif
    if (perfSetOption(c, optarg, opt)) continue;
    switch (c) {
#if CCTL_GEN_MAIN
    case 'd':
      opt->types = parseTypes(optarg);
      break;
    case 'o':
      opt->ops = parseOps(optarg);
      break;
#endif
    case 'h':
      printUsage(argv[0]);
      exit(0);
    default:  // getopt has said what was wrong on stderr
      printUsage(argv[0]);
      exit(1);
    }
  }
  if (optind < argc) perfUsageExit("unexpected argument '%s'", argv[optind]);
  if (opt->minBytes == 0) perfUsageExit("minbytes must be at least 1 byte%s", "");
  if (opt->minBytes > opt->maxBytes) perfUsageExit("minbytes is larger than maxbytes%s", "");
}
