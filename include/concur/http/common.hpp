#pragma once
/// \file What the HTTP client and server share: case-insensitive headers, URLs, query and form
/// encoding, and the error hierarchy (named after aiohttp's).
///
/// Thread safety: these are plain values; one object is not safe to mutate from two threads.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "concur/core/error.hpp"

namespace concur::http {

/// HTTP header fields: case-insensitive names, several values per name allowed, insertion order
/// kept (aiohttp's CIMultiDict).
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;
  using const_iterator = std::vector<Field>::const_iterator;

  Headers() = default;
  /// `{{"Content-Type", "text/plain"}, {"X-A", "1"}}` — up to eight fields in braces. These are
  /// separate constructors rather than one taking std::initializer_list, and they move from
  /// their arguments, so that a braced Headers (or options holding one) written inside a
  /// `co_await` compiles and runs with GCC 12, whose coroutines reject initializer_list arrays
  /// there ("array used as initializer") and may destroy such temporaries twice.
  Headers(Field a);  // NOLINT(google-explicit-constructor): braced lists are the point
  Headers(Field a, Field b);
  Headers(Field a, Field b, Field c);
  Headers(Field a, Field b, Field c, Field d);
  Headers(Field a, Field b, Field c, Field d, Field e);
  Headers(Field a, Field b, Field c, Field d, Field e, Field f);
  Headers(Field a, Field b, Field c, Field d, Field e, Field f, Field g);
  Headers(Field a, Field b, Field c, Field d, Field e, Field f, Field g, Field h);
  /// Any number of fields.
  static Headers from(std::vector<Field> fields) {
    Headers h;
    h.fields_ = std::move(fields);
    return h;
  }

  /// Appends a field (keeps any with the same name).
  void add(std::string name, std::string value);
  /// Replaces every field named `name` with one.
  void set(std::string name, std::string value);
  /// The first value of `name`, if any.
  [[nodiscard]] std::optional<std::string> get(std::string_view name) const;
  /// The first value of `name`, or `fallback`.
  [[nodiscard]] std::string get(std::string_view name, std::string_view fallback) const;
  /// Every value of `name`, in order.
  [[nodiscard]] std::vector<std::string> get_all(std::string_view name) const;
  [[nodiscard]] bool contains(std::string_view name) const;
  /// The first value of `name`, or "" (never throws).
  [[nodiscard]] std::string operator[](std::string_view name) const { return get(name, ""); }
  /// Removes every field named `name`; returns how many.
  std::size_t erase(std::string_view name);
  void clear() noexcept { fields_.clear(); }
  [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }
  [[nodiscard]] bool empty() const noexcept { return fields_.empty(); }
  [[nodiscard]] const_iterator begin() const noexcept { return fields_.begin(); }
  [[nodiscard]] const_iterator end() const noexcept { return fields_.end(); }

 private:
  std::vector<Field> fields_;
};

/// ASCII case-insensitive equality (header names, schemes, tokens).
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

/// Ordered query or form parameters.
using Params = std::vector<std::pair<std::string, std::string>>;

/// Percent-encodes `s` (RFC 3986 unreserved characters and those in `safe` stay as they are).
[[nodiscard]] std::string quote(std::string_view s, std::string_view safe = "/");
/// Decodes %XX escapes (and '+' as a space when `plus_is_space`); a bad escape stays as is.
[[nodiscard]] std::string unquote(std::string_view s, bool plus_is_space = false);
/// application/x-www-form-urlencoded: "a=1&b=x+y".
[[nodiscard]] std::string urlencode(const Params& params);
/// Parses "a=1&b=x+y" (form or query string) into ordered pairs.
[[nodiscard]] Params parse_qs(std::string_view query);

/// An absolute http/https URL (RFC 3986 subset that HTTP clients meet).
struct URL {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // without brackets for IPv6
  int port = 0;        // explicit or the scheme's default
  std::string path = "/";
  std::string query;  // without '?', still encoded
  std::string fragment;

