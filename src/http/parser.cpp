// MessageParser over Boost.Beast's basic_parser (Beast is a maintained, fuzzed HTTP/1 parser
// shipped by Debian's libboost-dev; only this file includes it).
#include "parser.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <string_view>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

namespace concur::http::detail {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

template <bool IsRequest>
class Parser final : public bhttp::basic_parser<IsRequest> {
 public:
  MessageHead head;
  std::string body;
  bool transfer_encoding = false;  // the header has a Transfer-Encoding field

 private:
  void on_request_impl(bhttp::verb /*v*/, beast::string_view method, beast::string_view target, int version,
                       beast::error_code& /*ec*/) override {
    head.method.assign(method.data(), method.size());
    head.target.assign(target.data(), target.size());
    head.version = version;
  }
  void on_response_impl(int code, beast::string_view reason, int version, beast::error_code& /*ec*/) override {
    head.status = code;
    head.reason.assign(reason.data(), reason.size());
    head.version = version;
  }
  void on_field_impl(bhttp::field f, beast::string_view name, beast::string_view value,
                     beast::error_code& /*ec*/) override {
    // Fields after the header are a chunked body's trailer: RFC 9110 section 6.5.1 forbids
    // merging them into the header (a trailer "Host" or "Cookie" must not pass for one).
    if (this->is_header_done()) return;
    if (f == bhttp::field::transfer_encoding) transfer_encoding = true;
    head.headers.add(std::string(name.data(), name.size()), std::string(value.data(), value.size()));
  }
  void on_header_impl(beast::error_code& ec) override {
    head.keep_alive = this->keep_alive();
    head.chunked = this->chunked();
    if (auto len = this->content_length()) head.content_length = *len;
    // Request smuggling shapes Beast 1.74 lets through (RFC 9112 section 6.1, 6.3): Transfer-
    // Encoding with Content-Length when the coding is not chunked ("gzip" + Content-Length), and
    // a request whose Transfer-Encoding does not end in chunked (its length is unknowable; Beast
    // would read no body and take the body for the next request).
    if (transfer_encoding && (head.content_length || (IsRequest && !head.chunked))) {
      ec = bhttp::error::bad_transfer_encoding;
    }
  }
  void on_body_init_impl(boost::optional<std::uint64_t> const& /*len*/, beast::error_code& /*ec*/) override {}
  std::size_t on_body_impl(beast::string_view data, beast::error_code& /*ec*/) override {
    body.append(data.data(), data.size());
    return data.size();
  }
  void on_chunk_header_impl(std::uint64_t /*size*/, beast::string_view /*ext*/, beast::error_code& /*ec*/) override {}
  std::size_t on_chunk_body_impl(std::uint64_t /*remain*/, beast::string_view data,
                                 beast::error_code& /*ec*/) override {
    body.append(data.data(), data.size());
    return data.size();
  }
  void on_finish_impl(beast::error_code& /*ec*/) override {}
};

ParseError to_parse_error(const beast::error_code& ec) {
  if (ec == bhttp::error::header_limit) return {ParseErrorKind::header_too_large, "header too large"};
  if (ec == bhttp::error::body_limit) return {ParseErrorKind::body_too_large, "body too large"};
  if (ec == bhttp::error::partial_message) return {ParseErrorKind::incomplete, "connection closed mid-message"};
  return {ParseErrorKind::bad_message, "malformed HTTP message: " + ec.message()};
}

template <bool IsRequest>
void setup_parser(Parser<IsRequest>& p, const ParserLimits& limits) {
  // MessageParser::feed() applies the header limit itself (to the whole header, however its
  // bytes arrive): Beast's own check counts the start line apart when the bytes come together
  // but not when they trickle in, so the same header passed or failed by how it was split.
  (void)limits.header_limit;
  p.header_limit(std::numeric_limits<std::uint32_t>::max());
  // "No limit" is the largest value, not boost::none: Beast 1.74 compares a content length
  // with the optional limit and counts none as smaller than any length.
  p.body_limit(limits.body_limit.value_or(std::numeric_limits<std::uint64_t>::max()));
  p.eager(true);
}

/// Parses a header that is not complete yet in one put(), as if its bytes had come at once:
/// the error that gives, if any. Beast's incremental parse stops looking at a header's bytes
/// once it has seen the first few (it waits for the blank line), so without this the same
/// malformed header is a bad_message when it arrives in one piece but "incomplete" or
/// "header too large" when it arrives byte by byte.
template <bool IsRequest>
std::optional<beast::error_code> header_error(std::string_view raw, const ParserLimits& limits) {
  Parser<IsRequest> p;
  setup_parser(p, limits);
  beast::error_code ec;
  p.put(boost::asio::const_buffer(raw.data(), raw.size()), ec);
  if (!ec || ec == bhttp::error::need_more || p.is_header_done()) return std::nullopt;
  return ec;
}

/// Beast 1.74 asserts (BOOST_ASSERT(n >= 5) in parse_chunk_header: an abort in builds without
/// NDEBUG) when put() is called again, after the last-chunk line "0\r\n" was parsed, with
/// fewer than 5 bytes. Such bytes can neither end nor break the body: wait for more.
template <bool IsRequest>
bool must_wait(const Parser<IsRequest>& p, std::string_view rest) {
  return p.is_header_done() && p.chunked() && rest.size() < 5 && rest.starts_with("0\r\n");
}

}  // namespace

