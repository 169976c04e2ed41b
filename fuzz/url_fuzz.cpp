// libFuzzer target for URL::parse / join / str, quote / unquote and parse_qs
// (include/concur/http/common.hpp): the invariants are in fuzz/http_fuzz_driver.hpp.
// Built and run by tools/fuzz-http.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "http_fuzz_driver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string why = concur::http::fuzz::check_url_input(std::string_view(
      reinterpret_cast<const char*>(data), size));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
  if (!why.empty()) {
    std::fprintf(stderr, "invariant broken: %s\n", why.c_str());
    __builtin_trap();
  }
  return 0;
}
