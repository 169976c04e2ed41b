// The event-driven API: Protocol / BufferedProtocol / DatagramProtocol with their transports,
// loop.create_server / create_connection / create_datagram_endpoint, flow control callbacks,
// pause/resume reading, add_reader/add_writer, and interoperability with Python's asyncio.
// Both backends; no file descriptor may leak from any test.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <any>
#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;

namespace {

using concur::test::open_fd_count;

class ProtocolsTest : public concur::test::BackendTest {
 protected:
  void SetUp() override { fds_before_ = open_fd_count(); }
  void TearDown() override { EXPECT_EQ(open_fd_count(), fds_before_) << "file descriptors leaked"; }
  int fds_before_ = 0;
};

/// Echoes everything back; records the lifecycle.
struct Echo : aio::Protocol {
  aio::Transport* tr = nullptr;
  void connection_made(aio::Transport& t) override { tr = &t; }
  void data_received(std::string_view data) override { tr->write(data); }
};

/// Collects what arrives; completes events at EOF and at connection_lost.
struct Collector : aio::Protocol {
  aio::Transport* tr = nullptr;
  std::string data;
  bool made = false, eof = false, lost = false;
  std::exception_ptr lost_with;
  aio::Event done;
  int pauses = 0, resumes = 0;
  void connection_made(aio::Transport& t) override {
    tr = &t;
    made = true;
  }
  void data_received(std::string_view d) override { data.append(d); }
  bool eof_received() override {
    eof = true;
    return false;
  }
  void connection_lost(std::exception_ptr e) override {
    lost = true;
    lost_with = e;
    tr = nullptr;
    done.set();
  }
  void pause_writing() override { ++pauses; }
  void resume_writing() override { ++resumes; }
};

}  // namespace

TEST_P(ProtocolsTest, EchoServerWithProtocols) {
  std::string got = run_main([]() -> aio::Coro<std::string> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::Server srv = co_await loop.create_server([] { return std::make_unique<Echo>(); }, "127.0.0.1", 0);
    auto [tr, proto] =
        co_await loop.create_connection([] { return std::make_unique<Collector>(); }, "127.0.0.1", srv.port());
    EXPECT_TRUE(proto->made);
    tr->write("hello ");
    tr->writelines({"pro", "to", "cols"});
    while (proto->data.size() < 15) co_await aio::sleep(1ms);
    tr->close();
    co_await proto->done.wait();
    EXPECT_TRUE(proto->lost);
    EXPECT_FALSE(proto->lost_with);
    EXPECT_TRUE(tr->is_closing());
    srv.close();
    co_await srv.wait_closed();
    co_return proto->data;
  });
  EXPECT_EQ(got, "hello protocols");
}

TEST_P(ProtocolsTest, EofReceivedFalseClosesAndLostFollows) {
  run_main([]() -> aio::Coro<void> {
    struct Closer : aio::Protocol {
      void connection_made(aio::Transport& t) override {
        t.write("bye");
        t.close();
      }
    };
    aio::Server srv = co_await aio::create_server([] { return std::make_unique<Closer>(); }, "127.0.0.1", 0);
    auto [tr, proto] =
        co_await aio::create_connection([] { return std::make_unique<Collector>(); }, "127.0.0.1", srv.port());
    co_await proto->done.wait();
    EXPECT_EQ(proto->data, "bye");
    EXPECT_TRUE(proto->eof);
    EXPECT_FALSE(proto->lost_with);
    srv.close();
    co_await srv.wait_closed();
  });
}

TEST_P(ProtocolsTest, PauseAndResumeReading) {
  run_main([]() -> aio::Coro<void> {
    struct Sender : aio::Protocol {
      void connection_made(aio::Transport& t) override {
        t.write(std::string(1000, 'p'));
        t.close();
      }
    };
    aio::Server srv = co_await aio::create_server([] { return std::make_unique<Sender>(); }, "127.0.0.1", 0);
    auto [tr, proto] =
        co_await aio::create_connection([] { return std::make_unique<Collector>(); }, "127.0.0.1", srv.port());
    tr->pause_reading();
    EXPECT_FALSE(tr->is_reading());
    co_await aio::sleep(20ms);
    EXPECT_EQ(proto->data.size(), 0u);  // nothing delivered while paused
    tr->resume_reading();
    EXPECT_TRUE(tr->is_reading());
    co_await proto->done.wait();
    EXPECT_EQ(proto->data.size(), 1000u);
    srv.close();
    co_await srv.wait_closed();
  });
}

