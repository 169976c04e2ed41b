// http::ClientSession against a scripted loopback server (http_support.hpp): bodies (length,
// chunked, gzip, deflate, streamed), keep-alive reuse and stale connections, limits, request
// bodies (bytes, form, JSON), query parameters, redirects, cookies, timeouts, cancellation, and
// every error path (refused, DNS, malformed, cut short, TLS) — each naming the URL. No fds leak.
#include <stdlib.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "http_support.hpp"
#include <gtest/gtest.h>

#include "concur/futures.hpp"

namespace aio = concur::asyncio;
namespace http = concur::http;
using concur::test::Reply;
using concur::test::response;
using concur::test::ScriptServer;
using namespace std::chrono_literals;

namespace {

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = concur::test::open_fd_count(); }
  void TearDown() override { EXPECT_EQ(concur::test::open_fd_count(), fds_before_) << "file descriptors leaked"; }
  int fds_before_ = 0;
};

std::string compress(const std::string& data, int window_bits) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  return out;
}

Reply ok(const std::string& body, std::vector<std::string> headers = {}) {
  return Reply{.bytes = response(200, body, headers)};
}

}  // namespace

TEST_F(ClientTest, GetReturnsStatusReasonHeadersAndBody) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest&) {
      return ok("hello", {"X-Thing: 1", "Content-Type: text/plain; charset=utf-8"});
    });
    co_await srv.start();
    http::ClientSession session;
    http::ClientResponse resp = co_await session.get(srv.url("/page"));
    EXPECT_EQ(resp.status, 200);
    EXPECT_EQ(resp.reason, "OK");
    EXPECT_EQ(resp.headers["x-thing"], "1");  // case-insensitive
    EXPECT_EQ(resp.content_type(), "text/plain");
    EXPECT_EQ(co_await resp.text(), "hello");
    EXPECT_EQ(co_await resp.read(), "hello");  // cached
    EXPECT_TRUE(resp.ok());
    EXPECT_EQ(resp.url.str(), srv.url("/page"));
    const auto& req = srv.requests().at(0);
    EXPECT_EQ(req.method, "GET");
    EXPECT_EQ(req.target, "/page");
    EXPECT_EQ(req.version, "HTTP/1.1");
    EXPECT_EQ(req.headers["Host"], "127.0.0.1:" + std::to_string(srv.port()));
    EXPECT_EQ(req.headers["Accept-Encoding"], "gzip, deflate");
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, KeepAliveReusesOneConnection) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) { return ok("n" + std::to_string(r.index)); });
    co_await srv.start();
    http::ClientSession session;
    for (int i = 0; i < 5; ++i) {
      http::ClientResponse resp = co_await session.get(srv.url("/"));
      EXPECT_EQ(co_await resp.text(), "n" + std::to_string(i));
    }
    EXPECT_EQ(session.connections_opened(), 1u);
    EXPECT_EQ(srv.connections(), 1);
    EXPECT_EQ(session.idle_connections(), 1u);
    co_await session.close();
    EXPECT_EQ(session.idle_connections(), 0u);
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, ChunkedBodyIsDecoded) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest&) {
      return Reply{.bytes = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                   .then = "6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
                   .pause = 20ms};
    });
    co_await srv.start();
    http::ClientSession session;
    for (int i = 0; i < 2; ++i) {  // and the connection is reusable after a chunked body
      http::ClientResponse resp = co_await session.get(srv.url("/c"));
      EXPECT_EQ(co_await resp.text(), "hello world");
    }
    EXPECT_EQ(srv.connections(), 1);
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, GzipAndDeflateBodiesAreDecoded) {
  aio::run([]() -> aio::Coro<void> {
    const std::string text(100000, 'z');
    ScriptServer srv([&](const concur::test::RawRequest& r) {
      if (r.target == "/gzip") return ok(compress(text, 16 + MAX_WBITS), {"Content-Encoding: gzip"});
      if (r.target == "/zlib") return ok(compress(text, MAX_WBITS), {"Content-Encoding: deflate"});
      if (r.target == "/raw") return ok(compress(text, -MAX_WBITS), {"Content-Encoding: deflate"});
      return ok("not gzip at all", {"Content-Encoding: gzip"});
    });
    co_await srv.start();
    http::ClientSession session;
    for (const char* path : {"/gzip", "/zlib", "/raw"}) {
      http::ClientResponse resp = co_await session.get(srv.url(path));
      EXPECT_EQ(co_await resp.read(), text) << path;
    }
    http::ClientResponse bad = co_await session.get(srv.url("/bad"));
    EXPECT_THROW(co_await bad.read(), http::ClientPayloadError);
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, LargeBodyStreamsInChunks) {
  aio::run([]() -> aio::Coro<void> {
    std::string big(3 * 1024 * 1024, 'b');
    for (std::size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
    ScriptServer srv([&](const concur::test::RawRequest&) { return ok(big); });
    co_await srv.start();
    http::ClientSession session;
    http::ClientResponse resp = co_await session.get(srv.url("/big"));
    std::string got;
    int pieces = 0;
    for (;;) {
      std::string piece = co_await resp.read_chunk(100000);
      if (piece.empty()) break;
      EXPECT_LE(piece.size(), 100000u);
      got += piece;
      ++pieces;
    }
    EXPECT_EQ(got, big);
    EXPECT_GT(pieces, 20);
    EXPECT_EQ(session.idle_connections(), 1u);  // read to the end: back in the pool
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, RequestBodiesBytesFormAndJson) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) { return ok(r.headers["Content-Type"] + "|" + r.body); });
    co_await srv.start();
    http::ClientSession session;
    http::RequestOptions bytes;
    bytes.body = "x";
    bytes.headers = {{"Content-Type", "text/plain"}};
    EXPECT_EQ(co_await (co_await session.post(srv.url("/"), bytes)).text(), "text/plain|x");
    http::RequestOptions form;
    form.form = http::Params{{"a", "1"}, {"b", "x y&z"}};
    EXPECT_EQ(co_await (co_await session.put(srv.url("/"), form)).text(),
              "application/x-www-form-urlencoded|a=1&b=x+y%26z");
    http::RequestOptions js;
    js.json = nlohmann::json{{"k", 5}};
    http::ClientResponse r = co_await session.patch(srv.url("/"), js);
    EXPECT_EQ(co_await r.text(), "application/json|{\"k\":5}");
    http::ClientResponse empty = co_await session.post(srv.url("/"));
    EXPECT_EQ(co_await empty.text(), "|");  // no body: no Content-Type
    EXPECT_EQ(srv.requests().back().headers["Content-Length"], "0");
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, QueryParametersAreEncodedAndAppended) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) { return ok(r.target); });
    co_await srv.start();
    http::ClientSession session;
    http::RequestOptions o;
    o.params = {{"q", "a b"}, {"x", "é/"}};
    http::ClientResponse resp = co_await session.get(srv.url("/s?z=1"), o);
    EXPECT_EQ(co_await resp.text(), "/s?z=1&q=a+b&x=%C3%A9%2F");
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, ResponseJsonAndRaiseForStatus) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      if (r.target == "/json") return ok(R"({"a":[1,2]})", {"Content-Type: application/json"});
      if (r.target == "/notjson") return ok("{oops");
      return Reply{.bytes = response(404, "nope")};
    });
    co_await srv.start();
    http::ClientSession session;
    http::ClientResponse j = co_await session.get(srv.url("/json"));
    nlohmann::json v = co_await j.json();
    EXPECT_EQ(v["a"][1], 2);
    http::ClientResponse nj = co_await session.get(srv.url("/notjson"));
    EXPECT_THROW(co_await nj.json(), http::ClientPayloadError);
    http::ClientResponse missing = co_await session.get(srv.url("/missing"));
    EXPECT_EQ(missing.status, 404);
    EXPECT_FALSE(missing.ok());
    try {
      missing.raise_for_status();
      ADD_FAILURE() << "expected ClientResponseError";
    } catch (const http::ClientResponseError& e) {
      EXPECT_EQ(e.status(), 404);
      EXPECT_NE(std::string(e.what()).find(srv.url("/missing")), std::string::npos) << e.what();
    }
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, RedirectsAreFollowedWithPythonsMethodRules) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      if (r.target == "/a") return Reply{.bytes = response(302, "moved", {"Location: /b"})};
      if (r.target == "/b") return Reply{.bytes = response(301, "", {"Location: c?x=1"})};
      if (r.target == "/t") return Reply{.bytes = response(307, "", {"Location: /final"})};
      if (r.target == "/loop") return Reply{.bytes = response(302, "", {"Location: /loop"})};
      return ok(r.method + " " + r.target + " " + r.body);
    });
    co_await srv.start();
    http::ClientSession session;
    http::RequestOptions post;
    post.body = "data";
    http::ClientResponse r = co_await session.post(srv.url("/a"), post);
    EXPECT_EQ(co_await r.text(), "GET /c?x=1 ");  // 302 after POST becomes GET without a body
    EXPECT_EQ(r.history.size(), 2u);
    if (r.history.size() != 2) co_return;
    EXPECT_EQ(r.history[0].status, 302);
    EXPECT_EQ(r.history[1].status, 301);
    EXPECT_EQ(r.url.target(), "/c?x=1");
    http::ClientResponse t = co_await session.post(srv.url("/t"), post);
    EXPECT_EQ(co_await t.text(), "POST /final data");  // 307 keeps the method and body
    http::RequestOptions no_follow;
    no_follow.allow_redirects = false;
    http::ClientResponse nf = co_await session.get(srv.url("/a"), no_follow);
    EXPECT_EQ(nf.status, 302);
    EXPECT_EQ(co_await nf.text(), "moved");
    http::RequestOptions few;
    few.max_redirects = 3;
    try {
      (void)co_await session.get(srv.url("/loop"), few);
      ADD_FAILURE() << "expected TooManyRedirects";
    } catch (const http::TooManyRedirects& e) {
      EXPECT_NE(std::string(e.what()).find("/loop"), std::string::npos);
    }
    EXPECT_EQ(srv.connections(), 1);  // redirect bodies were read: the connection was reused
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, CookiesAreKeptAndSentBack) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      if (r.target == "/login") {
        return ok("in", {"Set-Cookie: sid=abc; Path=/; HttpOnly", "Set-Cookie: theme=dark; Path=/prefs",
                         "Set-Cookie: evil=1; Domain=example.com"});
      }
      if (r.target == "/logout") return ok("out", {"Set-Cookie: sid=gone; Max-Age=0; Path=/"});
      return ok(r.headers["Cookie"]);
    });
    co_await srv.start();
    http::ClientSession session;
    (void)co_await (co_await session.get(srv.url("/login"))).read();
    EXPECT_EQ(co_await (co_await session.get(srv.url("/x"))).text(), "sid=abc");
    EXPECT_EQ(co_await (co_await session.get(srv.url("/prefs/a"))).text(), "sid=abc; theme=dark");
    EXPECT_EQ(session.cookies().size(), 2u);  // the cookie for another domain was refused
    (void)co_await (co_await session.get(srv.url("/logout"))).read();
    EXPECT_EQ(co_await (co_await session.get(srv.url("/x"))).text(), "");
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, HeadRequestHasNoBody) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      if (r.method == "HEAD") return Reply{.bytes = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"};
      return ok("after");
    });
    co_await srv.start();
    http::ClientSession session;
    http::ClientResponse h = co_await session.head(srv.url("/"));
    EXPECT_EQ(h.headers["Content-Length"], "1000");
    EXPECT_EQ(co_await h.read(), "");
    EXPECT_EQ(co_await (co_await session.get(srv.url("/"))).text(), "after");
    EXPECT_EQ(srv.connections(), 1);
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, InterimContinueResponseIsSkipped) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest&) {
      return Reply{.bytes = "HTTP/1.1 100 Continue\r\n\r\n" + response(201, "made")};
    });
    co_await srv.start();
    http::ClientSession session;
    http::ClientResponse r = co_await session.post(srv.url("/"));
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(co_await r.text(), "made");
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, PerHostLimitBoundsConcurrentConnections) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv(
        [](const concur::test::RawRequest&) { return Reply{.bytes = response(200, "ok"), .delay = 20ms}; });
    co_await srv.start();
    http::ClientSessionOptions so;
    so.limit_per_host = 2;
    http::ClientSession session(so);
    auto one = [&]() -> aio::Coro<std::string> {
      http::ClientResponse r = co_await session.get(srv.url("/"));
      co_return co_await r.text();
    };
    std::vector<aio::Task<std::string>> tasks;
    for (int i = 0; i < 8; ++i) tasks.push_back(aio::create_task(one()));
    std::vector<std::string> got = co_await aio::gather(std::move(tasks));
    EXPECT_EQ(std::count(got.begin(), got.end(), "ok"), 8);
    EXPECT_LE(srv.max_concurrent(), 2);
    EXPECT_EQ(srv.connections(), 2);
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, StalePooledConnectionIsRetriedOnANewOne) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      Reply rep = ok("c" + std::to_string(r.connection));
      rep.close_after = true;  // the server closes after each response, without saying so
      return rep;
    });
    co_await srv.start();
    http::ClientSession session;
    EXPECT_EQ(co_await (co_await session.get(srv.url("/"))).text(), "c0");
    co_await aio::sleep(20ms);
    EXPECT_EQ(co_await (co_await session.get(srv.url("/"))).text(), "c1");
    EXPECT_EQ(session.connections_opened(), 2u);
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, ConnectionRefusedNamesTheUrl) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest&) { return ok(""); });
    co_await srv.start();
    std::string url = srv.url("/gone");
    co_await srv.stop();
    http::ClientSession session;
    try {
      (void)co_await session.get(url);
      ADD_FAILURE() << "expected ClientConnectorError";
    } catch (const http::ClientConnectorError& e) {
      EXPECT_EQ(e.url(), url);
      EXPECT_NE(std::string(e.what()).find(url), std::string::npos) << e.what();
      EXPECT_NE(e.os_errno(), 0);
    }
    co_await session.close();
  }());
}

