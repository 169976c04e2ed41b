// concur::http::web: an HTTP/1.1 server on the asyncio streams (aiohttp.web's model): one task
// per connection reads requests with the Beast-based MessageParser, runs them through the
// application in order (pipelining falls out of that), writes each response before reading
// the next request.
#include "concur/http/web.hpp"

#include <any>
#include <atomic>
#include <csignal>
#include <ctime>
#include <exception>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "parser.hpp"

#include "concur/asyncio/locks.hpp"
#include "concur/asyncio/sleep.hpp"
#include "concur/asyncio/streams.hpp"
#include "concur/asyncio/task.hpp"
#include "concur/asyncio/threads.hpp"
#include "concur/asyncio/timeouts.hpp"
#include "concur/core/error.hpp"

namespace concur::http::web {

namespace aio = concur::asyncio;
using http::detail::MessageParser;
using http::detail::ParseError;
using http::detail::ParseErrorKind;

// ---- responses and exceptions ------------------------------------------------------------------

Response::Response(std::string body_, int status_, Headers headers_, std::string content_type)
    : status(status_), headers(std::move(headers_)), body(std::move(body_)) {
  if (!content_type.empty() && !headers.contains("Content-Type")) headers.set("Content-Type", std::move(content_type));
}

Response Response::text(std::string body, int status) {
  return Response(std::move(body), status, {}, "text/plain; charset=utf-8");
}
Response Response::json(const nlohmann::json& value, int status) {
  return Response(value.dump(), status, {}, "application/json");
}
Response Response::bytes(std::string data, std::string content_type, int status) {
  return Response(std::move(data), status, {}, std::move(content_type));
}
Response Response::html(std::string body, int status) {
  return Response(std::move(body), status, {}, "text/html; charset=utf-8");
}

namespace {
std::string default_text(int status) { return std::to_string(status) + ": " + std::string(reason_phrase(status)); }
}  // namespace

HTTPException::HTTPException(int status, std::string text, Headers headers)
    : Error(text.empty() ? default_text(status) : text),
      status_(status),
      text_(text.empty() ? default_text(status) : std::move(text)),
      headers_(std::move(headers)) {}

Response HTTPException::response() const {
  Response r = Response::text(text_, status_);
  for (const auto& [k, v] : headers_) r.headers.set(k, v);
  return r;
}

namespace {
Headers one_header(std::string name, std::string value) {
  Headers h;
  h.add(std::move(name), std::move(value));
  return h;
}
std::string join_methods(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& m : v) {
    if (!s.empty()) s += ", ";
    s += m;
  }
  return s;
}
}  // namespace

HTTPMethodNotAllowed::HTTPMethodNotAllowed(std::string method, std::vector<std::string> allowed)
    : HTTPException(405, "Method " + method + " not allowed", one_header("Allow", join_methods(allowed))),
      method_(std::move(method)),
      allowed_(std::move(allowed)) {}

HTTPRedirect::HTTPRedirect(int status, std::string location)
    : HTTPException(status, default_text(status), one_header("Location", std::move(location))) {}

// ---- routing -----------------------------------------------------------------------------------

namespace {

/// "/a/b" → {"a", "b"}; "/" → {""}.
std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  if (!p.empty() && p.front() == '/') p.remove_prefix(1);
  for (;;) {
    std::size_t i = p.find('/');
    out.push_back(p.substr(0, i));
    if (i == std::string_view::npos) break;
    p.remove_prefix(i + 1);
  }
  return out;
}

}  // namespace

