// libFuzzer target for the HTTP/1 request and response parser (src/http/parser.hpp): the input
// format and the invariants are in fuzz/http_fuzz_driver.hpp. Built and run by tools/fuzz-http.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "http_fuzz_driver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string why = concur::http::fuzz::check_http_input(std::string_view(
      reinterpret_cast<const char*>(data), size));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
  if (!why.empty()) {
    std::fprintf(stderr, "invariant broken: %s\n", why.c_str());
    __builtin_trap();
  }
  return 0;
}
