// concur::http::web: routing (path parameters, 404, 405 with Allow, HEAD by GET routes),
// Request (query, match_info, text/read/json, streaming and chunked bodies, remote),
// Response forms, HTTPException responses, 500 on other exceptions, middlewares, keep-alive,
// pipelining, HTTP/1.0, Connection: close, Expect: 100-continue, hostile input (400, 431, 413,
// slowloris), keep-alive timeout, graceful shutdown (serve() cancelled, Site::shutdown, the
// shutdown timeout), several loops with SO_REUSEPORT, run_app with SIGTERM, HTTPS, and
// interoperability with curl, Python requests and Python aiohttp. Raw asyncio streams play the
// client where the bytes matter. No test leaks file descriptors.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "asyncio/aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"
#include "concur/http/web.hpp"

namespace aio = concur::asyncio;
namespace http = concur::http;
namespace web = concur::http::web;
using namespace std::chrono_literals;

namespace {

using concur::test::open_fd_count;

class WebTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = open_fd_count(); }
  void TearDown() override { EXPECT_EQ(open_fd_count(), fds_before_) << "file descriptors leaked"; }
  template <class F>
  auto run_main(F&& f) {
    return aio::run(f());
  }
  int fds_before_ = 0;
};

// ---- a raw client --------------------------------------------------------------------------

struct Raw {
  int status = 0;
  std::string status_line;
  http::Headers headers;
  std::string body;
};

Raw parse_head(const std::string& head) {
  Raw r;
  std::size_t eol = head.find("\r\n");
  r.status_line = head.substr(0, eol);
  if (r.status_line.size() >= 12) r.status = std::stoi(r.status_line.substr(9, 3));
  std::size_t pos = eol + 2;
  while (pos < head.size()) {
    std::size_t e = head.find("\r\n", pos);
    if (e == std::string::npos || e == pos) break;
    std::string line = head.substr(pos, e - pos);
    std::size_t colon = line.find(':');
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers.add(line.substr(0, colon), value);
    pos = e + 2;
  }
  return r;
}

/// Reads one response (Content-Length bodies; none for HEAD).
aio::Coro<Raw> read_response(aio::StreamReader& r, bool head_request = false) {
  std::string head = co_await r.readuntil("\r\n\r\n");
  Raw resp = parse_head(head);
  if (!head_request) {
    if (auto cl = resp.headers.get("Content-Length")) resp.body = co_await r.readexactly(std::stoul(*cl));
  }
  co_return resp;
}

/// Everything until EOF (bounded by `limit`).
aio::Coro<std::string> read_all(aio::StreamReader& r, std::chrono::milliseconds limit = 5000ms) {
  aio::Coro<std::string> rd = r.read(-1);
  co_return co_await aio::timeout(limit, std::move(rd));
}

/// One request on a new connection, the response, the connection closed.
aio::Coro<Raw> exchange(int port, std::string bytes, bool head_request = false) {
  auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
  w.write(bytes);
  co_await w.drain();
  Raw resp = co_await read_response(r, head_request);
  w.close();
  co_return resp;
}

