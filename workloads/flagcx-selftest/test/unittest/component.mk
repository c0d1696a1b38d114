# FlagCX stand-in (selftest) -- rules shared by the unit-test components.  A component's
# Makefile sets COMPONENT, includes ../../make.inc and then this file.  Like FlagCX >= v0.12:
#   test_*.cpp -> build/bin/<component>_unit_tests  (no MPI needed to run)
#   coll_*.cpp -> build/bin/<component>_mpi_tests   (under mpirun, any number of ranks)

UNIT_SRCS := $(wildcard test_*.cpp)
MPI_SRCS := $(wildcard coll_*.cpp)
UNIT_OBJS := $(UNIT_SRCS:%.cpp=$(OBJDIR)/%.o) $(OBJDIR)/main_unit.o
MPI_OBJS := $(MPI_SRCS:%.cpp=$(OBJDIR)/%.o) $(OBJDIR)/main_mpi.o
UNIT_TARGET := $(BINDIR)/$(COMPONENT)_unit_tests
MPI_TARGET := $(BINDIR)/$(COMPONENT)_mpi_tests
TEST_HDRS := $(wildcard $(PROJECT_ROOT)/test/unittest/include/*.hpp) $(PROJECT_ROOT)/include/flagcx_selftest.h
COMPONENT_FLAGS ?=

ALL_TARGETS :=
ifneq ($(UNIT_SRCS),)
ALL_TARGETS += $(UNIT_TARGET)
endif
ifneq ($(MPI_SRCS),)
ALL_TARGETS += $(MPI_TARGET)
endif

.PHONY: all clean run-unit run-mpi run

all: $(ALL_TARGETS)

# libflagcx.so needs MPI, so the unit binaries link it too (they never initialise it).
$(UNIT_TARGET): $(UNIT_OBJS)
	@mkdir -p $(BINDIR)
	@echo "Linking   $@"
	@$(CXX) $^ -o $@ $(FLAGCX_LINK) $(GTEST_LINK) $(MPI_LINK)

$(MPI_TARGET): $(MPI_OBJS)
	@mkdir -p $(BINDIR)
	@echo "Linking   $@"
	@$(CXX) $^ -o $@ $(FLAGCX_LINK) $(GTEST_LINK) $(MPI_LINK)

$(UNIT_OBJS): $(OBJDIR)/%.o: %.cpp $(TEST_HDRS)
	@mkdir -p $(OBJDIR)
	@echo "Compiling $<"
	@$(CXX) $< -o $@ -c $(CXXFLAGS) $(COMPONENT_FLAGS) $(FLAGCX_INCLUDES) $(GTEST_INCLUDE) $(UNITTEST_INCLUDE)

$(MPI_OBJS): $(OBJDIR)/%.o: %.cpp $(TEST_HDRS)
	@mkdir -p $(OBJDIR)
	@echo "Compiling $<"
	@$(CXX) $< -o $@ -c $(CXXFLAGS) $(COMPONENT_FLAGS) -DSELFTEST_WITH_MPI=1 $(FLAGCX_INCLUDES) \
	  $(GTEST_INCLUDE) $(UNITTEST_INCLUDE) $(MPI_INCLUDE)

clean:
	@rm -rf $(BUILDDIR)

run-unit: $(UNIT_TARGET)
	@$(UNIT_TARGET)

run-mpi: $(MPI_TARGET)
	@mpirun --allow-run-as-root -np 2 $(MPI_TARGET)

run: run-unit run-mpi
