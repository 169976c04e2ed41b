"""aiohttp's ClientSession doing N GETs with C in flight (bench/http/http_bench.cpp's peer).

usage: aiohttp_client_bench.py URL [N] [C]; prints requests per second on one line.
"""
import asyncio
import sys
import time

import aiohttp


async def main(url, n, c):
    left = n

    async def worker(session):
        nonlocal left
        while left > 0:
            left -= 1
            async with session.get(url) as resp:
                await resp.read()

    conn = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=conn) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(c)))
        took = time.perf_counter() - start
    print(f"{n / took:.0f}", flush=True)


url = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
c = int(sys.argv[3]) if len(sys.argv) > 3 else 100
asyncio.run(main(url, n, c))