aio::Coro<Raw> get(int port, std::string path) {
  co_return co_await exchange(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

// ---- the test application ------------------------------------------------------------------

void build_app(web::Application& app) {
  auto& r = app.router();
  r.add_get("/hello", [](web::Request&) -> aio::Coro<web::Response> { co_return web::Response::text("hello"); });
  r.add_get("/item/{id}", [](web::Request& req) -> aio::Coro<web::Response> {
    co_return web::Response::text("item " + req.match_info("id"));
  });
  r.add_get("/user/{name}/post/{pid}", [](web::Request& req) -> aio::Coro<web::Response> {
    co_return web::Response::text(req.match_info("name") + "," + req.match_info("pid"));
  });
  r.add_get("/files/{rest:.*}", [](web::Request& req) -> aio::Coro<web::Response> {
    co_return web::Response::text("files:" + req.match_info("rest"));
  });
  r.add_get("/query", [](web::Request& req) -> aio::Coro<web::Response> {
    co_return web::Response::text(req.query("q").value_or("<none>") + "|" + req.query("n", "dflt") + "|" +
                                  std::to_string(req.query_params().size()) + "|" + req.path);
  });
  r.add_post("/echo", [](web::Request& req) -> aio::Coro<web::Response> {
    std::string body = co_await req.text();
    std::string again = co_await req.read();  // cached
    web::Response resp = web::Response::bytes(body, req.headers.get("Content-Type", "application/octet-stream"));
    resp.set_header("X-Same", again == body ? "yes" : "no");
    co_return resp;
  });
  r.add_put("/echo", [](web::Request& req) -> aio::Coro<web::Response> {
    co_return web::Response::text("put:" + co_await req.text());
  });
  r.add_delete("/item/{id}", [](web::Request&) -> aio::Coro<web::Response> { co_return web::Response("", 204); });
  r.add_patch("/item/{id}", [](web::Request& req) -> aio::Coro<web::Response> {
    co_return web::Response::text("patched " + req.match_info("id"));
  });
  r.add_route("OPTIONS", "/opt", [](web::Request&) -> aio::Coro<web::Response> {
    web::Response resp("", 200);
    resp.set_header("Allow", "OPTIONS");
    co_return resp;
  });
  r.add_post("/json", [](web::Request& req) -> aio::Coro<web::Response> {
    nlohmann::json j = co_await req.json();
    nlohmann::json out = {{"got", j}, {"n", j.size()}};
    co_return web::Response::json(out, 201);
  });
  r.add_post("/stream", [](web::Request& req) -> aio::Coro<web::Response> {
    std::size_t total = 0;
    int chunks = 0;
    for (;;) {
      std::string part = co_await req.content().read(1000);
      if (part.empty()) break;
      EXPECT_LE(part.size(), 1000u);
      total += part.size();
      ++chunks;
    }
    EXPECT_TRUE(req.content().at_eof());
    co_return web::Response::text(std::to_string(total) + " " + std::to_string(chunks));
  });
  r.add_post("/readany", [](web::Request& req) -> aio::Coro<web::Response> {
    std::string first = co_await req.content().readexactly(3);
    std::string rest;
    for (;;) {
      std::string part = co_await req.content().readany();
      if (part.empty()) break;
      rest += part;
    }
    co_return web::Response::text(first + "/" + rest);
  });
  r.add_post("/ignore-body",
             [](web::Request&) -> aio::Coro<web::Response> { co_return web::Response::text("ignored"); });
  r.add_get("/sleep", [](web::Request& req) -> aio::Coro<web::Response> {
    co_await aio::sleep(std::chrono::milliseconds(std::stoi(req.query("ms", "100"))));
    co_return web::Response::text("slept");
  });
  r.add_get("/boom", [](web::Request&) -> aio::Coro<web::Response> {
    throw std::runtime_error("kaboom");
    co_return web::Response::text("never");
  });
  r.add_get("/missing", [](web::Request&) -> aio::Coro<web::Response> {
    throw web::HTTPNotFound("no such thing");
    co_return web::Response::text("never");
  });
  r.add_get("/teapot", [](web::Request&) -> aio::Coro<web::Response> {
    http::Headers extra;
    extra.add("X-Tea", "earl grey");
    throw web::HTTPException(418, "short and stout", extra);
    co_return web::Response::text("never");
  });
  r.add_get("/redirect", [](web::Request&) -> aio::Coro<web::Response> {
    throw web::HTTPFound("/hello");
    co_return web::Response::text("never");
  });
  r.add_get("/remote", [](web::Request& req) -> aio::Coro<web::Response> {
    co_return web::Response::text(req.remote() + " " + req.scheme() + " " + std::to_string(req.version));
  });
  r.add_get("/close", [](web::Request&) -> aio::Coro<web::Response> {
    web::Response resp = web::Response::text("bye");
    resp.set_header("Connection", "close");
    co_return resp;
  });
  r.add_get("/big", [](web::Request& req) -> aio::Coro<web::Response> {
    co_return web::Response::bytes(std::string(std::stoul(req.query("n", "1000000")), 'z'));
  });
}

}  // namespace

// ---- routing and responses -------------------------------------------------------------------

TEST_F(WebTest, HelloHasStandardHeaders) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    EXPECT_GT(site.port(), 0);
    Raw r = co_await get(site.port(), "/hello");
    EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
    EXPECT_EQ(r.body, "hello");
    EXPECT_EQ(r.headers["Content-Length"], "5");
    EXPECT_EQ(r.headers["Content-Type"], "text/plain; charset=utf-8");
    EXPECT_EQ(r.headers["Server"], "concur");
    EXPECT_TRUE(r.headers["Date"].ends_with(" GMT")) << r.headers["Date"];
    EXPECT_EQ(r.headers["Connection"], "close");
    co_await site.shutdown();
  });
}

TEST_F(WebTest, PathParametersQueryAndDecoding) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    int port = site.port();
    EXPECT_EQ((co_await get(port, "/item/42")).body, "item 42");
    EXPECT_EQ((co_await get(port, "/item/a%20b")).body, "item a b");
    EXPECT_EQ((co_await get(port, "/user/ann/post/7")).body, "ann,7");
    EXPECT_EQ((co_await get(port, "/files/a/b/c.txt")).body, "files:a/b/c.txt");
    EXPECT_EQ((co_await get(port, "/files/")).body, "files:");
    EXPECT_EQ((co_await get(port, "/query?q=a+b%21&x=1&x=2")).body, "a b!|dflt|3|/query");
    EXPECT_EQ((co_await get(port, "/query")).body, "<none>|dflt|0|/query");
    EXPECT_EQ((co_await get(port, "/query?n=5")).body, "<none>|5|1|/query");
    EXPECT_EQ((co_await get(port, "http://example.com/item/abs")).body, "item abs");  // absolute form
    EXPECT_EQ((co_await get(port, "/item/")).status, 404);                            // an empty parameter
    EXPECT_EQ((co_await get(port, "/item/1/2")).status, 404);
    Raw rem = co_await get(port, "/remote");
    EXPECT_EQ(rem.body, "127.0.0.1 http 11");
    co_await site.shutdown();
  });
}

