// asyncio streams over TCP (IPv4, IPv6) and Unix sockets: echo, every read form, EOF and
// half-close, errors (refused, reset, closed peer), cancel safety of reads, back-pressure,
// many connections, and no leaked file descriptors after each test. Both backends.
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <any>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "../support/helpers.hpp"
#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;

namespace {

using concur::test::open_fd_count;

class StreamsTest : public concur::test::BackendTest {
 protected:
  void SetUp() override { fds_before_ = open_fd_count(); }
  void TearDown() override { EXPECT_EQ(open_fd_count(), fds_before_) << "file descriptors leaked"; }
  int fds_before_ = 0;
};

aio::Coro<void> echo_lines(aio::StreamReader r, aio::StreamWriter w) {
  for (;;) {
    std::string line = co_await r.readline();
    if (line.empty()) break;
    w.write(line);
    co_await w.drain();
  }
  w.close();
}

aio::Coro<void> echo_bytes(aio::StreamReader r, aio::StreamWriter w) {
  for (;;) {
    std::string data = co_await r.read(65536);
    if (data.empty()) break;
    w.write(data);
    co_await w.drain();
  }
  w.close();
}

bool have_ipv6() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TEST_P(StreamsTest, EchoLinesOverTcp) {
  std::vector<std::string> got = run_main([]() -> aio::Coro<std::vector<std::string>> {
    aio::Server server = co_await aio::start_server(echo_lines, "127.0.0.1", 0);
    EXPECT_GT(server.port(), 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    std::vector<std::string> out;
    for (int i = 0; i < 100; ++i) {
      w.write("line " + std::to_string(i) + "\n");
      co_await w.drain();
      out.push_back(co_await r.readline());
    }
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
    co_return out;
  });
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], "line " + std::to_string(i) + "\n");
}

TEST_P(StreamsTest, ReadFormsAndEof) {
  run_main([]() -> aio::Coro<void> {
    auto handler = [](aio::StreamReader, aio::StreamWriter w) -> aio::Coro<void> {
      w.write("abcdef\r\n\r\nHEADXYZtail");
      co_await w.drain();
      w.close();
    };
    aio::Server server = co_await aio::start_server(handler, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    EXPECT_EQ(co_await r.readexactly(3), "abc");
    EXPECT_EQ(co_await r.readuntil("\r\n\r\n"), "def\r\n\r\n");
    EXPECT_EQ(co_await r.read(4), "HEAD");
    EXPECT_EQ(co_await r.readuntil("Z"), "XYZ");
    EXPECT_EQ(co_await r.read(), "tail");
    EXPECT_TRUE(r.at_eof());
    EXPECT_EQ(co_await r.read(), "");
    EXPECT_EQ(co_await r.readline(), "");
    try {
      (void)co_await r.readexactly(1);
      ADD_FAILURE() << "readexactly at EOF must throw";
    } catch (const aio::IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "");
      EXPECT_EQ(e.expected(), 1u);
    }
    w.close();
    server.close();
    co_await server.wait_closed();
  });
}

TEST_P(StreamsTest, IncompleteReadKeepsThePartialData) {
  run_main([]() -> aio::Coro<void> {
    auto handler = [](aio::StreamReader, aio::StreamWriter w) -> aio::Coro<void> {
      w.write("12345");
      w.close();
      co_return;
    };
    aio::Server server = co_await aio::start_server(handler, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    try {
      (void)co_await r.readexactly(10);
      ADD_FAILURE() << "expected IncompleteReadError";
    } catch (const aio::IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "12345");
      EXPECT_EQ(e.expected(), 10u);
    }
    w.close();
    server.close();
    co_await server.wait_closed();
  });
}

TEST_P(StreamsTest, ReaduntilLimitOverrunLeavesDataAndReadlineDropsLine) {
  run_main([]() -> aio::Coro<void> {
    aio::StreamReader r(16);
    r.feed_data(std::string(40, 'x'));
    try {
      (void)co_await r.readuntil("\n");
      ADD_FAILURE() << "expected LimitOverrunError";
    } catch (const aio::LimitOverrunError&) {
    }
    EXPECT_EQ(r.buffered(), 40u);  // readuntil leaves the data
    r.feed_data("\nnext\n");
    EXPECT_THROW((void)co_await r.readline(), aio::LimitOverrunError);
    EXPECT_EQ(co_await r.readline(), "next\n");  // the long line was dropped
    r.feed_eof();
    EXPECT_TRUE(r.at_eof());
  });
}

