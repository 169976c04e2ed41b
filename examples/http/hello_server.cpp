// A small aiohttp.web-style application: routes with a path parameter, JSON in and out, a
// middleware. Python:
//   async def hello(request):
//       return web.Response(text="hello, " + request.match_info["name"])
//   app = web.Application(middlewares=[timing]); app.router.add_get("/hello/{name}", hello)
//   web.run_app(app, port=8080)
//
// Usage: hello_server [port] [--forever]
//   Without --forever (as CI runs it) it serves on 127.0.0.1 (port 0: a free one), prints the
//   port, sends itself one request, and shuts down gracefully once that request is answered.
//   With --forever it serves until Ctrl+C / SIGTERM (web::run_app), e.g.
//   `hello_server 8080 --forever` then `curl http://127.0.0.1:8080/hello/you`.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <concur/asyncio.hpp>
#include <concur/http/web.hpp>

namespace aio = concur::asyncio;
namespace web = concur::http::web;

void add_routes(web::Application& app) {
  app.router().add_get("/hello/{name}", [](web::Request& req) -> aio::Coro<web::Response> {
    co_return web::Response::text("hello, " + req.match_info("name") + "\n");
  });
  app.router().add_post("/sum", [](web::Request& req) -> aio::Coro<web::Response> {
    nlohmann::json numbers = co_await req.json();  // a bad body becomes a 400
    double total = 0;
    for (const auto& n : numbers) total += n.get<double>();
    nlohmann::json answer = {{"sum", total}};
    co_return web::Response::json(answer);
  });
  // Outermost middleware: adds a header to every response, errors included.
  app.add_middleware([](web::Request& req, web::Handler next) -> aio::Coro<web::Response> {
    web::Response resp;
    try {
      resp = co_await next(req);
    } catch (const web::HTTPException& e) {
      resp = e.response();
    }
    resp.set_header("X-Served-By", "hello_server");
    co_return resp;
  });
}

aio::Coro<int> serve_one(web::Application& app, int port) {
  aio::Event served;
  app.router().add_get("/", [&served](web::Request&) -> aio::Coro<web::Response> {
    served.set();
    co_return web::Response::text("index\n");
  });
  add_routes(app);
  web::Site site = co_await web::start(app, "127.0.0.1", port);
  std::printf("serving on http://127.0.0.1:%d/\n", site.port());
  std::fflush(stdout);

  // Play the client: one raw HTTP/1.1 request over asyncio streams.
  auto [reader, writer] = co_await aio::open_connection("127.0.0.1", site.port());
  writer.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  co_await writer.drain();
  std::string response = co_await reader.read();  // to EOF: the server closes after answering
  writer.close();
  std::printf("%s", response.substr(0, response.find("\r\n") + 2).c_str());  // the status line

  co_await served.wait();
  co_await site.shutdown();  // graceful: waits for the connection to finish
  std::printf("served %zu request(s), shut down\n", site.requests_served());
  co_return response.starts_with("HTTP/1.1 200 OK") ? 0 : 1;
}

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  bool forever = argc > 2 && std::string(argv[2]) == "--forever";
  web::Application app;
  if (forever) {
    app.router().add_get("/",
                         [](web::Request&) -> aio::Coro<web::Response> { co_return web::Response::text("index\n"); });
    add_routes(app);
    web::run_app(app, "127.0.0.1", port);
    return 0;
  }
  return aio::run(serve_one(app, port));
}