TEST_F(ClientTest, DnsFailureIsClientDnsError) {
  ::setenv("CONCUR_DNS_SERVERS", "127.0.0.1:9", 1);  // nothing answers there: no traffic leaves
  aio::run([]() -> aio::Coro<void> {
    http::ClientSession session;
    http::RequestOptions o;
    o.timeout = http::ClientTimeout{.total = 10s};
    EXPECT_THROW((void)co_await session.get("http://no-such-host.invalid/x", o), http::ClientDNSError);
    co_await session.close();
  }());
  ::unsetenv("CONCUR_DNS_SERVERS");
}

TEST_F(ClientTest, MalformedResponseIsInvalidResponseError) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      if (r.target == "/status") return Reply{.bytes = "HTTP/1.1 abc Nope\r\n\r\n"};
      if (r.target == "/header") return Reply{.bytes = "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"};
      if (r.target == "/chunk") return Reply{.bytes = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"};
      return Reply{.bytes = "garbage\r\n\r\n"};
    });
    co_await srv.start();
    http::ClientSession session;
    for (const char* path : {"/status", "/header", "/junk"}) {
      try {
        (void)co_await session.get(srv.url(path));
        ADD_FAILURE() << "expected InvalidResponseError for " << path;
      } catch (const http::InvalidResponseError& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      }
    }
    auto chunk = [&]() -> aio::Coro<void> {  // a bad chunk: at the head (parsed eagerly) or the body
      http::ClientResponse c = co_await session.get(srv.url("/chunk"));
      (void)co_await c.read();
    };
    EXPECT_THROW(co_await chunk(), http::ClientError);
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, ServerClosingEarlyIsAClearError) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      if (r.target == "/none") return Reply{.bytes = "", .close_after = true};
      return Reply{.bytes = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", .close_after = true};
    });
    co_await srv.start();
    http::ClientSession session;
    EXPECT_THROW((void)co_await session.get(srv.url("/none")), http::ServerDisconnectedError);
    http::ClientResponse cut = co_await session.get(srv.url("/cut"));
    EXPECT_THROW((void)co_await cut.read(), http::ClientPayloadError);
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, ReadTimeoutThenTheSessionStillWorks) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      if (r.target == "/slow") return Reply{.bytes = response(200, "late"), .delay = 2000ms};
      return ok("fast");
    });
    co_await srv.start();
    http::ClientSession session;
    http::RequestOptions o;
    o.timeout = http::ClientTimeout{.total = std::nullopt, .connect = std::nullopt, .sock_read = 100ms};
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW((void)co_await session.get(srv.url("/slow"), o), http::ServerTimeoutError);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
    http::RequestOptions total;
    total.timeout = http::ClientTimeout{.total = 100ms};
    EXPECT_THROW((void)co_await session.get(srv.url("/slow"), total), http::ServerTimeoutError);
    EXPECT_EQ(co_await (co_await session.get(srv.url("/fast"))).text(), "fast");
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, ConnectTimeoutCoversWaitingForAPooledConnection) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      if (r.target == "/slow") return Reply{.bytes = response(200, "late"), .delay = 1000ms};
      return ok("fast");
    });
    co_await srv.start();
    http::ClientSessionOptions so;
    so.limit = 1;  // one connection at a time: the second request waits for it
    http::ClientSession session(so);
    auto slow = [&]() -> aio::Coro<std::string> {
      http::ClientResponse r = co_await session.get(srv.url("/slow"));
      co_return co_await r.text();
    };
    aio::Task<std::string> first = aio::create_task(slow());
    co_await aio::sleep(50ms);
    http::RequestOptions o;
    o.timeout = http::ClientTimeout{.total = std::nullopt, .connect = 100ms};
    try {
      (void)co_await session.get(srv.url("/fast"), o);
      ADD_FAILURE() << "expected ServerTimeoutError";
    } catch (const http::ServerTimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("free connection"), std::string::npos) << e.what();
    }
    EXPECT_EQ(co_await first, "late");
    EXPECT_EQ(co_await (co_await session.get(srv.url("/fast"), o)).text(), "fast");  // the unit came back
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, CancelledRequestLeavesTheSessionUsable) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) {
      if (r.target == "/slow") return Reply{.bytes = response(200, "late"), .delay = 2000ms};
      return ok("fast");
    });
    co_await srv.start();
    http::ClientSession session;
    auto slow = [&]() -> aio::Coro<std::string> {
      http::ClientResponse r = co_await session.get(srv.url("/slow"));
      co_return co_await r.text();
    };
    EXPECT_THROW((void)co_await aio::wait_for(slow(), 50ms), concur::TimeoutError);
    aio::Task<std::string> t = aio::create_task(slow());
    co_await aio::sleep(20ms);
    t.cancel();
    EXPECT_THROW((void)co_await t, concur::CancelledError);
    EXPECT_EQ(session.idle_connections(), 0u);  // the half-used connections were closed
    EXPECT_EQ(co_await (co_await session.get(srv.url("/fast"))).text(), "fast");
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, UnreadResponseClosesItsConnection) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest&) { return ok(std::string(1000, 'u')); });
    co_await srv.start();
    http::ClientSession session;
    {
      http::ClientResponse r = co_await session.get(srv.url("/"));
      EXPECT_EQ(r.status, 200);
    }  // dropped unread: not back in the pool half-read
    EXPECT_EQ(co_await (co_await session.get(srv.url("/"))).text(), std::string(1000, 'u'));
    co_await session.close();
    co_await srv.stop();
  }());
}

