#pragma once
// HTTP/1.x message parsing for the client and the server: a thin wrapper over Boost.Beast's
// basic_parser (kept out of every public header: Beast is template-heavy), with the
// connection's input buffer, so that bytes after one message (pipelining) stay for the next.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "concur/http/common.hpp"

namespace concur::http::detail {

enum class ParseErrorKind {
  bad_message,       // malformed start line, header, chunk (a 400 / InvalidResponseError)
  header_too_large,  // past the header limit (431)
  body_too_large,    // past the body limit (413)
  incomplete,        // EOF in the middle of a message
};

class ParseError : public std::runtime_error {
 public:
  ParseError(ParseErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  [[nodiscard]] ParseErrorKind kind() const noexcept { return kind_; }

 private:
  ParseErrorKind kind_;
};

/// A request or response head.
struct MessageHead {
  std::string method;  // requests
  std::string target;  // requests
  int status = 0;      // responses
  std::string reason;  // responses
  int version = 11;    // 10 or 11
  Headers headers;
  bool keep_alive = true;
  bool chunked = false;
  std::optional<std::uint64_t> content_length;
};

struct ParserLimits {
  std::uint32_t header_limit = 64 * 1024;
  std::optional<std::uint64_t> body_limit;  // none: unlimited
};

/// Parses one message. Feed it bytes with feed(); it buffers what it cannot use yet.
class MessageParser {
 public:
  MessageParser(bool request, ParserLimits limits);
  ~MessageParser();
  MessageParser(const MessageParser&) = delete;
  MessageParser& operator=(const MessageParser&) = delete;

  /// The message has no body whatever its headers say (a response to HEAD).
  void skip_body();
  /// Appends `data` and parses as far as it can. Throws ParseError.
  void feed(std::string_view data);
  /// The connection reached EOF: ends a body delimited by EOF; throws ParseError(incomplete)
  /// when a message had started and is not complete.
  void feed_eof();
  [[nodiscard]] bool header_done() const noexcept;
  [[nodiscard]] bool done() const noexcept;
  /// True when the body ends only at EOF (a response without length or chunking).
  [[nodiscard]] bool body_until_eof() const noexcept;
  /// True when no byte of a message has arrived yet.
  [[nodiscard]] bool idle() const noexcept;
  [[nodiscard]] MessageHead& head() noexcept;
  /// Body bytes parsed since the last call.
  std::string take_body();
  [[nodiscard]] std::size_t body_buffered() const noexcept;
  /// Bytes received after the end of this message (the next pipelined message).
  std::string take_leftover();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace concur::http::detail
