#!/usr/bin/env python3
"""(a) in Python: N tiny tasks submitted from the main thread to ThreadPoolExecutor(2), a future
each, every result awaited. The concur counterpart is bench/futures (Tiny/concur_submit_result,
bench_futures_ratios row (a)).

    python3 bench/compare/futures_tiny_tasks.py [N] [REPS]      (default N = 100000, REPS = 3)

Prints the best of REPS as ns/task, and a "RESULT python_tiny_ns_per_task <ns>" line for
run_compare.sh.
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def tiny(x):
    return x + 1


def run(ex, n):
    fs = [ex.submit(tiny, i) for i in range(n)]
    return sum(f.result() for f in fs)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    want = n * (n + 1) // 2
    best = float("inf")
    with ThreadPoolExecutor(max_workers=2) as ex:
        for _ in range(reps):
            t0 = time.perf_counter()
            got = run(ex, n)
            dt = time.perf_counter() - t0
            if got != want:
                sys.exit(f"wrong checksum {got} (want {want})")
            best = min(best, dt)
    ns = best * 1e9 / n
    print(f"python {sys.version.split()[0]} ThreadPoolExecutor(2): {n} tiny tasks, "
          f"best of {reps}: {best * 1e3:.1f} ms = {ns:.0f} ns/task")
    print(f"RESULT python_tiny_ns_per_task {ns:.1f}")


if __name__ == "__main__":
    main()
