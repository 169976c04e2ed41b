#pragma once
// Test support for the HTTP client: a scripted loopback HTTP server on asyncio streams that
// records each request and answers with raw bytes chosen by the test, so that every response
// shape (chunked, gzip, malformed, cut short, slow) can be produced.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asyncio/aio_support.hpp"

#include "concur/asyncio.hpp"
#include "concur/http.hpp"

namespace concur::test {

struct RawRequest {
  std::string method, target, version;
  concur::http::Headers headers;
  std::string body;
  int connection = 0;  // which accepted connection (0, 1, ...)
  int index = 0;       // which request on that connection
};

/// What the scripted server does with one request: `bytes` to write, then optionally wait
/// `delay` first, close the connection after writing, or write in two parts with a pause.
struct Reply {
  std::string bytes;
  std::chrono::milliseconds delay{0};
  bool close_after = false;
  std::string then;  // written after `pause`
  std::chrono::milliseconds pause{0};
};

/// A whole HTTP/1.1 response with Content-Length.
inline std::string response(int status, const std::string& body, const std::vector<std::string>& extra_headers = {}) {
  std::string r =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(concur::http::reason_phrase(status)) + "\r\n";
  for (const auto& h : extra_headers) r += h + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return r;
}

class ScriptServer {
 public:
  using Script = std::function<Reply(const RawRequest&)>;

  explicit ScriptServer(Script script) : st_(std::make_shared<State>()) { st_->script = std::move(script); }

  /// Listens on 127.0.0.1 (TLS with `ssl` when given).
  concur::asyncio::Coro<void> start(std::optional<concur::asyncio::ssl::Context> ssl = std::nullopt) {
    auto st = st_;
    auto handler = [st](concur::asyncio::StreamReader r,
                        concur::asyncio::StreamWriter w) -> concur::asyncio::Coro<void> {
      return serve(st, std::move(r), std::move(w));
    };
    concur::asyncio::StreamOptions so;
    so.ssl = std::move(ssl);
    server_ = co_await concur::asyncio::start_server(handler, "127.0.0.1", 0, so);
  }
  [[nodiscard]] int port() const { return server_.port(); }
  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port()) + path;
  }
  [[nodiscard]] const std::vector<RawRequest>& requests() const { return st_->requests; }
  [[nodiscard]] int connections() const { return st_->connections; }
  [[nodiscard]] int max_concurrent() const { return st_->max_open; }
  concur::asyncio::Coro<void> stop() {
    server_.close();
    for (auto& w : st_->writers) w.close();
    co_await concur::asyncio::sleep(std::chrono::milliseconds(10));
  }

 private:
  struct State {
    Script script;
    std::vector<RawRequest> requests;
    std::vector<concur::asyncio::StreamWriter> writers;
    int connections = 0, open = 0, max_open = 0;
  };

  static concur::asyncio::Coro<void> serve(std::shared_ptr<State> st, concur::asyncio::StreamReader r,
                                           concur::asyncio::StreamWriter w) {
    int conn = st->connections++;
    st->writers.push_back(w);
    ++st->open;
    st->max_open = std::max(st->max_open, st->open);
    try {
      for (int index = 0;; ++index) {
        std::string head;
        try {
          head = co_await r.readuntil("\r\n\r\n");
        } catch (const concur::asyncio::IncompleteReadError&) {
          break;
        }
        RawRequest req;
        req.connection = conn;
        req.index = index;
        std::size_t eol = head.find("\r\n");
        std::string line = head.substr(0, eol);
        std::size_t s1 = line.find(' ');
        std::size_t s2 = line.rfind(' ');
        req.method = line.substr(0, s1);
        req.target = line.substr(s1 + 1, s2 - s1 - 1);
        req.version = line.substr(s2 + 1);
        std::size_t pos = eol + 2;
        while (pos < head.size() - 2) {
          std::size_t e = head.find("\r\n", pos);
          std::string f = head.substr(pos, e - pos);
          std::size_t colon = f.find(':');
          std::string v = f.substr(colon + 1);
          while (!v.empty() && v.front() == ' ') v.erase(0, 1);
          req.headers.add(f.substr(0, colon), v);
          pos = e + 2;
        }
        if (auto len = req.headers.get("Content-Length")) {
          std::size_t n = std::stoul(*len);
          if (n > 0) req.body = co_await r.readexactly(n);
        }
        st->requests.push_back(req);
        Reply reply = st->script(req);
        if (reply.delay.count() > 0) co_await concur::asyncio::sleep(reply.delay);
        w.write(reply.bytes);
        co_await w.drain();
        if (!reply.then.empty()) {
          co_await concur::asyncio::sleep(reply.pause);
          w.write(reply.then);
          co_await w.drain();
        }
        if (reply.close_after) break;
      }
    } catch (const concur::ConnectionError&) {
    } catch (const concur::CancelledError&) {
      --st->open;
      w.close();
      throw;
    }
    --st->open;
    w.close();
  }

  std::shared_ptr<State> st_;
  concur::asyncio::Server server_;
};

}  // namespace concur::test
