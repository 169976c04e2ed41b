#!/usr/bin/env python3
"""Python's side of `concur tour --python`: the tutorial's demos with CPython's own modules.

Runs one demo with every model CPython offers and prints one JSON object per line:
  {"name", "kind", "wall_s", "cpu_s", "peak_kb", "checksum", "events": [[lane, begin_ns, end_ns], ...]}
Times of events are time.monotonic_ns() (CLOCK_MONOTONIC, the clock concur's traces use).
cpu_s and peak_kb include the worker processes'.

  tour_demos.py cpu --base 5000000 --count 20
  tour_demos.py io --workers 5 URL [URL ...]        (the tour passes its loopback server's URLs)

Needs python3-requests and python3-aiohttp (Debian packages).
"""
import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import resource
import sys
import threading
import time

EVENTS = None  # a list while a model runs in this process


def now():
    return time.monotonic_ns()


def lane():
    if multiprocessing.parent_process() is not None:
        return "python worker process (pid %d)" % os.getpid()
    return "python " + threading.current_thread().name


def cpu_bound(number):
    return sum(i * i for i in range(number))


def timed(fn, arg):
    """Runs fn(arg); returns (result, (lane, begin, end))."""
    b = now()
    r = fn(arg)
    return r, (lane(), b, now())


def timed_cpu(n):
    return timed(cpu_bound, n)


_thread_local = threading.local()
_process_session = None


def get_session():
    import requests
    if not hasattr(_thread_local, "session"):
        _thread_local.session = requests.Session()
    return _thread_local.session


def download_site(url):
    with get_session().get(url) as response:
        return len(response.content)


def timed_download(url):
    return timed(download_site, url)


def run_model(name, kind, fn):
    """Measures fn() -> (checksum, events) and prints a line."""
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    checksum, events = fn()
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime +
           k1.ru_utime - k0.ru_utime + k1.ru_stime - k0.ru_stime)
    peak = r1.ru_maxrss + (k1.ru_maxrss if kind == "processes" else 0)
    print(json.dumps({"name": name, "kind": kind, "wall_s": wall, "cpu_s": cpu, "peak_kb": peak,
                      "checksum": str(checksum), "events": events}), flush=True)


def cpu_demo(args):
    nums = [args.base + x for x in range(args.count)]

    def serial():
        out = [timed_cpu(n) for n in nums]
        return sum(r for r, _ in out), [e for _, e in out]

    def threads():
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
            out = list(ex.map(timed_cpu, nums))
        return sum(r for r, _ in out), [e for _, e in out]

    def processes():
        with multiprocessing.Pool() as pool:
            out = pool.map(timed_cpu, nums)
        return sum(r for r, _ in out), [e for _, e in out]

    def with_asyncio():
        async def cpu_task(n, i, events):
            b = now()
            r = cpu_bound(n)
            events.append(("python asyncio Task-%d" % i, b, now()))
            return r

        async def amain():
            events = []
            rs = await asyncio.gather(*[cpu_task(n, i, events) for i, n in enumerate(nums)])
            return sum(rs), events

        return asyncio.run(amain())

    run_model("python: serial (for loop)", "serial", serial)
    run_model("python: ThreadPoolExecutor(2) (the GIL)", "threads", threads)
    run_model("python: multiprocessing.Pool() [%d processes]" % os.cpu_count(), "processes", processes)
    run_model("python: asyncio: gather of coroutines (1 thread)", "asyncio", with_asyncio)


def io_demo(args):
    sites = [args.urls[i % len(args.urls)] for i in range(args.jobs)]

    def serial():
        import requests
        events, total = [], 0
        with requests.Session() as session:
            for url in sites:
                b = now()
                with session.get(url) as response:
                    total += len(response.content)
                events.append((lane(), b, now()))
        return total, events

    def threads():
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as ex:
            out = list(ex.map(timed_download, sites))
        return sum(r for r, _ in out), [e for _, e in out]

    def processes():
        with multiprocessing.Pool(args.workers) as pool:
            out = pool.map(timed_download, sites, 1)
        return sum(r for r, _ in out), [e for _, e in out]

    def with_asyncio():
        import aiohttp

        async def download(session, url, i, events):
            b = now()
            async with session.get(url) as response:
                body = await response.read()
            events.append(("python asyncio Task-%d" % i, b, now()))
            return len(body)

        async def amain():
            events = []
            async with aiohttp.ClientSession() as session:
                tasks = [asyncio.ensure_future(download(session, u, i, events)) for i, u in enumerate(sites)]
                rs = await asyncio.gather(*tasks, return_exceptions=False)
            return sum(rs), events

        return asyncio.run(amain())

    run_model("python: serial (one requests.Session)", "serial", serial)
    run_model("python: ThreadPoolExecutor(%d) + thread-local Session" % args.workers, "threads", threads)
    run_model("python: multiprocessing.Pool(%d)" % args.workers, "processes", processes)
    run_model("python: asyncio + aiohttp.ClientSession + gather", "asyncio", with_asyncio)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="demo", required=True)
    c = sub.add_parser("cpu")
    c.add_argument("--base", type=int, default=5_000_000)
    c.add_argument("--count", type=int, default=20)
    i = sub.add_parser("io")
    i.add_argument("--workers", type=int, default=5)
    i.add_argument("--jobs", type=int, default=160)
    i.add_argument("urls", nargs="+")
    args = p.parse_args()
    if args.demo == "cpu":
        cpu_demo(args)
    else:
        io_demo(args)


if __name__ == "__main__":
    main()
