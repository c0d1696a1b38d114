/* FlagCX stand-in (selftest): communicator, error strings, type and op mapping. */
#define _GNU_SOURCE /* strcasestr, gethostname */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "selftest_internal.h"

const char *flagcxSelftestGetErrorString(flagcxSelftestResult_t result) {
  switch (result) {
  case flagcxSelftestSuccess:
    return "success";
  case flagcxSelftestInvalidArgument:
    return "invalid argument";
  case flagcxSelftestNotSupported:
    return "not supported by the FlagCX stand-in (selftest)";
  case flagcxSelftestMpiError:
    return "MPI call failed";
  case flagcxSelftestSystemError:
    return "system error";
  }
  return "unknown result";
}

flagcxSelftestResult_t flagcxSelftestGetVersion(int *version) {
  if (version == NULL) return flagcxSelftestInvalidArgument;
  *version = FLAGCX_SELFTEST_VERSION_CODE;
  return flagcxSelftestSuccess;
}

size_t flagcxSelftestTypeSize(flagcxSelftestDataType_t datatype) {
  switch (datatype) {
  case flagcxSelftestFloat: return sizeof(float);
  case flagcxSelftestDouble: return sizeof(double);
  case flagcxSelftestInt8:
  case flagcxSelftestUint8: return 1;
  case flagcxSelftestInt32:
  case flagcxSelftestUint32: return 4;
  case flagcxSelftestInt64:
  case flagcxSelftestUint64: return 8;
  default: return 0;
  }
}

flagcxSelftestResult_t selftestMpiResult(int mpiRc) {
  return mpiRc == MPI_SUCCESS ? flagcxSelftestSuccess : flagcxSelftestMpiError;
}

flagcxSelftestResult_t selftestCheckComm(flagcxSelftestComm_t comm) {
  return comm == NULL ? flagcxSelftestInvalidArgument : flagcxSelftestSuccess;
}