TEST_P(ProtocolsTest, APauseFromAnotherConnectionsCallbackHoldsItsDataUntilResume) {
  // Two connections' data arrive for one poll; the first delivered pauses the other. With
  // batched reads (io_uring) the other's bytes are already read by then: they must wait for
  // resume_reading, and then come before anything newer, in order.
  run_main([]() -> aio::Coro<void> {
    struct Shared {
      std::vector<aio::Transport*> trs;
      std::vector<std::string> got;
      int paused = -1;
      bool resumed = false;
      bool delivered_while_paused = false;
    };
    auto sh = std::make_shared<Shared>();
    struct Side : aio::Protocol {
      std::shared_ptr<Shared> sh;
      std::size_t idx = 0;
      void connection_made(aio::Transport& t) override {
        idx = sh->trs.size();
        sh->trs.push_back(&t);
        sh->got.emplace_back();
      }
      void data_received(std::string_view d) override {
        sh->got[idx].append(d);
        if (static_cast<int>(idx) == sh->paused && !sh->resumed) sh->delivered_while_paused = true;
        if (sh->paused < 0) {
          sh->paused = static_cast<int>(1 - idx);
          sh->trs[1 - idx]->pause_reading();
        }
      }
    };
    // Named first: GCC 12 destroys a capturing lambda temporary inside co_await twice.
    auto factory = [sh] {
      auto p = std::make_unique<Side>();
      p->sh = sh;
      return p;
    };
    aio::Server srv = co_await aio::create_server(factory, "127.0.0.1", 0);
    auto [c1, p1] =
        co_await aio::create_connection([] { return std::make_unique<Collector>(); }, "127.0.0.1", srv.port());
    auto [c2, p2] =
        co_await aio::create_connection([] { return std::make_unique<Collector>(); }, "127.0.0.1", srv.port());
    for (int i = 0; i < 500 && sh->trs.size() < 2; ++i) co_await aio::sleep(1ms);
    EXPECT_EQ(sh->trs.size(), 2u);
    c1->write("A1");
    c2->write("B1");
    co_await aio::sleep(30ms);
    EXPECT_GE(sh->paused, 0);
    c1->write("A2");
    c2->write("B2");
    co_await aio::sleep(30ms);
    if (sh->paused >= 0) {
      EXPECT_EQ(sh->got[static_cast<std::size_t>(sh->paused)], "");
      sh->resumed = true;
      sh->trs[static_cast<std::size_t>(sh->paused)]->resume_reading();
    }
    for (int i = 0; i < 500 && (sh->got[0].size() < 4 || sh->got[1].size() < 4); ++i) co_await aio::sleep(1ms);
    EXPECT_FALSE(sh->delivered_while_paused);
    std::vector<std::string> got = sh->got;
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::string>{"A1A2", "B1B2"}));
    c1->close();
    c2->close();
    co_await p1->done.wait();
    co_await p2->done.wait();
    srv.close();
    co_await srv.wait_closed();
  });
}

