# Device-flag guard shared by every Makefile of the FlagCX stand-in (selftest).
#
# The real FlagCX picks one vendor backend from USE_<VENDOR>=1.  This stand-in has
# exactly one backend, USE_CPU_SELFTEST=1 (host memory + MPI), and refuses the
# vendor flags with a clear message instead of pretending to build them.
#
# Targets listed in SELFTEST_NO_FLAG_GOALS (clean, print_var, help) run without a flag.

SELFTEST_VENDORS := NVIDIA ASCEND ILUVATAR_COREX CAMBRICON METAX MUSA KUNLUNXIN DU AMD \
                    TSM ENFLAME SUNRISE PPU

USE_CPU_SELFTEST ?= 0
$(foreach v,$(SELFTEST_VENDORS),$(eval USE_$(v) ?= 0))

SELFTEST_NO_FLAG_GOALS := clean print_var help
SELFTEST_CHECKED_GOALS := $(if $(MAKECMDGOALS),$(filter-out $(SELFTEST_NO_FLAG_GOALS),$(MAKECMDGOALS)),all)

SELFTEST_GIVEN_VENDOR := $(firstword $(foreach v,$(SELFTEST_VENDORS),$(if $(filter 1,$(strip $(USE_$(v)))),$(v))))

ifneq ($(SELFTEST_CHECKED_GOALS),)
  ifneq ($(SELFTEST_GIVEN_VENDOR),)
    $(error this is the containerctl selftest stand-in; it has no $(SELFTEST_GIVEN_VENDOR) backend (USE_$(SELFTEST_GIVEN_VENDOR)=1 given). Build the real FlagCX on a host with that SDK, or build this stand-in with USE_CPU_SELFTEST=1 (host memory + MPI))
  endif
  ifneq ($(strip $(USE_CPU_SELFTEST)),1)
    $(error this is the containerctl selftest stand-in; it needs a device flag and the only one it has is USE_CPU_SELFTEST=1 (host memory + MPI), e.g. make USE_CPU_SELFTEST=1 MPI_HOME=/usr/local/mpi)
  endif
endif