TEST_P(StreamsTest, HalfCloseClientWriteEofServerStillAnswers) {
  std::string got = run_main([]() -> aio::Coro<std::string> {
    auto handler = [](aio::StreamReader r, aio::StreamWriter w) -> aio::Coro<void> {
      std::string all = co_await r.read();  // until the client's EOF
      w.write("got " + std::to_string(all.size()) + " bytes");
      co_await w.drain();
      w.close();
    };
    aio::Server server = co_await aio::start_server(handler, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    EXPECT_TRUE(w.can_write_eof());
    w.write(std::string(100000, 'a'));
    w.write_eof();
    std::string answer = co_await r.read();
    w.close();
    server.close();
    co_await server.wait_closed();
    co_return answer;
  });
  EXPECT_EQ(got, "got 100000 bytes");
}

TEST_P(StreamsTest, ConnectionRefusedNamesTheAddress) {
  // A port with no listener: bind one, read its number, close it.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  std::string what = run_main([port]() -> aio::Coro<std::string> {
    try {
      (void)co_await aio::open_connection("127.0.0.1", port);
    } catch (const concur::ConnectionRefusedError& e) {
      co_return e.what();
    }
    co_return "no error";
  });
  EXPECT_NE(what.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << what;
  EXPECT_NE(what.find("refused"), std::string::npos) << what;
}

