#pragma once
/// \file concur::http::web — the aiohttp.web analogue: an HTTP/1.1 server on the asyncio
/// streams with an Application, a Router (path parameters, 404/405), Request / Response,
/// middlewares, HTTPException responses, keep-alive and pipelining, graceful shutdown.
///
/// Threads: handlers and middlewares run on the thread of the loop that accepted the
/// connection (the loop that called serve()/start(), or, with Options::threads > 1, one of the
/// worker loops). With one loop (the default) nothing here needs locking. With several loops
/// the same Application (its handlers, middlewares and whatever they capture) is called from
/// several threads at once: handlers must then be thread-safe (or keep per-loop state).
/// The Application must not be changed once a server serves it (std::logic_error).
///
/// Cancel safety: a handler runs inside its connection's task; cancelling that task (on
/// shutdown past Options::shutdown_timeout) throws CancelledError into the handler at its
/// current await and the connection is closed without a response. Request body reads follow
/// the streams' rule: a cancelled read consumes nothing.
///
/// Hostile input: a malformed request line or header gets 400, a header past
/// Options::max_header_size 431, a body past Options::client_max_size 413, then that connection
/// closes; a client that does not complete its headers within Options::header_timeout is
/// dropped. Other connections are unaffected.
///
/// GCC 12: do not put braced option aggregates or lambdas inside a co_await expression; name
/// them first (`web::Options o; o.threads = 2; auto site = co_await web::start(app, h, p, o);`).
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "concur/asyncio/coro.hpp"
#include "concur/asyncio/ssl.hpp"
#include "concur/asyncio/transports.hpp"
#include "concur/core/error.hpp"
#include "concur/http/common.hpp"

namespace concur::http::web {

class Request;
class Response;

/// A request handler: `[](web::Request& req) -> asyncio::Coro<web::Response> {...}`.
using Handler = std::function<asyncio::Coro<Response>(Request&)>;
/// A middleware: calls `next(req)` (or not) and may change the response (aiohttp's
/// `@middleware async def mw(request, handler)`).
using Middleware = std::function<asyncio::Coro<Response>(Request&, Handler next)>;

// ---- responses ---------------------------------------------------------------------------------

/// An HTTP response with its whole body (aiohttp's web.Response).
class Response {
 public:
  Response() = default;
  /// `body` with `status`; Content-Type from `content_type` unless `headers` has one.
  explicit Response(std::string body, int status = 200, Headers headers = {},
                    std::string content_type = "text/plain; charset=utf-8");

  /// text/plain; charset=utf-8.
  static Response text(std::string body, int status = 200);
  /// application/json (the value dumped).
  static Response json(const nlohmann::json& value, int status = 200);
  /// Bytes with a content type.
  static Response bytes(std::string data, std::string content_type = "application/octet-stream", int status = 200);
  /// text/html; charset=utf-8.
  static Response html(std::string body, int status = 200);

  /// Replaces every field named `name`.
  Response& set_header(std::string name, std::string value) {
    headers.set(std::move(name), std::move(value));
    return *this;
  }
  [[nodiscard]] std::string content_type() const { return headers.get("Content-Type", ""); }

  int status = 200;
  /// Empty: the standard phrase for `status`.
  std::string reason;
  /// Content-Length, Date, Server and Connection are filled in when it is sent (a
  /// Content-Length or Transfer-Encoding here is replaced).
  Headers headers;
  std::string body;
};

/// Thrown from a handler (or middleware), becomes its response (aiohttp's HTTPException):
/// status, `text` as a text/plain body, extra headers.
class HTTPException : public Error {
 public:
  HTTPException(int status, std::string text = {}, Headers headers = {});
  [[nodiscard]] int status() const noexcept { return status_; }
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] const Headers& headers() const noexcept { return headers_; }
  /// The response this exception stands for.
  [[nodiscard]] Response response() const;

 private:
  int status_;
  std::string text_;
  Headers headers_;
};

#define CONCUR_WEB_HTTP_ERROR(Name, code)                             \
  class Name : public HTTPException {                                 \
   public:                                                            \
    explicit Name(std::string text = {}, Headers headers = {})        \
        : HTTPException(code, std::move(text), std::move(headers)) {} \
  };