void Router::add_route(std::string method, std::string path, Handler handler) {
  if (frozen_ && *frozen_) throw std::logic_error("web::Router: routes cannot be added once the application is served");
  if (!handler) throw std::invalid_argument("web::Router: empty handler");
  if (path.empty() || path.front() != '/')
    throw std::invalid_argument("web::Router: a path must start with '/': " + path);
  for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Route r;
  r.method = std::move(method);
  auto parts = split_path(path);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::string_view s = parts[i];
    Segment seg;
    if (s.size() >= 2 && s.front() == '{' && s.back() == '}') {
      std::string_view inner = s.substr(1, s.size() - 2);
      std::size_t colon = inner.find(':');
      seg.param = true;
      seg.text = std::string(inner.substr(0, colon));
      if (colon != std::string_view::npos) {
        if (inner.substr(colon + 1) != ".*" || i + 1 != parts.size())
          throw std::invalid_argument("web::Router: only {name} and a last {name:.*} are supported: " + path);
        seg.tail = true;
      }
      if (seg.text.empty()) throw std::invalid_argument("web::Router: empty parameter name in " + path);
    } else {
      seg.text = unquote(s);
    }
    r.segments.push_back(std::move(seg));
  }
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

Router::Match Router::resolve(std::string_view method, std::string_view raw_path) const {
  Match m;
  auto parts = split_path(raw_path);
  for (const Route& r : routes_) {
    Params params;
    bool ok = true;
    std::size_t i = 0;
    for (; i < r.segments.size(); ++i) {
      const Segment& s = r.segments[i];
      if (s.tail) {
        std::string rest;
        for (std::size_t j = i; j < parts.size(); ++j) {
          if (j > i) rest += '/';
          rest += parts[j];
        }
        params.emplace_back(s.text, unquote(rest));
        i = parts.size();
        break;
      }
      if (i >= parts.size()) {
        ok = false;
        break;
      }
      if (s.param) {
        if (parts[i].empty()) {
          ok = false;
          break;
        }
        params.emplace_back(s.text, unquote(parts[i]));
      } else if (unquote(parts[i]) != s.text) {
        ok = false;
        break;
      }
    }
    if (!ok || i != parts.size()) continue;
    bool method_ok = r.method == "*" || r.method == method || (method == "HEAD" && r.method == "GET");
    if (method_ok) {
      m.handler = &r.handler;
      m.match_info = std::move(params);
      m.allowed.clear();
      return m;
    }
    auto add = [&](const std::string& x) {
      for (const auto& a : m.allowed)
        if (a == x) return;
      m.allowed.push_back(x);
    };
    add(r.method);
    if (r.method == "GET") add("HEAD");
  }
  return m;
}

void Application::add_middleware(Middleware mw) {
  if (frozen_) throw std::logic_error("web::Application: middlewares cannot be added once the application is served");
  if (!mw) throw std::invalid_argument("web::Application: empty middleware");
  middlewares_.push_back(std::move(mw));
}

aio::Coro<Response> Application::handle(Request& req) const {
  Router::Match m = router_.resolve(req.method, req.raw_path);
  req.match_ = std::move(m.match_info);
  if (middlewares_.empty()) {
    if (m.handler) co_return co_await (*m.handler)(req);
    if (m.allowed.empty()) throw HTTPNotFound();
    throw HTTPMethodNotAllowed(req.method, m.allowed);
  }
  Handler next;
  if (m.handler) {
    const Handler* h = m.handler;
    next = [h](Request& r) { return (*h)(r); };
  } else if (m.allowed.empty()) {
    next = [](Request&) -> aio::Coro<Response> { throw HTTPNotFound(); };
  } else {
    next = [allowed = m.allowed](Request& r) -> aio::Coro<Response> { throw HTTPMethodNotAllowed(r.method, allowed); };
  }
  for (auto it = middlewares_.rbegin(); it != middlewares_.rend(); ++it) {
    const Middleware* mw = &*it;
    next = [mw, inner = std::move(next)](Request& r) { return (*mw)(r, inner); };
  }
  co_return co_await next(req);
}

// ---- requests ----------------------------------------------------------------------------------

std::optional<std::string> Request::query(std::string_view name) const {
  for (const auto& [k, v] : query_)
    if (k == name) return v;
  return std::nullopt;
}

std::string Request::query(std::string_view name, std::string_view fallback) const {
  auto v = query(name);
  return v ? *v : std::string(fallback);
}

std::string Request::match_info(std::string_view name) const {
  for (const auto& [k, v] : match_)
    if (k == name) return v;
  return {};
}

