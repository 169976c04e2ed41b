#pragma once
/// \file The requests.Session analogue: a blocking HTTP client for code running on threads
/// (ThreadPoolExecutor workers with a threading::local session each, as in the seeds), with
/// the ClientSession's features: pooled keep-alive connections, HTTPS, redirects, timeouts,
/// cookies, gzip/deflate, JSON.
///
/// ```cpp
/// http::Session s;
/// http::Response r = s.get("http://127.0.0.1:8080/");
/// std::string body = r.text();
/// ```
///
/// Threads: a Session runs its own private event loop on the calling thread for the duration
/// of each call; use one Session per thread (it is not thread safe), and not from a thread
/// whose asyncio loop is running (that is an error: use ClientSession there).
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "concur/http/client.hpp"

namespace concur::http {

/// A response whose body has been read (requests.Response).
class Response {
 public:
  int status_code = 0;
  std::string reason;
  Headers headers;
  URL url;
  std::string method;
  /// The redirect responses that led here, oldest first.
  std::vector<Response> history;

  /// The body (decoded from gzip/deflate).
  [[nodiscard]] const std::string& text() const noexcept { return body_; }
  [[nodiscard]] const std::string& content() const noexcept { return body_; }
  /// The body parsed as JSON (ClientPayloadError if it is not JSON).
  [[nodiscard]] nlohmann::json json() const;
  [[nodiscard]] bool ok() const noexcept { return status_code < 400; }
  /// Throws ClientResponseError for a 4xx/5xx status (requests' HTTPError).
  void raise_for_status() const;
  /// Sets the body (rvalue-chained: `Response(r).with_body(b)`).
  Response&& with_body(std::string body) && {
    body_ = std::move(body);
    return std::move(*this);
  }

 private:
  std::string body_;
};

/// requests.Session: a blocking client. Not thread safe; one per thread.
class Session {
 public:
  Session();
  explicit Session(ClientSessionOptions options);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  /// Sends the request and reads the whole response. Throws what ClientSession::request throws.
  Response request(const std::string& method, const std::string& url, RequestOptions options = {});
  Response get(const std::string& url, RequestOptions options = {}) { return request("GET", url, std::move(options)); }
  Response post(const std::string& url, RequestOptions options = {}) {
    return request("POST", url, std::move(options));
  }
  Response put(const std::string& url, RequestOptions options = {}) { return request("PUT", url, std::move(options)); }
  Response patch(const std::string& url, RequestOptions options = {}) {
    return request("PATCH", url, std::move(options));
  }
  Response delete_(const std::string& url, RequestOptions options = {}) {
    return request("DELETE", url, std::move(options));
  }
  Response head(const std::string& url, RequestOptions options = {}) {
    return request("HEAD", url, std::move(options));
  }
  /// Closes the pooled connections (also done by the destructor).
  void close();
  /// Connections opened so far.
  [[nodiscard]] std::size_t connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace concur::http
