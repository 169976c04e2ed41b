// http::ClientSession / ClientResponse (include/concur/http/client.hpp): connection pool,
// request writing, response parsing (parser.hpp), redirects, timeouts, cookies, decoding.
#include <deque>
#include <map>
#include <utility>

#include "client_internal.hpp"
#include "parser.hpp"

#include "concur/asyncio/dns.hpp"
#include "concur/asyncio/locks.hpp"
#include "concur/asyncio/loop.hpp"
#include "concur/asyncio/streams.hpp"
#include "concur/asyncio/wait.hpp"

namespace concur::http {

namespace aio = concur::asyncio;
using std::chrono::nanoseconds;

namespace detail {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

bool is_redirect(int status) noexcept {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::int64_t now_ns() { return aio::get_running_loop().now_ns(); }

/// The time left for one wait: the smaller of `each` and what remains until `deadline_ns`.
std::optional<nanoseconds> budget(std::optional<nanoseconds> each, std::optional<std::int64_t> deadline_ns) {
  std::optional<nanoseconds> t = each;
  if (deadline_ns) {
    nanoseconds left(*deadline_ns - now_ns());
    if (!t || left < *t) t = left;
  }
  return t;
}

void check_header_text(std::string_view s, const std::string& url) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') throw ClientError("invalid character in a request header: " + url, url);
  }
}

}  // namespace

struct ResponseAccess {
  static void attach(ClientResponse& r, std::shared_ptr<BodyReader> b) { r.body_ = std::move(b); }
};

/// One pooled connection.
struct Conn {
  aio::StreamReader r;
  aio::StreamWriter w;
  std::string leftover;  // bytes read past the previous response
  bool open = true;

  Conn(aio::StreamReader reader, aio::StreamWriter writer) : r(std::move(reader)), w(std::move(writer)) {}
  void close() {
    if (open) {
      open = false;
      w.close();
    }
  }
};

/// Connection-limit units held while a connection is in use.
struct Lease {
  aio::Semaphore* total = nullptr;
  aio::Semaphore* host = nullptr;
  void release() {
    if (total != nullptr) total->release();
    if (host != nullptr) host->release();
    total = host = nullptr;
  }
};

struct SessionState {
  ClientSessionOptions opt;
  struct Idle {
    std::shared_ptr<Conn> conn;
    std::int64_t since_ns;
  };
  std::map<std::string, std::deque<Idle>> idle;
  std::unique_ptr<aio::Semaphore> total;
  std::map<std::string, std::unique_ptr<aio::Semaphore>> per_host;
  std::vector<Cookie> jar;
  std::size_t opened = 0;
  bool closed = false;
  std::optional<aio::ssl::Context> default_ssl;

  explicit SessionState(ClientSessionOptions o) : opt(std::move(o)) {
    if (opt.limit > 0) total = std::make_unique<aio::Semaphore>(static_cast<std::int64_t>(opt.limit));
  }
  ~SessionState() { close_idle(); }
  SessionState(const SessionState&) = delete;
  SessionState& operator=(const SessionState&) = delete;

  void close_idle() {
    for (auto& [key, q] : idle) {
      for (auto& i : q) i.conn->close();
    }
    idle.clear();
  }

  aio::Semaphore* host_sem(const std::string& key) {
    if (opt.limit_per_host == 0) return nullptr;
    auto& s = per_host[key];
    if (!s) s = std::make_unique<aio::Semaphore>(static_cast<std::int64_t>(opt.limit_per_host));
    return s.get();
  }

  std::shared_ptr<Conn> take_idle(const std::string& key) {
    auto it = idle.find(key);
    if (it == idle.end()) return nullptr;
    const std::int64_t now = now_ns();
    auto& q = it->second;
    while (!q.empty()) {
      Idle i = std::move(q.back());  // most recently used first: least likely to be stale
      q.pop_back();
      bool stale = now - i.since_ns > std::chrono::duration_cast<nanoseconds>(opt.keepalive_timeout).count() ||
                   i.conn->r.at_eof() || i.conn->w.is_closing() || i.conn->r.buffered() > 0;
      if (stale) {
        i.conn->close();
        continue;
      }
      return i.conn;
    }
    return nullptr;
  }

  void put_idle(const std::string& key, std::shared_ptr<Conn> c) {
    if (closed || !c->open) {
      c->close();
      return;
    }
    idle[key].push_back(Idle{std::move(c), now_ns()});
  }

  const aio::ssl::Context& ssl_context() {
    if (opt.ssl) return *opt.ssl;
    if (!default_ssl) default_ssl = aio::ssl::create_default_context();
    return *default_ssl;
  }
};

