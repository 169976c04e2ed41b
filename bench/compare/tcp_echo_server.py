#!/usr/bin/env python3
"""The TCP echo server of bench/asyncio/tcp_echo.cpp in Python asyncio streams.

Prints its port on the first line, then serves until killed. `--uvloop` runs it on uvloop
(Debian python3-uvloop) instead of the default loop.
"""
import asyncio
import sys


async def echo(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.install()
    asyncio.run(main())