TEST_F(WebTest, NotFoundMethodNotAllowedAndHead) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    int port = site.port();
    Raw nf = co_await get(port, "/nowhere");
    EXPECT_EQ(nf.status, 404);
    EXPECT_EQ(nf.body, "404: Not Found");
    Raw na =
        co_await exchange(port, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(na.status, 405);
    EXPECT_EQ(na.headers["Allow"], "GET, HEAD");
    Raw na2 =
        co_await exchange(port, "PUT /item/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(na2.status, 405);
    EXPECT_EQ(na2.headers["Allow"], "GET, HEAD, DELETE, PATCH");
    // HEAD by the GET route: the GET's length, no body; the connection goes on.
    auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
    w.write("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    Raw h = co_await read_response(r, true);
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.headers["Content-Length"], "5");
    Raw g = co_await read_response(r);
    EXPECT_EQ(g.body, "hello");
    // Other methods.
    w.write("DELETE /item/3 HTTP/1.1\r\nHost: x\r\n\r\n");
    Raw d = co_await read_response(r);
    EXPECT_EQ(d.status, 204);
    EXPECT_FALSE(d.headers.contains("Content-Length"));
    w.write("PATCH /item/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ((co_await read_response(r)).body, "patched 3");
    w.write("OPTIONS /opt HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ((co_await read_response(r)).headers["Allow"], "OPTIONS");
    w.close();
    co_await site.shutdown();
  });
}

TEST_F(WebTest, RouterRejectsBadPatternsAndFreezes) {
  web::Application app;
  auto h = [](web::Request&) -> aio::Coro<web::Response> { co_return web::Response::text("x"); };
  EXPECT_THROW(app.router().add_get("nope", h), std::invalid_argument);
  EXPECT_THROW(app.router().add_get("/a/{x:\\d+}", h), std::invalid_argument);
  EXPECT_THROW(app.router().add_get("/a/{}", h), std::invalid_argument);
  app.router().add_get("/a", h);
  web::Router::Match m = app.router().resolve("GET", "/a");
  EXPECT_NE(m.handler, nullptr);
  m = app.router().resolve("POST", "/a");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "HEAD"}));
  app.freeze();
  EXPECT_THROW(app.router().add_get("/b", h), std::logic_error);
  auto mw = [](web::Request& r, web::Handler next) { return next(r); };
  EXPECT_THROW(app.add_middleware(mw), std::logic_error);
}

TEST_F(WebTest, ResponseForms) {
  web::Response t = web::Response::text("hi", 201);
  EXPECT_EQ(t.status, 201);
  EXPECT_EQ(t.content_type(), "text/plain; charset=utf-8");
  web::Response j = web::Response::json(nlohmann::json{{"a", 1}});
  EXPECT_EQ(j.body, "{\"a\":1}");
  EXPECT_EQ(j.content_type(), "application/json");
  web::Response b = web::Response::bytes("\x01\x02", "image/png");
  EXPECT_EQ(b.content_type(), "image/png");
  web::Response c("body", 202, http::Headers{{"Content-Type", "x/y"}, {"X-A", "1"}});
  EXPECT_EQ(c.content_type(), "x/y");
  EXPECT_EQ(c.headers["X-A"], "1");
  web::HTTPMethodNotAllowed e("PUT", {"GET", "POST"});
  EXPECT_EQ(e.response().status, 405);
  EXPECT_EQ(e.response().headers["Allow"], "GET, POST");
}

// ---- bodies --------------------------------------------------------------------------------