TEST_F(ClientTest, BadUrlsAndHeaderInjectionAreRefused) {
  aio::run([]() -> aio::Coro<void> {
    http::ClientSession session;
    EXPECT_THROW((void)co_await session.get("ftp://x/"), http::InvalidURL);
    EXPECT_THROW((void)co_await session.get("/relative"), http::InvalidURL);
    EXPECT_THROW((void)co_await session.get("http://127.0.0.1:99999/"), http::InvalidURL);
    http::RequestOptions o;
    o.headers = {{"X-Evil", "a\r\nInjected: 1"}};
    EXPECT_THROW((void)co_await session.get("http://127.0.0.1:1/", o), http::ClientError);
    co_await session.close();
    EXPECT_THROW((void)co_await session.get("http://127.0.0.1:1/"), http::ClientError);  // closed
  }());
}

TEST(HttpUrl, ParseJoinAndEncode) {
  http::URL u = http::URL::parse("HTTPS://Example.COM:8443/a/b/c?x=1#frag");
  EXPECT_EQ(u.scheme, "https");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 8443);
  EXPECT_EQ(u.target(), "/a/b/c?x=1");
  EXPECT_EQ(u.authority(), "example.com:8443");
  EXPECT_EQ(u.join("../d").str(), "https://example.com:8443/a/d");
  EXPECT_EQ(u.join("/e?y").str(), "https://example.com:8443/e?y");
  EXPECT_EQ(u.join("?z").str(), "https://example.com:8443/a/b/c?z");
  EXPECT_EQ(u.join("//other.org/p").str(), "https://other.org/p");
  EXPECT_EQ(u.join("http://h/").str(), "http://h/");
  EXPECT_EQ(http::URL::parse("http://[::1]:80/").authority(), "[::1]");
  EXPECT_EQ(http::URL::parse("http://h").path, "/");
  EXPECT_THROW(http::URL::parse("http://"), http::InvalidURL);
  EXPECT_THROW(http::URL::parse("http://h:0/"), http::InvalidURL);
  EXPECT_THROW(http::URL::parse("http://h/a b"), http::InvalidURL);
  EXPECT_EQ(http::quote("a b/ü"), "a%20b/%C3%BC");
  EXPECT_EQ(http::unquote("a%20b+c", true), "a b c");
  EXPECT_EQ(http::unquote("bad%zz%4"), "bad%zz%4");
  auto qs = http::parse_qs("a=1&b=x+y&c&&d=%26");
  ASSERT_EQ(qs.size(), 4u);
  EXPECT_EQ(qs[1].second, "x y");
  EXPECT_EQ(qs[2].first, "c");
  EXPECT_EQ(qs[3].second, "&");
  http::Headers h{{"A", "1"}};
  h.add("a", "2");
  EXPECT_EQ(h.get_all("A").size(), 2u);
  h.set("A", "3");
  EXPECT_EQ(h["a"], "3");
  EXPECT_EQ(h.size(), 1u);
}