/// Reads a response body from its connection; returns the connection to the pool at the end.
struct BodyReader {
  std::shared_ptr<SessionState> session;
  std::shared_ptr<Conn> conn;
  std::string key;
  std::unique_ptr<MessageParser> parser;
  std::unique_ptr<BodyDecoder> decoder;
  Lease lease;
  std::string url;
  std::optional<nanoseconds> sock_read;
  std::optional<std::int64_t> deadline_ns;
  bool keep_alive = true;
  bool finished = false;
  std::string pending;  // decoded, not yet handed out

  BodyReader() = default;
  BodyReader(const BodyReader&) = delete;
  BodyReader& operator=(const BodyReader&) = delete;
  ~BodyReader() {
    if (!finished) {
      if (parser && parser->done()) {
        finish_ok();
      } else {
        abandon();
      }
    }
  }

  void finish_ok() {
    if (finished) return;
    finished = true;
    std::string extra = parser ? parser->take_leftover() : std::string();
    if (keep_alive && conn && extra.empty()) {
      session->put_idle(key, std::move(conn));
    } else if (conn) {
      conn->close();
    }
    conn.reset();
    lease.release();
  }
  void abandon() {
    if (finished) return;
    finished = true;
    if (conn) conn->close();
    conn.reset();
    lease.release();
  }
  void release_now() {
    if (parser && parser->done() && parser->body_buffered() == 0) {
      finish_ok();
    } else {
      abandon();
    }
  }
};

/// Reads what the server sent next ("" at EOF), within the request's timeouts.
Coro<std::string> read_socket(Conn& c, std::optional<nanoseconds> sock_read, std::optional<std::int64_t> deadline_ns,
                              const std::string& url) {
  std::optional<nanoseconds> t = budget(sock_read, deadline_ns);
  try {
    if (!t) co_return co_await c.r.read(static_cast<std::ptrdiff_t>(kReadChunk));
    if (t->count() <= 0) throw TimeoutError();
    co_return co_await aio::wait_for(c.r.read(static_cast<std::ptrdiff_t>(kReadChunk)), *t);
  } catch (const TimeoutError&) {
    throw ServerTimeoutError("timed out reading the response from " + url, url);
  } catch (const ConnectionError& e) {
    throw ServerDisconnectedError(std::string("connection lost while reading from ") + url + ": " + e.what(), url);
  }
}

Coro<std::string> body_read_some(std::shared_ptr<BodyReader> b, std::size_t n) {
  if (b->pending.empty() && !b->finished) {
    try {
      for (;;) {
        std::string raw = b->parser->take_body();
        if (!raw.empty()) {
          try {
            b->pending += b->decoder->decode(raw);
          } catch (const std::runtime_error& e) {
            throw ClientPayloadError(std::string("cannot decode the body of ") + b->url + ": " + e.what(), b->url);
          }
          if (!b->pending.empty()) break;
        }
        if (b->parser->done()) {
          try {
            b->decoder->finish();
          } catch (const std::runtime_error& e) {
            throw ClientPayloadError(std::string("cannot decode the body of ") + b->url + ": " + e.what(), b->url);
          }
          b->finish_ok();
          break;
        }
        std::string data = co_await read_socket(*b->conn, b->sock_read, b->deadline_ns, b->url);
        try {
          if (data.empty()) {
            b->parser->feed_eof();
            b->keep_alive = false;
          } else {
            b->parser->feed(data);
          }
        } catch (const ParseError& e) {
          if (e.kind() == ParseErrorKind::incomplete) {
            throw ClientPayloadError("the server closed the connection before the end of the body of " + b->url,
                                     b->url);
          }
          throw InvalidResponseError(std::string("malformed response body from ") + b->url + ": " + e.what(), b->url);
        }
      }
    } catch (...) {
      b->abandon();
      throw;
    }
  }
  std::string out;
  if (b->pending.size() <= n) {
    out.swap(b->pending);
  } else {
    out = b->pending.substr(0, n);
    b->pending.erase(0, n);
  }
  co_return out;
}

Coro<void> acquire_unit(aio::Semaphore& s) { co_await s.acquire(); }

Coro<void> acquire_within(aio::Semaphore& s, std::optional<nanoseconds> t, const std::string& url) {
  if (!t) {
    co_await s.acquire();
    co_return;
  }
  try {
    if (t->count() <= 0) throw TimeoutError();
    co_await aio::wait_for(acquire_unit(s), *t);
  } catch (const TimeoutError&) {
    throw ServerTimeoutError("timed out waiting for a free connection to " + url, url);
  }
}