TEST_F(WebTest, BodiesContentLengthChunkedJsonStreaming) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    int port = site.port();
    auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
    w.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x\r\nContent-Length: 11\r\n\r\nhello world");
    Raw e = co_await read_response(r);
    EXPECT_EQ(e.body, "hello world");
    EXPECT_EQ(e.headers["Content-Type"], "text/x");
    EXPECT_EQ(e.headers["X-Same"], "yes");
    // Chunked, sent in pieces.
    w.write("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    co_await w.drain();
    co_await aio::sleep(20ms);
    w.write("lo\r\n6\r\n world\r\n0\r\n\r\n");
    EXPECT_EQ((co_await read_response(r)).body, "hello world");
    w.write("PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_EQ((co_await read_response(r)).body, "put:abc");
    // JSON in and out.
    std::string js = R"({"a": [1, 2], "b": "x"})";
    w.write("POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(js.size()) + "\r\n\r\n" + js);
    Raw j = co_await read_response(r);
    EXPECT_EQ(j.status, 201);
    EXPECT_EQ(j.headers["Content-Type"], "application/json");
    EXPECT_EQ(nlohmann::json::parse(j.body)["got"]["b"], "x");
    // Bad JSON: 400, and the connection goes on.
    w.write("POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{nope");
    Raw bad = co_await read_response(r);
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("invalid JSON"), std::string::npos) << bad.body;
    // Streaming reads in bounded pieces.
    std::string big(100000, 'q');
    w.write("POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    w.write(big);
    Raw st = co_await read_response(r);  // pieces of at most 1000 bytes: at least 100 of them
    EXPECT_TRUE(st.body.starts_with("100000 ")) << st.body;
    EXPECT_GE(std::stoi(st.body.substr(7)), 100) << st.body;
    w.write("POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 10; ++i) w.write("9c4\r\n" + std::string(2500, 'c') + "\r\n");
    w.write("0\r\n\r\n");
    Raw s = co_await read_response(r);
    EXPECT_TRUE(s.body.starts_with("25000 ")) << s.body;
    w.write("POST /readany HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nabcdefgh");
    EXPECT_EQ((co_await read_response(r)).body, "abc/defgh");
    // A body the handler ignores is skipped; the next request is read correctly.
    w.write("POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n" + std::string(70000, 'i'));
    EXPECT_EQ((co_await read_response(r)).body, "ignored");
    w.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ((co_await read_response(r)).body, "hello");
    // A big response (drained through flow control).
    w.write("GET /big?n=3000000 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ((co_await read_response(r)).body.size(), 3000000u);
    w.close();
    co_await site.shutdown();
  });
}

TEST_F(WebTest, Expect100Continue) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", site.port());
    w.write("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    std::string interim = co_await r.readuntil("\r\n\r\n");
    EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    w.write("data");
    EXPECT_EQ((co_await read_response(r)).body, "data");
    // The handler never reads the body: no 100, a response, and the connection closes.
    w.write("POST /ignore-body HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    Raw ig = co_await read_response(r);
    EXPECT_EQ(ig.status, 200);
    EXPECT_EQ(ig.headers["Connection"], "close");
    w.close();
    co_await site.shutdown();
  });
}

// ---- errors from handlers and middlewares --------------------------------------------------

TEST_F(WebTest, HandlerExceptionsBecomeResponses) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    int port = site.port();
    Raw m = co_await get(port, "/missing");
    EXPECT_EQ(m.status, 404);
    EXPECT_EQ(m.body, "no such thing");
    Raw t = co_await get(port, "/teapot");
    EXPECT_EQ(t.status, 418);
    EXPECT_EQ(t.body, "short and stout");
    EXPECT_EQ(t.headers["X-Tea"], "earl grey");
    Raw f = co_await get(port, "/redirect");
    EXPECT_EQ(f.status, 302);
    EXPECT_EQ(f.headers["Location"], "/hello");
    // Any other exception: 500, reported once, the keep-alive connection and server go on.
    auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
    w.write("GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    Raw b = co_await read_response(r);
    EXPECT_EQ(b.status, 500);
    EXPECT_EQ(b.body, "500: Internal Server Error");
    EXPECT_EQ((co_await read_response(r)).body, "hello");
    w.close();
    co_await site.shutdown();
  });
  auto got = rec.get();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].what, "kaboom");
  EXPECT_NE(got[0].context.find("GET /boom"), std::string::npos) << got[0].context;
}

TEST_F(WebTest, MiddlewaresRunOutermostFirst) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    auto order = std::make_shared<std::vector<std::string>>();
    web::Middleware outer = [order](web::Request& req, web::Handler next) -> aio::Coro<web::Response> {
      order->push_back("outer in");
      web::Response resp;
      try {
        resp = co_await next(req);
      } catch (const web::HTTPNotFound&) {
        resp = web::Response::text("custom 404", 404);
      }
      order->push_back("outer out");
      resp.set_header("X-Outer", "1");
      co_return resp;
    };
    web::Middleware inner = [order](web::Request& req, web::Handler next) -> aio::Coro<web::Response> {
      order->push_back("inner in");
      if (req.path == "/blocked") throw web::HTTPForbidden("no");
      web::Response resp = co_await next(req);
      order->push_back("inner out");
      resp.body += "!";
      co_return resp;
    };
    app.add_middleware(outer);
    app.add_middleware(inner);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    int port = site.port();
    Raw h = co_await get(port, "/hello");
    EXPECT_EQ(h.body, "hello!");
    EXPECT_EQ(h.headers["X-Outer"], "1");
    EXPECT_EQ(*order, (std::vector<std::string>{"outer in", "inner in", "inner out", "outer out"}));
    Raw nf = co_await get(port, "/nowhere");
    EXPECT_EQ(nf.status, 404);
    EXPECT_EQ(nf.body, "custom 404");
    Raw fb = co_await get(port, "/blocked");
    EXPECT_EQ(fb.status, 403);
    Raw na = co_await exchange(port, "DELETE /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(na.status, 405);
    co_await site.shutdown();
  });
}

// ---- connections ---------------------------------------------------------------------------

