#!/usr/bin/env bash
# containerctl's FlagCX probe. Reads a checkout's FILES (never builds or runs its code) and prints
# the interface it has, one `FLAGCX_PROBE <key> <value>` line per fact. FlagCX changes its layout,
# options, output and install method from release to release: every later stage asks this probe,
# never a version number. Usage: probe.sh FLAGCX_DIR
root=${1:-.}
cd "$root" 2>/dev/null || { printf 'FLAGCX_PROBE error cannot enter %s\n' "$root"; exit 2; }
p() { printf 'FLAGCX_PROBE %s %s\n' "$1" "$2"; }
first() { head -1 | tr -d '\r'; }
p root "$PWD"

# ---- identity: every source we can read; the caller says which one it trusts
if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$PWD" ]; then
  p commit "$(git rev-parse HEAD 2>/dev/null)"
  d=$(git describe --tags --always --dirty 2>/dev/null) && [ -n "$d" ] && p version_git "$d"
fi
[ -f .containerctl-source ] && p source_fingerprint "$(first < .containerctl-source)"
[ -f VERSION ] && p version_file "$(first < VERSION)"
v=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' pyproject.toml 2>/dev/null | first)
[ -n "$v" ] && p version_pyproject "$v"
if [ -f flagcx/include/flagcx.h ]; then
  mj=$(sed -n 's/^#define FLAGCX_VERSION_MAJOR *\([0-9]*\).*/\1/p' flagcx/include/flagcx.h | first)
  mn=$(sed -n 's/^#define FLAGCX_VERSION_MINOR *\([0-9]*\).*/\1/p' flagcx/include/flagcx.h | first)
  pt=$(sed -n 's/^#define FLAGCX_VERSION_PATCH *\([0-9]*\).*/\1/p' flagcx/include/flagcx.h | first)
  [ -n "$mj" ] && p version_header "$mj.$mn.$pt"
fi
c=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' packaging/debian/changelog 2>/dev/null | first)
[ -n "$c" ] && p version_changelog "$c"

# ---- build: which USE_<X> flags the top-level Makefile knows, and path overrides
if [ -f Makefile ]; then
  p make_flags "$(grep -oE '\bUSE_[A-Z0-9_]+' Makefile | sort -u | tr '\n' ' ')"
  grep -qE '^JSON_INCLUDE_DIR *\?=' Makefile && p json_override JSON_INCLUDE_DIR
  # make variables the Makefiles test (COMPILE_KERNEL builds kernels, the kernel and device_api
  # unit suites and the device-API perf tests): a variant sets one only where it is read
  mv=$(cat Makefile test/unittest/Makefile test/perf/Makefile 2>/dev/null | grep -oE 'ifeq *\( *\$\((COMPILE_KERNEL|FORCE_DEFAULT_PATH|USE_SHMEM)\)' | grep -oE 'COMPILE_KERNEL|FORCE_DEFAULT_PATH|USE_SHMEM' | sort -u | tr '\n' ' ')
  p make_vars_read "$mv"
else
  p make_flags ""
fi

# ---- perf tests: layout, binaries, options, what -p 1 prints
if [ -f test/perf/host_api/Makefile ]; then
  p perf_layout host_api; pdir=test/perf/host_api
  p perf_bin_dir test/perf/host_api/build/bin; p perf_bin_prefix perf_
elif [ -f test/perf/Makefile ]; then
  p perf_layout test_perf; pdir=test/perf
  p perf_bin_dir test/perf; p perf_bin_prefix test_
else
  p perf_layout none; pdir=""
