/*
 * FlagCX stand-in (selftest) -- public API of build/lib/libflagcx.so.
 *
 * This is NOT FlagCX.  It is a tiny library shipped with containerctl so that the
 * FlagCX test stages can run on hosts without any accelerator (CPU-only hosts, CI).
 * Buffers are ordinary host memory; every call is an MPI collective underneath.
 * The API is deliberately its own (flagcxSelftest*), not FlagCX's.
 *
 * The caller owns MPI: call MPI_Init before flagcxSelftestCommInitWorld and
 * MPI_Finalize after flagcxSelftestCommDestroy.
 */
#ifndef FLAGCX_SELFTEST_H_
#define FLAGCX_SELFTEST_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLAGCX_SELFTEST_VERSION_CODE 200 /* 0.2.0 */

typedef enum {
  flagcxSelftestSuccess = 0,
  flagcxSelftestInvalidArgument = 1,
  flagcxSelftestNotSupported = 2,
  flagcxSelftestMpiError = 3,
  flagcxSelftestSystemError = 4
} flagcxSelftestResult_t;

/* Element types (the ones MPI has; no half / bfloat16). */
typedef enum {
  flagcxSelftestFloat = 0,
  flagcxSelftestDouble = 1,
  flagcxSelftestInt8 = 2,
  flagcxSelftestUint8 = 3,
  flagcxSelftestInt32 = 4,
  flagcxSelftestUint32 = 5,
  flagcxSelftestInt64 = 6,
  flagcxSelftestUint64 = 7,
  flagcxSelftestNumTypes = 8
} flagcxSelftestDataType_t;

typedef enum {
  flagcxSelftestSum = 0,
  flagcxSelftestProd = 1,
  flagcxSelftestMax = 2,
  flagcxSelftestMin = 3,
  flagcxSelftestNumOps = 4
} flagcxSelftestRedOp_t;

typedef struct flagcxSelftestComm *flagcxSelftestComm_t;

const char *flagcxSelftestGetErrorString(flagcxSelftestResult_t result);
flagcxSelftestResult_t flagcxSelftestGetVersion(int *version);
/* 0 for a value that is not a flagcxSelftestDataType_t. */
size_t flagcxSelftestTypeSize(flagcxSelftestDataType_t datatype);
/* A JSON object: {"generation":"<interface generation>","name":"FlagCX stand-in (selftest)","version":N} */
const char *flagcxSelftestGetBuildInfo(void);

/* A communicator over all ranks of MPI_COMM_WORLD (duplicated). */
flagcxSelftestResult_t flagcxSelftestCommInitWorld(flagcxSelftestComm_t *comm);
flagcxSelftestResult_t flagcxSelftestCommDestroy(flagcxSelftestComm_t comm);
flagcxSelftestResult_t flagcxSelftestCommRank(flagcxSelftestComm_t comm, int *rank);
flagcxSelftestResult_t flagcxSelftestCommCount(flagcxSelftestComm_t comm, int *nranks);
flagcxSelftestResult_t flagcxSelftestBarrier(flagcxSelftestComm_t comm);

/* Counts are element counts.  "count" is the per-rank contribution where noted. */
flagcxSelftestResult_t flagcxSelftestAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                                               flagcxSelftestDataType_t datatype,
                                               flagcxSelftestRedOp_t op, flagcxSelftestComm_t comm);
/* sendcount per rank; recvbuff holds nranks * sendcount elements. */
flagcxSelftestResult_t flagcxSelftestAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                                               flagcxSelftestDataType_t datatype,
                                               flagcxSelftestComm_t comm);
/* recvcount per rank; sendbuff holds nranks * recvcount elements. */
flagcxSelftestResult_t flagcxSelftestReduceScatter(const void *sendbuff, void *recvbuff,
                                                   size_t recvcount,
                                                   flagcxSelftestDataType_t datatype,
                                                   flagcxSelftestRedOp_t op,
                                                   flagcxSelftestComm_t comm);
/* count per peer; both buffers hold nranks * count elements. */
flagcxSelftestResult_t flagcxSelftestAlltoAll(const void *sendbuff, void *recvbuff, size_t count,
                                              flagcxSelftestDataType_t datatype,
                                              flagcxSelftestComm_t comm);
/* Out of place: root sends from sendbuff, every rank (root included) receives into recvbuff. */
flagcxSelftestResult_t flagcxSelftestBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                                               flagcxSelftestDataType_t datatype, int root,
                                               flagcxSelftestComm_t comm);
flagcxSelftestResult_t flagcxSelftestReduce(const void *sendbuff, void *recvbuff, size_t count,
                                            flagcxSelftestDataType_t datatype,
                                            flagcxSelftestRedOp_t op, int root,
                                            flagcxSelftestComm_t comm);
/* sendcount per rank; root's recvbuff holds nranks * sendcount elements. */
flagcxSelftestResult_t flagcxSelftestGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                                            flagcxSelftestDataType_t datatype, int root,
                                            flagcxSelftestComm_t comm);
/* recvcount per rank; root's sendbuff holds nranks * recvcount elements. */
flagcxSelftestResult_t flagcxSelftestScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                                             flagcxSelftestDataType_t datatype, int root,
                                             flagcxSelftestComm_t comm);
/* Send count elements to sendPeer and receive count elements from recvPeer at once. */
flagcxSelftestResult_t flagcxSelftestSendRecv(const void *sendbuff, void *recvbuff, size_t count,
                                              flagcxSelftestDataType_t datatype, int sendPeer,
                                              int recvPeer, flagcxSelftestComm_t comm);

/*
 * Fault injection -- a feature of this stand-in only (FlagCX has nothing like it), for
 * testing the tools that check FlagCX's results.  The mode is read once per process from
 * the environment variable SELFTEST_FAULT, else from the file named by SELFTEST_FAULT_FILE,
 * else from the file .selftest-fault at the root of the source tree the library was built
 * from (first word of the file).  See README.md, "Fault injection".
 */
typedef enum {
  flagcxSelftestFaultNone = 0,
  flagcxSelftestFaultCorrupt = 1,      /* allreduce: one element off by one on rank 0 */
  flagcxSelftestFaultCorruptQuiet = 2, /* same, and the perf verdict line says 1 anyway */
  flagcxSelftestFaultNoExchange = 3,   /* every collective returns without touching recvbuff */
  flagcxSelftestFaultExit0 = 4,        /* like corrupt, and every stand-in program exits 0 */
  flagcxSelftestFaultCrashRank1 = 5,   /* the perf driver's rank 1 aborts after the first size */
  flagcxSelftestFaultBuild = 6,        /* build-time only (unit-test component p2p); no run-time effect */
  flagcxSelftestFaultCrossCluster = 7  /* hybrid allreduce: the cluster roots skip their exchange */
} flagcxSelftestFault_t;

flagcxSelftestFault_t flagcxSelftestGetFault(void);
const char *flagcxSelftestFaultName(flagcxSelftestFault_t fault);

#ifdef __cplusplus
}
#endif

#endif /* FLAGCX_SELFTEST_H_ */