Coro<std::shared_ptr<Conn>> connect(std::shared_ptr<SessionState> s, const URL& url, const RequestOptions& o,
                                    std::optional<nanoseconds> t) {
  aio::StreamOptions so;
  if (url.is_https()) {
    so.ssl = o.ssl ? *o.ssl : s->ssl_context();
    so.server_hostname = url.host;
  }
  const std::string where = url.host + ":" + std::to_string(url.port);
  const std::string text = url.str();
  try {
    std::optional<std::pair<aio::StreamReader, aio::StreamWriter>> rw;
    if (!t) {
      rw.emplace(co_await aio::open_connection(url.host, url.port, so));
    } else {
      if (t->count() <= 0) throw TimeoutError();
      rw.emplace(co_await aio::wait_for(aio::open_connection(url.host, url.port, so), *t));
    }
    ++s->opened;
    co_return std::make_shared<Conn>(std::move(rw->first), std::move(rw->second));
  } catch (const TimeoutError&) {
    throw ServerTimeoutError("timed out connecting to " + where + " for " + text, text);
  } catch (const aio::GaiError& e) {
    throw ClientDNSError("cannot resolve " + url.host + " for " + text + ": " + e.what(), text);
  } catch (const aio::ssl::SSLError& e) {
    throw ClientSSLError("TLS handshake with " + where + " failed for " + text + ": " + e.what(), text);
  } catch (const OSError& e) {
    throw ClientConnectorError("cannot connect to " + where + " for " + text + ": " + e.what(), text, e.errno_code());
  }
}

struct Prepared {
  std::string method;
  std::string body;
  bool has_body = false;
  std::string content_type;
  Headers headers;  // request's own (override the session's)
};

std::string request_head(SessionState& s, const Prepared& p, const URL& url) {
  std::string text = url.str();
  Headers h;
  h.set("Host", url.authority());
  h.set("User-Agent", s.opt.user_agent);
  h.set("Accept", "*/*");
  h.set("Accept-Encoding", "gzip, deflate");
  for (const auto& [n, v] : s.opt.headers) h.set(n, v);
  for (const auto& [n, v] : p.headers) h.set(n, v);
  if (s.opt.cookies && !h.contains("Cookie")) {
    std::string c = cookie_header(s.jar, url);
    if (!c.empty()) h.set("Cookie", c);
  }
  if (p.has_body) {
    if (!h.contains("Content-Type")) h.set("Content-Type", p.content_type);
    h.set("Content-Length", std::to_string(p.body.size()));
    h.erase("Transfer-Encoding");
  } else if (p.method == "POST" || p.method == "PUT" || p.method == "PATCH") {
    h.set("Content-Length", "0");
  }
  std::string head = p.method + " " + url.target() + " HTTP/1.1\r\n";
  check_header_text(head.substr(0, head.size() - 2), text);
  for (const auto& [n, v] : h) {
    check_header_text(n, text);
    check_header_text(v, text);
    head += n;
    head += ": ";
    head += v;
    head += "\r\n";
  }
  head += "\r\n";
  return head;
}