bool Request::can_read_body() const noexcept { return chunked_ || (content_length_ && *content_length_ > 0); }

aio::Coro<std::string> Request::read() {
  if (!cached_body_) cached_body_ = co_await body_.read(-1);
  co_return *cached_body_;
}

aio::Coro<std::string> Request::text() { co_return co_await read(); }

aio::Coro<nlohmann::json> Request::json() {
  std::string body = co_await read();
  try {
    co_return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    throw HTTPBadRequest(std::string("invalid JSON body: ") + e.what());
  }
}

// ---- the server --------------------------------------------------------------------------------

namespace detail {

struct LoopServer;

/// What every loop of one site shares.
struct SiteShared {
  Application* app = nullptr;
  Options options;
  std::atomic<std::size_t> served{0};
};

/// One loop's listening socket and connections. Loop thread only.
struct LoopServer {
  std::shared_ptr<SiteShared> shared;
  aio::Server server;
  std::unordered_set<Connection*> connections;
  bool closing = false;
  bool shut_down = false;
  aio::Event all_gone;  // set when closing and no connection is left

  void unregister(Connection* c) {
    connections.erase(c);
    if (closing && connections.empty()) all_gone.set();
  }
};

namespace {

std::string http_date() {
  thread_local std::time_t last = 0;
  thread_local std::string cached;
  std::time_t now = std::time(nullptr);
  if (now != last || cached.empty()) {
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    char buf[64];
    std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
    last = now;
  }
  return cached;
}

bool body_allowed(int status) { return !(status < 200 || status == 204 || status == 304); }

std::string serialize(const Response& r, bool head_request, bool close, bool http10_keep_alive,
                      const std::string& server_name) {
  std::string out;
  out.reserve(160 + r.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  if (r.reason.empty()) {
    out += reason_phrase(r.status);
  } else {
    out += r.reason;
  }
  out += "\r\n";
  bool has_date = false;
  bool has_server = false;
  for (const auto& [k, v] : r.headers) {
    if (iequals(k, "Content-Length") || iequals(k, "Transfer-Encoding") || iequals(k, "Connection")) continue;
    has_date = has_date || iequals(k, "Date");
    has_server = has_server || iequals(k, "Server");
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  if (!has_date) {
    out += "Date: ";
    out += http_date();
    out += "\r\n";
  }
  if (!has_server && !server_name.empty()) {
    out += "Server: ";
    out += server_name;
    out += "\r\n";
  }
  if (body_allowed(r.status)) {
    out += "Content-Length: ";
    out += std::to_string(r.body.size());
    out += "\r\n";
  }
  if (close) {
    out += "Connection: close\r\n";
  } else if (http10_keep_alive) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head_request && body_allowed(r.status)) out += r.body;
  return out;
}

Response parse_error_response(const ParseError& e) {
  int status = 400;
  if (e.kind() == ParseErrorKind::header_too_large) status = 431;
  if (e.kind() == ParseErrorKind::body_too_large) status = 413;
  return Response::text(std::to_string(status) + ": " + std::string(reason_phrase(status)) + " (" + e.what() + ")",
                        status);
}

[[noreturn]] void throw_body_error(const ParseError& e) {
  if (e.kind() == ParseErrorKind::body_too_large)
    throw HTTPRequestEntityTooLarge("413: Request Entity Too Large (the body is over the server's limit)");
  throw HTTPBadRequest(std::string("400: Bad Request (") + e.what() + ")");
}

}  // namespace

/// One accepted connection, living in its task's frame.
struct Connection {
  Connection(std::shared_ptr<LoopServer> s, aio::StreamReader r, aio::StreamWriter w)
      : srv(std::move(s)), reader(std::move(r)), writer(std::move(w)), opts(srv->shared->options) {
    srv->connections.insert(this);
    task = aio::detail::current_task_base();
    try {
      std::any peer = writer.get_extra_info("peername");
      if (auto* a = std::any_cast<aio::SocketAddress>(&peer)) peer_addr = *a;
    } catch (...) {
    }
  }
  ~Connection() {
    deadline_timer.cancel();
    srv->unregister(this);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  std::shared_ptr<LoopServer> srv;
  aio::StreamReader reader;
  aio::StreamWriter writer;
  const Options& opts;
  aio::detail::TaskBase* task = nullptr;
  aio::SocketAddress peer_addr;
  bool busy = false;  // a handler runs
  std::unique_ptr<MessageParser> parser;
  std::string body_buf;  // body bytes taken from the parser, not yet returned
  bool expect_continue = false;
  bool continue_sent = false;
  bool body_failed = false;  // the body could not be read: close after the response

  // Read deadlines: one lazily re-armed timer per connection rather than a timeout task and
  // timer per read (a keep-alive request then costs no timer work at all). Every read deadline
  // here ends the connection when it passes, so the timer aborts the transport, and the read
  // waiting on it throws TimeoutError.
  double read_deadline = 0;  // loop time; 0: no read is waiting
  double timer_at = 0;       // when deadline_timer fires; 0: not armed
  bool deadline_hit = false;
  aio::TimerHandle deadline_timer;

  void arm(double deadline) {
    read_deadline = deadline;
    if (timer_at != 0 && timer_at <= deadline) return;  // fires first, then re-arms itself
    deadline_timer.cancel();
    timer_at = deadline;
    deadline_timer = aio::get_running_loop().call_at(deadline, [this] { on_deadline(); });
  }
  void on_deadline() {
    timer_at = 0;
    if (read_deadline == 0) return;
    if (aio::get_running_loop().time() < read_deadline) {
      arm(read_deadline);
      return;
    }
    deadline_hit = true;
    writer.transport().abort();
  }

  /// Reads up to 64 KiB with a deadline (loop time); "" at EOF; TimeoutError.
  aio::Coro<std::string> read_until(double deadline) {
    if (deadline_hit) throw TimeoutError();
    if (reader.buffered() > 0) co_return co_await reader.read(64 * 1024);
    arm(deadline);
    std::string data;
    try {
      data = co_await reader.read(64 * 1024);
    } catch (const ConnectionError&) {
      read_deadline = 0;
      if (deadline_hit) throw TimeoutError();
      throw;
    }
    read_deadline = 0;
    if (deadline_hit) throw TimeoutError();
    co_return data;
  }

  /// Makes body_buf non-empty; false when the body is over.
  aio::Coro<bool> fill_body() {
    for (;;) {
      if (!body_buf.empty()) co_return true;
      if (body_failed) throw HTTPBadRequest("400: Bad Request (the body could not be read)");
      body_buf = parser->take_body();
      if (!body_buf.empty()) co_return true;
      if (parser->done()) co_return false;
      if (expect_continue && !continue_sent) {
        continue_sent = true;
        writer.write("HTTP/1.1 100 Continue\r\n\r\n");
        co_await writer.drain();
      }
      std::string data;
      try {
        data = co_await read_until(aio::get_running_loop().time() +
                                   std::chrono::duration<double>(opts.body_timeout).count());
      } catch (const TimeoutError&) {
        body_failed = true;
        throw HTTPRequestTimeout("408: Request Timeout (the body stopped arriving)");
      }
      if (data.empty()) {
        body_failed = true;
        throw HTTPBadRequest("400: Bad Request (the connection closed in the middle of the body)");
      }
      try {
        parser->feed(data);
      } catch (const ParseError& e) {
        body_failed = true;
        throw_body_error(e);
      }
    }
  }

  /// After the response: either the client closes (EOF) or we stop reading after a while, so
  /// that closing does not reset a connection with unread input (the client could lose the
  /// response). Bounded.
  aio::Coro<void> linger_close() {
    if (writer.can_write_eof()) {
      writer.write_eof();
      double deadline = aio::get_running_loop().time() + 1.0;
      std::size_t discarded = 0;
      try {
        for (;;) {
          std::string d = co_await read_until(deadline);
          if (d.empty()) break;
          discarded += d.size();
          if (discarded > 16 * 1024 * 1024) break;
        }
      } catch (const TimeoutError&) {
      }
    }
    writer.close();
  }

  aio::Coro<void> send_error(const Response& resp) {
    std::string out = serialize(resp, false, true, false, opts.server_name);
    writer.write(out);
    co_await writer.drain();
    co_await linger_close();
  }

  aio::Coro<void> run();
};

aio::Coro<void> Connection::run() {
  aio::EventLoop& loop = aio::get_running_loop();
  const double header_timeout = std::chrono::duration<double>(opts.header_timeout).count();
  const double keepalive_timeout = std::chrono::duration<double>(opts.keepalive_timeout).count();
  const double started = loop.time();
  http::detail::ParserLimits limits;
  limits.header_limit = static_cast<std::uint32_t>(opts.max_header_size);
  limits.body_limit = opts.client_max_size;
  std::string leftover;
  bool first = true;
  const std::string scheme = opts.ssl ? "https" : "http";

  for (;;) {
    if (srv->closing) co_return;
    parser = std::make_unique<MessageParser>(true, limits);
    body_buf.clear();
    expect_continue = continue_sent = body_failed = false;

    // ---- the head ----
    std::optional<Response> early;  // an error response for a bad head
    bool drop = false;
    try {
      double request_start;
      if (!leftover.empty()) {
        request_start = loop.time();
        parser->feed(leftover);
        leftover.clear();
      } else {
        double deadline = first ? started + header_timeout : loop.time() + keepalive_timeout;
        std::string data = co_await read_until(deadline);
        if (data.empty()) co_return;  // EOF between requests: a normal close
        request_start = first ? started : loop.time();
        parser->feed(data);
      }
      const double deadline = request_start + header_timeout;
      while (!parser->header_done()) {
        std::string data = co_await read_until(deadline);
        if (data.empty()) {
          drop = true;  // EOF in the middle of a head: nobody to answer
          break;
        }
        parser->feed(data);
      }
    } catch (const ParseError& e) {
      early = parse_error_response(e);
    } catch (const TimeoutError&) {
      drop = true;  // slow or idle client
    }
    if (drop) co_return;
    if (early) {
      co_await send_error(*early);
      co_return;
    }

    // ---- the request ----
    http::detail::MessageHead& head = parser->head();
    Request req(this);
    req.method = std::move(head.method);
    req.target = std::move(head.target);
    std::string_view target = req.target;
    if (target.starts_with("http://") || target.starts_with("https://")) {  // absolute form
      std::size_t p = target.find("://") + 3;
      std::size_t slash = target.find('/', p);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    std::size_t q = target.find('?');
    req.raw_path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req.query_string = std::string(target.substr(q + 1));
    std::size_t hash = req.query_string.find('#');
    if (hash != std::string::npos) req.query_string.resize(hash);
    req.path = unquote(req.raw_path);
    req.query_ = parse_qs(req.query_string);
    req.headers = std::move(head.headers);
    req.version = head.version;
    req.keep_alive_ = head.keep_alive;
    req.content_length_ = head.content_length;
    req.chunked_ = head.chunked;
    req.peer_ = peer_addr;
    req.scheme_ = scheme;
    expect_continue =
        req.version >= 11 && req.can_read_body() && iequals(req.headers.get("Expect", ""), "100-continue");
    const bool is_head = req.method == "HEAD";

    busy = true;
    Response resp;
    try {
      resp = co_await srv->shared->app->handle(req);
    } catch (const HTTPException& e) {
      resp = e.response();
    } catch (const CancelledError&) {
      throw;
    } catch (...) {
      report_unraisable("concur::http::web: unhandled exception in the handler of " + req.method + " " + req.target,
                        std::current_exception());
      resp = Response::text("500: Internal Server Error", 500);
    }
    busy = false;

    bool close = !req.keep_alive_ || srv->closing || body_failed;
    if (auto c = resp.headers.get("Connection"); c && iequals(*c, "close")) close = true;
    // The rest of an unread body: drop it (bounded by the body limit and a deadline), unless
    // the client still waits for "100 Continue": then it may never send it, so close.
    if (!close && !parser->done()) {
      if (expect_continue && !continue_sent) {
        close = true;
      } else {
        try {
          double deadline = loop.time() + header_timeout;
          while (!close && !parser->done()) {
            (void)parser->take_body();
            std::string data = co_await read_until(deadline);
            if (data.empty()) {
              close = true;
              break;
            }
            parser->feed(data);
          }
        } catch (const ParseError&) {
          close = true;
        } catch (const TimeoutError&) {
          close = true;
        }
      }
    }
    std::string out = serialize(resp, is_head, close, !close && req.version == 10, opts.server_name);
    writer.write(out);
    co_await writer.drain();
    srv->shared->served.fetch_add(1, std::memory_order_relaxed);
    if (close) {
      if (body_failed || !parser->done()) {
        co_await linger_close();
      } else {
        writer.close();
      }
      co_return;
    }
    leftover = parser->take_leftover();
    first = false;
  }
}

namespace {

aio::Coro<void> serve_connection(std::shared_ptr<LoopServer> srv, aio::StreamReader r, aio::StreamWriter w) {
  if (!srv || srv->closing) {
    w.close();
    co_return;
  }
  Connection c(std::move(srv), std::move(r), std::move(w));
  try {
    co_await c.run();
  } catch (...) {
    // A lost connection, a cancelled task (shutdown): nothing to answer.
  }
  c.writer.close();
}

aio::Coro<std::shared_ptr<LoopServer>> start_loop_server(std::shared_ptr<SiteShared> shared, std::string host,
                                                         int port) {
  auto srv = std::make_shared<LoopServer>();
  srv->shared = shared;
  const Options& o = shared->options;
  aio::StreamOptions stream;
  stream.ssl = o.ssl;
  aio::ServerOptions server;
  server.backlog = o.backlog;
  server.reuse_port = o.reuse_port || o.threads > 1;
  std::weak_ptr<LoopServer> weak = srv;
  auto handle = [weak](aio::StreamReader r, aio::StreamWriter w) -> aio::Coro<void> {
    return serve_connection(weak.lock(), std::move(r), std::move(w));
  };
  srv->server =
      co_await aio::start_server(std::move(handle), std::move(host), port, std::move(stream), std::move(server));
  co_return srv;
}

aio::Coro<void> wait_all_gone(LoopServer* srv) {
  if (!srv->connections.empty()) co_await srv->all_gone.wait();
}

/// Graceful shutdown of one loop's server (see Site::shutdown).
aio::Coro<void> shutdown_loop_server(std::shared_ptr<LoopServer> srv) {
  if (srv->shut_down) co_return;
  srv->shut_down = true;
  srv->closing = true;
  srv->server.close();
  if (srv->connections.empty()) co_return;
  std::vector<Connection*> conns(srv->connections.begin(), srv->connections.end());
  for (Connection* c : conns)
    if (!c->busy) c->writer.close();  // idle keep-alive or mid-head: their read ends (EOF)
  bool cancel_rest = false;
  bool cancelled = false;
  try {
    aio::Coro<void> w = wait_all_gone(srv.get());
    co_await aio::timeout(srv->shared->options.shutdown_timeout, std::move(w));
  } catch (const TimeoutError&) {
    cancel_rest = true;
  } catch (const CancelledError&) {
    cancel_rest = cancelled = true;
  }
  if (cancel_rest && !srv->connections.empty()) {
    std::vector<Connection*> rest(srv->connections.begin(), srv->connections.end());
    for (Connection* c : rest) {
      if (c->task) c->task->cancel();
      c->writer.transport().abort();
    }
    try {
      aio::Coro<void> w = wait_all_gone(srv.get());
      co_await aio::timeout(std::chrono::seconds(5), std::move(w));
    } catch (const TimeoutError&) {
    } catch (const CancelledError&) {
      cancelled = true;
    }
  }
  if (cancelled) throw CancelledError();
}

}  // namespace

/// A worker loop on its own thread (Options::threads > 1).
struct Worker {
  std::thread thread;
  aio::EventLoop* loop = nullptr;   // set before `ready`
  aio::Event* stop = nullptr;       // lives on the worker's loop
  std::shared_ptr<LoopServer> srv;  // the worker loop's server (touched on that loop only)
  bool stop_requested = false;
  std::mutex m;

  void close_listener() {
    std::lock_guard g(m);
    if (stop_requested || !loop) return;
    loop->call_soon_threadsafe([s = srv] { s->server.close(); });
  }

  void request_stop() {
    std::lock_guard g(m);
    if (stop_requested || !loop) return;
    stop_requested = true;
    aio::Event* ev = stop;
    loop->call_soon_threadsafe([ev] { ev->set(); });
  }
};

/// The worker loops of a Site. Kept apart from SiteState so that joining them on a helper
/// thread (Site::shutdown) never makes that thread drop the last reference to the main loop's
/// server, whose state belongs to the main loop's thread.
struct WorkerSet {
  std::vector<std::unique_ptr<Worker>> list;

  void join_all() {
    for (auto& w : list)
      if (w->thread.joinable()) w->thread.join();
  }
  ~WorkerSet() {
    for (auto& w : list) w->request_stop();
    join_all();
  }
};

struct SiteState {
  std::shared_ptr<SiteShared> shared;
  std::shared_ptr<LoopServer> local;
  std::shared_ptr<WorkerSet> workers = std::make_shared<WorkerSet>();
  int port = 0;
};

namespace {

aio::Coro<void> worker_main(std::shared_ptr<SiteShared> shared, std::string host, int port, Worker* me,
                            std::promise<void>* ready) {
  std::shared_ptr<LoopServer> srv;
  aio::Event stop;
  try {
    srv = co_await start_loop_server(shared, host, port);
  } catch (...) {
    ready->set_exception(std::current_exception());
    co_return;
  }
  {
    std::lock_guard g(me->m);
    me->loop = &aio::get_running_loop();
    me->stop = &stop;
    me->srv = srv;
  }
  ready->set_value();
  co_await stop.wait();
  co_await shutdown_loop_server(srv);
  std::lock_guard g(me->m);
  me->loop = nullptr;
  me->srv.reset();
}

}  // namespace

}  // namespace detail

int Site::port() const { return s_ ? s_->port : 0; }

void Site::close() {
  if (!s_) return;
  s_->local->server.close();
  for (auto& w : s_->workers->list) w->close_listener();
}

asyncio::Coro<void> Site::shutdown() {
  if (!s_) co_return;
  std::shared_ptr<detail::SiteState> s = s_;
  for (auto& w : s->workers->list) w->request_stop();
  bool cancelled = false;
  try {
    co_await detail::shutdown_loop_server(s->local);
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (!s->workers->list.empty()) {
    // The helper thread holds only the workers: if this coroutine is cancelled and the site
    // goes away meanwhile, the main loop's server is still released on the main loop's thread.
    auto join_all = [workers = s->workers] { workers->join_all(); };
    try {
      co_await aio::to_thread(join_all);
    } catch (const CancelledError&) {
      cancelled = true;
    }
  }
  if (cancelled) throw CancelledError();
}

std::size_t Site::active_connections() const noexcept { return s_ ? s_->local->connections.size() : 0; }

std::size_t Site::requests_served() const noexcept {
  return s_ ? s_->shared->served.load(std::memory_order_relaxed) : 0;
}

asyncio::Coro<Site> start(Application& app, std::string host, int port, Options options) {
  if (options.threads < 1) throw std::invalid_argument("web::Options::threads must be at least 1");
  app.freeze();
  auto shared = std::make_shared<detail::SiteShared>();
  shared->app = &app;
  shared->options = std::move(options);
  auto state = std::make_shared<detail::SiteState>();
  state->shared = shared;
  state->local = co_await detail::start_loop_server(shared, host, port);
  state->port = state->local->server.port();
  const int extra = shared->options.threads - 1;
  std::exception_ptr failed;
  for (int i = 0; i < extra && !failed; ++i) {
    auto w = std::make_unique<detail::Worker>();
    detail::Worker* wp = w.get();
    auto ready = std::make_shared<std::promise<void>>();
    std::future<void> ready_f = ready->get_future();
    int bound_port = state->port;
    w->thread = std::thread([shared, host, bound_port, wp, ready] {
      try {
        aio::run(detail::worker_main(shared, host, bound_port, wp, ready.get()));
      } catch (...) {
        report_unraisable("concur::http::web: worker loop", std::current_exception());
      }
    });
    state->workers->list.push_back(std::move(w));
    try {
      ready_f.get();  // a bind on a loop thread: quick
    } catch (...) {
      failed = std::current_exception();
    }
  }
  if (failed) {
    Site site(state);
    co_await site.shutdown();
    std::rethrow_exception(failed);
  }
  co_return Site(std::move(state));
}

asyncio::Coro<Site> start(Application& app, std::string host, int port) {
  Options defaults;
  co_return co_await start(app, std::move(host), port, std::move(defaults));
}

asyncio::Coro<void> serve(Application& app, std::string host, int port, Options options) {
  Site site = co_await start(app, std::move(host), port, std::move(options));
  bool cancelled = false;
  try {
    aio::Event never;
    co_await never.wait();
  } catch (const CancelledError&) {
    cancelled = true;
  }
  co_await site.shutdown();
  if (cancelled) throw CancelledError();
}

asyncio::Coro<void> serve(Application& app, std::string host, int port) {
  Options defaults;
  co_await serve(app, std::move(host), port, std::move(defaults));
}

namespace {

aio::Coro<void> run_app_main(Application& app, std::string host, int port, Options options) {
  std::function<void(int)> on_started = options.on_started;
  const std::string shown_host = host.empty() ? "0.0.0.0" : host;
  Site site = co_await start(app, std::move(host), port, std::move(options));
  aio::Event stop;
  aio::EventLoop& loop = aio::get_running_loop();
  loop.add_signal_handler(SIGINT, [&stop] { stop.set(); });
  loop.add_signal_handler(SIGTERM, [&stop] { stop.set(); });
  if (on_started) {
    on_started(site.port());
  } else {
    std::cout << "======== Running on http://" << shown_host << ":" << site.port() << "/ ========\n"
              << "(Press CTRL+C to quit)" << std::endl;
  }
  co_await stop.wait();
  loop.remove_signal_handler(SIGINT);
  loop.remove_signal_handler(SIGTERM);
  co_await site.shutdown();
}

}  // namespace

void run_app(Application& app, std::string host, int port, Options options) {
  aio::run(run_app_main(app, std::move(host), port, std::move(options)));
}

// ---- BodyReader --------------------------------------------------------------------------------

aio::Coro<std::string> BodyReader::read(std::ptrdiff_t n) {
  detail::Connection& c = *c_;
  if (n < 0) {
    std::string out;
    while (co_await c.fill_body()) {
      out += c.body_buf;
      c.body_buf.clear();
    }
    co_return out;
  }
  if (n == 0 || !co_await c.fill_body()) co_return std::string();
  auto k = static_cast<std::size_t>(n);
  if (c.body_buf.size() <= k) co_return std::exchange(c.body_buf, std::string());
  std::string out = c.body_buf.substr(0, k);
  c.body_buf.erase(0, k);
  co_return out;
}

aio::Coro<std::string> BodyReader::readany() {
  detail::Connection& c = *c_;
  if (!co_await c.fill_body()) co_return std::string();
  co_return std::exchange(c.body_buf, std::string());
}

aio::Coro<std::string> BodyReader::readexactly(std::size_t n) {
  detail::Connection& c = *c_;
  std::string out;
  while (out.size() < n) {
    if (!co_await c.fill_body()) throw HTTPBadRequest("400: Bad Request (the body is shorter than expected)");
    std::size_t k = std::min(n - out.size(), c.body_buf.size());
    out.append(c.body_buf, 0, k);
    c.body_buf.erase(0, k);
  }
  co_return out;
}

bool BodyReader::at_eof() const noexcept {
  return c_->body_buf.empty() && c_->parser->done() && c_->parser->body_buffered() == 0;
}

}  // namespace concur::http::web
