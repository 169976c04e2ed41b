#!/usr/bin/env python3
"""(b) in Python: executor.map(square, range(N)) on ThreadPoolExecutor(2), results consumed in
order. The concur counterpart is bench/futures (Map/concur_map_chunked, bench_futures_ratios row (b)).

Note: Python's ThreadPoolExecutor ignores `chunksize` (only ProcessPoolExecutor batches), so
each item is still its own work item; we pass it anyway, as the concur side does, and report.

    python3 bench/compare/futures_map.py [N] [REPS]      (default N = 100000, REPS = 3)
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def square(x):
    return x * x


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    chunksize = max(1, n // (2 * 8))
    want = (n - 1) * n * (2 * n - 1) // 6
    best = float("inf")
    with ThreadPoolExecutor(max_workers=2) as ex:
        for _ in range(reps):
            t0 = time.perf_counter()
            got = sum(ex.map(square, range(n), chunksize=chunksize))
            dt = time.perf_counter() - t0
            if got != want:
                sys.exit(f"wrong checksum {got} (want {want})")
            best = min(best, dt)
    ns = best * 1e9 / n
    print(f"python {sys.version.split()[0]} ThreadPoolExecutor(2).map: {n} items, chunksize={chunksize} "
          f"(ignored by ThreadPoolExecutor), best of {reps}: {best * 1e3:.1f} ms = {ns:.0f} ns/item")
    print(f"RESULT python_map_ns_per_item {ns:.2f}")


if __name__ == "__main__":
    main()