fi
if [ -n "$pdir" ]; then
  p perf_dir "$pdir"
  colls=$(cd "$pdir" && ls test_*.cpp test_*.cc 2>/dev/null | sed -E 's/^test_//; s/\.(cpp|cc)$//' | tr '\n' ' ')
  [ -z "$colls" ] && colls=$(sed -nE 's/^COLLS *:?= *//p' "$pdir/Makefile" | first)
  p perf_colls "$colls"
  srcs=$(find "$pdir" test -maxdepth 1 -type f \( -name '*.cc' -o -name '*.cpp' -o -name '*.c' -o -name '*.h' -o -name '*.hpp' -o -name '*.inc' \) 2>/dev/null | sort -u)
  [ -d test/include ] && srcs="$srcs $(find test/include -type f 2>/dev/null)"
  opts=$(cat $srcs 2>/dev/null | tr '\n' ' ' | grep -oE 'getopt(_long)? *\( *argc *, *argv *, *"[^"]*"' | first | sed -E 's/.*"([^"]*)"/\1/')
  p perf_getopt "$opts"
  # the allreduce source when it is a file of its own, else every perf source
  ar=$srcs
  for f in "$pdir/test_allreduce.cpp" "$pdir/test_allreduce.cc"; do [ -f "$f" ] && ar=$f; done
  if grep -qE 'rank %d sendbuff' $ar 2>/dev/null; then p allreduce_prints rank
  elif grep -qE 'sendbuff = ' $ar 2>/dev/null; then p allreduce_prints plain
  else p allreduce_prints none; fi
  kinds=$(grep -ohE '[a-z0-9-]+ correctness = %d' $ar 2>/dev/null | sed 's/ correctness.*//' | sort -u | tr '\n' ' ')
  p verdict_kinds "$kinds"
  others=$(ls "$pdir"/test_*.cpp "$pdir"/test_*.cc 2>/dev/null | grep -v allreduce)
  if [ -n "$others" ]; then
    if grep -qE 'rank %d sendbuff' $others 2>/dev/null; then p other_prints rank
    elif grep -qE 'sendbuff = ' $others 2>/dev/null; then p other_prints plain
    else p other_prints none; fi
  else
    p other_prints same
  fi
fi

# ---- unit tests
if [ -f test/unittest/Makefile ]; then
  comps=$(sed -nE 's/^COMPONENTS *:?= *//p' test/unittest/Makefile | first)
  if [ -n "$comps" ]; then p unittest_layout components; p unittest_components "$comps"
    opt=$(sed -nE 's/^COMPONENTS *\+= *//p' test/unittest/Makefile | tr '\n' ' ')
    p unittest_components_optional "$opt"
  else p unittest_layout single; fi
  inc=""; [ -f test/make.inc ] && inc=test/make.inc
  [ -n "$inc" ] && grep -q '/usr/src/googletest' "$inc" && p gtest_system_fallback 1
else
  p unittest_layout none
fi

# ---- torch plugin: where, and how it takes the adaptor
for t in plugin/torch; do
  [ -f "$t/setup.py" ] || continue
  p torch_dir "$t"
  files="$t/setup.py"; [ -f "$t/_build_config.py" ] && files="$files $t/_build_config.py"
  grep -q 'FLAGCX_ADAPTOR' $files && p torch_adaptor_env 1
  grep -q -- '--adaptor' $files && p torch_adaptor_argv 1
  for e in "$t/example/example.py" "$t/example.py"; do [ -f "$e" ] && { p torch_example "$e"; break; }; done
done
[ -f setup.py ] && grep -qE 'plugin/torch|_build_config' setup.py && p torch_root_package 1

# ---- submodules a release tarball leaves empty, and what the system offers instead
for s in json googletest; do
  d=third-party/$s
  if [ ! -e "$d" ]; then st=absent
  elif [ -z "$(ls -A "$d" 2>/dev/null)" ]; then st=empty
  elif [ -n "$(find "$d" -maxdepth 3 -type l 2>/dev/null | head -1)" ] && \
       [ -z "$(find "$d" -maxdepth 3 -type f 2>/dev/null | head -1)" ]; then st=linked   # filled by containerctl before
  else st=present; fi
  p "submodule_$s" "$st"
done
if grep -rqs --include='*.h' --include='*.hpp' --include='*.cc' --include='*.cpp' 'nlohmann/json' flagcx test src include 2>/dev/null; then
  p needs_json 1
fi
[ -f /usr/include/nlohmann/json.hpp ] && p system_json /usr/include
[ -f /usr/include/gtest/gtest.h ] && p system_gtest_include /usr/include
# googletest's own sources (Debian/Ubuntu libgtest-dev): what an empty submodule would hold
[ -f /usr/src/googletest/googletest/src/gtest-all.cc ] && p system_gtest_src /usr/src/googletest
for l in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib /usr/local/lib; do
  if [ -f "$l/libgtest.a" ] || [ -f "$l/libgtest.so" ]; then p system_gtest_lib "$l"; break; fi
done
exit 0