TEST_F(WebTest, KeepAlivePipeliningInOrder) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", site.port());
    // Three requests in one write; the slow one first: answers come in request order.
    w.write(
        "GET /sleep?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        "GET /item/9 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ((co_await read_response(r)).body, "slept");
    EXPECT_EQ((co_await read_response(r)).body, "abc");
    EXPECT_EQ((co_await read_response(r)).body, "item 9");
    // Byte by byte works too.
    std::string req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    for (char c : req) {
      w.write(std::string(1, c));
      co_await w.drain();
    }
    EXPECT_EQ((co_await read_response(r)).body, "hello");
    EXPECT_EQ(site.active_connections(), 1u);
    EXPECT_EQ(site.requests_served(), 4u);
    // Connection: close from the client.
    w.write("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    Raw last = co_await read_response(r);
    EXPECT_EQ(last.headers["Connection"], "close");
    EXPECT_EQ(co_await read_all(r), "");
    w.close();
    // Connection: close from the handler.
    auto [r2, w2] = co_await aio::open_connection("127.0.0.1", site.port());
    w2.write("GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ((co_await read_response(r2)).headers["Connection"], "close");
    EXPECT_EQ(co_await read_all(r2), "");
    w2.close();
    co_await site.shutdown();
  });
}

TEST_F(WebTest, Http10ClosesUnlessKeepAlive) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", site.port());
    w.write("GET /remote HTTP/1.0\r\n\r\n");
    Raw a = co_await read_response(r);
    EXPECT_EQ(a.body, "127.0.0.1 http 10");
    EXPECT_EQ(co_await read_all(r), "");  // closed
    w.close();
    auto [r2, w2] = co_await aio::open_connection("127.0.0.1", site.port());
    w2.write("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    Raw b = co_await read_response(r2);
    EXPECT_EQ(b.headers["Connection"], "keep-alive");
    w2.write("GET /item/2 HTTP/1.0\r\n\r\n");
    EXPECT_EQ((co_await read_response(r2)).body, "item 2");
    EXPECT_EQ(co_await read_all(r2), "");
    w2.close();
    co_await site.shutdown();
  });
}

TEST_F(WebTest, KeepAliveTimeoutClosesIdleConnections) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Options o;
    o.keepalive_timeout = 200ms;
    web::Site site = co_await web::start(app, "127.0.0.1", 0, o);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", site.port());
    w.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ((co_await read_response(r)).body, "hello");
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(co_await read_all(r, 3000ms), "");
    auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(waited, 150ms);
    EXPECT_LT(waited, 2000ms);
    w.close();
    co_await site.shutdown();
  });
}

// ---- hostile input -------------------------------------------------------------------------

TEST_F(WebTest, MalformedRequestsGet400AndClose) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    int port = site.port();
    // A bystander keep-alive connection, opened before and used after.
    auto [br, bw] = co_await aio::open_connection("127.0.0.1", port);
    const std::vector<std::string> bad = {
        "GARBAGE\r\n\r\n",
        "GET /hello HTTP/9.9\r\nHost: x\r\n\r\n",
        "GET /hello HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET\x01 / HTTP/1.1\r\n\r\n",
        // Request smuggling shapes: both framings, or two different lengths.
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    };
    for (const auto& b : bad) {
      auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
      w.write(b);
      std::string all = co_await read_all(r);
      EXPECT_TRUE(all.starts_with("HTTP/1.1 400 Bad Request\r\n")) << b << " -> " << all;
      EXPECT_NE(all.find("Connection: close"), std::string::npos);
      w.close();
    }
    bw.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ((co_await read_response(br)).body, "hello");
    bw.close();
    co_await site.shutdown();
  });
}

TEST_F(WebTest, OversizedHeaderGets431) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    int port = site.port();
    auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
    w.write("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n");
    std::string all = co_await read_all(r);
    EXPECT_TRUE(all.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n")) << all.substr(0, 80);
    w.close();
    // Just under the limit is fine; a smaller configured limit applies.
    Raw ok =
        co_await exchange(port, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(15000, 'h') + "\r\n\r\n");
    EXPECT_EQ(ok.status, 200);
    co_await site.shutdown();
    web::Options o;
    o.max_header_size = 1024;
    web::Site small = co_await web::start(app, "127.0.0.1", 0, o);
    Raw no = co_await exchange(small.port(),
                               "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(1500, 'h') + "\r\n\r\n");
    EXPECT_EQ(no.status, 431);
    co_await small.shutdown();
  });
}

TEST_F(WebTest, OversizedBodyGets413) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Options o;
    o.client_max_size = 10000;
    web::Site site = co_await web::start(app, "127.0.0.1", 0, o);
    int port = site.port();
    // Content-Length over the limit: 413 before any body is read.
    {
      auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
      w.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + std::string(20000, 'b'));
      std::string all = co_await read_all(r);
      EXPECT_TRUE(all.starts_with("HTTP/1.1 413 ")) << all.substr(0, 80);
      w.close();
    }
    // Chunked past the limit: the handler's read throws, 413 reaches the client.
    {
      auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
      w.write("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (int i = 0; i < 6; ++i) w.write("7d0\r\n" + std::string(2000, 'c') + "\r\n");
      w.write("0\r\n\r\n");
      std::string all = co_await read_all(r);
      EXPECT_TRUE(all.starts_with("HTTP/1.1 413 ")) << all.substr(0, 80);
      w.close();
    }
    // At the limit: fine.
    Raw ok = co_await exchange(
        port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n" + std::string(10000, 'k'));
    EXPECT_EQ(ok.body.size(), 10000u);
    co_await site.shutdown();
  });
}