// ---- the blocking Session --------------------------------------------------------------------

TEST_F(ClientTest, BlockingSessionFromThreadPoolWorkersWithThreadLocalSessions) {
  // Serve on a loop thread of our own; five worker threads download with a Session each.
  std::promise<int> port_p;
  std::atomic<bool> stop{false};
  std::thread server([&] {
    aio::run([&]() -> aio::Coro<void> {
      ScriptServer srv([](const concur::test::RawRequest& r) {
        return Reply{.bytes = response(200, "page " + r.target), .delay = 5ms};
      });
      co_await srv.start();
      port_p.set_value(srv.port());
      while (!stop) co_await aio::sleep(5ms);
      co_await srv.stop();
    }());
  });
  int port = port_p.get_future().get();
  {
    concur::futures::ThreadPoolExecutor pool(5);
    std::vector<concur::futures::Future<std::size_t>> fs;
    for (int i = 0; i < 40; ++i) {
      fs.push_back(pool.submit([port, i] {
        thread_local http::Session session;  // threading.local(): one Session per worker
        http::Response r = session.get("http://127.0.0.1:" + std::to_string(port) + "/p" + std::to_string(i));
        r.raise_for_status();
        EXPECT_EQ(r.text(), "page /p" + std::to_string(i));
        return r.text().size();
      }));
    }
    for (auto& f : fs) EXPECT_GT(f.result(), 0u);
    pool.shutdown(true);
  }
  stop = true;
  server.join();
}