CONCUR_WEB_HTTP_ERROR(HTTPBadRequest, 400)
CONCUR_WEB_HTTP_ERROR(HTTPUnauthorized, 401)
CONCUR_WEB_HTTP_ERROR(HTTPForbidden, 403)
CONCUR_WEB_HTTP_ERROR(HTTPNotFound, 404)
CONCUR_WEB_HTTP_ERROR(HTTPRequestTimeout, 408)
CONCUR_WEB_HTTP_ERROR(HTTPConflict, 409)
CONCUR_WEB_HTTP_ERROR(HTTPRequestEntityTooLarge, 413)
CONCUR_WEB_HTTP_ERROR(HTTPUnprocessableEntity, 422)
CONCUR_WEB_HTTP_ERROR(HTTPTooManyRequests, 429)
CONCUR_WEB_HTTP_ERROR(HTTPRequestHeaderFieldsTooLarge, 431)
CONCUR_WEB_HTTP_ERROR(HTTPInternalServerError, 500)
CONCUR_WEB_HTTP_ERROR(HTTPNotImplemented, 501)
CONCUR_WEB_HTTP_ERROR(HTTPServiceUnavailable, 503)
#undef CONCUR_WEB_HTTP_ERROR

/// 405 with an Allow header listing `allowed`.
class HTTPMethodNotAllowed : public HTTPException {
 public:
  HTTPMethodNotAllowed(std::string method, std::vector<std::string> allowed);
  [[nodiscard]] const std::string& method() const noexcept { return method_; }
  [[nodiscard]] const std::vector<std::string>& allowed() const noexcept { return allowed_; }

 private:
  std::string method_;
  std::vector<std::string> allowed_;
};

/// A redirect (301, 302, 303, 307, 308) to `location`.
class HTTPRedirect : public HTTPException {
 public:
  HTTPRedirect(int status, std::string location);
};
/// 302 Found.
class HTTPFound : public HTTPRedirect {
 public:
  explicit HTTPFound(std::string location) : HTTPRedirect(302, std::move(location)) {}
};

// ---- requests ----------------------------------------------------------------------------------

namespace detail {
struct Connection;
}

/// A request body as a stream (aiohttp's request.content, a StreamReader). Valid while the
/// handler runs. Loop thread only.
class BodyReader {
 public:
  /// Up to `n` bytes (at least one unless the body is over: then ""); n < 0: the rest.
  /// Throws HTTPRequestEntityTooLarge past Options::client_max_size, HTTPBadRequest on a
  /// malformed chunked body or a connection closed mid-body.
  asyncio::Coro<std::string> read(std::ptrdiff_t n = -1);
  /// What is buffered, or the next bytes to arrive ("" at the end).
  asyncio::Coro<std::string> readany();
  /// Exactly `n` bytes; HTTPBadRequest if the body is shorter.
  asyncio::Coro<std::string> readexactly(std::size_t n);
  /// True once every body byte was returned.
  [[nodiscard]] bool at_eof() const noexcept;

 private:
  friend struct detail::Connection;
  friend class Request;
  explicit BodyReader(detail::Connection* c) noexcept : c_(c) {}
  detail::Connection* c_;
};

/// One HTTP request (aiohttp's web.Request). Made by the server; valid while its handler runs.
/// Loop thread only.
class Request {
 public:
  std::string method;        ///< "GET", upper case as received
  std::string path;          ///< decoded path ("/a b" for "/a%20b")
  std::string raw_path;      ///< the path as received (still encoded), without the query
  std::string target;        ///< the request target as received ("/a%20b?x=1")
  std::string query_string;  ///< after '?', still encoded
  Headers headers;
  int version = 11;  ///< 10 or 11

