// TCP echo throughput, 1 KiB messages over 50 loopback connections (issue #4's benchmark).
//
// One load client (written here, on its own thread) drives each server in turn for a fixed
// time; each connection keeps one message in flight. Two clients, one table each: "epoll" (a
// recv and a send system call per message: on a 2-core machine it costs about as much per
// message as the server, so it bounds the figures) and "batched" (epoll for readiness, then a
// round's recvs, and its sends, each as one io_uring submission of MSG_DONTWAIT ops: cheaper per
// message, so the server is what is measured). Servers: concur.asyncio
// streams and protocol API on both backends, Boost.Asio (one thread, C++20 coroutines), and
// Python asyncio streams with and without uvloop (bench/compare/tcp_echo_server.py, a
// separate process). Prints messages per second and the ratio to Asio, all from one run.
//
//   bench_tcp_echo [--seconds S] [--conns N] [--size BYTES] [--python PATH_TO_PYTHON3] [--no-python]
//                  [--only NAME] [--client epoll|batched]
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <concur/asyncio.hpp>

namespace aio = concur::asyncio;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
  double seconds = 2.0;
  int conns = 50;
  std::size_t size = 1024;
  std::string python = "/usr/bin/python3";
  bool with_python = true;
  std::string only;  // run just this server (profiling): asio, streams-<backend>, protocol-<backend>
  /// The load client: "epoll" (a recv and a send system call per message) or "batched" (epoll
  /// for readiness, then each round's recvs, and its sends, as one io_uring submission).
  std::string client = "epoll";
};

// ---- the load client ----------------------------------------------------------------------

double cpu_seconds(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// CPU use during the last load() run: the load client's thread, and everything else in this
/// process (the in-process server's thread), both as a share of one core.
struct CpuShare {
  double client = 0, rest = 0;
};
CpuShare g_cpu;

double load(int port, const Config& cfg) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  struct Conn {
    int fd;
    std::size_t sent = 0, got = 0;
  };
  std::vector<Conn> conns(static_cast<std::size_t>(cfg.conns));
  std::string msg(cfg.size, 'm');
  std::vector<char> buf(65536);
  const bool batched = cfg.client == "batched";
  io_uring ring{};
  if (batched && io_uring_queue_init(static_cast<unsigned>(2 * conns.size() + 64), &ring, 0) != 0) {
    std::fprintf(stderr, "load client: io_uring_queue_init failed\n");
    std::exit(1);
  }
  std::vector<std::vector<char>> bufs(batched ? conns.size() : 0, std::vector<char>(65536));
  std::vector<std::uint32_t> ready;
  constexpr std::uint64_t kSend = std::uint64_t{1} << 32;
  // Runs the queued ops (MSG_DONTWAIT: io_uring completes them inline, during the submit).
  auto run_ring = [&](auto on_cqe) {
    io_uring_submit(&ring);
    unsigned head = 0, seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      on_cqe(io_uring_cqe_get_data64(cqe), cqe->res);
    }
    io_uring_cq_advance(&ring, seen);
  };
  for (std::size_t i = 0; i < conns.size(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      std::perror("load client: connect");
      std::exit(1);
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    conns[i].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  auto send_msg = [&](Conn& c) {
    ssize_t n = ::send(c.fd, msg.data(), msg.size(), MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(msg.size())) {
      std::fprintf(stderr, "load client: short send\n");
      std::exit(1);
    }
  };
  // Warm up, then measure.
  long messages = 0;
  for (auto& c : conns) send_msg(c);
  auto t0 = Clock::now();
  auto warm_end = t0 + std::chrono::milliseconds(200);
  bool measuring = false;
  Clock::time_point m0;
  double client0 = 0, proc0 = 0;
  auto end = warm_end + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.seconds));
  epoll_event evs[64];
  for (;;) {
    int n = ::epoll_wait(ep, evs, 64, 1000);
    auto now = Clock::now();
    if (!measuring && now >= warm_end) {
      measuring = true;
      messages = 0;
      m0 = now;
      client0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
      proc0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    }
    if (now >= end) break;
    if (batched) {
      ready.clear();
      for (int i = 0; i < n; ++i) {
        const auto k = static_cast<std::uint32_t>(evs[i].data.u64);
        io_uring_sqe* e = io_uring_get_sqe(&ring);
        io_uring_prep_recv(e, conns[k].fd, bufs[k].data(), bufs[k].size(), MSG_DONTWAIT);
        io_uring_sqe_set_data64(e, k);
      }
      run_ring([&](std::uint64_t tag, int res) {
        const auto k = static_cast<std::uint32_t>(tag);
        if (res == -EAGAIN) return;
        if (res <= 0) {
          std::fprintf(stderr, "load client: connection closed by the server (%d)\n", res);
          std::exit(1);
        }
        Conn& c = conns[k];
        c.got += static_cast<std::size_t>(res);
        while (c.got >= cfg.size) {
          c.got -= cfg.size;
          ++messages;
          ready.push_back(k);
        }
      });
      for (std::uint32_t k : ready) {
        io_uring_sqe* e = io_uring_get_sqe(&ring);
        io_uring_prep_send(e, conns[k].fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        io_uring_sqe_set_data64(e, kSend | k);
      }
      run_ring([&](std::uint64_t, int res) {
        if (res != static_cast<int>(msg.size())) {
          std::fprintf(stderr, "load client: short send (%d)\n", res);
          std::exit(1);
        }
      });
      continue;
    }
    for (int i = 0; i < n; ++i) {
      Conn& c = conns[evs[i].data.u64];
      ssize_t r = ::recv(c.fd, buf.data(), buf.size(), 0);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        std::fprintf(stderr, "load client: connection closed by the server\n");
        std::exit(1);
      }
      c.got += static_cast<std::size_t>(r);
      while (c.got >= cfg.size) {
        c.got -= cfg.size;
        ++messages;
        send_msg(c);
      }
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - m0).count();
  double client = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - client0;
  double proc = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - proc0;
  g_cpu = {client / secs, (proc - client) / secs};
  if (batched) io_uring_queue_exit(&ring);
  for (auto& c : conns) ::close(c.fd);
  ::close(ep);
  return static_cast<double>(messages) / secs;
}

