// MessageParser over Boost.Beast's basic_parser (Beast is a maintained, fuzzed HTTP/1 parser
// shipped by Debian's libboost-dev; only this file includes it).
#include "parser.hpp"

#include <limits>

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
  void on_field_impl(bhttp::field /*f*/, beast::string_view name, beast::string_view value,
                     beast::error_code& /*ec*/) override {
    head.headers.add(std::string(name.data(), name.size()), std::string(value.data(), value.size()));
  }
  void on_header_impl(beast::error_code& /*ec*/) override {
    head.keep_alive = this->keep_alive();
    head.chunked = this->chunked();
    if (auto len = this->content_length()) head.content_length = *len;
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

}  // namespace

struct MessageParser::Impl {
  bool request;
  std::unique_ptr<Parser<true>> req;
  std::unique_ptr<Parser<false>> resp;
  std::string buf;  // received, not yet consumed by the parser
  bool any_input = false;

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
  auto setup = [&](auto& p) {
    p.header_limit(limits.header_limit);
    // "No limit" is the largest value, not boost::none: Beast 1.74 compares a content length
    // with the optional limit and counts none as smaller than any length.
    p.body_limit(limits.body_limit.value_or(std::numeric_limits<std::uint64_t>::max()));
    p.eager(true);
  };
  if (request) {
    impl_->req = std::make_unique<Parser<true>>();
    setup(*impl_->req);
  } else {
    impl_->resp = std::make_unique<Parser<false>>();
    setup(*impl_->resp);
  }
}

MessageParser::~MessageParser() = default;

void MessageParser::skip_body() {
  impl_->with([](auto& p) { p.skip(true); });
}

void MessageParser::feed(std::string_view data) {
  Impl& m = *impl_;
  if (!data.empty()) m.any_input = true;
  m.buf.append(data);
  m.with([&](auto& p) {
    std::size_t off = 0;
    while (!p.is_done() && off < m.buf.size()) {
      beast::error_code ec;
      std::size_t n = p.put(boost::asio::const_buffer(m.buf.data() + off, m.buf.size() - off), ec);
      off += n;
      if (ec == bhttp::error::need_more) break;
      if (ec) {
        m.buf.erase(0, off);
        throw to_parse_error(ec);
      }
      if (n == 0) break;
    }
    m.buf.erase(0, off);
  });
}

void MessageParser::feed_eof() {
  Impl& m = *impl_;
  m.with([&](auto& p) {
    if (p.is_done()) return;
    if (!m.any_input) throw ParseError(ParseErrorKind::incomplete, "connection closed before a message");
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