TEST_F(WebTest, SlowlorisIsDroppedAndHoldsUpNobody) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Options o;
    o.header_timeout = 1500ms;  // generous: sanitizer builds on a busy machine are slow
    web::Site site = co_await web::start(app, "127.0.0.1", 0, o);
    int port = site.port();
    auto [sr, sw] = co_await aio::open_connection("127.0.0.1", port);
    auto slow = [](aio::StreamReader r, aio::StreamWriter w) -> aio::Coro<std::string> {
      std::string req = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(100, 'p') + "\r\n\r\n";
      std::size_t sent = 0;
      try {
        for (; sent < req.size() && !w.is_closing(); ++sent) {
          w.write(std::string(1, req[sent]));
          co_await w.drain();
          co_await aio::sleep(100ms);
          if (r.at_eof()) break;
        }
      } catch (const concur::Error&) {
      }
      co_return std::to_string(sent) + ":" + co_await read_all(r, 3000ms);
    };
    auto t0 = std::chrono::steady_clock::now();
    aio::Task<std::string> slow_task = aio::create_task(slow(sr, sw));
    co_await aio::sleep(50ms);
    // A normal client meanwhile: served at once.
    auto t1 = std::chrono::steady_clock::now();
    Raw ok = co_await get(port, "/hello");
    EXPECT_EQ(ok.body, "hello");
    EXPECT_LT(std::chrono::steady_clock::now() - t1, 1000ms);  // before the slow one is dropped
    std::string result = co_await slow_task;
    auto took = std::chrono::steady_clock::now() - t0;
    std::size_t colon = result.find(':');
    EXPECT_EQ(result.substr(colon + 1), "") << "the slow client got a response";
    EXPECT_LT(std::stoul(result.substr(0, colon)), 40u) << result;  // far from the whole request
    EXPECT_LT(took, 5000ms);
    sw.close();
    co_await site.shutdown();
  });
}

TEST_F(WebTest, SlowBodyTimesOutAndHoldsUpNobody) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Options o;
    o.body_timeout = 300ms;
    web::Site site = co_await web::start(app, "127.0.0.1", 0, o);
    int port = site.port();
    auto [sr, sw] = co_await aio::open_connection("127.0.0.1", port);
    sw.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten..");
    co_await sw.drain();
    auto t0 = std::chrono::steady_clock::now();
    Raw ok = co_await get(port, "/hello");  // served while the body stalls
    EXPECT_EQ(ok.body, "hello");
    std::string rest = co_await read_all(sr, 5000ms);  // dropped once the body stops arriving
    EXPECT_EQ(rest.find("200 OK"), std::string::npos) << rest;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4000ms);
    sw.close();
    co_await site.shutdown();
  });
}

// ---- shutdown ------------------------------------------------------------------------------

TEST_F(WebTest, GracefulShutdownFinishesInFlightRequests) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    int port = site.port();
    auto [ir, iw] = co_await aio::open_connection("127.0.0.1", port);  // idle keep-alive
    iw.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ((co_await read_response(ir)).body, "hello");
    auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
    w.write("GET /sleep?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await aio::sleep(50ms);
    auto t0 = std::chrono::steady_clock::now();
    aio::Coro<void> sd = site.shutdown();
    aio::Task<void> shut = aio::create_task(std::move(sd));
    EXPECT_EQ(co_await read_all(ir), "");                      // the idle one closes at once
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);  // well before the busy one ends
    Raw resp = co_await read_response(r);                      // the busy one finishes
    EXPECT_EQ(resp.body, "slept");
    EXPECT_EQ(resp.headers["Connection"], "close");
    co_await shut;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 1000ms);
    EXPECT_EQ(site.active_connections(), 0u);
    bool refused = false;
    try {
      auto [r3, w3] = co_await aio::open_connection("127.0.0.1", port);
      w3.close();
    } catch (const concur::ConnectionRefusedError&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    iw.close();
    w.close();
  });
}

TEST_F(WebTest, CloseStopsAcceptingButServesOpenConnections) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    int port = site.port();
    auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
    w.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ((co_await read_response(r)).body, "hello");
    site.close();
    bool refused = false;
    try {
      auto [r3, w3] = co_await aio::open_connection("127.0.0.1", port);
      w3.close();
    } catch (const concur::ConnectionRefusedError&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    w.write("GET /item/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    Raw again = co_await read_response(r);
    EXPECT_EQ(again.body, "item 1");
    EXPECT_FALSE(again.headers.contains("Connection"));
    co_await site.shutdown();
    EXPECT_EQ(co_await read_all(r), "");
    w.close();
  });
}

