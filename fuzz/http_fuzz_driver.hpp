#pragma once
// The logic shared by the fuzz targets (fuzz/http_parser_fuzz.cpp, fuzz/url_fuzz.cpp) and the
// corpus regression tests (tests/http/test_parser_corpus.cpp): each check_*() runs one input and
// returns "" when every invariant holds, else a message saying which one broke. The fuzz targets
// trap on a message; the tests fail with it. ParseError / InvalidURL are expected outcomes; any
// other exception propagates (a finding: libFuzzer reports it as a crash, the tests as a failure).
//
// HTTP input format (tests/http/corpus/README.md): byte 0 is the mode byte,
//   bit 0     0: parse requests, 1: parse responses
//   bits 1-2  how the bytes are fed: 0 all at once, 1 one byte at a time, 2 or 3 in pieces whose
//             sizes come from the input: byte 1's low 4 bits + 1 = k, then k bytes, each + 1 = a
//             piece size (used in turn, cycling)
//   bit 3     every message has no body whatever its headers say (responses to HEAD: skip_body())
//   bit 4     small limits: header_limit 256, body_limit 64 (else 64 KiB and unlimited)
//   bits 5-7  unused
// and the rest of the input is the byte stream (one message or several pipelined ones).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../src/http/parser.hpp"

#include "concur/http/common.hpp"