TEST_P(ProtocolsTest, WriteFlowControlCallsPauseAndResumeWriting) {
  run_main([]() -> aio::Coro<void> {
    aio::Event server_made;
    aio::Transport* server_side = nullptr;
    struct Holder : aio::Protocol {
      aio::Transport** slot;
      aio::Event* ev;
      Holder(aio::Transport** s, aio::Event* e) : slot(s), ev(e) {}
      void connection_made(aio::Transport& t) override {
        *slot = &t;
        t.pause_reading();  // read nothing: the client's buffer must fill
        ev->set();
      }
      void connection_lost(std::exception_ptr) override { *slot = nullptr; }
    };
    aio::Server srv = co_await aio::create_server([&] { return std::make_unique<Holder>(&server_side, &server_made); },
                                                  "127.0.0.1", 0);
    auto [tr, proto] =
        co_await aio::create_connection([] { return std::make_unique<Collector>(); }, "127.0.0.1", srv.port());
    co_await server_made.wait();
    tr->set_write_buffer_limits(32 * 1024);
    EXPECT_EQ(tr->get_write_buffer_limits(), std::make_pair(std::size_t(8 * 1024), std::size_t(32 * 1024)));
    std::string chunk(64 * 1024, 'w');
    for (int i = 0; i < 200 && proto->pauses == 0; ++i) tr->write(chunk);
    EXPECT_EQ(proto->pauses, 1);
    EXPECT_GT(tr->get_write_buffer_size(), 32u * 1024);
    server_side->resume_reading();  // the buffer drains
    for (int i = 0; i < 2000 && proto->resumes == 0; ++i) co_await aio::sleep(1ms);
    EXPECT_EQ(proto->resumes, 1);
    tr->close();
    co_await proto->done.wait();
    srv.close();
    co_await srv.wait_closed();
  });
}

TEST_P(ProtocolsTest, BufferedProtocolReadsIntoItsOwnBuffer) {
  std::string got = run_main([]() -> aio::Coro<std::string> {
    struct Buffered : aio::BufferedProtocol {
      std::array<char, 7> buf{};  // small on purpose: many reads
      std::string all;
      aio::Event done;
      std::span<char> get_buffer(std::size_t) override { return std::span<char>(buf); }
      void buffer_updated(std::size_t n) override { all.append(buf.data(), n); }
      void connection_lost(std::exception_ptr) override { done.set(); }
    };
    struct Sender : aio::Protocol {
      void connection_made(aio::Transport& t) override {
        t.write("a buffered protocol reads into its own memory");
        t.close();
      }
    };
    aio::Server srv = co_await aio::create_server([] { return std::make_unique<Sender>(); }, "127.0.0.1", 0);
    auto [tr, proto] =
        co_await aio::create_connection([] { return std::make_unique<Buffered>(); }, "127.0.0.1", srv.port());
    co_await proto->done.wait();
    srv.close();
    co_await srv.wait_closed();
    co_return proto->all;
  });
  EXPECT_EQ(got, "a buffered protocol reads into its own memory");
}

TEST_P(ProtocolsTest, ExceptionInDataReceivedClosesWithThatError) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    struct Thrower : aio::Protocol {
      aio::Event* lost;
      explicit Thrower(aio::Event* l) : lost(l) {}
      void data_received(std::string_view) override { throw std::runtime_error("bad data"); }
      void connection_lost(std::exception_ptr) override { lost->set(); }
    };
    aio::Event server_lost;
    aio::Server srv =
        co_await aio::create_server([&] { return std::make_unique<Thrower>(&server_lost); }, "127.0.0.1", 0);
    auto [tr, proto] =
        co_await aio::create_connection([] { return std::make_unique<Collector>(); }, "127.0.0.1", srv.port());
    tr->write("x");
    co_await server_lost.wait();
    co_await proto->done.wait();  // the server side closed
    srv.close();
    co_await srv.wait_closed();
  });
  ASSERT_GE(rec.count(), 1u);
  EXPECT_NE(rec.get()[0].what.find("bad data"), std::string::npos);
}

TEST_P(ProtocolsTest, AbortDropsBufferedDataAndLostFollows) {
  run_main([]() -> aio::Coro<void> {
    aio::Server srv = co_await aio::create_server([] { return std::make_unique<Echo>(); }, "127.0.0.1", 0);
    auto [tr, proto] =
        co_await aio::create_connection([] { return std::make_unique<Collector>(); }, "127.0.0.1", srv.port());
    tr->abort();
    EXPECT_TRUE(tr->is_closing());
    tr->write("ignored after abort");  // no error, no effect
    co_await proto->done.wait();
    EXPECT_FALSE(proto->lost_with);
    srv.close();
    co_await srv.wait_closed();
  });
}

