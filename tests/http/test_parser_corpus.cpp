// Regression tests from the fuzzing corpus (tests/http/corpus/, see its README.md): every input
// the fuzz targets (fuzz/, tools/fuzz-http.sh) kept is replayed through the same driver
// (fuzz/http_fuzz_driver.hpp) with every invariant checked; plus the hostile shapes by hand.
#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "../../fuzz/http_fuzz_driver.hpp"
#include <gtest/gtest.h>

namespace {

namespace fs = std::filesystem;
using concur::http::detail::MessageParser;
using concur::http::detail::ParseError;
using concur::http::detail::ParseErrorKind;
using concur::http::detail::ParserLimits;

std::vector<fs::path> corpus(const std::string& name) {
  fs::path dir = fs::path(CONCUR_SOURCE_DIR) / "tests" / "http" / "corpus" / name;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs `check` on every input of the corpus; lists the inputs that failed and why.
void replay(const std::string& name, const std::function<std::string(std::string_view)>& check) {
  auto files = corpus(name);
  ASSERT_FALSE(files.empty()) << "no inputs in tests/http/corpus/" << name;
  std::string failures;
  for (const auto& f : files) {
    std::string why;
    try {
      why = check(read(f));
    } catch (const std::exception& e) {
      why = std::string("unexpected exception: ") + e.what();
    } catch (...) {
      why = "unexpected non-standard exception";
    }
    if (!why.empty()) failures += "  " + f.filename().string() + ": " + why + "\n";
  }
  EXPECT_TRUE(failures.empty()) << "corpus " << name << " (" << files.size() << " inputs), failed:\n" << failures;
}

TEST(ParserCorpus, Requests) { replay("request", concur::http::fuzz::check_http_input); }
TEST(ParserCorpus, Responses) { replay("response", concur::http::fuzz::check_http_input); }
TEST(ParserCorpus, Urls) { replay("url", concur::http::fuzz::check_url_input); }

/// Feeds `bytes` (whole or one byte at a time) to a request parser, then EOF; the error kind.
std::optional<ParseErrorKind> request_error(std::string_view bytes, ParserLimits limits = {}, bool bytewise = false) {
  MessageParser p(true, limits);
  try {
    if (bytewise) {
      for (char c : bytes) p.feed(std::string_view(&c, 1));
    } else {
      p.feed(bytes);
    }
    if (!p.done()) p.feed_eof();
  } catch (const ParseError& e) {
    return e.kind();
  }
  return std::nullopt;
}

TEST(ParserHostile, SmugglingIsBadMessage) {
  const char* shapes[] = {
      "POST / HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello",
      "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello!",
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nabc\r\n0\r\n\r\n",
  };
  for (const char* s : shapes) {
    EXPECT_EQ(request_error(s), ParseErrorKind::bad_message) << s;
    EXPECT_EQ(request_error(s, {}, true), ParseErrorKind::bad_message) << "byte by byte: " << s;
  }
}

TEST(ParserHostile, ResponseTransferEncodingWithContentLengthIsBadMessage) {
  MessageParser p(false, {});
  try {
    p.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nzzzz");
    FAIL() << "accepted";
  } catch (const ParseError& e) {
    EXPECT_EQ(e.kind(), ParseErrorKind::bad_message);
  }
}

TEST(ParserHostile, OversizedHeaderIsHeaderTooLarge) {
  ParserLimits limits;
  limits.header_limit = 256;
  std::string req = "GET / HTTP/1.1\r\nX-Long: " + std::string(1000, 'a') + "\r\n\r\n";
  EXPECT_EQ(request_error(req, limits), ParseErrorKind::header_too_large);
  EXPECT_EQ(request_error(req, limits, true), ParseErrorKind::header_too_large);
}

TEST(ParserHostile, MalformedHeaderIsBadMessageHoweverItArrives) {
  // Beast alone said "incomplete" byte by byte (it waits for the blank line) but bad_message whole.
  for (std::string_view s :
       {std::string_view("GET / HTTP/1.1\nHost: a\n\n"), std::string_view("GET / HTTP/1.1\r\nX\0Y: a\r\n", 25)}) {
    EXPECT_EQ(request_error(s), ParseErrorKind::bad_message);
    EXPECT_EQ(request_error(s, {}, true), ParseErrorKind::bad_message);
  }
}

TEST(ParserHostile, OversizedBodyIsBodyTooLarge) {
  ParserLimits limits;
  limits.body_limit = 64;
  EXPECT_EQ(request_error("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b'), limits),
            ParseErrorKind::body_too_large);
  std::string chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'c') +
                        "\r\n30\r\n" + std::string(48, 'd') + "\r\n0\r\n\r\n";
  EXPECT_EQ(request_error(chunked, limits), ParseErrorKind::body_too_large);
  EXPECT_EQ(request_error(chunked, limits, true), ParseErrorKind::body_too_large);
  EXPECT_EQ(request_error("POST / HTTP/1.1\r\nContent-Length: 64\r\n\r\n" + std::string(64, 'e'), limits),
            std::nullopt);
}

TEST(ParserHostile, EofMidBodyIsIncomplete) {
  EXPECT_EQ(request_error("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello"), ParseErrorKind::incomplete);
  EXPECT_EQ(request_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"), ParseErrorKind::incomplete);
  EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\n"), ParseErrorKind::incomplete);
}

TEST(ParserHostile, PipelinedLeftoverHandedOverIntact) {
  std::string second = "GET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.0\r\n\r\n\x00\xff partial";
  second.push_back('\0');
  MessageParser p(true, {});
  p.feed("POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + second);
  ASSERT_TRUE(p.done());
  EXPECT_EQ(p.head().target, "/1");
  EXPECT_EQ(p.take_body(), "abc");
  EXPECT_EQ(p.take_leftover(), second);
  MessageParser q(true, {});
  q.feed(second);
  ASSERT_TRUE(q.done());
  EXPECT_EQ(q.head().target, "/2");
  EXPECT_EQ(q.take_leftover(), second.substr(second.find("GET /3")));
}

TEST(ParserHostile, TrailersAreNotMergedIntoTheHeader) {
  MessageParser p(true, {});
  p.feed("POST / HTTP/1.1\r\nHost: good\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nHost: evil\r\n\r\n");
  ASSERT_TRUE(p.done());
  EXPECT_EQ(p.head().headers.get_all("Host"), std::vector<std::string>{"good"});
  EXPECT_EQ(p.take_body(), "abc");
}

TEST(ParserHostile, LastChunkSplitBeforeTheFinalCrlf) {
  // Beast asserts (debug builds) when "0\r\n" is followed by a put() of fewer than 5 bytes.
  std::string msg = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  EXPECT_EQ(request_error(msg, {}, true), std::nullopt);
  MessageParser p(true, {});
  p.feed(msg.substr(0, msg.size() - 2));
  p.feed("\r");
  p.feed("");
  EXPECT_FALSE(p.done());
  p.feed("\n");
  EXPECT_TRUE(p.done());
}

TEST(ParserHostile, BodyPastTheHeaderWindowParsesWhenItAllArrivesAtOnce) {
  // The parser is shown at most header_limit bytes until the header ends. A message whose
  // header ends inside that window and whose last chunk's trailer goes past it used to wait
  // forever ("incomplete") when it arrived in one piece, yet parse when it came byte by byte.
  ParserLimits limits;
  limits.header_limit = 256;
  const std::string msg =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: " + std::string(400, 'a') +
      "\r\n\r\n";
  EXPECT_EQ(request_error(msg, limits, true), std::nullopt);
  MessageParser p(true, limits);
  p.feed(msg + "GET /next HTTP/1.1\r\n");
  ASSERT_TRUE(p.done());
  EXPECT_EQ(p.take_body(), "abc");
  EXPECT_EQ(p.take_leftover(), "GET /next HTTP/1.1\r\n");
}

}  // namespace