TEST_F(WebTest, ShutdownTimeoutCancelsSlowHandlers) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Options o;
    o.shutdown_timeout = 200ms;
    web::Site site = co_await web::start(app, "127.0.0.1", 0, o);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", site.port());
    w.write("GET /sleep?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await aio::sleep(50ms);
    auto t0 = std::chrono::steady_clock::now();
    co_await site.shutdown();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2000ms);
    EXPECT_EQ(co_await read_all(r), "");  // dropped without a response
    w.close();
  });
}

TEST_F(WebTest, ServeRunsUntilCancelled) {
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    // Find a free port, then serve on it.
    aio::Server probe = co_await aio::start_server(
        [](aio::StreamReader, aio::StreamWriter w) -> aio::Coro<void> {
          w.close();
          co_return;
        },
        "127.0.0.1", 0);
    int port = probe.port();
    probe.close();
    co_await probe.wait_closed();
    aio::Coro<void> sv = web::serve(app, "127.0.0.1", port);
    aio::Task<void> serving = aio::create_task(std::move(sv));
    co_await aio::sleep(50ms);
    EXPECT_EQ((co_await get(port, "/hello")).body, "hello");
    serving.cancel();
    bool cancelled = false;
    try {
      co_await serving;
    } catch (const concur::CancelledError&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    bool refused = false;
    try {
      auto [r3, w3] = co_await aio::open_connection("127.0.0.1", port);
      w3.close();
    } catch (const concur::ConnectionRefusedError&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
  });
}

// ---- several loops -------------------------------------------------------------------------

TEST_F(WebTest, SeveralLoopsWithReusePort) {
  std::mutex m;
  std::set<std::thread::id> threads;
  std::atomic<int> calls{0};
  run_main([&]() -> aio::Coro<void> {
    web::Application app;
    app.router().add_get("/tid", [&](web::Request&) -> aio::Coro<web::Response> {
      {
        std::lock_guard g(m);
        threads.insert(std::this_thread::get_id());
      }
      calls.fetch_add(1);
      co_return web::Response::text("ok");
    });
    web::Options o;
    o.threads = 3;
    web::Site site = co_await web::start(app, "127.0.0.1", 0, o);
    int port = site.port();
    std::vector<aio::Task<Raw>> tasks;
    for (int i = 0; i < 60; ++i) tasks.push_back(aio::create_task(get(port, "/tid")));
    for (auto& t : tasks) EXPECT_EQ((co_await t).body, "ok");
    co_await site.shutdown();
  });
  EXPECT_EQ(calls.load(), 60);
  EXPECT_GE(threads.size(), 2u) << "connections should spread over the loops";
}

// ---- run_app -------------------------------------------------------------------------------

TEST_F(WebTest, RunAppStopsOnSigterm) {
  std::atomic<int> port{0};
  std::thread server([&] {
    web::Application app;
    build_app(app);
    web::Options o;
    o.on_started = [&](int p) { port.store(p); };
    web::run_app(app, "127.0.0.1", 0, o);
  });
  for (int i = 0; i < 500 && port.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GT(port.load(), 0);
  std::string body =
      aio::run([&]() -> aio::Coro<std::string> { co_return (co_await get(port.load(), "/hello")).body; }());
  EXPECT_EQ(body, "hello");
  ::kill(::getpid(), SIGTERM);
  server.join();
}

// ---- HTTPS and other clients ---------------------------------------------------------------

namespace {

struct Cmd {
  int rc = -1;
  std::string out, err;
};

aio::Coro<Cmd> run_cmd(std::string program, std::vector<std::string> args) {
  aio::SubprocessOptions o;
  o.stdout_ = aio::PIPE;
  o.stderr_ = aio::PIPE;
  o.stdin_ = aio::DEVNULL;
  aio::Process p = co_await aio::create_subprocess_exec(std::move(program), std::move(args), o);
  Cmd c;
  aio::Coro<std::pair<std::string, std::string>> comm = p.communicate();
  auto [out, err] = co_await aio::timeout(8s, std::move(comm));
  c.out = std::move(out);
  c.err = std::move(err);
  c.rc = co_await p.wait();
  co_return c;
}

bool have(const char* path) { return ::access(path, X_OK) == 0; }

}  // namespace

TEST_F(WebTest, CurlInterop) {
  if (!have("/usr/bin/curl")) GTEST_SKIP() << "no curl";
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    std::string base = "http://127.0.0.1:" + std::to_string(site.port());
    // Two URLs on one curl: the connection is reused.
    std::vector<std::string> a1 = {"-sS", "-v", base + "/hello", base + "/item/5"};
    Cmd c1 = co_await run_cmd("curl", a1);
    EXPECT_EQ(c1.rc, 0) << c1.err;
    EXPECT_EQ(c1.out, "helloitem 5");
    EXPECT_NE(c1.err.find("Re-using existing connection"), std::string::npos) << c1.err;
    std::vector<std::string> a2 = {"-sS", "--data-binary", "posted data", base + "/echo"};
    Cmd c2 = co_await run_cmd("curl", a2);
    EXPECT_EQ(c2.out, "posted data");
    std::vector<std::string> a3 = {"-sS",           "-H",     "Transfer-Encoding: chunked",
                                   "--data-binary", "chunky", base + "/echo"};
    Cmd c3 = co_await run_cmd("curl", a3);
    EXPECT_EQ(c3.out, "chunky");
    std::vector<std::string> a4 = {"-sS", "-I", base + "/hello"};
    Cmd c4 = co_await run_cmd("curl", a4);
    EXPECT_NE(c4.out.find("Content-Length: 5\r\n"), std::string::npos) << c4.out;
    std::vector<std::string> a5 = {"-sS", "-o", "/dev/null", "-w", "%{http_code}", base + "/nowhere"};
    EXPECT_EQ((co_await run_cmd("curl", a5)).out, "404");
    // curl sends Expect: 100-continue for bodies over 1 MiB... and 1 KiB with -H; force it.
    std::vector<std::string> a6 = {"-sS",         "-H", "Expect: 100-continue", "--data-binary", std::string(5000, 'e'),
                                   base + "/echo"};
    EXPECT_EQ((co_await run_cmd("curl", a6)).out.size(), 5000u);
    std::vector<std::string> a7 = {"-sS",           "-H",        "Content-Type: application/json",
                                   "--data-binary", "{\"k\":3}", base + "/json"};
    Cmd c7 = co_await run_cmd("curl", a7);
    EXPECT_EQ(nlohmann::json::parse(c7.out)["got"]["k"], 3);
    co_await site.shutdown();
  });
}