TEST_P(ProtocolsTest, UdpEcho) {
  std::vector<std::string> got = run_main([]() -> aio::Coro<std::vector<std::string>> {
    struct UdpEchoServer : aio::DatagramProtocol {
      aio::DatagramTransport* tr = nullptr;
      void connection_made(aio::DatagramTransport& t) override { tr = &t; }
      void datagram_received(std::string_view d, const aio::SocketAddress& from) override {
        tr->sendto("echo:" + std::string(d), from);
      }
    };
    struct UdpClient : aio::DatagramProtocol {
      std::vector<std::string> got;
      aio::Event enough;
      void datagram_received(std::string_view d, const aio::SocketAddress&) override {
        got.emplace_back(d);
        if (got.size() == 3) enough.set();
      }
    };
    aio::DatagramOptions so;
    so.local_addr = std::make_pair(std::string("127.0.0.1"), 0);
    auto [st, sp] = co_await aio::create_datagram_endpoint([] { return std::make_unique<UdpEchoServer>(); }, so);
    auto addr = std::any_cast<aio::SocketAddress>(st->get_extra_info("sockname"));
    aio::DatagramOptions co;
    co.remote_addr = std::make_pair(std::string("127.0.0.1"), addr.port);
    auto [ct, cp] = co_await aio::create_datagram_endpoint([] { return std::make_unique<UdpClient>(); }, co);
    for (const char* m : {"one", "two", "three"}) ct->sendto(m);
    co_await aio::wait_for(cp->enough.wait(), 5s);
    std::vector<std::string> out = cp->got;
    ct->close();
    st->close();
    co_await aio::sleep(0s);
    co_return out;
  });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "echo:one");
  EXPECT_EQ(got[2], "echo:three");
}

TEST_P(ProtocolsTest, UdpToAClosedPortReportsErrorReceived) {
  bool refused = run_main([]() -> aio::Coro<bool> {
    struct Client : aio::DatagramProtocol {
      aio::Event error;
      bool refused = false;
      void error_received(std::exception_ptr e) override {
        try {
          std::rethrow_exception(e);
        } catch (const concur::ConnectionRefusedError&) {
          refused = true;
        } catch (...) {
        }
        error.set();
      }
    };
    // A port nobody listens on: bind a UDP socket, note the port, close it.
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    aio::DatagramOptions co;
    co.remote_addr = std::make_pair(std::string("127.0.0.1"), static_cast<int>(ntohs(a.sin_port)));
    auto [ct, cp] = co_await aio::create_datagram_endpoint([] { return std::make_unique<Client>(); }, co);
    for (int i = 0; i < 20 && !cp->refused; ++i) {
      ct->sendto("anyone?");
      try {
        co_await aio::wait_for(cp->error.wait(), 50ms);
      } catch (const concur::TimeoutError&) {
      }
    }
    bool r = cp->refused;
    ct->close();
    co_await aio::sleep(0s);
    co_return r;
  });
  EXPECT_TRUE(refused);
}