  /// The first query parameter `name` (decoded), if any.
  [[nodiscard]] std::optional<std::string> query(std::string_view name) const;
  /// The first query parameter `name`, or `fallback`.
  [[nodiscard]] std::string query(std::string_view name, std::string_view fallback) const;
  /// Every query parameter, decoded, in order.
  [[nodiscard]] const Params& query_params() const noexcept { return query_; }
  /// A path parameter of the matched route ("/item/{id}" → match_info("id")), decoded; "" if
  /// the route has none of that name.
  [[nodiscard]] std::string match_info(std::string_view name) const;
  /// Every path parameter.
  [[nodiscard]] const Params& match_info_all() const noexcept { return match_; }
  /// The whole body (cached: later calls return it again). Throws as BodyReader::read.
  asyncio::Coro<std::string> read();
  /// The body as text (as read()).
  asyncio::Coro<std::string> text();
  /// The body parsed as JSON; HTTPBadRequest when it is not JSON.
  asyncio::Coro<nlohmann::json> json();
  /// The body as a stream (do not mix with read() unless read() came first).
  [[nodiscard]] BodyReader& content() noexcept { return body_; }
  /// Content-Length, if given.
  [[nodiscard]] std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }
  /// True when the body is chunked or has a non-zero Content-Length.
  [[nodiscard]] bool can_read_body() const noexcept;
  /// The peer's address ("127.0.0.1"); "" when unknown.
  [[nodiscard]] std::string remote() const { return peer_.host; }
  /// The peer's full address.
  [[nodiscard]] const asyncio::SocketAddress& peername() const noexcept { return peer_; }
  /// Whether the connection stays open after this request (as the client asked).
  [[nodiscard]] bool keep_alive() const noexcept { return keep_alive_; }
  /// "http" or "https".
  [[nodiscard]] const std::string& scheme() const noexcept { return scheme_; }
  /// The Host header ("" when none).
  [[nodiscard]] std::string host() const { return headers.get("Host", ""); }

  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

 private:
  friend struct detail::Connection;
  friend class Application;
  explicit Request(detail::Connection* c) noexcept : body_(c) {}
  Params query_;
  Params match_;
  BodyReader body_;
  std::optional<std::uint64_t> content_length_;
  bool chunked_ = false;
  bool keep_alive_ = true;
  std::optional<std::string> cached_body_;
  asyncio::SocketAddress peer_;
  std::string scheme_ = "http";
};

// ---- routing and the application ---------------------------------------------------------------

/// Routes: method + path pattern → handler, matched in the order added (aiohttp's
/// UrlDispatcher). A pattern is a path whose segments may be `{name}` (one non-empty
/// segment, decoded into match_info) or, as the last segment, `{name:.*}` (the rest of the
/// path, possibly empty). A GET route also serves HEAD (without the body). Method "*" matches
/// every method.
class Router {
 public:
  void add_route(std::string method, std::string path, Handler handler);
  void add_get(std::string path, Handler handler) { add_route("GET", std::move(path), std::move(handler)); }
  void add_post(std::string path, Handler handler) { add_route("POST", std::move(path), std::move(handler)); }
  void add_put(std::string path, Handler handler) { add_route("PUT", std::move(path), std::move(handler)); }
  void add_delete(std::string path, Handler handler) { add_route("DELETE", std::move(path), std::move(handler)); }
  void add_patch(std::string path, Handler handler) { add_route("PATCH", std::move(path), std::move(handler)); }
  void add_head(std::string path, Handler handler) { add_route("HEAD", std::move(path), std::move(handler)); }

  /// What a request resolves to: the handler with the path parameters, or nullopt with the
  /// methods the path allows (empty: no route has the path: 404; else 405).
  struct Match {
    const Handler* handler = nullptr;
    Params match_info;
    std::vector<std::string> allowed;
  };
  [[nodiscard]] Match resolve(std::string_view method, std::string_view raw_path) const;
  [[nodiscard]] std::size_t size() const noexcept { return routes_.size(); }

 private:
  friend class Application;
  struct Segment {
    std::string text;  // a literal (decoded), or the parameter's name
    bool param = false;
    bool tail = false;  // {name:.*}
  };
  struct Route {
    std::string method;
    std::vector<Segment> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
  const bool* frozen_ = nullptr;
};

/// aiohttp's web.Application: a router and middlewares. Not copyable; must outlive every
/// server serving it.
class Application {
 public:
  Application() { router_.frozen_ = &frozen_; }
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;

  [[nodiscard]] Router& router() noexcept { return router_; }
  [[nodiscard]] const Router& router() const noexcept { return router_; }
  /// Middlewares, outermost first (the first added sees the request first and the response
  /// last).
  [[nodiscard]] const std::vector<Middleware>& middlewares() const noexcept { return middlewares_; }
  void add_middleware(Middleware mw);
  /// Runs `req` through the middlewares and its route (a 404/405 becomes an HTTPException
  /// the middlewares can see). Exceptions propagate.
  asyncio::Coro<Response> handle(Request& req) const;
  /// True once served (then routes and middlewares can no longer change).
  [[nodiscard]] bool frozen() const noexcept { return frozen_; }
  void freeze() noexcept { frozen_ = true; }