TEST_F(WebTest, PythonRequestsInterop) {
  if (!have("/usr/bin/python3")) GTEST_SKIP() << "no python3";
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    std::string base = "http://127.0.0.1:" + std::to_string(site.port());
    std::string script = R"PY(
import sys, requests
base = sys.argv[1]
s = requests.Session()
out = []
for i in range(5):
    r = s.get(base + "/item/%d" % i)
    out.append(r.text)
r = s.post(base + "/json", json={"a": [1, 2]})
out.append("%d %s" % (r.status_code, r.json()["got"]["a"]))
r = s.post(base + "/echo", data=iter([b"gen", b"erated"]))  # chunked upload
out.append(r.text)
r = s.get(base + "/query", params={"q": "a b&c"})
out.append(r.text)
r = s.head(base + "/hello")
out.append("%d %s %d" % (r.status_code, r.headers["Content-Length"], len(r.content)))
r = s.get(base + "/missing")
out.append("%d %s" % (r.status_code, r.text))
print("|".join(out))
)PY";
    std::vector<std::string> args = {"-c", script, base};
    Cmd c = co_await run_cmd("/usr/bin/python3", args);
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.out,
              "item 0|item 1|item 2|item 3|item 4|201 [1, 2]|generated|a b&c|dflt|1|/query|200 5 0|404 no such "
              "thing\n");
    co_await site.shutdown();
  });
}

TEST_F(WebTest, PythonAiohttpInterop) {
  if (!have("/usr/bin/python3")) GTEST_SKIP() << "no python3";
  run_main([]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    web::Site site = co_await web::start(app, "127.0.0.1", 0);
    std::string base = "http://127.0.0.1:" + std::to_string(site.port());
    std::string script = R"PY(
import sys, asyncio, aiohttp
base = sys.argv[1]
async def main():
    async with aiohttp.ClientSession() as s:
        async def one(i):
            async with s.get(base + "/item/%d" % i) as r:
                return await r.text()
        got = await asyncio.gather(*(one(i) for i in range(20)))
        async with s.post(base + "/json", json={"x": "y"}) as r:
            j = await r.json()
        async with s.post(base + "/stream", data=b"z" * 50000) as r:
            st = (await r.text()).split()[0]  # total bytes (the piece count varies)
        async with s.get(base + "/big?n=200000") as r:
            big = len(await r.read())
        print(len(set(got)), got[3], r.status, j["got"]["x"], st, big)
asyncio.run(main())
)PY";
    std::vector<std::string> args = {"-c", script, base};
    Cmd c = co_await run_cmd("/usr/bin/python3", args);
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.out, "20 item 3 200 y 50000 200000\n");
    co_await site.shutdown();
  });
}

TEST_F(WebTest, HttpsWithCurl) {
  if (!have("/usr/bin/curl") || !have("/usr/bin/openssl")) GTEST_SKIP() << "no curl or openssl";
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("concur_web_tls_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + key +
                    " -out " + cert + " -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  run_main([&]() -> aio::Coro<void> {
    web::Application app;
    build_app(app);
    aio::ssl::Context ctx = aio::ssl::create_default_context(aio::ssl::Purpose::CLIENT_AUTH);
    ctx.load_cert_chain(cert, key);
    web::Options o;
    o.ssl = ctx;
    web::Site site = co_await web::start(app, "127.0.0.1", 0, o);
    std::string base = "https://127.0.0.1:" + std::to_string(site.port());
    std::vector<std::string> a = {"-sS", "--cacert", cert, base + "/remote", base + "/hello"};
    Cmd c = co_await run_cmd("curl", a);
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.out, "127.0.0.1 https 11hello");
    co_await site.shutdown();
  });
  std::filesystem::remove_all(dir);
}