TEST_P(StreamsTest, PeerResetMidReadIsConnectionResetError) {
  bool reset = run_main([]() -> aio::Coro<bool> {
    auto handler = [](aio::StreamReader, aio::StreamWriter w) -> aio::Coro<void> {
      w.write("partial");
      co_await w.drain();
      int fd = std::any_cast<int>(w.get_extra_info("socket"));
      linger lg{1, 0};  // close with RST
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      w.transport().abort();
    };
    aio::Server server = co_await aio::start_server(handler, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    bool got_reset = false;
    try {
      std::string first = co_await r.readexactly(7);
      EXPECT_EQ(first, "partial");
      (void)co_await r.readexactly(100);  // the reset arrives instead
    } catch (const concur::ConnectionResetError&) {
      got_reset = true;
    } catch (const aio::IncompleteReadError&) {
      got_reset = true;  // the RST may be seen as an EOF when "partial" was read first
    }
    w.close();
    server.close();
    co_await server.wait_closed();
    co_return got_reset;
  });
  EXPECT_TRUE(reset);
}

TEST_P(StreamsTest, WritingToAClosedPeerFailsDrain) {
  bool failed = run_main([]() -> aio::Coro<bool> {
    auto handler = [](aio::StreamReader, aio::StreamWriter w) -> aio::Coro<void> {
      int fd = std::any_cast<int>(w.get_extra_info("socket"));
      linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      w.transport().abort();
      co_return;
    };
    aio::Server server = co_await aio::start_server(handler, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    bool error = false;
    try {
      for (int i = 0; i < 2000; ++i) {
        w.write(std::string(4096, 'z'));
        co_await w.drain();
        co_await aio::sleep(1ms);
      }
    } catch (const concur::ConnectionError&) {
      error = true;
    }
    EXPECT_TRUE(w.is_closing());
    w.close();
    server.close();
    co_await server.wait_closed();
    co_return error;
  });
  EXPECT_TRUE(failed);
}

TEST_P(StreamsTest, TimedOutReadLeavesTheConnectionUsable) {
  run_main([]() -> aio::Coro<void> {
    aio::Event go;
    auto handler = [&go](aio::StreamReader, aio::StreamWriter w) -> aio::Coro<void> {
      w.write("par");
      co_await w.drain();
      co_await go.wait();
      w.write("tial line\n");
      co_await w.drain();
      w.close();
    };
    aio::Server server = co_await aio::start_server(handler, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    EXPECT_THROW((void)co_await aio::wait_for(r.readline(), 30ms), concur::TimeoutError);
    EXPECT_THROW((void)co_await aio::wait_for(r.readexactly(50), 10ms), concur::TimeoutError);
    go.set();
    EXPECT_EQ(co_await r.readline(), "partial line\n");  // nothing was lost
    w.close();
    server.close();
    co_await server.wait_closed();
  });
}

TEST_P(StreamsTest, SlowReaderCausesBackPressure) {
  std::size_t received = run_main([]() -> aio::Coro<std::size_t> {
    std::size_t max_buffer = 0;
    auto handler = [&max_buffer](aio::StreamReader, aio::StreamWriter w) -> aio::Coro<void> {
      std::string chunk(64 * 1024, 'b');
      for (int i = 0; i < 64; ++i) {  // 4 MiB
        w.write(chunk);
        co_await w.drain();
        max_buffer = std::max(max_buffer, w.transport().get_write_buffer_size());
      }
      w.close();
    };
    aio::Server server = co_await aio::start_server(handler, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    std::size_t total = 0;
    for (;;) {
      std::string d = co_await r.read(16 * 1024);
      if (d.empty()) break;
      total += d.size();
      if (total < 1024 * 1024) co_await aio::sleep(100us);  // slow at first
    }
    // After each drain() the buffer is at most the high-water mark plus one write.
    EXPECT_LE(max_buffer, 64u * 1024 + 64u * 1024);
    w.close();
    server.close();
    co_await server.wait_closed();
    co_return total;
  });
  EXPECT_EQ(received, 4u * 1024 * 1024);
}

TEST_P(StreamsTest, UnixSocketEcho) {
  std::string path = "/tmp/concur-test-" + std::to_string(::getpid()) + "-" + GetParam() + ".sock";
  std::string got = run_main([path]() -> aio::Coro<std::string> {
    aio::Server server = co_await aio::start_unix_server(echo_bytes, path);
    auto [r, w] = co_await aio::open_unix_connection(path);
    w.write("over a unix socket");
    w.write_eof();
    std::string back = co_await r.read();
    w.close();
    server.close();
    co_await server.wait_closed();
    co_return back;
  });
  EXPECT_EQ(got, "over a unix socket");
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket file is removed at close";
}

TEST_P(StreamsTest, Ipv6Echo) {
  if (!have_ipv6()) GTEST_SKIP() << "no IPv6 loopback here";
  std::string got = run_main([]() -> aio::Coro<std::string> {
    aio::Server server = co_await aio::start_server(echo_bytes, "::1", 0);
    auto [r, w] = co_await aio::open_connection("::1", server.port());
    auto peer = std::any_cast<aio::SocketAddress>(w.get_extra_info("peername"));
    EXPECT_EQ(peer.host, "::1");
    EXPECT_EQ(peer.port, server.port());
    w.write("six");
    w.write_eof();
    std::string back = co_await r.read();
    w.close();
    server.close();
    co_await server.wait_closed();
    co_return back;
  });
  EXPECT_EQ(got, "six");
}

TEST_P(StreamsTest, PeernameAndSockname) {
  run_main([]() -> aio::Coro<void> {
    aio::Server server = co_await aio::start_server(echo_bytes, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    auto peer = std::any_cast<aio::SocketAddress>(w.get_extra_info("peername"));
    auto local = std::any_cast<aio::SocketAddress>(w.get_extra_info("sockname"));
    EXPECT_EQ(peer.to_string(), "127.0.0.1:" + std::to_string(server.port()));
    EXPECT_EQ(local.host, "127.0.0.1");
    EXPECT_NE(local.port, 0);
    EXPECT_FALSE(w.get_extra_info("nonsense").has_value());
    EXPECT_EQ(server.sockets().size(), 1u);
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
  });
}

TEST_P(StreamsTest, ManyConnectionsOpenedAndClosed) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const int n = static_cast<int>(concur::test::stress_iters(2000));  // sanitizers are ~10x slower
#else
  const int n = static_cast<int>(concur::test::stress_iters(10000));
#endif
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rlimit want = rl;
  want.rlim_cur = std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(2 * n + 256));
  ::setrlimit(RLIMIT_NOFILE, &want);
  int served = run_main([n]() -> aio::Coro<int> {
    int count = 0;
    auto handler = [&count](aio::StreamReader r, aio::StreamWriter w) -> aio::Coro<void> {
      std::string hello = co_await r.readline();
      if (hello == "hi\n") ++count;
      w.write("bye\n");
      co_await w.drain();
      w.close();
    };
    aio::Server server = co_await aio::start_server(handler, "127.0.0.1", 0, {}, {.backlog = 1024});
    // In waves: open many at once, then close them all.
    const int wave = std::min(n, 1000);
    for (int done = 0; done < n; done += wave) {
      std::vector<std::pair<aio::StreamReader, aio::StreamWriter>> conns;
      for (int i = 0; i < wave && done + i < n; ++i)
        conns.push_back(co_await aio::open_connection("127.0.0.1", server.port()));
      for (auto& c : conns) c.second.write("hi\n");
      for (auto& c : conns) EXPECT_EQ(co_await c.first.readline(), "bye\n");
      for (auto& c : conns) c.second.close();
      for (auto& c : conns) co_await c.second.wait_closed();
    }
    server.close();
    co_await server.wait_closed();
    co_return count;
  });
  ::setrlimit(RLIMIT_NOFILE, &rl);
  EXPECT_EQ(served, n);
}

TEST_P(StreamsTest, ServeForeverEndsWhenCancelledAndClosesTheServer) {
  run_main([]() -> aio::Coro<void> {
    aio::Server server = co_await aio::start_server(echo_bytes, "127.0.0.1", 0, {}, {.start_serving = false});
    EXPECT_FALSE(server.is_serving());
    aio::Task<void> t = aio::create_task(server.serve_forever());
    co_await concur::test::settle();
    EXPECT_TRUE(server.is_serving());
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    w.write("x");
    EXPECT_EQ(co_await r.read(1), "x");
    t.cancel();
    EXPECT_THROW(co_await t, concur::CancelledError);
    EXPECT_FALSE(server.is_serving());
    EXPECT_EQ(server.active_connections(), 1u);
    w.close();
    co_await server.wait_closed();  // returns once the accepted connection is gone
    EXPECT_EQ(server.active_connections(), 0u);
  });
}

TEST_P(StreamsTest, ClientCallbackExceptionIsReportedAndClosesTheConnection) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    auto handler = [](aio::StreamReader r, aio::StreamWriter) -> aio::Coro<void> {
      (void)co_await r.readline();
      throw std::runtime_error("handler failed");
    };
    aio::Server server = co_await aio::start_server(handler, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    w.write("hello\n");
    EXPECT_EQ(co_await r.read(), "");  // the server side was closed
    w.close();
    server.close();
    co_await server.wait_closed();
  });
  ASSERT_GE(rec.count(), 1u);
  EXPECT_NE(rec.get()[0].what.find("handler failed"), std::string::npos);
}

TEST_P(StreamsTest, OpenConnectionCancelledWhileResolvingOrConnectingLeaksNothing) {
  run_main([]() -> aio::Coro<void> {
    aio::Server server = co_await aio::start_server(echo_bytes, "127.0.0.1", 0);
    for (int i = 0; i < 50; ++i) {
      aio::Task<std::pair<aio::StreamReader, aio::StreamWriter>> t =
          aio::create_task(aio::open_connection("127.0.0.1", server.port()));
      t.cancel();
      try {
        auto rw = co_await t;
        rw.second.close();
        co_await rw.second.wait_closed();
      } catch (const concur::CancelledError&) {
      }
    }
    co_await concur::test::settle(20);
    server.close();
    co_await server.wait_closed();
  });
}

TEST_P(StreamsTest, LoopClosedWithOpenConnectionsReleasesTheirSockets) {
  // The fixture checks that no descriptor is left.
  run_main([]() -> aio::Coro<void> {
    aio::Server server = co_await aio::start_server(echo_bytes, "127.0.0.1", 0);
    auto rw = co_await aio::open_connection("127.0.0.1", server.port());
    rw.second.write("x");
    EXPECT_EQ(co_await rw.first.read(1), "x");
    // Return without closing anything: asyncio::run closes the loop.
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, StreamsTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