 private:
  Router router_;
  std::vector<Middleware> middlewares_;
  bool frozen_ = false;
};

// ---- serving -----------------------------------------------------------------------------------

/// Server options (aiohttp's AppRunner / TCPSite / handler arguments).
struct Options {
  /// Request line plus headers, in bytes; more → 431.
  std::size_t max_header_size = 16 * 1024;
  /// Request body, in bytes; more → 413 (aiohttp's client_max_size).
  std::size_t client_max_size = 1024 * 1024;
  /// An idle keep-alive connection is closed after this long without a new request.
  std::chrono::milliseconds keepalive_timeout = std::chrono::seconds(15);
  /// A request's line and headers must arrive within this long from its first byte (from
  /// the connection's start for its first request); else the connection is dropped without a
  /// response (slowloris).
  std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
  /// A request body that sends nothing for this long: the handler's read throws
  /// HTTPRequestTimeout (408) and the connection is dropped (a slowloris body).
  std::chrono::milliseconds body_timeout = std::chrono::seconds(30);
  /// Graceful shutdown: how long requests in flight may take to finish before they are
  /// cancelled.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(10);
  /// Loops serving the application, each on its own thread with its own listening socket
  /// (SO_REUSEPORT; the kernel spreads connections). 1: the calling loop only. With n > 1 the
  /// calling loop serves too, plus n - 1 threads.
  int threads = 1;
  /// SO_REUSEPORT on the listening socket (always on when threads > 1).
  bool reuse_port = false;
  int backlog = 1024;
  /// HTTPS: a server context (ssl::Context(Purpose::CLIENT_AUTH) with a certificate loaded).
  std::optional<asyncio::ssl::Context> ssl;
  /// The Server header ("" leaves it out).
  std::string server_name = "concur";
  /// run_app: called on the loop once listening, with the port (e.g. to print it). Default
  /// (unset): run_app prints "======== Running on http://host:port/ ========".
  std::function<void(int port)> on_started;
};

namespace detail {
struct SiteState;
}

/// A running server (aiohttp's AppRunner + TCPSite), from start(). A handle: copies share the
/// server. Loop thread only (the loop that called start()).
class Site {
 public:
  Site() = default;
  explicit Site(std::shared_ptr<detail::SiteState> s) noexcept : s_(std::move(s)) {}
  /// The port listened on (the one picked with port 0).
  [[nodiscard]] int port() const;
  /// Stops accepting new connections (connections already open are served on).
  void close();
  /// Graceful shutdown: stops accepting, closes idle keep-alive connections, lets requests in
  /// flight finish (their connections then close) for up to Options::shutdown_timeout, then
  /// cancels what is left, and waits until every connection and worker loop is gone.
  /// Cancel safety: cancelling it cancels the remaining requests at once and still waits for
  /// them to end.
  asyncio::Coro<void> shutdown();
  /// Connections open on this loop.
  [[nodiscard]] std::size_t active_connections() const noexcept;
  /// Requests answered so far (every loop).
  [[nodiscard]] std::size_t requests_served() const noexcept;

 private:
  std::shared_ptr<detail::SiteState> s_;
};

/// Starts serving `app` on host:port (port 0: a free port, see Site::port()) and returns at
/// once. Call on a running loop.
asyncio::Coro<Site> start(Application& app, std::string host, int port, Options options);
asyncio::Coro<Site> start(Application& app, std::string host, int port);

/// Serves `app` until cancelled, then shuts down gracefully (Site::shutdown) and rethrows
/// CancelledError.
asyncio::Coro<void> serve(Application& app, std::string host, int port, Options options);
asyncio::Coro<void> serve(Application& app, std::string host, int port);

/// aiohttp's web.run_app: blocks, running its own loop, until SIGINT or SIGTERM, then shuts
/// down gracefully and returns. Call from a thread without a running loop.
void run_app(Application& app, std::string host = "0.0.0.0", int port = 8080, Options options = {});

}  // namespace concur::http::web
