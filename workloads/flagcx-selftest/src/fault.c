/*
 * FlagCX stand-in (selftest): fault injection, a feature of the stand-in only.
 *
 * The mode comes, first found wins, from
 *   1. the environment variable SELFTEST_FAULT,
 *   2. the file named by the environment variable SELFTEST_FAULT_FILE,
 *   3. the file .selftest-fault at the root of the source tree this library was built from
 *      (the tree is known from the compile-time SELFTEST_SOURCE_ROOT and, should the tree have
 *      moved since, from where libflagcx.so itself lies: <root>/build/lib/libflagcx.so).
 * A file holds the mode as its first word.  Unknown modes are reported on stderr and ignored.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selftest_internal.h"

#ifndef SELFTEST_SOURCE_ROOT
#define SELFTEST_SOURCE_ROOT ""
#endif

static const char *const kFaultNames[] = {"none",    "corrupt",     "corrupt-quiet", "noexchange",
                                          "exit0",   "crash-rank1", "build", "cross-cluster"};
#define SELFTEST_NUM_FAULTS ((int)(sizeof(kFaultNames) / sizeof(kFaultNames[0])))

static int gFaultRead = 0;
static flagcxSelftestFault_t gFault = flagcxSelftestFaultNone;
static char gFaultOrigin[512] = "";

const char *flagcxSelftestFaultName(flagcxSelftestFault_t fault) {
  if ((int)fault < 0 || (int)fault >= SELFTEST_NUM_FAULTS) return "unknown";
  return kFaultNames[fault];
}

/* The first whitespace-separated word of a file, or 0 when it cannot be read. */
static int readWord(const char *path, char *out, size_t outSize) {
  FILE *f = fopen(path, "r");
  size_t n = 0;
  int c;
  if (f == NULL) return 0;
  while ((c = fgetc(f)) != EOF && isspace(c)) {
  }
  while (c != EOF && !isspace(c) && n + 1 < outSize) {
    out[n++] = (char)c;
    c = fgetc(f);
  }
  out[n] = '\0';
  fclose(f);
  return 1;
}

static void setFault(const char *word, const char *origin) {
  int i;
  snprintf(gFaultOrigin, sizeof(gFaultOrigin), "%s", origin);
  if (word[0] == '\0') return;
  for (i = 0; i < SELFTEST_NUM_FAULTS; i++) {
    if (strcmp(word, kFaultNames[i]) == 0) {
      gFault = (flagcxSelftestFault_t)i;
      return;
    }
  }
  fprintf(stderr,
          "FlagCX stand-in (selftest): unknown fault '%s' (from %s) ignored; known: corrupt "
          "corrupt-quiet noexchange exit0 crash-rank1 build cross-cluster\n",
          word, origin);
}

/* <root>/.selftest-fault for the root this library came from; 1 when found. */
static int fromTreeFile(const char *root) {
  char path[4096], word[64];
  if (root == NULL || root[0] == '\0') return 0;
  snprintf(path, sizeof(path), "%s/.selftest-fault", root);
  if (!readWord(path, word, sizeof(word))) return 0;
  setFault(word, path);
  return 1;
}

static void readFault(void) {
  const char *env = getenv("SELFTEST_FAULT");
  const char *file = getenv("SELFTEST_FAULT_FILE");
  char word[64];
  Dl_info info;
  gFaultRead = 1;
  if (env != NULL && env[0] != '\0') {
    snprintf(word, sizeof(word), "%s", env);
    setFault(word, "SELFTEST_FAULT");
    return;
  }
  if (file != NULL && file[0] != '\0') {
    if (readWord(file, word, sizeof(word))) setFault(word, file);
    return;
  }
  if (fromTreeFile(SELFTEST_SOURCE_ROOT)) return;
  /* Where this library lies now: <root>/build/lib/libflagcx.so */
  if (dladdr((void *)(uintptr_t)&flagcxSelftestGetFault, &info) && info.dli_fname != NULL) {
    char root[4096];
    int up;
    snprintf(root, sizeof(root), "%s", info.dli_fname);
    for (up = 0; up < 3; up++) {
      char *slash = strrchr(root, '/');
      if (slash == NULL) return;
      *slash = '\0';
    }
    fromTreeFile(root);
  }
}

flagcxSelftestFault_t flagcxSelftestGetFault(void) {
  if (!gFaultRead) readFault();
  return gFault;
}

int selftestFaultIs(flagcxSelftestFault_t fault) { return flagcxSelftestGetFault() == fault; }

void selftestAnnounceFault(int rank) {
  static int announced = 0;
  flagcxSelftestFault_t fault = flagcxSelftestGetFault();
  if (announced || rank != 0 || fault == flagcxSelftestFaultNone) return;
  announced = 1;
  fprintf(stderr, "FlagCX stand-in (selftest): fault injection active: %s (from %s)\n",
          flagcxSelftestFaultName(fault), gFaultOrigin);
  fflush(stderr);
}

void selftestBumpElement(void *buf, size_t index, flagcxSelftestDataType_t datatype) {
  switch (datatype) {
  case flagcxSelftestFloat: ((float *)buf)[index] += 1.0f; break;
  case flagcxSelftestDouble: ((double *)buf)[index] += 1.0; break;
  case flagcxSelftestInt8: ((int8_t *)buf)[index] += 1; break;
  case flagcxSelftestUint8: ((uint8_t *)buf)[index] += 1; break;
  case flagcxSelftestInt32: ((int32_t *)buf)[index] += 1; break;
  case flagcxSelftestUint32: ((uint32_t *)buf)[index] += 1; break;
  case flagcxSelftestInt64: ((int64_t *)buf)[index] += 1; break;
  case flagcxSelftestUint64: ((uint64_t *)buf)[index] += 1; break;
  default: break;
  }
}