/// Sends one request (no redirects) and reads the response head.
Coro<ClientResponse> send_one(std::shared_ptr<SessionState> s, const Prepared& p, const URL& url,
                              const RequestOptions& o, const ClientTimeout& to,
                              std::optional<std::int64_t> deadline_ns) {
  const std::string text = url.str();
  const std::string key = url.scheme + "://" + url.authority();
  std::string head = request_head(*s, p, url);
  Lease lease;
  if (s->total) {
    co_await acquire_within(*s->total, budget(to.connect, deadline_ns), text);
    lease.total = s->total.get();
  }
  if (aio::Semaphore* hs = s->host_sem(key)) {
    try {
      co_await acquire_within(*hs, budget(to.connect, deadline_ns), text);
    } catch (...) {
      lease.release();
      throw;
    }
    lease.host = hs;
  }
  std::shared_ptr<Conn> conn;
  try {
    for (int attempt = 0;; ++attempt) {
      conn = s->take_idle(key);
      const bool reused = conn != nullptr;
      if (!conn) conn = co_await connect(s, url, o, budget(to.connect, deadline_ns));
      bool retry = false;
      try {
        conn->w.write(head);
        if (p.has_body) conn->w.write(p.body);
        co_await conn->w.drain();
      } catch (const ConnectionError& e) {
        conn->close();
        if (!reused || attempt > 0) {
          throw ServerDisconnectedError(std::string("connection lost while sending to ") + text + ": " + e.what(),
                                        text);
        }
        retry = true;
      }
      if (retry) continue;

      auto parser = std::make_unique<MessageParser>(false, ParserLimits{});
      if (p.method == "HEAD") parser->skip_body();
      try {
        if (!conn->leftover.empty()) {
          std::string l;
          l.swap(conn->leftover);
          parser->feed(l);
        }
        for (;;) {
          while (!parser->header_done()) {
            std::string data = co_await read_socket(*conn, to.sock_read, deadline_ns, text);
            if (data.empty()) {
              conn->close();
              if (reused && attempt == 0 && parser->idle()) {
                retry = true;  // a pooled connection the server had closed: once more, on a new one
                break;
              }
              throw ServerDisconnectedError("the server closed the connection without a (whole) response: " + text,
                                            text);
            }
            parser->feed(data);
          }
          if (retry) break;
          int st = parser->head().status;
          if (st >= 100 && st < 200 && st != 101) {  // interim response: the real one follows
            std::string rest = parser->take_body() + parser->take_leftover();
            parser = std::make_unique<MessageParser>(false, ParserLimits{});
            if (p.method == "HEAD") parser->skip_body();
            parser->feed(rest);
            continue;
          }
          break;
        }
      } catch (const ParseError& e) {
        conn->close();
        throw InvalidResponseError(std::string("malformed response from ") + text + ": " + e.what(), text);
      } catch (const ServerDisconnectedError&) {
        if (!(reused && attempt == 0 && parser->idle())) throw;
        conn->close();
        retry = true;
      }
      if (retry) continue;

      MessageHead& mh = parser->head();
      ClientResponse r;
      r.status = mh.status;
      r.reason = mh.reason;
      r.headers = mh.headers;
      r.version = mh.version;
      r.method = p.method;
      r.url = url;
      if (s->opt.cookies) store_cookies(s->jar, url, r.headers);
      auto b = std::make_shared<BodyReader>();
      b->session = s;
      b->key = key;
      b->url = text;
      b->sock_read = to.sock_read;
      b->deadline_ns = deadline_ns;
      b->keep_alive = mh.keep_alive && !parser->body_until_eof();
      b->decoder = std::make_unique<BodyDecoder>(p.method == "HEAD" ? "" : r.headers.get("Content-Encoding", ""));
      b->parser = std::move(parser);
      b->conn = std::move(conn);
      b->lease = lease;
      lease = Lease{};
      ResponseAccess::attach(r, std::move(b));
      co_return r;
    }
  } catch (...) {
    if (conn) conn->close();
    lease.release();
    throw;
  }
}

