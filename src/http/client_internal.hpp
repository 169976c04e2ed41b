#pragma once
// Private pieces shared by the client (client.cpp), its cookie jar (cookies.cpp) and the
// blocking Session (session.cpp).
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "concur/http/client.hpp"

namespace concur::http::detail {

/// Stores the Set-Cookie headers of a response from `url` in `jar` (RFC 6265, the parts
/// browsers and aiohttp agree on: Domain, Path, Max-Age, Expires, Secure).
void store_cookies(std::vector<Cookie>& jar, const URL& url, const Headers& headers);
/// The Cookie header value for a request to `url` ("" when none match).
std::string cookie_header(std::vector<Cookie>& jar, const URL& url);
/// Parses an HTTP date (RFC 1123, RFC 850, asctime); nullopt when it is none of them.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);
/// The current time as an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string http_date(std::chrono::system_clock::time_point t);

/// Streaming gzip/deflate decoder (zlib); identity when the encoding is neither.
class BodyDecoder {
 public:
  explicit BodyDecoder(std::string_view content_encoding);
  ~BodyDecoder();
  BodyDecoder(const BodyDecoder&) = delete;
  BodyDecoder& operator=(const BodyDecoder&) = delete;
  /// Decodes the next piece; throws std::runtime_error on corrupt data.
  std::string decode(std::string_view data);
  /// The stream ended: throws std::runtime_error when the compressed data was truncated.
  void finish();
  [[nodiscard]] bool identity() const noexcept { return mode_ == 0; }

 private:
  void init(int window_bits);
  int mode_ = 0;  // 0 identity, 1 gzip, 2 deflate (zlib or raw)
  bool started_ = false, ended_ = false, tried_raw_ = false;
  void* z_ = nullptr;
};

/// gzip-compresses `data` (tests and the web server's optional compression use it).
std::string gzip_compress(std::string_view data);

}  // namespace concur::http::detail
