# Warnings applied to every target the project builds (not exported to users).
add_library(concur_warnings INTERFACE)
target_compile_options(concur_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough -Wmisleading-indentation -Wduplicated-cond
  # -Wnull-dereference is left out: GCC 12 reports false positives inside libstdc++'s
  # std::string at -O2 (seen in the TSan build).
  # GCC 12 at -O3 reports false positives inside libstdc++'s std::string/vector code
  # (GCC PR105329, PR105651); they would break -Werror release builds. -Wmaybe-uninitialized:
  # false positives on std::optional<shared_ptr> members of option structs (TSan build).
  $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict -Wno-stringop-overflow -Wno-stringop-overread -Wno-array-bounds -Wno-maybe-uninitialized>
  # Options structs are meant for designated initialisers that name only some fields.
  -Wno-missing-field-initializers
  $<$<BOOL:${CONCUR_WERROR}>:-Werror>)
