#pragma once
/// \file The aiohttp.ClientSession analogue: an asynchronous HTTP/1.1 client with pooled
/// keep-alive connections, HTTPS, redirects, timeouts, cookies and gzip/deflate bodies.
///
/// ```cpp
/// http::ClientSession session;
/// http::ClientResponse resp = co_await session.get("http://127.0.0.1:8080/page");
/// int status = resp.status; std::string body = co_await resp.text();
/// ```
///
/// Threads: a ClientSession belongs to the event loop of the thread that first uses it; every
/// await resumes on that loop's thread. Not thread safe: use one session per loop.
/// Cancel safety: cancelling a request (directly or with wait_for) closes the connection it was
/// using (never returned to the pool half-read); the session stays usable. Cancelling a body
/// read leaves the response unusable (its connection is closed).
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "concur/asyncio/ssl.hpp"
#include "concur/asyncio/task.hpp"
#include "concur/http/common.hpp"

namespace concur::http {

using asyncio::Coro;

/// aiohttp.ClientTimeout: `total` bounds a whole request including reading its body,
/// `connect` the connection set-up (DNS, TCP, TLS, waiting for a pooled connection),
/// `sock_read` each wait for bytes from the server. Unset: no limit.
struct ClientTimeout {
  std::optional<std::chrono::nanoseconds> total = std::chrono::minutes(5);
  std::optional<std::chrono::nanoseconds> connect;
  std::optional<std::chrono::nanoseconds> sock_read;
};

/// Per-request options (aiohttp's keyword arguments). Give at most one body: `data` (bytes or
/// text as is), `form` (urlencoded) or `json`.
///
/// GCC 12: a braced options temporary inside a `co_await` (`co_await s.post(url, {.body = x})`)
/// is miscompiled (it may be destroyed twice, or a temporary it never made freed); name the
/// options first (`http::RequestOptions o{.body = x}; co_await s.post(url, o);`). Later GCCs
/// and Clang accept the braced form.
struct RequestOptions {
  std::optional<std::string> body;  // data=: sent as is (Content-Type application/octet-stream
                                    // unless headers say otherwise)
  Headers headers;                  // added to (and overriding) the session's headers
  Params params;                    // query parameters, appended to the URL's query
  std::optional<Params> form;       // data=dict: application/x-www-form-urlencoded
  std::optional<nlohmann::json> json;
  bool allow_redirects = true;
  std::optional<int> max_redirects;          // default: the session's (10)
  std::optional<ClientTimeout> timeout;      // default: the session's
  std::optional<asyncio::ssl::Context> ssl;  // HTTPS: this context instead of the session's
};

namespace detail {
struct SessionState;
struct BodyReader;
struct ResponseAccess;
}  // namespace detail

/// A response (aiohttp.ClientResponse). The head is read when the request returns; the body is
/// read on demand (read/text/json or content().read). Reading the whole body returns the
/// connection to the session's pool. A handle: copies share the body stream.
class ClientResponse {
 public:
  int status = 0;
  std::string reason;
  Headers headers;
  std::string method;
  URL url;           // the final URL (after redirects)
  int version = 11;  // 10 or 11
  /// The redirect responses that led here, oldest first (bodies already discarded).
  std::vector<ClientResponse> history;

  /// The whole body (decoded from gzip/deflate when Content-Encoding says so). Cached: a
  /// second call returns the same bytes. Throws ClientPayloadError / ServerTimeoutError.
  Coro<std::string> read();
  /// The body as text (concur does not transcode: the bytes as received).
  Coro<std::string> text();
  /// The body parsed as JSON; ClientResponseError-free: a parse error throws
  /// ClientPayloadError naming the URL.
  Coro<nlohmann::json> json();
  /// Up to `n` bytes of the body as it arrives (streaming large bodies); "" at the end.
  Coro<std::string> read_chunk(std::size_t n = 64 * 1024);
  /// Throws ClientResponseError (status and reason, with the URL) for a 4xx/5xx status.
  void raise_for_status() const;
  [[nodiscard]] bool ok() const noexcept { return status < 400; }
  /// The Content-Type's media type ("text/html"), "application/octet-stream" when absent.
  [[nodiscard]] std::string content_type() const;
  /// Releases the connection now: reused when the body was read to the end, closed otherwise.
  void release();

 private:
  friend struct detail::ResponseAccess;
  std::shared_ptr<detail::BodyReader> body_;
  std::shared_ptr<std::string> cached_;
};

/// Options of a ClientSession.
struct ClientSessionOptions {
  Headers headers;                 // sent with every request
  ClientTimeout timeout;           // default for every request
  std::size_t limit = 100;         // connections in use at once, all hosts (0: no limit)
  std::size_t limit_per_host = 0;  // per (scheme, host, port) (0: no limit)
  int max_redirects = 10;
  bool raise_for_status = false;  // every response's raise_for_status() is called
  /// HTTPS verification context; default: the system CA store, host names checked.
  std::optional<asyncio::ssl::Context> ssl;
  std::chrono::nanoseconds keepalive_timeout = std::chrono::seconds(15);  // idle pooled connections
  bool cookies = true;  // keep cookies the servers set and send them back
  std::string user_agent = "concur-http/0.1";
};

/// A cookie as kept by the session.
struct Cookie {
  std::string name, value, domain, path = "/";
  bool host_only = true, secure = false;
  std::optional<std::chrono::system_clock::time_point> expires;
};

/// aiohttp.ClientSession. A handle: copies share the pool and cookies.
class ClientSession {
 public:
  ClientSession();
  explicit ClientSession(ClientSessionOptions options);

  /// Sends a request and reads the response head. Errors: InvalidURL, ClientConnectorError
  /// (refused, DNS: ClientDNSError, TLS: ClientSSLError), ServerDisconnectedError,
  /// InvalidResponseError, ServerTimeoutError, TooManyRedirects — each naming the URL.
  Coro<ClientResponse> request(std::string method, std::string url, RequestOptions options);
  Coro<ClientResponse> request(std::string method, std::string url);
  Coro<ClientResponse> get(std::string url, RequestOptions options);
  Coro<ClientResponse> get(std::string url);
  Coro<ClientResponse> post(std::string url, RequestOptions options);
  Coro<ClientResponse> post(std::string url);
  Coro<ClientResponse> put(std::string url, RequestOptions options);
  Coro<ClientResponse> put(std::string url);
  Coro<ClientResponse> patch(std::string url, RequestOptions options);
  Coro<ClientResponse> delete_(std::string url, RequestOptions options);
  Coro<ClientResponse> delete_(std::string url);
  Coro<ClientResponse> head(std::string url, RequestOptions options);
  Coro<ClientResponse> head(std::string url);
  Coro<ClientResponse> options(std::string url);

  /// Closes every pooled connection; requests after close() fail with ClientError.
  Coro<void> close();
  [[nodiscard]] bool closed() const noexcept;
  /// The session's cookies (name, value, domain, path, ...).
  [[nodiscard]] std::vector<Cookie> cookies() const;
  /// Connections idle in the pool now (all hosts).
  [[nodiscard]] std::size_t idle_connections() const noexcept;
  /// Connections opened so far (tests check reuse with it).
  [[nodiscard]] std::size_t connections_opened() const noexcept;

 private:
  std::shared_ptr<detail::SessionState> s_;
};

}  // namespace concur::http