namespace concur::http::fuzz {

struct HttpMode {
  bool request = true;
  bool skip_body = false;
  bool small_limits = false;
  std::vector<std::size_t> pieces;  // empty: all at once; {1}: byte by byte
};

/// Splits an input into its mode and its byte stream.
inline HttpMode decode_http_input(std::string_view input, std::string_view& stream) {
  HttpMode m;
  if (input.empty()) {
    stream = {};
    return m;
  }
  auto mode = static_cast<unsigned char>(input[0]);
  input.remove_prefix(1);
  m.request = (mode & 1U) == 0;
  m.skip_body = (mode & 8U) != 0;
  m.small_limits = (mode & 16U) != 0;
  unsigned split = (mode >> 1U) & 3U;
  if (split == 1) {
    m.pieces = {1};
  } else if (split >= 2) {
    std::size_t k = input.empty() ? 1 : (static_cast<unsigned char>(input[0]) & 15U) + 1;
    if (!input.empty()) input.remove_prefix(1);
    for (std::size_t i = 0; i < k && !input.empty(); ++i) {
      m.pieces.push_back(static_cast<std::size_t>(static_cast<unsigned char>(input[0])) + 1);
      input.remove_prefix(1);
    }
    if (m.pieces.empty()) m.pieces = {1};
  }
  stream = input;
  return m;
}

struct ParsedMessage {
  detail::MessageHead head;
  std::string body;
};

/// What parsing a byte stream gave: the whole messages, then how it ended.
struct HttpOutcome {
  std::vector<ParsedMessage> messages;
  std::optional<detail::ParseErrorKind> error;  // none: the stream ended between messages
  std::string failure;                          // a broken invariant
};

inline const char* kind_name(std::optional<detail::ParseErrorKind> k) {
  if (!k) return "clean end";
  switch (*k) {
    case detail::ParseErrorKind::bad_message:
      return "bad_message";
    case detail::ParseErrorKind::header_too_large:
      return "header_too_large";
    case detail::ParseErrorKind::body_too_large:
      return "body_too_large";
    case detail::ParseErrorKind::incomplete:
      return "incomplete";
  }
  return "?";
}

inline bool same_head(const detail::MessageHead& a, const detail::MessageHead& b) {
  return a.method == b.method && a.target == b.target && a.status == b.status && a.reason == b.reason &&
         a.version == b.version && a.keep_alive == b.keep_alive && a.chunked == b.chunked &&
         a.content_length == b.content_length && a.headers.size() == b.headers.size() &&
         std::equal(a.headers.begin(), a.headers.end(), b.headers.begin());
}

/// Parses `stream` fed in `pieces` (empty: at once), pipelined: after each whole message a new
/// parser takes the leftover bytes. Checks the per-message invariants on the way.
inline HttpOutcome parse_stream(std::string_view stream, const HttpMode& mode, const std::vector<std::size_t>& pieces) {
  HttpOutcome out;
  detail::ParserLimits limits;
  if (mode.small_limits) {
    limits.header_limit = 256;
    limits.body_limit = 64;
  }
  auto make = [&] {
    auto p = std::make_unique<detail::MessageParser>(mode.request, limits);
    if (mode.skip_body) p->skip_body();
    return p;
  };
  std::unique_ptr<detail::MessageParser> parser = make();
  std::optional<detail::MessageHead> head_at_header;  // the head when header_done() first held
  std::string body;
  auto fail = [&](const std::string& what) {
    if (out.failure.empty()) out.failure = what + " (message " + std::to_string(out.messages.size()) + ")";
  };
  // Collects what the parser has now; hands whole messages over and goes on with the leftover.
  auto collect = [&] {
    for (;;) {
      if (parser->done() && !parser->header_done()) fail("done() without header_done()");
      if (parser->header_done() && !head_at_header) head_at_header = parser->head();
      body += parser->take_body();
      if (!parser->done()) return;
      const detail::MessageHead& h = parser->head();
      if (!head_at_header || !same_head(*head_at_header, h)) fail("the head changed after header_done()");
      bool no_body = mode.skip_body || (!mode.request && (h.status / 100 == 1 || h.status == 204 || h.status == 304));
      if (no_body && !body.empty()) fail("a body on a message that has none");
      if (!no_body && h.content_length && !h.chunked && body.size() != *h.content_length) {
        fail("body length " + std::to_string(body.size()) + " != Content-Length " + std::to_string(*h.content_length));
      }
      if (mode.request && !h.content_length && !h.chunked && !body.empty()) fail("a request body without a length");
      if (h.chunked && h.content_length) fail("chunked and Content-Length both accepted");
      out.messages.push_back({h, std::move(body)});
      body.clear();
      head_at_header.reset();
      std::string leftover = parser->take_leftover();
      parser = make();
      parser->feed(leftover);
    }
  };
  try {
    if (pieces.empty()) {
      parser->feed(stream);
      collect();
    } else {
      std::size_t i = 0;
      while (!stream.empty()) {
        std::size_t n = std::min(pieces[i++ % pieces.size()], stream.size());
        parser->feed(stream.substr(0, n));
        stream.remove_prefix(n);
        collect();
      }
    }
    bool was_idle = parser->idle();
    try {
      parser->feed_eof();
    } catch (const detail::ParseError& e) {
      if (was_idle && e.kind() == detail::ParseErrorKind::incomplete) return out;  // EOF between messages
      throw;
    }
    if (was_idle) fail("feed_eof() on an idle parser did not throw");
    if (!parser->done()) fail("feed_eof() returned but the message is not done");
    collect();
    if (!parser->idle()) fail("bytes left after a message ended by EOF");
  } catch (const detail::ParseError& e) {
    out.error = e.kind();
  }
  return out;
}

inline std::string describe(const HttpOutcome& o) {
  std::string s = std::to_string(o.messages.size()) + " message(s), " + kind_name(o.error);
  return s;
}

/// Compares two outcomes of the same stream; "" when equal.
/// Both outcomes reject the rest of the stream, for different reasons. Beast's chunk-header
/// scanning (a chunk extension's quoted string, the chunk size against the body limit) finds
/// an error in a different place when bytes trickle in than when they come at once. Neither
/// way accepts the message, and the messages before it must still be the same: that is what a
/// server or client relies on.
inline bool both_reject(const HttpOutcome& a, const HttpOutcome& b) { return a.error && b.error; }

inline std::string compare(const HttpOutcome& a, const HttpOutcome& b, const char* what) {
  std::string why;
  if (a.messages.size() != b.messages.size() || (a.error != b.error && !both_reject(a, b))) {
    why = describe(a) + " vs " + describe(b);
  } else {
    for (std::size_t i = 0; i < a.messages.size() && why.empty(); ++i) {
      if (!same_head(a.messages[i].head, b.messages[i].head)) why = "head of message " + std::to_string(i) + " differs";
      if (a.messages[i].body != b.messages[i].body) why = "body of message " + std::to_string(i) + " differs";
    }
  }
  return why.empty() ? why : std::string("fed whole vs ") + what + ": " + why;
}

/// Runs one HTTP fuzz input (format above); "" when every invariant holds.
inline std::string check_http_input(std::string_view input) {
  std::string_view stream;
  HttpMode mode = decode_http_input(input, stream);
  HttpOutcome whole = parse_stream(stream, mode, {});
  if (!whole.failure.empty()) return "fed whole: " + whole.failure;
  HttpOutcome bytes = parse_stream(stream, mode, {1});
  if (!bytes.failure.empty()) return "fed byte by byte: " + bytes.failure;
  if (auto why = compare(whole, bytes, "byte by byte"); !why.empty()) return why;
  if (!mode.pieces.empty() && mode.pieces != std::vector<std::size_t>{1}) {
    HttpOutcome split = parse_stream(stream, mode, mode.pieces);
    if (!split.failure.empty()) return "fed in pieces: " + split.failure;
    if (auto why = compare(whole, split, "in pieces"); !why.empty()) return why;
  }
  return {};
}

// ---- URLs --------------------------------------------------------------------------------------

inline bool same_url(const URL& a, const URL& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port && a.path == b.path && a.query == b.query;
}

inline std::string url_fields(const URL& u) {
  return "{" + u.scheme + "|" + u.host + "|" + std::to_string(u.port) + "|" + u.path + "|" + u.query + "}";
}

/// URL::parse(u.str()) gives u back (but the fragment, which str() leaves out).
inline std::string check_round_trip(const URL& u, const char* what) {
  std::string text = u.str();
  try {
    URL v = URL::parse(text);
    if (!same_url(u, v)) return std::string(what) + ": " + url_fields(u) + " -> '" + text + "' -> " + url_fields(v);
  } catch (const InvalidURL& e) {
    return std::string(what) + ": " + url_fields(u) + " -> '" + text + "' does not parse: " + e.what();
  }
  return {};
}

/// Runs one URL fuzz input: "base\nref" (no newline: the input is both); "" when all holds.
inline std::string check_url_input(std::string_view input) {
  std::string_view base = input;
  std::string_view ref = input;
  if (auto nl = input.find('\n'); nl != std::string_view::npos) {
    base = input.substr(0, nl);
    ref = input.substr(nl + 1);
  }
  try {
    URL u = URL::parse(base);
    if (auto why = check_round_trip(u, "parse"); !why.empty()) return why;
    (void)u.target();
    (void)u.authority();
    try {
      URL j = u.join(ref);
      if (auto why = check_round_trip(j, "join"); !why.empty()) return why;
    } catch (const InvalidURL&) {
    }
  } catch (const InvalidURL&) {
  }
  if (unquote(quote(input)) != input) return "unquote(quote(s)) != s";
  (void)unquote(input, true);
  Params params = parse_qs(input);
  if (parse_qs(urlencode(params)) != params) return "parse_qs(urlencode(parse_qs(s))) != parse_qs(s)";
  return {};
}

}  // namespace concur::http::fuzz
