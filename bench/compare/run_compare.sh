#!/usr/bin/env bash
# The same concurrent.futures workloads in concur and in Python (ThreadPoolExecutor(2) both):
#   (a) N tiny tasks submitted from the main thread, a future each   -> ns/task
#   (b) map x*x over N ints (chunksize N/16; Python's thread pool ignores it) -> ns/item
#
#   bench/compare/run_compare.sh [BUILD_DIR]     (default: build/release)
#   env: TASKS (default 100000), MAP_ITEMS (default 100000), REPS (default 3), PYTHON (python3)
#
# Builds bench_futures_ratios in BUILD_DIR (configuring it with the release preset if needed),
# runs both sides and prints "concur X ns/task vs Python Y ns/task (Zx)".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build/release}"
tasks="${TASKS:-100000}"
map_items="${MAP_ITEMS:-100000}"
reps="${REPS:-3}"
python="${PYTHON:-python3}"

if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  echo "run_compare: configuring $build" >&2
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONCUR_BUILD_BENCH=ON >&2
fi
cmake --build "$build" --target bench_futures_ratios -j "${JOBS:-2}" >&2
ratios="$build/bench/bench_futures_ratios"
[ -x "$ratios" ] || { echo "run_compare: $ratios was not built (TBB/Boost missing?)" >&2; exit 1; }

echo "== concur (C++, $ratios)"
concur_out="$("$ratios" --tasks "$tasks" --map-items "$map_items" --reps "$reps" --idle-ms 0 --machine 2>/dev/null)"
echo "$concur_out" | grep -v '^RESULT'
echo "== Python ($("$python" --version 2>&1))"
py_tiny="$("$python" "$here/futures_tiny_tasks.py" "$tasks" "$reps")"
echo "$py_tiny" | grep -v '^RESULT'
py_map="$("$python" "$here/futures_map.py" "$map_items" "$reps")"
echo "$py_map" | grep -v '^RESULT'

get() { printf '%s\n' "$1" | awk -v k="$2" '$1 == "RESULT" && $2 == k { print $3 }'; }
c_tiny="$(get "$concur_out" concur_tiny_ns_per_task)"
c_map="$(get "$concur_out" concur_map_ns_per_item)"
p_tiny="$(get "$py_tiny" python_tiny_ns_per_task)"
p_map="$(get "$py_map" python_map_ns_per_item)"

echo "== concur vs Python (ThreadPoolExecutor(2) both)"
awk -v c="$c_tiny" -v p="$p_tiny" -v n="$tasks" \
  'BEGIN { printf "(a) %d tiny tasks: concur %.0f ns/task vs Python %.0f ns/task (%.1fx)\n", n, c, p, p / c }'
awk -v c="$c_map" -v p="$p_map" -v n="$map_items" \
  'BEGIN { printf "(b) map over %d ints: concur %.2f ns/item vs Python %.0f ns/item (%.1fx)\n", n, c, p, p / c }'