TEST_F(ClientTest, BlockingSessionErrorsAndJson) {
  std::promise<int> port_p;
  std::atomic<bool> stop{false};
  std::thread server([&] {
    aio::run([&]() -> aio::Coro<void> {
      ScriptServer srv([](const concur::test::RawRequest& r) {
        if (r.target == "/j") return ok(R"({"n": 3})");
        if (r.target == "/r") return Reply{.bytes = response(302, "", {"Location: /j"})};
        return Reply{.bytes = response(500, "boom")};
      });
      co_await srv.start();
      port_p.set_value(srv.port());
      while (!stop) co_await aio::sleep(5ms);
      co_await srv.stop();
    }());
  });
  std::string base = "http://127.0.0.1:" + std::to_string(port_p.get_future().get());
  {
    http::Session s;
    http::Response r = s.get(base + "/r");
    EXPECT_EQ(r.status_code, 200);
    EXPECT_EQ(r.json()["n"], 3);
    ASSERT_EQ(r.history.size(), 1u);
    EXPECT_EQ(r.history[0].status_code, 302);
    http::Response e = s.get(base + "/e");
    EXPECT_EQ(e.status_code, 500);
    EXPECT_THROW(e.raise_for_status(), http::ClientResponseError);
    EXPECT_EQ(s.connections_opened(), 1u);
    s.close();
    EXPECT_THROW(s.get(base + "/j"), http::ClientError);
  }
  stop = true;
  server.join();
}

