#!/usr/bin/env bash
# Fuzzes the HTTP/1 parser (src/http/parser.cpp) and the URL/query helpers (src/http/common.cpp)
# with libFuzzer, then keeps what the runs found: the new interesting inputs are merged
# (minimised, -merge=1) into tests/http/corpus/<target>/, which tests/http/test_parser_corpus.cpp
# replays as regression tests.
#
#   tools/fuzz-http.sh [seconds]     # seconds per target, default 60
#
# Needs clang++ with libFuzzer (Debian: clang libclang-rt-14-dev; tools/setup-debian.sh installs
# them). Builds into build/fuzz/; works on a copy of each corpus in build/fuzz/work/<target>/.
# A crash or a broken invariant stops the script: the input is left as build/fuzz/<target>-crash-*.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [seconds per target]" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="build/fuzz"
cxx="${CXX_FUZZ:-clang++}"
if ! command -v "$cxx" >/dev/null; then
  echo "error: $cxx not found (install clang and libclang-rt-14-dev: tools/setup-debian.sh)" >&2
  exit 1
fi

flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I include -I src)
# The parser and the URL helpers need nothing else from the library (concur::Error is header-only).
sources=(src/http/parser.cpp src/http/common.cpp)
targets=(request:http_parser_fuzz response:http_parser_fuzz url:url_fuzz)

mkdir -p "$out"
for bin in http_parser_fuzz url_fuzz; do
  echo "== building $out/$bin"
  "$cxx" "${flags[@]}" "fuzz/$bin.cpp" "${sources[@]}" -o "$out/$bin"
done

for entry in "${targets[@]}"; do
  name="${entry%%:*}"
  bin="${entry##*:}"
  corpus="tests/http/corpus/$name"
  work="$out/work/$name"
  mkdir -p "$corpus"
  rm -rf "$work"
  mkdir -p "$work"
  cp -- "$corpus"/* "$work"/ 2>/dev/null || true
  before=$(find "$corpus" -type f | wc -l)
  echo "== fuzzing $name for ${seconds}s ($before inputs in $corpus)"
  if ! "$out/$bin" -max_len=4096 -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$out/$name-" "$work" 2>"$out/$name.log"; then
    tail -n 40 "$out/$name.log" >&2
    echo "error: the $name fuzz run found a crash or a broken invariant; see $out/$name.log and $out/$name-crash-*" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$out/$name.log" || true
  echo "== merging new inputs into $corpus"
  # -merge=1 keeps the inputs of the first directory and adds, from the others, those with new coverage.
  "$out/$bin" -merge=1 -max_len=4096 "$corpus" "$work" 2>"$out/$name-merge.log" || {
    tail -n 20 "$out/$name-merge.log" >&2
    echo "error: merging the $name corpus failed" >&2
    exit 1
  }
  # The request and response runs share one binary: a mutation may flip the mode byte's bit 0,
  # so file each input under the directory its mode says.
  if [ "$name" != url ]; then
    for f in "$corpus"/*; do
      [ "$(basename "$f")" = README.md ] && continue
      mode=$(head -c1 -- "$f" | od -An -tu1 | tr -d ' ')
      want=request
      if [ -n "$mode" ] && [ $((mode & 1)) -eq 1 ]; then want=response; fi
      if [ "$want" != "$name" ] && [ ! -e "tests/http/corpus/$want/$(basename "$f")" ]; then
        mv -- "$f" "tests/http/corpus/$want/"
      fi
    done
  fi
  after=$(find "$corpus" -type f | wc -l)
  echo "== $name: $before -> $after inputs"
done
for name in request response url; do
  n=$(find "tests/http/corpus/$name" -type f | wc -l)
  if [ "$n" -gt 200 ]; then
    echo "warning: tests/http/corpus/$name holds $n inputs (keep it under ~200: prune it by hand or with -merge=1 into an empty directory)" >&2
  fi
done
echo "== done: new inputs are in tests/http/corpus/*/ (run the http_test_parser_corpus test)"