  /// Throws InvalidURL (with the text) for anything but an absolute http(s) URL.
  static URL parse(std::string_view text);
  /// path?query — what goes in the request line.
  [[nodiscard]] std::string target() const;
  /// host[:port] as the Host header (port left out when it is the scheme's default).
  [[nodiscard]] std::string authority() const;
  [[nodiscard]] bool is_https() const noexcept { return scheme == "https"; }
  /// The URL as text (without the fragment).
  [[nodiscard]] std::string str() const;
  /// Resolves `ref` (a Location header: absolute, "//host/x", "/x", "x", "?q") against this URL.
  [[nodiscard]] URL join(std::string_view ref) const;
  /// Appends encoded parameters to the query.
  void add_params(const Params& params);
};

// ---- errors (aiohttp's names) ----------------------------------------------------------------

/// Base of every HTTP error; url() says which request (empty when none applies).
class HttpError : public Error {
 public:
  HttpError(const std::string& message, std::string url) : Error(message), url_(std::move(url)) {}
  [[nodiscard]] const std::string& url() const noexcept { return url_; }

 private:
  std::string url_;
};
/// The URL cannot be requested (not absolute http/https, bad port, ...).
class InvalidURL : public HttpError {
 public:
  using HttpError::HttpError;
};
/// Base of client-side failures (aiohttp.ClientError).
class ClientError : public HttpError {
 public:
  using HttpError::HttpError;
};
/// The connection failed or broke (aiohttp.ClientConnectionError).
class ClientConnectionError : public ClientError {
 public:
  using ClientError::ClientError;
};
/// Could not connect: refused, unreachable, DNS failure (aiohttp.ClientConnectorError).
/// os_errno() is the errno, 0 for a DNS failure.
class ClientConnectorError : public ClientConnectionError {
 public:
  ClientConnectorError(const std::string& message, std::string url, int err)
      : ClientConnectionError(message, std::move(url)), errno_(err) {}
  [[nodiscard]] int os_errno() const noexcept { return errno_; }

 private:
  int errno_;
};
/// The host name did not resolve (aiohttp raises ClientConnectorError with a gaierror).
class ClientDNSError : public ClientConnectorError {
 public:
  ClientDNSError(const std::string& message, std::string url) : ClientConnectorError(message, std::move(url), 0) {}
};
/// TLS handshake or certificate verification failed (aiohttp.ClientSSLError).
class ClientSSLError : public ClientConnectorError {
 public:
  ClientSSLError(const std::string& message, std::string url) : ClientConnectorError(message, std::move(url), 0) {}
};
/// The server closed the connection before a whole response (aiohttp.ServerDisconnectedError).
class ServerDisconnectedError : public ClientConnectionError {
 public:
  using ClientConnectionError::ClientConnectionError;
};
/// A connect, read or total timeout ran out (aiohttp.ServerTimeoutError; also a TimeoutError
/// in spirit: catch either this or concur::http::ClientError).
class ServerTimeoutError : public ClientConnectionError {
 public:
  using ClientConnectionError::ClientConnectionError;
};
/// The response was not valid HTTP (bad status line, header, chunk) (aiohttp.ClientResponseError
/// family's ClientPayloadError / ServerDisconnected for bodies; here one clear type).
class InvalidResponseError : public ClientError {
 public:
  using ClientError::ClientError;
};
/// The body could not be decoded (truncated, bad gzip) (aiohttp.ClientPayloadError).
class ClientPayloadError : public ClientError {
 public:
  using ClientError::ClientError;
};
/// raise_for_status() on a 4xx/5xx response (aiohttp.ClientResponseError).
class ClientResponseError : public ClientError {
 public:
  ClientResponseError(const std::string& message, std::string url, int status)
      : ClientError(message, std::move(url)), status_(status) {}
  [[nodiscard]] int status() const noexcept { return status_; }

 private:
  int status_;
};
/// More redirects than max_redirects (aiohttp.TooManyRedirects).
class TooManyRedirects : public ClientResponseError {
 public:
  using ClientResponseError::ClientResponseError;
};

/// The reason phrase for a status code ("Not Found"); "Unknown" for codes without one.
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

}  // namespace concur::http
