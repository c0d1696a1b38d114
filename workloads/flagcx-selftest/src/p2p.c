/* FlagCX stand-in (selftest): point-to-point exchange. */
#include "selftest_internal.h"

flagcxSelftestResult_t flagcxSelftestSendRecv(const void *sendbuff, void *recvbuff, size_t count,
                                              flagcxSelftestDataType_t datatype, int sendPeer,
                                              int recvPeer, flagcxSelftestComm_t comm) {
  MPI_Datatype type;
  flagcxSelftestResult_t res;
  size_t done = 0, esize = flagcxSelftestTypeSize(datatype);
  const int tag = 0x5e1f;
  if ((res = selftestCheckComm(comm)) != flagcxSelftestSuccess) return res;
  if ((res = selftestMpiType(datatype, &type)) != flagcxSelftestSuccess) return res;
  if ((res = selftestCheckRoot(comm, sendPeer)) != flagcxSelftestSuccess) return res;
  if ((res = selftestCheckRoot(comm, recvPeer)) != flagcxSelftestSuccess) return res;
  /* Fault injection (stand-in only): return without exchanging, recvbuff untouched. */
  if (selftestFaultIs(flagcxSelftestFaultNoExchange)) return flagcxSelftestSuccess;
  while (done < count) {
    size_t n = count - done < SELFTEST_MAX_CHUNK ? count - done : SELFTEST_MAX_CHUNK;
    res = selftestMpiResult(MPI_Sendrecv((const char *)sendbuff + done * esize, (int)n, type,
                                         sendPeer, tag, (char *)recvbuff + done * esize, (int)n,
                                         type, recvPeer, tag, comm->mpiComm, MPI_STATUS_IGNORE));
    if (res != flagcxSelftestSuccess) return res;
    done += n;
  }
  return flagcxSelftestSuccess;
}
