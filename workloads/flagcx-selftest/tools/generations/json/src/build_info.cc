// FlagCX stand-in (selftest): build information as JSON, made with nlohmann/json -- which
// this tree takes from third-party/json/single_include, as FlagCX does (a release tarball
// leaves that submodule empty: then only a system copy, e.g. Debian nlohmann-json3-dev in
// /usr/include, lets this file compile).
#include <nlohmann/json.hpp>

#include <string>

#include "flagcx_selftest.h"

#ifndef SELFTEST_GENERATION
#define SELFTEST_GENERATION "unknown"
#endif

extern "C" const char *flagcxSelftestGetBuildInfo(void) {
  static const std::string text = [] {
    nlohmann::json info;
    info["name"] = "FlagCX stand-in (selftest)";
    info["generation"] = SELFTEST_GENERATION;
    info["version"] = FLAGCX_SELFTEST_VERSION_CODE;
    return info.dump();
  }();
  return text.c_str();
}
