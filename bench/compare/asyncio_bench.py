#!/usr/bin/env python3
"""The asyncio workloads of bench/asyncio/workloads.hpp in Python asyncio (and uvloop if importable).

  (a) tasks:      create N trivial tasks, then await each          -> ns/task
  (b) switch:     two coroutines ping-pong through sleep(0)        -> ns/switch
  (c) timers:     N call_later timers (delays 0..N-1 ns), all fired -> ns/timer
  (d) threadsafe: another thread call_soon_threadsafe()s N callbacks -> ns/callback

  python3 bench/compare/asyncio_bench.py [--tasks N] [--switches N] [--timers N] [--posts N] [--reps R]

Each figure is the best of R repetitions. Prints a table and "RESULT <loop>_<key>_ns <value>" lines.
Compare with build/release/bench/bench_asyncio_ratios (concur and Boost.Asio).
"""
import argparse
import asyncio
import sys
import threading
import time


async def trivial(i):
    return i


async def w_tasks(n):
    tasks = [asyncio.create_task(trivial(i)) for i in range(n)]
    s = 0
    for t in tasks:
        s += await t
    assert s == n * (n - 1) // 2


async def pinger(n, counter):
    for _ in range(n):
        counter[0] += 1
        await asyncio.sleep(0)


async def w_switch(n):
    counter = [0]
    a = asyncio.create_task(pinger(n, counter))
    b = asyncio.create_task(pinger(n, counter))
    await a
    await b
    assert counter[0] == 2 * n


def run_timers(new_loop, n):
    loop = new_loop()
    fired = [0]

    def cb():
        fired[0] += 1
        if fired[0] == n:
            loop.stop()

    t0 = time.perf_counter()
    for i in range(n):
        loop.call_later(i * 1e-9, cb)
    loop.run_forever()
    took = time.perf_counter() - t0
    loop.close()
    assert fired[0] == n
    return took


def run_threadsafe(new_loop, n):
    loop = new_loop()
    ran = [0]

    def cb():
        ran[0] += 1
        if ran[0] == n:
            loop.stop()

    def produce():
        for _ in range(n):
            loop.call_soon_threadsafe(cb)

    t0 = time.perf_counter()
    th = threading.Thread(target=produce)
    th.start()
    loop.run_forever()
    took = time.perf_counter() - t0
    th.join()
    loop.close()
    assert ran[0] == n
    return took


def run_coro(new_loop, make):
    loop = new_loop()
    t0 = time.perf_counter()
    loop.run_until_complete(make())
    took = time.perf_counter() - t0
    loop.close()
    return took


def best(f, reps):
    return min(f() for _ in range(reps))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=1_000_000)
    p.add_argument("--switches", type=int, default=1_000_000, help="per coroutine")
    p.add_argument("--timers", type=int, default=100_000)
    p.add_argument("--posts", type=int, default=1_000_000)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()

    loops = [("asyncio", asyncio.new_event_loop)]
    try:
        import uvloop  # Debian: python3-uvloop

        loops.append(("uvloop", uvloop.new_event_loop))
    except ImportError:
        print("(uvloop not importable: install python3-uvloop for the uvloop column)", file=sys.stderr)

    rows = [
        ("tasks", f"(a) create_task + await, {a.tasks} tasks", a.tasks,
         lambda nl: run_coro(nl, lambda: w_tasks(a.tasks))),
        ("switch", "(b) two coroutines, sleep(0) switch", 2 * a.switches,
         lambda nl: run_coro(nl, lambda: w_switch(a.switches))),
        ("timers", f"(c) {a.timers} timers scheduled + fired", a.timers, lambda nl: run_timers(nl, a.timers)),
        ("threadsafe", "(d) call_soon_threadsafe from another thread", a.posts,
         lambda nl: run_threadsafe(nl, a.posts)),
    ]
    print(f"Python {sys.version.split()[0]} asyncio" + (" and uvloop" if len(loops) > 1 else "") +
          f", best of {a.reps}\n")
    header = f"{'workload':<48}" + "".join(f" {name + ' ns/op':>16}" for name, _ in loops)
    print(header)
    print("-" * len(header))
    results = []
    for key, what, ops, fn in rows:
        line = f"{what:<48}"
        for name, new_loop in loops:
            ns = best(lambda: fn(new_loop), a.reps) * 1e9 / ops
            line += f" {ns:16.1f}"
            results.append(f"RESULT {name}_{key}_ns {ns:.2f}")
        print(line, flush=True)
    print()
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