// ---- concur servers -----------------------------------------------------------------------

aio::Coro<void> echo_stream(aio::StreamReader r, aio::StreamWriter w) {
  try {
    for (;;) {
      std::string d = co_await r.read(65536);
      if (d.empty()) break;
      w.write(d);
      co_await w.drain();
    }
  } catch (const concur::ConnectionError&) {  // the load client resets its connections at the end
  }
  w.close();
}

struct EchoProtocol : aio::Protocol {
  aio::Transport* t = nullptr;
  void connection_made(aio::Transport& tr) override { t = &tr; }
  void data_received(std::string_view d) override { t->write(d); }
};

template <class Start>
double run_concur(const Config& cfg, const std::string& backend, Start start) {
  std::promise<int> port;
  aio::EventLoop* loop_ptr = nullptr;
  std::atomic<bool> stop{false};
  std::thread server([&] {
    aio::EventLoop loop(aio::LoopOptions{.backend = backend});
    loop_ptr = &loop;
    loop.run_until_complete([&]() -> aio::Coro<void> {
      aio::Server s = co_await start();
      port.set_value(s.port());
      while (!stop.load()) co_await aio::sleep(std::chrono::milliseconds(5));
      s.close();
    }());
    loop.cancel_all_tasks();
    loop.close();
  });
  double rate = load(port.get_future().get(), cfg);
  stop = true;
  server.join();
  return rate;
}

// ---- Boost.Asio server ----------------------------------------------------------------------

asio::awaitable<void> asio_echo(asio::ip::tcp::socket s) {
  char buf[65536];
  try {
    for (;;) {
      std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
      co_await asio::async_write(s, asio::buffer(buf, n), asio::use_awaitable);
    }
  } catch (const std::exception&) {
  }
}

asio::awaitable<void> asio_accept(asio::ip::tcp::acceptor& acc) {
  for (;;) {
    asio::ip::tcp::socket s = co_await acc.async_accept(asio::use_awaitable);
    s.set_option(asio::ip::tcp::no_delay(true));
    asio::co_spawn(acc.get_executor(), asio_echo(std::move(s)), asio::detached);
  }
}

