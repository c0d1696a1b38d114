// Generated from tools/src/test/tools.cc (v0.13) by tools/export-generation.sh --sync-embedded: edit that file.
// FlagCX stand-in (selftest) -- perf-test options of the FlagCX interface up to v0.13:
// -b -e -f -w -n -p -r -s -R -h and nothing else.  As in those releases, -d and -o are not
// options: getopt reports "invalid option -- 'd'", the usage follows, and the program stops
// (FlagCX itself carries on with its defaults; the stand-in stops so that nobody mistakes
// that for a run with the given datatype).  Not FlagCX's code.

#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools.h"

namespace {

void printUsage(char *prog) {
  printf("FlagCX stand-in (selftest) perf test\n"
         "Usage: %s [-b <minbytes K/M/G>] [-e <maxbytes K/M/G>] [-f <stepfactor>]\n"
         "       [-w <warmupiters>] [-n <iters>] [-p <printbuffer 0/1>] [-r <root>]\n"
         "       [-s <splitmask>] [-R <localregister 0/1/2>] [-h]\n"
         "Defaults: -b 1M -e 1G -f 2 -w 5 -n 20 -p 0 -r -1 -s 0 -R 0\n",
         basename(prog));
}

}  // namespace

void perfAnnounceSweep(const char *typeName, const char *opName) {
  // This interface has one datatype and one op; its perf tests announce nothing.
  (void)typeName;
  (void)opName;
}

bool perfPrintsBuffers(int rank, int nranks) {
  return rank == 0 || rank == nranks - 1;  // FlagCX v0.9 - v0.13: the first and the last rank
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
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "b:e:f:w:n:p:r:s:R:h", longOpts, NULL)) != -1) {
    if (perfSetOption(c, optarg, opt)) continue;
    switch (c) {
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
