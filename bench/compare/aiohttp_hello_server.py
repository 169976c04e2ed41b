"""aiohttp's web server answering "hello" on GET / (bench/http/http_bench.cpp's peer).

Listens on 127.0.0.1 on a free port, prints the port on one line, serves until killed.
"""
import asyncio

from aiohttp import web


async def hello(request):
    return web.Response(text="hello")


async def main():
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
