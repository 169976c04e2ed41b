#!/usr/bin/env python3
"""Python's side of bench/multiprocessing/mp_bench.cpp, same workloads, 2 worker processes:

  (a) Pool.map of a no-op over 20,000 items, chunksize=1
  (b) Pool.map of a no-op over 200,000 items, default chunking
  (c) ProcessPoolExecutor: submit 20,000 no-ops, then wait for every result

Prints one line per workload: "<key> <microseconds per task>".
"""
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool


def noop(x):
    return x


def best_of(reps, fn):
    fn()  # untimed, as in mp_bench.cpp
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    n_a, n_b, n_c = int(20000 * scale), int(200000 * scale), int(20000 * scale)
    with Pool(2) as pool:
        pool.map(noop, range(100))  # workers up
        t = best_of(3, lambda: pool.map(noop, range(n_a), chunksize=1))
        print(f"a {t / n_a * 1e6:.3f}", flush=True)
        t = best_of(3, lambda: pool.map(noop, range(n_b)))
        print(f"b {t / n_b * 1e6:.4f}", flush=True)
    with ProcessPoolExecutor(2) as ex:
        ex.submit(noop, 0).result()

        def c():
            fs = [ex.submit(noop, i) for i in range(n_c)]
            for f in fs:
                f.result()

        t = best_of(3, c)
        print(f"c {t / n_c * 1e6:.3f}", flush=True)


if __name__ == "__main__":
    main()