TEST_P(ProtocolsTest, AddReaderAndAddWriterOnAPipe) {
  run_main([]() -> aio::Coro<void> {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    aio::EventLoop& loop = aio::get_running_loop();
    std::string got;
    aio::Event done;
    loop.add_reader(p[0], [&] {
      char buf[64];
      ssize_t n = ::read(p[0], buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
      if (got.size() >= 5) {
        EXPECT_TRUE(loop.remove_reader(p[0]));  // removing itself while running is fine
        done.set();
      }
    });
    int writes = 0;
    loop.add_writer(p[1], [&] {
      ssize_t n = ::write(p[1], "x", 1);
      (void)n;
      if (++writes == 5) loop.remove_writer(p[1]);
    });
    co_await aio::wait_for(done.wait(), 5s);
    EXPECT_EQ(got, "xxxxx");
    EXPECT_FALSE(loop.remove_reader(p[0]));
    EXPECT_FALSE(loop.remove_writer(p[1]));
    EXPECT_EQ(loop.watched_fd_count(), 0u);
    ::close(p[0]);
    ::close(p[1]);
  });
}

TEST_P(ProtocolsTest, TransportFdCannotAlsoTakeAReader) {
  run_main([]() -> aio::Coro<void> {
    aio::Server srv = co_await aio::create_server([] { return std::make_unique<Echo>(); }, "127.0.0.1", 0);
    auto [tr, proto] =
        co_await aio::create_connection([] { return std::make_unique<Collector>(); }, "127.0.0.1", srv.port());
    int fd = std::any_cast<int>(tr->get_extra_info("socket"));
    EXPECT_THROW(aio::get_running_loop().add_reader(fd, [] {}), std::logic_error);
    tr->close();
    co_await proto->done.wait();
    srv.close();
    co_await srv.wait_closed();
  });
}

namespace {
/// Runs a Python asyncio program that prints one line (its port) then serves; returns
/// {pid, port, read end of its stdout}.
struct PyServer {
  pid_t pid = -1;
  int port = 0;
  FILE* out = nullptr;
  ~PyServer() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (out) ::fclose(out);
  }
};

bool start_python(PyServer& s, const char* code) {
  if (::access("/usr/bin/python3", X_OK) != 0) return false;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return false;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::execl("/usr/bin/python3", "python3", "-c", code, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(p[1]);
  s.pid = pid;
  s.out = ::fdopen(p[0], "r");
  char line[64] = {};
  if (!s.out || !::fgets(line, sizeof line, s.out)) return false;
  s.port = std::atoi(line);
  return s.port > 0;
}
}  // namespace

TEST_P(ProtocolsTest, InteropClientAgainstPythonAsyncioServer) {
  PyServer py;
  const char* code = R"PY(
import asyncio, sys
async def handle(r, w):
    while True:
        line = await r.readline()
        if not line:
            break
        w.write(line.upper())
        await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(handle, '127.0.0.1', 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()
asyncio.run(main())
)PY";
  if (!start_python(py, code)) GTEST_SKIP() << "python3 not available";
  int port = py.port;
  std::string got = run_main([port]() -> aio::Coro<std::string> {
    auto [r, w] = co_await aio::open_connection("127.0.0.1", port);
    std::string all;
    for (const char* m : {"hello python\n", "from concur\n"}) {
      w.write(m);
      co_await w.drain();
      all += co_await aio::wait_for(r.readline(), 10s);
    }
    w.close();
    co_await w.wait_closed();
    co_return all;
  });
  EXPECT_EQ(got, "HELLO PYTHON\nFROM CONCUR\n");
}

TEST_P(ProtocolsTest, InteropPythonAsyncioClientAgainstOurServer) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "python3 not available";
  std::string got = run_main([]() -> aio::Coro<std::string> {
    auto handler = [](aio::StreamReader r, aio::StreamWriter w) -> aio::Coro<void> {
      std::string line = co_await r.readline();
      w.write("concur says: " + line);
      co_await w.drain();
      w.close();
    };
    aio::Server srv = co_await aio::start_server(handler, "127.0.0.1", 0);
    std::string code =
        "import asyncio\n"
        "async def main():\n"
        "    r, w = await asyncio.open_connection('127.0.0.1', " +
        std::to_string(srv.port()) +
        ")\n"
        "    w.write(b'hi from python\\n')\n"
        "    await w.drain()\n"
        "    print((await r.read()).decode(), end='')\n"
        "    w.close()\n"
        "asyncio.run(main())\n";
    // Named first: GCC 12 destroys a temporary lambda's captures too early inside co_await.
    auto run_python = [code] {
      std::string cmd = "/usr/bin/python3 -c \"" + code + "\"";
      std::string out;
      if (FILE* f = ::popen(cmd.c_str(), "r")) {
        char buf[256];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
        ::pclose(f);
      }
      return out;
    };
    std::string proc_out = co_await aio::to_thread(run_python);
    srv.close();
    co_await srv.wait_closed();
    co_return proc_out;
  });
  EXPECT_EQ(got, "concur says: hi from python\n");
}

INSTANTIATE_TEST_SUITE_P(Backends, ProtocolsTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
