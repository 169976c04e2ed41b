"""A Python aiohttp web server for concur's HTTP client tests (a peer no one here wrote).

Listens on 127.0.0.1 on a free port, prints the port on one line, serves until killed.
"""
import asyncio
import sys

from aiohttp import web


async def hello(request):
    return web.Response(text="hello from aiohttp")


async def echo(request):
    body = await request.read()
    return web.json_response({
        "method": request.method,
        "query": dict(request.query),
        "content_type": request.content_type,
        "body": body.decode(),
        "cookie": request.cookies.get("sid", ""),
    })


async def chunked(request):
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(5):
        await resp.write(f"part{i};".encode())
        await asyncio.sleep(0.01)
    await resp.write_eof()
    return resp


async def gzipped(request):
    resp = web.Response(text="squeeze " * 2000)
    resp.enable_compression(web.ContentCoding.gzip)
    return resp


async def redirect(request):
    raise web.HTTPFound("/hello")


async def login(request):
    resp = web.Response(text="ok")
    resp.set_cookie("sid", "s3cr3t")
    return resp


async def main():
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/login", login)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