flagcxSelftestResult_t selftestMpiType(flagcxSelftestDataType_t datatype, MPI_Datatype *out) {
  switch (datatype) {
  case flagcxSelftestFloat: *out = MPI_FLOAT; break;
  case flagcxSelftestDouble: *out = MPI_DOUBLE; break;
  case flagcxSelftestInt8: *out = MPI_INT8_T; break;
  case flagcxSelftestUint8: *out = MPI_UINT8_T; break;
  case flagcxSelftestInt32: *out = MPI_INT32_T; break;
  case flagcxSelftestUint32: *out = MPI_UINT32_T; break;
  case flagcxSelftestInt64: *out = MPI_INT64_T; break;
  case flagcxSelftestUint64: *out = MPI_UINT64_T; break;
  default: return flagcxSelftestNotSupported;
  }
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t selftestMpiOp(flagcxSelftestRedOp_t op, MPI_Op *out) {
  switch (op) {
  case flagcxSelftestSum: *out = MPI_SUM; break;
  case flagcxSelftestProd: *out = MPI_PROD; break;
  case flagcxSelftestMax: *out = MPI_MAX; break;
  case flagcxSelftestMin: *out = MPI_MIN; break;
  default: return flagcxSelftestNotSupported;
  }
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t selftestCheckRoot(flagcxSelftestComm_t comm, int root) {
  if (comm == NULL) return flagcxSelftestInvalidArgument;
  return (root < 0 || root >= comm->nranks) ? flagcxSelftestInvalidArgument
                                            : flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestCommInitWorld(flagcxSelftestComm_t *comm) {
  int initialized = 0;
  struct flagcxSelftestComm *c;
  if (comm == NULL) return flagcxSelftestInvalidArgument;
  MPI_Initialized(&initialized);
  if (!initialized) return flagcxSelftestInvalidArgument; /* the caller owns MPI_Init */
  c = (struct flagcxSelftestComm *)calloc(1, sizeof(*c));
  if (c == NULL) return flagcxSelftestSystemError;
  if (MPI_Comm_dup(MPI_COMM_WORLD, &c->mpiComm) != MPI_SUCCESS) {
    free(c);
    return flagcxSelftestMpiError;
  }
  MPI_Comm_set_errhandler(c->mpiComm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(c->mpiComm, &c->rank);
  MPI_Comm_size(c->mpiComm, &c->nranks);
  selftestAnnounceFault(c->rank);
  c->clusterComm = MPI_COMM_NULL;
  c->rootsComm = MPI_COMM_NULL;
  {
    flagcxSelftestResult_t res = selftestClusterInit(c);
    if (res != flagcxSelftestSuccess) {
      MPI_Comm_free(&c->mpiComm);
      free(c);
      return res;
    }
  }
  *comm = c;
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestCommDestroy(flagcxSelftestComm_t comm) {
  if (comm == NULL) return flagcxSelftestInvalidArgument;
  if (comm->clusterComm != MPI_COMM_NULL) MPI_Comm_free(&comm->clusterComm);
  if (comm->rootsComm != MPI_COMM_NULL) MPI_Comm_free(&comm->rootsComm);
  MPI_Comm_free(&comm->mpiComm);
  free(comm);
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestCommRank(flagcxSelftestComm_t comm, int *rank) {
  if (comm == NULL || rank == NULL) return flagcxSelftestInvalidArgument;
  *rank = comm->rank;
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestCommCount(flagcxSelftestComm_t comm, int *nranks) {
  if (comm == NULL || nranks == NULL) return flagcxSelftestInvalidArgument;
  *nranks = comm->nranks;
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestBarrier(flagcxSelftestComm_t comm) {
  if (comm == NULL) return flagcxSelftestInvalidArgument;
  return selftestMpiResult(MPI_Barrier(comm->mpiComm));
}

/* FlagCX's debug switch: INFO lines when FLAGCX_DEBUG is INFO (or more) and FLAGCX_DEBUG_SUBSYS
 * is unset or names INIT or ALL. */
static int infoInit(void) {
  const char *lvl = getenv("FLAGCX_DEBUG");
  const char *sub = getenv("FLAGCX_DEBUG_SUBSYS");
  if (lvl == NULL || (strcasecmp(lvl, "INFO") != 0 && strcasecmp(lvl, "TRACE") != 0 &&
                      strcasecmp(lvl, "ABORT") != 0 && strcasecmp(lvl, "ALL") != 0))
    return 0;
  return sub == NULL || sub[0] == '\0' || strcasestr(sub, "INIT") != NULL ||
         strcasestr(sub, "ALL") != NULL;
}

flagcxSelftestResult_t selftestClusterInit(struct flagcxSelftestComm *c) {
  const char *split = getenv("FLAGCX_CLUSTER_SPLIT_LIST");
  int k = 1, per, round, local;
  char host[256] = "localhost";
  c->nclusters = 1;
  c->clusterId = 0;
  if (split != NULL && split[0] != '\0') {
    char *end = NULL;
    long v = strtol(split, &end, 10);
    /* the stand-in is one homogeneous cluster: the list has one entry (FlagCX: "its length
     * should be equal to the number of homogeneous cluster") */
    if (end == split || *end != '\0' || v < 1 || v > c->nranks) {
      if (c->rank == 0)
        fprintf(stderr, "FlagCX stand-in (selftest): WARN Invalid cluster split info '%s' for "
                        "%d ranks in 1 homogeneous cluster\n", split, c->nranks);
      return flagcxSelftestInvalidArgument;
    }
    k = (int)v;
  }
  if (k > 1) {
    per = c->nranks / k; /* the last cluster takes the remainder, as FlagCX splits */
    c->clusterId = c->rank / per < k ? c->rank / per : k - 1;
    c->nclusters = k;
    if (MPI_Comm_split(c->mpiComm, c->clusterId, c->rank, &c->clusterComm) != MPI_SUCCESS)
      return flagcxSelftestMpiError;
    {
      int crank;
      MPI_Comm_rank(c->clusterComm, &crank);
      if (MPI_Comm_split(c->mpiComm, crank == 0 ? 0 : MPI_UNDEFINED, c->rank, &c->rootsComm) !=
          MPI_SUCCESS)
        return flagcxSelftestMpiError;
    }
  }
  if (!infoInit()) return flagcxSelftestSuccess;
  gethostname(host, sizeof(host) - 1);
  /* the cluster-to-cluster schedule, in FlagCX's INFO line format */
  local = c->clusterId;
  for (round = 0; round < c->nclusters; round++) {
    printf("%s:%d:%d [%d] FLAGCX INFO cluster %d c2cSchedule[%d] sendCluster %d recvCluster %d\n",
           host, (int)getpid(), (int)getpid(), c->rank, local, round,
           (local + round) % c->nclusters, (local - round + c->nclusters) % c->nclusters);
  }
  fflush(stdout);
  return flagcxSelftestSuccess;
}