// ---- peers no one here wrote: a Python aiohttp server ------------------------------------------

TEST_F(ClientTest, AgainstPythonAiohttpServer) {
  if (::system("/usr/bin/python3 -c 'import aiohttp' 2>/dev/null") != 0)
    GTEST_SKIP() << "python3-aiohttp not installed";
  aio::run([]() -> aio::Coro<void> {
    aio::SubprocessOptions po;
    po.stdout_ = aio::PIPE;
    std::vector<std::string> args{std::string(CONCUR_SOURCE_DIR) + "/tests/http/py/aiohttp_server.py"};
    aio::Process py = co_await aio::create_subprocess_exec("/usr/bin/python3", args, po);
    std::string line = co_await aio::wait_for(py.stdout_().readline(), 20s);
    std::string base = "http://127.0.0.1:" + line.substr(0, line.find('\n'));
    http::ClientSession session;
    try {
      EXPECT_EQ(co_await (co_await session.get(base + "/hello")).text(), "hello from aiohttp");
      http::RequestOptions o;
      o.json = nlohmann::json{{"x", 1}};
      o.params = {{"q", "a b"}};
      nlohmann::json echo = co_await (co_await session.post(base + "/echo", o)).json();
      EXPECT_EQ(echo["method"], "POST");
      EXPECT_EQ(echo["query"]["q"], "a b");
      EXPECT_EQ(echo["content_type"], "application/json");
      EXPECT_EQ(echo["body"], R"({"x":1})");
      EXPECT_EQ(co_await (co_await session.get(base + "/chunked")).text(), "part0;part1;part2;part3;part4;");
      http::ClientResponse gz = co_await session.get(base + "/gzip");
      EXPECT_EQ(gz.headers["Content-Encoding"], "gzip");
      std::string expanded;
      for (int i = 0; i < 2000; ++i) expanded += "squeeze ";
      EXPECT_EQ(co_await gz.text(), expanded);
      http::ClientResponse red = co_await session.get(base + "/redirect");
      EXPECT_EQ(co_await red.text(), "hello from aiohttp");
      EXPECT_EQ(red.history.size(), 1u);
      (void)co_await (co_await session.get(base + "/login")).read();
      nlohmann::json with_cookie = co_await (co_await session.get(base + "/echo")).json();
      EXPECT_EQ(with_cookie["cookie"], "s3cr3t");
      EXPECT_EQ(session.connections_opened(), 1u);  // aiohttp keeps the connection alive
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
    co_await session.close();
    py.kill();
    (void)co_await py.wait();
  }());
}

// ---- HTTPS -------------------------------------------------------------------------------------

namespace {

struct TestCerts {
  std::string dir, ca, cert, key;
};

const TestCerts& test_certs() {
  static TestCerts c = [] {
    TestCerts r;
    char tmpl[] = "/tmp/concur-http-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    r.dir = tmpl;
    r.ca = r.dir + "/ca.pem";
    r.cert = r.dir + "/server.pem";
    r.key = r.dir + "/server.key";
    std::string d = r.dir;
    std::string script =
        "set -e; cd " + d +
        "; printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=critical,CA:FALSE\\n' > ext.cnf"
        "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem"
        " -days 2 -subj '/CN=concur http test CA' -addext basicConstraints=critical,CA:TRUE"
        " -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null"
        "; openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr"
        " -subj /CN=localhost 2>/dev/null"
        "; openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2"
        " -extfile ext.cnf 2>/dev/null";
    if (::system(("sh -c \"" + script + "\"").c_str()) != 0) throw std::runtime_error("openssl failed");
    return r;
  }();
  return c;
}

}  // namespace

TEST_F(ClientTest, HttpsVerifiesTheServerAndReusesTheConnection) {
  const TestCerts& certs = test_certs();
  aio::run([&]() -> aio::Coro<void> {
    aio::ssl::Context sctx = aio::ssl::create_default_context(aio::ssl::Purpose::CLIENT_AUTH);
    sctx.load_cert_chain(certs.cert, certs.key);
    ScriptServer srv([](const concur::test::RawRequest& r) { return ok("secure " + r.target); });
    co_await srv.start(sctx);
    std::string url = "https://localhost:" + std::to_string(srv.port()) + "/s";

    http::ClientSessionOptions so;
    so.ssl = aio::ssl::create_default_context();
    so.ssl->load_verify_locations(certs.ca);
    http::ClientSession session(so);
    EXPECT_EQ(co_await (co_await session.get(url)).text(), "secure /s");
    EXPECT_EQ(co_await (co_await session.get(url)).text(), "secure /s");
    EXPECT_EQ(session.connections_opened(), 1u);
    co_await session.close();

    http::ClientSession untrusting;  // the system CA store does not know the test CA
    try {
      (void)co_await untrusting.get(url);
      ADD_FAILURE() << "expected ClientSSLError";
    } catch (const http::ClientSSLError& e) {
      EXPECT_NE(std::string(e.what()).find(url), std::string::npos) << e.what();
    }
    co_await untrusting.close();
    co_await srv.stop();
  }());
}

// API.md's snippet (with the options named first: see RequestOptions on GCC 12).
TEST_F(ClientTest, ApiSnippetAsWritten) {
  aio::run([]() -> aio::Coro<void> {
    ScriptServer srv([](const concur::test::RawRequest& r) { return ok(r.method + ":" + r.body); });
    co_await srv.start();
    std::string url = srv.url("/page");
    http::ClientSession session;
    http::ClientResponse resp = co_await session.get(url);
    int status = resp.status;
    std::string body = co_await resp.text();
    EXPECT_EQ(status, 200);
    EXPECT_EQ(body, "GET:");
    // API.md writes the options in braces inside the co_await; GCC 12 miscompiles that (it frees
    // a temporary it never made), so they are named first here, as RequestOptions documents.
    http::RequestOptions opts{.body = "x", .headers = {{"Content-Type", "text/plain"}}};
    http::ClientResponse p = co_await session.post(url, opts);
    EXPECT_EQ(co_await p.text(), "POST:x");
    EXPECT_EQ(srv.requests().back().headers["Content-Type"], "text/plain");
    co_await session.close();
    co_await srv.stop();
  }());
}

// ---- peers no one here wrote: nginx ------------------------------------------------------------

namespace {

/// nginx (Debian's nginx-light) in a temporary prefix on a free loopback port, one process.
struct NginxConf {
  std::string dir;
  int port = 0;
};

NginxConf write_nginx_conf(int port) {
  NginxConf c;
  char tmpl[] = "/tmp/concur-http-nginx-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
  c.dir = tmpl;
  c.port = port;
  std::filesystem::create_directories(c.dir + "/www/sub");
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "line " + std::to_string(i) + "\n";
  std::ofstream(c.dir + "/www/big.txt") << big;
  std::ofstream(c.dir + "/www/sub/index.html") << "<p>sub</p>\n";
  std::ofstream(c.dir + "/nginx.conf") << "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log " << c.dir
                                       << "/error.log;\npid " << c.dir
                                       << "/nginx.pid;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n"
                                       << "  types { text/plain txt; text/html html; }\n"
                                       << "  client_body_temp_path " << c.dir << ";\n  proxy_temp_path " << c.dir
                                       << ";\n  fastcgi_temp_path " << c.dir << ";\n  uwsgi_temp_path " << c.dir
                                       << ";\n  scgi_temp_path " << c.dir << ";\n"
                                       << "  gzip on;\n  gzip_types text/plain;\n  gzip_min_length 100;\n"
                                       << "  server {\n    listen 127.0.0.1:" << port << ";\n    root " << c.dir
                                       << "/www;\n"
                                       << "    location = /moved { return 301 /sub/; }\n"
                                       << "    location = /teapot { return 418 \"short and stout\"; }\n  }\n}\n";
  return c;
}

}  // namespace

TEST_F(ClientTest, AgainstNginx) {
  if (::access("/usr/sbin/nginx", X_OK) != 0) GTEST_SKIP() << "nginx not installed";
  aio::run([]() -> aio::Coro<void> {
    // A free port: listen on 0, note it, close.
    ScriptServer probe([](const concur::test::RawRequest&) { return ok(""); });
    co_await probe.start();
    int port = probe.port();
    co_await probe.stop();
    NginxConf conf = write_nginx_conf(port);
    aio::SubprocessOptions po;
    po.stdout_ = aio::DEVNULL;
    po.stderr_ = aio::DEVNULL;
    std::vector<std::string> args{"-p", conf.dir, "-c", conf.dir + "/nginx.conf"};
    aio::Process nginx = co_await aio::create_subprocess_exec("/usr/sbin/nginx", args, po);
    std::string base = "http://127.0.0.1:" + std::to_string(port);
    http::ClientSession session;
    try {
      bool up = false;
      for (int i = 0; i < 100 && !up; ++i) {
        try {
          (void)co_await (co_await session.get(base + "/sub/")).read();
          up = true;
        } catch (const http::ClientConnectorError&) {
        }
        if (!up) co_await aio::sleep(50ms);
      }
      EXPECT_TRUE(up) << "nginx did not start";
      std::string expected;
      for (int i = 0; i < 20000; ++i) expected += "line " + std::to_string(i) + "\n";
      http::ClientResponse big = co_await session.get(base + "/big.txt");
      EXPECT_EQ(big.headers["Content-Encoding"], "gzip");  // nginx compresses on the fly: chunked + gzip
      EXPECT_EQ(big.headers["Transfer-Encoding"], "chunked");
      EXPECT_EQ(co_await big.text(), expected);
      http::ClientResponse moved = co_await session.get(base + "/moved");
      EXPECT_EQ(co_await moved.text(), "<p>sub</p>\n");
      EXPECT_EQ(moved.url.path, "/sub/");
      http::ClientResponse tea = co_await session.get(base + "/teapot");
      EXPECT_EQ(tea.status, 418);
      EXPECT_EQ(co_await tea.text(), "short and stout");
      http::ClientResponse head = co_await session.head(base + "/big.txt");
      EXPECT_EQ(head.status, 200);
      EXPECT_EQ(co_await head.read(), "");
      http::ClientResponse missing = co_await session.get(base + "/nope");
      EXPECT_EQ(missing.status, 404);
      (void)co_await missing.read();
      EXPECT_EQ(session.connections_opened(), 1u);  // one keep-alive connection for everything
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
    co_await session.close();
    nginx.kill();
    (void)co_await nginx.wait();
    std::filesystem::remove_all(conf.dir);
  }());
}