double run_asio(const Config& cfg) {
  asio::io_context io(1);
  asio::ip::tcp::acceptor acc(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  int port = acc.local_endpoint().port();
  asio::co_spawn(io, asio_accept(acc), asio::detached);
  std::thread server([&] { io.run(); });
  double rate = load(port, cfg);
  io.stop();
  server.join();
  return rate;
}

// ---- Python servers (separate processes) -----------------------------------------------------

double run_python(const Config& cfg, bool uvloop, const std::string& script) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    if (uvloop) {
      ::execl(cfg.python.c_str(), "python3", script.c_str(), "--uvloop", static_cast<char*>(nullptr));
    } else {
      ::execl(cfg.python.c_str(), "python3", script.c_str(), static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  ::close(p[1]);
  // The whole first line: Python may write the port and its newline separately, and closing
  // the pipe between the two kills the server (BrokenPipeError).
  std::string line;
  char c = 0;
  while (line.size() < 64) {
    ssize_t n = ::read(p[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line.push_back(c);
  }
  ::close(p[0]);
  int port = std::atoi(line.c_str());
  double rate = -1;
  if (port > 0) rate = load(port, cfg);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  bool client_given = false;
  std::string self = argv[0];
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--seconds")
      cfg.seconds = std::atof(next().c_str());
    else if (a == "--conns")
      cfg.conns = std::atoi(next().c_str());
    else if (a == "--size")
      cfg.size = static_cast<std::size_t>(std::atol(next().c_str()));
    else if (a == "--python")
      cfg.python = next();
    else if (a == "--no-python")
      cfg.with_python = false;
    else if (a == "--only")
      cfg.only = next();
    else if (a == "--client") {
      cfg.client = next();
      client_given = true;
    } else {
      std::printf(
          "usage: %s [--seconds S] [--conns N] [--size BYTES] [--python PATH] [--no-python] [--only NAME] [--client "
          "epoll|batched]\n",
          argv[0]);
      return a == "--help" ? 0 : 2;
    }
  }
  std::string script = std::string(CONCUR_SOURCE_DIR) + "/bench/compare/tcp_echo_server.py";

  struct Row {
    std::string name;
    double rate;
    CpuShare cpu = g_cpu;
  };
  std::vector<Row> rows;
  if (!cfg.only.empty()) {  // one server alone, for a profiler
    double rate = -1;
    for (const char* backend : {"io_uring", "epoll"}) {
      if (cfg.only == std::string("streams-") + backend)
        rate = run_concur(cfg, backend, [] { return aio::start_server(echo_stream, "127.0.0.1", 0); });
      if (cfg.only == std::string("protocol-") + backend)
        rate = run_concur(cfg, backend, [] {
          return aio::create_server([] { return std::make_unique<EchoProtocol>(); }, "127.0.0.1", 0);
        });
    }
    if (cfg.only == "asio") rate = run_asio(cfg);
    std::printf("%s: %.0f messages/s, client CPU %.0f%%, server CPU %.0f%%\n", cfg.only.c_str(), rate,
                g_cpu.client * 100, g_cpu.rest * 100);
    return rate > 0 ? 0 : 2;
  }
  // Every server under each load client (--client picks one): the epoll client costs about
  // as much per message as a good server, so with it the client bounds what is measured;
  // the batched client costs less, so the server does.
  std::vector<std::string> clients = {"epoll", "batched"};
  if (client_given) clients = {cfg.client};
  for (const std::string& client : clients) {
    cfg.client = client;
    rows.clear();
    rows.push_back({"Boost.Asio " + std::to_string(BOOST_VERSION / 100000) + "." +
                        std::to_string(BOOST_VERSION / 100 % 1000) + " (1 thread, coroutines)",
                    run_asio(cfg)});
    const double asio_rate = rows.back().rate;
    for (const char* backend : {"io_uring", "epoll"}) {
      rows.push_back({std::string("concur streams (") + backend + ")",
                      run_concur(cfg, backend, [] { return aio::start_server(echo_stream, "127.0.0.1", 0); })});
      rows.push_back({std::string("concur protocol (") + backend + ")", run_concur(cfg, backend, [] {
                        return aio::create_server([] { return std::make_unique<EchoProtocol>(); }, "127.0.0.1", 0);
                      })});
    }
    if (cfg.with_python && ::access(cfg.python.c_str(), X_OK) == 0) {
      rows.push_back({"Python asyncio streams", run_python(cfg, false, script)});
      rows.push_back({"Python asyncio streams + uvloop", run_python(cfg, true, script)});
    }
    std::printf("TCP echo, %zu-byte messages, %d loopback connections, %.1f s each, load client: %s\n\n", cfg.size,
                cfg.conns, cfg.seconds,
                client == "batched" ? "batched (epoll, then each round's recvs and sends as one io_uring submission)"
                                    : "epoll (a recv and a send system call per message)");
    std::printf("%-44s %14s %12s %12s %12s\n", "server", "messages/s", "vs Asio", "client CPU", "server CPU");
    for (const auto& r : rows) {
      if (r.rate < 0) {
        std::printf("%-44s %14s %12s\n", r.name.c_str(), "n/a", "");
        continue;
      }
      std::printf("%-44s %14.0f %11.2fx %11.0f%%", r.name.c_str(), r.rate, r.rate / asio_rate, r.cpu.client * 100);
      if (r.cpu.rest > 0.01) {
        std::printf(" %11.0f%%\n", r.cpu.rest * 100);
      } else {
        std::printf(" %12s\n", "(other pid)");
      }
    }
    std::printf("\n");
  }
  std::printf(
      "(vs Asio above 1.00x: more messages per second than Boost.Asio in the same table; CPU columns:\n"
      " share of one core used by the load client's thread and by the in-process server while measuring)\n");
  return 0;
}