struct MessageParser::Impl {
  bool request;
  ParserLimits limits;
  std::unique_ptr<Parser<true>> req;
  std::unique_ptr<Parser<false>> resp;
  std::string buf;       // received, not yet consumed by the parser
  std::string head_raw;  // the first bytes of this message (header_limit at most) while its header is not complete
  std::size_t head_consumed = 0;  // bytes of this message the parser took while its header was not complete
  bool any_input = false;

  /// The error a header that is not complete yet has when parsed in one go (header_error).
  std::optional<beast::error_code> header_error_now() const {
    if (request) return header_error<true>(head_raw, limits);
    return header_error<false>(head_raw, limits);
  }

  template <class F>
  decltype(auto) with(F&& f) {
    if (request) return f(*req);
    return f(*resp);
  }
  template <class F>
  decltype(auto) with(F&& f) const {
    if (request) return f(static_cast<const Parser<true>&>(*req));
    return f(static_cast<const Parser<false>&>(*resp));
  }
};

MessageParser::MessageParser(bool request, ParserLimits limits) : impl_(std::make_unique<Impl>()) {
  impl_->request = request;
  impl_->limits = limits;
  if (request) {
    impl_->req = std::make_unique<Parser<true>>();
    setup_parser(*impl_->req, limits);
  } else {
    impl_->resp = std::make_unique<Parser<false>>();
    setup_parser(*impl_->resp, limits);
  }
}

MessageParser::~MessageParser() = default;

void MessageParser::skip_body() {
  impl_->with([](auto& p) { p.skip(true); });
}

void MessageParser::feed(std::string_view data) {
  Impl& m = *impl_;
  // Nothing new: put() again on the same bytes after need_more gains nothing (and trips
  // Beast's assertion after a last chunk, see must_wait).
  if (data.empty()) return;
  m.any_input = true;
  m.buf.append(data);
  const std::size_t limit = m.limits.header_limit;
  m.with([&](auto& p) {
    if (!p.is_header_done() && m.head_raw.size() < limit) m.head_raw.append(data.substr(0, limit - m.head_raw.size()));
    std::size_t off = 0;
    while (!p.is_done() && off < m.buf.size()) {
      std::string_view rest(m.buf.data() + off, m.buf.size() - off);
      const std::size_t available = rest.size();
      const bool in_header = !p.is_header_done();
      // The header must end within the first header_limit bytes: show the parser no more.
      if (in_header) rest = rest.substr(0, limit - std::min(limit, m.head_consumed));
      const bool window_full = in_header && m.head_consumed + rest.size() >= limit;
      if (must_wait(p, rest)) break;
      beast::error_code ec;
      if (!rest.empty()) {
        std::size_t n = p.put(boost::asio::const_buffer(rest.data(), rest.size()), ec);
        off += n;
        if (in_header) m.head_consumed += n;
        if (!ec && n == 0) break;
      } else {
        ec = bhttp::error::need_more;
      }
      if (ec == bhttp::error::need_more) {
        // The header ended inside a put() cut short to the header window: the body (a last
        // chunk's trailer, say) goes on in bytes the parser has not been shown yet.
        if (in_header && p.is_header_done() && rest.size() < available) continue;
        if (!window_full || p.is_header_done()) break;
        // A bad byte in the window is a bad message (as when it all came at once), not a large header.
        ec = m.header_error_now().value_or(bhttp::error::header_limit);
      }
      if (ec) {
        m.buf.erase(0, off);
        throw to_parse_error(ec);
      }
    }
    m.buf.erase(0, off);
    if (p.is_header_done() && !m.head_raw.empty()) std::string().swap(m.head_raw);
  });
}

void MessageParser::feed_eof() {
  Impl& m = *impl_;
  m.with([&](auto& p) {
    if (p.is_done()) return;
    if (!m.any_input) throw ParseError(ParseErrorKind::incomplete, "connection closed before a message");
    if (!p.is_header_done()) {
      if (auto e = m.header_error_now()) throw to_parse_error(*e);
    }
    beast::error_code ec;
    p.put_eof(ec);
    if (ec) throw to_parse_error(ec);
  });
}

bool MessageParser::header_done() const noexcept {
  return impl_->with([](const auto& p) { return p.is_header_done(); });
}
bool MessageParser::done() const noexcept {
  return impl_->with([](const auto& p) { return p.is_done(); });
}
bool MessageParser::body_until_eof() const noexcept {
  return impl_->with(
      [](const auto& p) { return p.is_header_done() && p.need_eof() && !p.chunked() && !p.content_length(); });
}
bool MessageParser::idle() const noexcept { return !impl_->any_input; }

MessageHead& MessageParser::head() noexcept {
  if (impl_->request) return impl_->req->head;
  return impl_->resp->head;
}

std::string MessageParser::take_body() {
  return impl_->with([](auto& p) {
    std::string out;
    out.swap(p.body);
    return out;
  });
}

std::size_t MessageParser::body_buffered() const noexcept {
  return impl_->with([](const auto& p) { return p.body.size(); });
}

std::string MessageParser::take_leftover() {
  std::string out;
  out.swap(impl_->buf);
  return out;
}

}  // namespace concur::http::detail