Coro<ClientResponse> do_request(std::shared_ptr<SessionState> s, std::string method, std::string url_text,
                                RequestOptions o) {
  if (s->closed) throw ClientError("the session is closed: " + url_text, url_text);
  for (char& c : method) c = static_cast<char>((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
  URL url = URL::parse(url_text);
  url.add_params(o.params);
  const ClientTimeout to = o.timeout ? *o.timeout : s->opt.timeout;
  const int max_redirects = o.max_redirects.value_or(s->opt.max_redirects);
  Prepared p;
  p.method = method;
  p.headers = o.headers;
  if (o.json) {
    p.body = o.json->dump();
    p.content_type = "application/json";
    p.has_body = true;
  } else if (o.form) {
    p.body = urlencode(*o.form);
    p.content_type = "application/x-www-form-urlencoded";
    p.has_body = true;
  } else if (o.body) {
    p.body = *o.body;
    p.content_type = "application/octet-stream";
    p.has_body = true;
  }
  std::optional<std::int64_t> deadline_ns;
  if (to.total) deadline_ns = now_ns() + to.total->count();

  std::vector<ClientResponse> history;
  for (;;) {
    ClientResponse resp = co_await send_one(s, p, url, o, to, deadline_ns);
    std::optional<std::string> location = resp.headers.get("Location");
    if (!o.allow_redirects || !is_redirect(resp.status) || !location) {
      resp.history = std::move(history);
      if (s->opt.raise_for_status) resp.raise_for_status();
      co_return resp;
    }
    if (static_cast<int>(history.size()) >= max_redirects) {
      resp.release();
      throw TooManyRedirects("too many redirects (more than " + std::to_string(max_redirects) + ") from " + url_text,
                             url.str(), resp.status);
    }
    co_await resp.read();  // the redirect's own body, so that its connection can be reused
    URL next;
    try {
      next = url.join(*location);
    } catch (const InvalidURL& e) {
      throw InvalidURL(std::string("bad redirect Location from ") + url.str() + ": " + e.what(), *location);
    }
    if ((resp.status == 303 && p.method != "HEAD") ||
        ((resp.status == 301 || resp.status == 302) && p.method == "POST")) {
      p.method = "GET";
      p.has_body = false;
      p.body.clear();
      p.headers.erase("Content-Type");
    }
    if (next.host != url.host || next.port != url.port || next.scheme != url.scheme) p.headers.erase("Authorization");
    history.push_back(std::move(resp));
    url = std::move(next);
  }
}

}  // namespace detail

// ---- ClientResponse ---------------------------------------------------------------------------

Coro<std::string> ClientResponse::read() {
  if (cached_) co_return *cached_;
  std::string all;
  if (body_) {
    for (;;) {
      std::string piece = co_await detail::body_read_some(body_, detail::kReadChunk * 4);
      if (piece.empty()) break;
      all += piece;
    }
  }
  cached_ = std::make_shared<std::string>(all);
  co_return all;
}

Coro<std::string> ClientResponse::text() { co_return co_await read(); }

Coro<nlohmann::json> ClientResponse::json() {
  std::string body = co_await read();
  try {
    co_return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    throw ClientPayloadError(std::string("the body of ") + url.str() + " is not JSON: " + e.what(), url.str());
  }
}

Coro<std::string> ClientResponse::read_chunk(std::size_t n) {
  if (cached_ || !body_) co_return std::string();
  co_return co_await detail::body_read_some(body_, n == 0 ? 1 : n);
}

void ClientResponse::raise_for_status() const {
  if (status >= 400) {
    throw ClientResponseError(std::to_string(status) + ", message='" + reason + "', url='" + url.str() + "'", url.str(),
                              status);
  }
}

std::string ClientResponse::content_type() const {
  std::string ct = headers.get("Content-Type", "application/octet-stream");
  std::size_t semi = ct.find(';');
  if (semi != std::string::npos) ct.resize(semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  for (char& c : ct) c = static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  return ct;
}

void ClientResponse::release() {
  if (body_) body_->release_now();
}

// ---- ClientSession ----------------------------------------------------------------------------

ClientSession::ClientSession() : ClientSession(ClientSessionOptions{}) {}
ClientSession::ClientSession(ClientSessionOptions options)
    : s_(std::make_shared<detail::SessionState>(std::move(options))) {}

Coro<ClientResponse> ClientSession::request(std::string method, std::string url, RequestOptions options) {
  return detail::do_request(s_, std::move(method), std::move(url), std::move(options));
}
Coro<ClientResponse> ClientSession::request(std::string method, std::string url) {
  RequestOptions defaults;
  return detail::do_request(s_, std::move(method), std::move(url), std::move(defaults));
}
Coro<ClientResponse> ClientSession::get(std::string url, RequestOptions options) {
  return request("GET", std::move(url), std::move(options));
}
Coro<ClientResponse> ClientSession::get(std::string url) { return request("GET", std::move(url)); }
Coro<ClientResponse> ClientSession::post(std::string url, RequestOptions options) {
  return request("POST", std::move(url), std::move(options));
}
Coro<ClientResponse> ClientSession::post(std::string url) { return request("POST", std::move(url)); }
Coro<ClientResponse> ClientSession::put(std::string url, RequestOptions options) {
  return request("PUT", std::move(url), std::move(options));
}
Coro<ClientResponse> ClientSession::put(std::string url) { return request("PUT", std::move(url)); }
Coro<ClientResponse> ClientSession::patch(std::string url, RequestOptions options) {
  return request("PATCH", std::move(url), std::move(options));
}
Coro<ClientResponse> ClientSession::delete_(std::string url, RequestOptions options) {
  return request("DELETE", std::move(url), std::move(options));
}
Coro<ClientResponse> ClientSession::delete_(std::string url) { return request("DELETE", std::move(url)); }
Coro<ClientResponse> ClientSession::head(std::string url, RequestOptions options) {
  return request("HEAD", std::move(url), std::move(options));
}
Coro<ClientResponse> ClientSession::head(std::string url) { return request("HEAD", std::move(url)); }
Coro<ClientResponse> ClientSession::options(std::string url) { return request("OPTIONS", std::move(url)); }

Coro<void> ClientSession::close() {
  s_->closed = true;
  s_->close_idle();
  co_return;
}

bool ClientSession::closed() const noexcept { return s_->closed; }

std::vector<Cookie> ClientSession::cookies() const { return s_->jar; }

std::size_t ClientSession::idle_connections() const noexcept {
  std::size_t n = 0;
  for (const auto& [k, q] : s_->idle) n += q.size();
  return n;
}

std::size_t ClientSession::connections_opened() const noexcept { return s_->opened; }

}  // namespace concur::http
