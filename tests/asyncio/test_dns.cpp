// asyncio DNS (loop.getaddrinfo / getnameinfo on c-ares): A and AAAA answers, family
// filtering, numeric hosts without a query, the hosts file, NXDOMAIN and timeouts as GaiError,
// cancellation (direct and by wait_for) of a pending query, many concurrent queries, loop close
// with a query pending, and open_connection resolving a name. No test leaves the machine: the
// resolver asks a fake DNS server the test runs on 127.0.0.1. Both backends; no leaked fds.
#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;

// ASSERT_* cannot be used in a coroutine (they `return`): fail and co_return instead.
#define CO_ASSERT_TRUE(cond)              \
  if (!(cond)) {                          \
    ADD_FAILURE() << "failed: " << #cond; \
    co_return;                            \
  } else                                  \
    (void)0
using namespace std::chrono_literals;

namespace {

using concur::test::open_fd_count;

/// A DNS server on 127.0.0.1 (UDP, a free port) answering from a fixed table:
///   a.fake.test     A 127.0.0.1
///   v6.fake.test    AAAA ::1
///   dual.fake.test  A 127.0.0.1, AAAA ::1
///   slow.fake.test  never answered
///   anything else   NXDOMAIN
class FakeDnsServer {
 public:
  FakeDnsServer() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("fake DNS: bind");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  FakeDnsServer(const FakeDnsServer&) = delete;
  FakeDnsServer& operator=(const FakeDnsServer&) = delete;
  ~FakeDnsServer() {
    stop_.store(true);
    thread_.join();
    ::close(fd_);
  }
  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// Queries received so far.
  [[nodiscard]] int queries() const noexcept { return queries_.load(); }
  [[nodiscard]] std::vector<std::string> names() const {
    std::lock_guard g(m_);
    return names_;
  }
  /// Resolver options pointing at this server, with short timeouts.
  [[nodiscard]] aio::ResolverOptions options(std::chrono::milliseconds timeout = 250ms) const {
    aio::ResolverOptions o;
    o.servers = address();
    o.timeout = timeout;
    o.tries = 1;
    return o;
  }

 private:
  void serve() {
    while (!stop_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      unsigned char buf[1500];
      sockaddr_storage from{};
      socklen_t flen = sizeof from;
      ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n < 12) continue;
      std::string reply = answer(buf, static_cast<std::size_t>(n));
      if (!reply.empty()) ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  }

  std::string answer(const unsigned char* q, std::size_t n) {
    // The question: labels, QTYPE, QCLASS.
    std::size_t off = 12;
    std::string name;
    while (off < n && q[off] != 0) {
      std::size_t len = q[off++];
      if (off + len > n) return {};
      if (!name.empty()) name += '.';
      for (std::size_t i = 0; i < len; ++i) name += static_cast<char>(std::tolower(q[off + i]));
      off += len;
    }
    if (off + 5 > n) return {};
    off += 1;
    const int qtype = (q[off] << 8) | q[off + 1];
    off += 4;
    queries_.fetch_add(1);
    {
      std::lock_guard g(m_);
      names_.push_back(name);
    }
    if (name == "slow.fake.test") return {};

    std::vector<std::string> rdata;  // of type qtype
    bool known = true;
    auto v4 = [] { return std::string("\x7f\x00\x00\x01", 4); };
    auto v6 = [] {
      std::string s(16, '\0');
      s[15] = 1;
      return s;
    };
    if (name == "a.fake.test") {
      if (qtype == 1) rdata.push_back(v4());
    } else if (name == "v6.fake.test") {
      if (qtype == 28) rdata.push_back(v6());
    } else if (name == "dual.fake.test") {
      if (qtype == 1) rdata.push_back(v4());
      if (qtype == 28) rdata.push_back(v6());
    } else {
      known = false;
    }
    std::string r(reinterpret_cast<const char*>(q), 12);
    const int opcode_rd = ((q[2] << 8) | q[3]) & 0x7900;
    const int flags = 0x8000 | opcode_rd | 0x0080 | (known ? 0 : 3);  // QR, RA, NXDOMAIN
    r[2] = static_cast<char>(flags >> 8);
    r[3] = static_cast<char>(flags & 0xff);
    auto put16 = [&r](std::size_t at, int v) {
      r[at] = static_cast<char>((v >> 8) & 0xff);
      r[at + 1] = static_cast<char>(v & 0xff);
    };
    put16(4, 1);
    put16(6, static_cast<int>(rdata.size()));
    put16(8, 0);
    put16(10, 0);
    r.append(reinterpret_cast<const char*>(q) + 12, off - 12);
    for (const auto& d : rdata) {
      std::string rr(12, '\0');
      rr[0] = static_cast<char>(0xc0);  // name: pointer to the question
      rr[1] = 12;
      rr[2] = 0;
      rr[3] = static_cast<char>(qtype);
      rr[5] = 1;   // class IN
      rr[9] = 60;  // TTL
      rr[11] = static_cast<char>(d.size());
      r += rr;
      r += d;
    }
    return r;
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  mutable std::mutex m_;
  std::vector<std::string> names_;
  std::thread thread_;
};

class DnsTest : public concur::test::BackendTest {
 protected:
  void SetUp() override { fds_before_ = open_fd_count(); }
  void TearDown() override { EXPECT_EQ(open_fd_count(), fds_before_) << "file descriptors leaked"; }
  int fds_before_ = 0;
};

aio::AddrInfo row(int family, int type, int proto, std::string host, int port) {
  aio::AddrInfo r;
  r.family = family;
  r.type = type;
  r.protocol = proto;
  r.address = aio::SocketAddress{family, std::move(host), port, {}};
  return r;
}

aio::GetaddrinfoOptions opts(int family, int type = SOCK_STREAM, int flags = 0) {
  aio::GetaddrinfoOptions o;
  o.family = family;
  o.type = type;
  o.flags = flags;
  return o;
}

/// The distinct families in `rows`, sorted.
std::vector<int> families(const std::vector<aio::AddrInfo>& rows) {
  std::vector<int> f;
  for (const auto& r : rows)
    if (std::find(f.begin(), f.end(), r.family) == f.end()) f.push_back(r.family);
  std::sort(f.begin(), f.end());
  return f;
}

aio::Coro<std::vector<aio::AddrInfo>> lookup(std::string host, int port, aio::GetaddrinfoOptions o) {
  co_return co_await aio::getaddrinfo(std::move(host), port, o);
}

aio::Coro<void> until_queries(const FakeDnsServer* dns, int n) {
  while (dns->queries() < n) co_await aio::sleep(1ms);
}

}  // namespace

TEST_P(DnsTest, ARecord) {
  FakeDnsServer dns;
  auto rows = run_main([&]() -> aio::Coro<std::vector<aio::AddrInfo>> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::set_resolver_options(loop, dns.options());
    co_return co_await loop.getaddrinfo("a.fake.test", 80, opts(AF_INET));
  });
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], row(AF_INET, SOCK_STREAM, IPPROTO_TCP, "127.0.0.1", 80));
  EXPECT_GE(dns.queries(), 1);
}

TEST_P(DnsTest, AaaaRecord) {
  FakeDnsServer dns;
  auto rows = run_main([&]() -> aio::Coro<std::vector<aio::AddrInfo>> {
    aio::set_resolver_options(aio::get_running_loop(), dns.options());
    co_return co_await aio::getaddrinfo("v6.fake.test", 443, opts(AF_INET6, SOCK_DGRAM));
  });
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], row(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, "::1", 443));
}

TEST_P(DnsTest, FamilyFiltering) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::set_resolver_options(loop, dns.options());
    auto both = co_await loop.getaddrinfo("dual.fake.test", 80, opts(AF_UNSPEC));
    EXPECT_EQ(families(both), (std::vector<int>{AF_INET, AF_INET6}));
    EXPECT_EQ(both.size(), 2u);
    auto v4 = co_await loop.getaddrinfo("dual.fake.test", 80, opts(AF_INET));
    CO_ASSERT_EQ(v4.size(), 1u);
    EXPECT_EQ(v4[0].address, (aio::SocketAddress{AF_INET, "127.0.0.1", 80, {}}));
    auto v6 = co_await loop.getaddrinfo("dual.fake.test", 80, opts(AF_INET6));
    CO_ASSERT_EQ(v6.size(), 1u);
    EXPECT_EQ(v6[0].address, (aio::SocketAddress{AF_INET6, "::1", 80, {}}));
    // A name with IPv6 addresses only, asked for IPv4: no data.
    try {
      (void)co_await loop.getaddrinfo("v6.fake.test", 80, opts(AF_INET));
      ADD_FAILURE() << "expected GaiError";
    } catch (const aio::GaiError& e) {
      EXPECT_NE(std::string(e.what()).find("getaddrinfo(v6.fake.test): "), std::string::npos) << e.what();
    }
    // AF_UNSPEC on an IPv6-only name: only its AAAA answer.
    auto only6 = co_await loop.getaddrinfo("v6.fake.test", 80, opts(AF_UNSPEC));
    EXPECT_EQ(families(only6), (std::vector<int>{AF_INET6}));
  });
}

TEST_P(DnsTest, PythonRowsTypesAndCanonicalName) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::set_resolver_options(loop, dns.options());
    // type 0: one row per socket type, as Python's getaddrinfo.
    auto rows = co_await loop.getaddrinfo("a.fake.test", 8080, opts(AF_INET, 0));
    CO_ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0], row(AF_INET, SOCK_STREAM, IPPROTO_TCP, "127.0.0.1", 8080));
    EXPECT_EQ(rows[1], row(AF_INET, SOCK_DGRAM, IPPROTO_UDP, "127.0.0.1", 8080));
    EXPECT_EQ(rows[2], row(AF_INET, SOCK_RAW, 0, "127.0.0.1", 8080));
    // Default options on the member form.
    auto dflt = co_await loop.getaddrinfo("a.fake.test", 1);
    EXPECT_EQ(dflt.size(), 3u);
    // AI_CANONNAME: the first row carries the canonical name.
    auto canon = co_await loop.getaddrinfo("a.fake.test", 80, opts(AF_INET, SOCK_STREAM, AI_CANONNAME));
    CO_ASSERT_EQ(canon.size(), 1u);
    EXPECT_EQ(canon[0].canonname, "a.fake.test");
  });
}

TEST_P(DnsTest, NumericHostsNeedNoQuery) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::set_resolver_options(loop, dns.options());
    auto v4 = co_await loop.getaddrinfo("192.0.2.7", 25, opts(AF_UNSPEC));
    CO_ASSERT_EQ(v4.size(), 1u);
    EXPECT_EQ(v4[0], row(AF_INET, SOCK_STREAM, IPPROTO_TCP, "192.0.2.7", 25));
    auto v6 = co_await loop.getaddrinfo("2001:db8::1", 25, opts(AF_INET6));
    CO_ASSERT_EQ(v6.size(), 1u);
    EXPECT_EQ(v6[0].address, (aio::SocketAddress{AF_INET6, "2001:db8::1", 25, {}}));
    // The empty host: loopback, or every interface with AI_PASSIVE.
    auto lo = co_await loop.getaddrinfo("", 7, opts(AF_INET));
    CO_ASSERT_EQ(lo.size(), 1u);
    EXPECT_EQ(lo[0].address.host, "127.0.0.1");
    auto any = co_await loop.getaddrinfo("", 7, opts(AF_UNSPEC, SOCK_STREAM, AI_PASSIVE));
    CO_ASSERT_EQ(any.size(), 2u);
    EXPECT_EQ(any[0].address.host, "0.0.0.0");
    EXPECT_EQ(any[1].address.host, "::");
    // A numeric host of the other family.
    try {
      (void)co_await loop.getaddrinfo("::1", 80, opts(AF_INET));
      ADD_FAILURE() << "expected GaiError";
    } catch (const aio::GaiError& e) {
      EXPECT_NE(std::string(e.what()).find("getaddrinfo(::1)"), std::string::npos) << e.what();
    }
    // AI_NUMERICHOST refuses a name without asking anyone.
    EXPECT_THROW((void)co_await loop.getaddrinfo("a.fake.test", 80, opts(AF_UNSPEC, SOCK_STREAM, AI_NUMERICHOST)),
                 aio::GaiError);
    EXPECT_THROW((void)co_await loop.getaddrinfo("127.0.0.1", 70000), std::invalid_argument);
    EXPECT_EQ(aio::detail::dns_queries_in_flight(loop), 0u);
  });
  EXPECT_EQ(dns.queries(), 0);
}

TEST_P(DnsTest, HostsFileStillWorks) {
  FakeDnsServer dns;
  auto rows = run_main([&]() -> aio::Coro<std::vector<aio::AddrInfo>> {
    aio::set_resolver_options(aio::get_running_loop(), dns.options());
    co_return co_await aio::getaddrinfo("localhost", 80, opts(AF_INET));
  });
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].address, (aio::SocketAddress{AF_INET, "127.0.0.1", 80, {}}));
  EXPECT_EQ(dns.queries(), 0) << "localhost must come from the hosts file";
}

TEST_P(DnsTest, NxdomainIsGaiErrorNamingTheHost) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::set_resolver_options(aio::get_running_loop(), dns.options());
    try {
      (void)co_await aio::getaddrinfo("no.such.host.test", 80);
      ADD_FAILURE() << "expected GaiError";
    } catch (const aio::GaiError& e) {
      EXPECT_STREQ(e.what(), "getaddrinfo(no.such.host.test): Domain name not found");
      EXPECT_EQ(e.errno_code(), EAI_NONAME);
    }
    // A GaiError is an OSError (Python's gaierror).
    EXPECT_THROW((void)co_await aio::getaddrinfo("other.missing.test", 80), concur::OSError);
  });
  auto names = dns.names();
  EXPECT_NE(std::find(names.begin(), names.end(), "no.such.host.test"), names.end());
}

TEST_P(DnsTest, UnansweredQueryTimesOutWithGaiError) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::set_resolver_options(loop, dns.options(200ms));
    const double t0 = loop.time();
    try {
      (void)co_await loop.getaddrinfo("slow.fake.test", 80, opts(AF_INET));
      ADD_FAILURE() << "expected GaiError";
    } catch (const aio::GaiError& e) {
      EXPECT_STREQ(e.what(), "getaddrinfo(slow.fake.test): Timeout while contacting DNS servers");
      EXPECT_EQ(e.errno_code(), EAI_AGAIN);
    }
    const double took = loop.time() - t0;
    EXPECT_GE(took, 0.15);
    EXPECT_LT(took, 10.0);
    EXPECT_EQ(aio::detail::dns_queries_in_flight(loop), 0u);
  });
}

TEST_P(DnsTest, WaitForCancelsAPendingQuery) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::set_resolver_options(loop, dns.options(5000ms));  // would hang for 5 s uncancelled
    const double t0 = loop.time();
    EXPECT_THROW((void)co_await aio::wait_for(lookup("slow.fake.test", 80, opts(AF_UNSPEC)), 50ms),
                 concur::TimeoutError);
    EXPECT_LT(loop.time() - t0, 2.0);
    co_await concur::test::settle();
    EXPECT_EQ(aio::detail::dns_queries_in_flight(loop), 0u) << "the abandoned query must be stopped";
    // The loop's resolver still works.
    auto rows = co_await loop.getaddrinfo("a.fake.test", 80, opts(AF_INET));
    CO_ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].address.host, "127.0.0.1");
  });
}

TEST_P(DnsTest, CancellingTheTaskCancelsTheQuery) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::set_resolver_options(loop, dns.options(5000ms));
    // One query abandoned while another one on the loop still waits: the second one ends
    // normally; the abandoned one is dropped when it is the last.
    auto slow = aio::create_task(lookup("slow.fake.test", 80, opts(AF_INET)));
    auto slow2 = aio::create_task(lookup("slow.fake.test", 81, opts(AF_INET)));
    while (dns.queries() < 1) co_await aio::sleep(1ms);
    EXPECT_GE(aio::detail::dns_queries_in_flight(loop), 2u);
    slow.cancel();
    EXPECT_THROW((void)co_await slow, concur::CancelledError);
    EXPECT_TRUE(slow.cancelled());
    co_await concur::test::settle();
    EXPECT_GE(aio::detail::dns_queries_in_flight(loop), 1u) << "a query still awaited must go on";
    auto ok = co_await loop.getaddrinfo("dual.fake.test", 80, opts(AF_UNSPEC));
    EXPECT_EQ(ok.size(), 2u);
    slow2.cancel();
    EXPECT_THROW((void)co_await slow2, concur::CancelledError);
    co_await concur::test::settle();
    EXPECT_EQ(aio::detail::dns_queries_in_flight(loop), 0u);
    // Cancelled before it ever started.
    auto never = aio::create_task(lookup("a.fake.test", 80, opts(AF_INET)));
    never.cancel();
    EXPECT_THROW((void)co_await never, concur::CancelledError);
  });
}

TEST_P(DnsTest, ManyConcurrentQueries) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    // 400 answers at once overflow the resolver socket's receive buffer (the queries all go
    // out before the loop reads a reply): lost answers are asked again, as with real servers.
    aio::ResolverOptions o = dns.options(300ms);
    o.tries = 4;
    aio::set_resolver_options(loop, o);
    const char* names[] = {"a.fake.test", "v6.fake.test", "dual.fake.test", "missing.fake.test"};
    std::vector<aio::Coro<std::vector<aio::AddrInfo>>> coros;
    for (int i = 0; i < 200; ++i) coros.push_back(lookup(names[i % 4], 1000 + i, opts(AF_UNSPEC)));
    aio::GatherOptions go;
    go.return_exceptions = true;
    auto results = co_await aio::gather(std::move(coros), go);
    CO_ASSERT_EQ(results.size(), 200u);
    int failed = 0;
    for (int i = 0; i < 200; ++i) failed += (i % 4 != 3) && !results[static_cast<std::size_t>(i)].ok();
    EXPECT_EQ(failed, 0) << "server saw " << dns.queries();
    for (int i = 0; i < 200; ++i) {
      auto& r = results[static_cast<std::size_t>(i)];
      if (i % 4 == 3) {
        EXPECT_FALSE(r.ok());
        EXPECT_THROW(r.get(), aio::GaiError);
        continue;
      }
      if (!r.ok()) {
        ADD_FAILURE() << "lookup " << i << ": " << concur::describe(r.exception);
        co_return;
      }
      CO_ASSERT_TRUE(!(r.value->empty()));
      for (const auto& row : *r.value) EXPECT_EQ(row.address.port, 1000 + i);
      EXPECT_EQ(r.value->size(), i % 4 == 2 ? 2u : 1u);
    }
    EXPECT_EQ(aio::detail::dns_queries_in_flight(loop), 0u);
  });
}

TEST_P(DnsTest, GetnameinfoLoopback) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::set_resolver_options(loop, dns.options());
    aio::SocketAddress lo{AF_INET, "127.0.0.1", 80, {}};
    auto [host, serv] = co_await loop.getnameinfo(lo, NI_NUMERICSERV);
    EXPECT_EQ(host, "localhost");
    EXPECT_EQ(serv, "80");
    auto numeric = co_await aio::getnameinfo(lo, NI_NUMERICHOST | NI_NUMERICSERV);
    EXPECT_EQ(numeric, (std::pair<std::string, std::string>{"127.0.0.1", "80"}));
    auto named = co_await loop.getnameinfo(lo);
    EXPECT_EQ(named.first, "localhost");
    EXPECT_FALSE(named.second.empty());
    // Not a numeric address.
    aio::SocketAddress named_host{AF_INET, "a.fake.test", 80, {}};  // (no braces inside co_await: GCC 12)
    EXPECT_THROW((void)co_await loop.getnameinfo(named_host), std::invalid_argument);
  });
  EXPECT_EQ(dns.queries(), 0) << "127.0.0.1 is in the hosts file";
}

aio::Coro<void> greet(aio::StreamReader, aio::StreamWriter w) {
  w.write("hello from the server\n");
  co_await w.drain();
  w.close();
}

TEST_P(DnsTest, OpenConnectionResolvesThroughTheResolver) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::set_resolver_options(aio::get_running_loop(), dns.options());
    // start_server / open_connection are called in statements of their own: GCC 12 miscompiles
    // their defaulted by-value StreamOptions (`= {}`, it holds a std::string) inside a co_await
    // expression (destroyed at a wrong address when the frame goes).
    auto starting = aio::start_server(greet, "127.0.0.1", 0);
    aio::Server server = co_await starting;
    auto connecting = aio::open_connection("a.fake.test", server.port());
    auto [r, w] = co_await connecting;
    EXPECT_EQ(co_await r.readline(), "hello from the server\n");
    w.close();
    co_await w.wait_closed();
    auto failing = aio::open_connection("nowhere.fake.test", server.port());
    try {
      (void)co_await failing;
      ADD_FAILURE() << "expected GaiError";
    } catch (const aio::GaiError& e) {
      EXPECT_STREQ(e.what(), "getaddrinfo(nowhere.fake.test): Domain name not found");
    }
    server.close();
    co_await server.wait_closed();
  });
  auto names = dns.names();
  EXPECT_NE(std::find(names.begin(), names.end(), "a.fake.test"), names.end());
}

TEST_P(DnsTest, ServersFromTheEnvironment) {
  FakeDnsServer dns;
  ::setenv("CONCUR_DNS_SERVERS", dns.address().c_str(), 1);
  auto rows = run_main([&]() -> aio::Coro<std::vector<aio::AddrInfo>> {
    co_return co_await aio::getaddrinfo("a.fake.test", 80, opts(AF_INET));
  });
  ::unsetenv("CONCUR_DNS_SERVERS");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].address.host, "127.0.0.1");
}

TEST_P(DnsTest, BadOptions) {
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::ResolverOptions bad;
    bad.servers = "not an address";
    aio::set_resolver_options(loop, bad);
    EXPECT_THROW((void)co_await loop.getaddrinfo("a.fake.test", 80), std::invalid_argument);
    EXPECT_THROW((void)co_await loop.getaddrinfo("a.fake.test", 80, opts(AF_UNIX)), aio::GaiError);
  });
}

TEST_P(DnsTest, OptionsCannotChangeWhileAQueryIsPending) {
  FakeDnsServer dns;
  run_main([&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    aio::set_resolver_options(loop, dns.options(5000ms));
    auto slow = aio::create_task(lookup("slow.fake.test", 80, opts(AF_INET)));
    while (dns.queries() < 1) co_await aio::sleep(1ms);
    EXPECT_THROW(aio::set_resolver_options(loop, dns.options()), std::logic_error);
    slow.cancel();
    EXPECT_THROW((void)co_await slow, concur::CancelledError);
    co_await concur::test::settle();
    aio::set_resolver_options(loop, dns.options());
    auto rows = co_await loop.getaddrinfo("a.fake.test", 80, opts(AF_INET));
    EXPECT_EQ(rows.size(), 1u);
  });
}

TEST_P(DnsTest, ClosingTheLoopWithAQueryPending) {
  FakeDnsServer dns;
  {
    aio::EventLoop loop(aio::LoopOptions{.backend = GetParam()});
    aio::set_resolver_options(loop, dns.options(5000ms));
    auto slow = loop.create_task(lookup("slow.fake.test", 80, opts(AF_UNSPEC)));
    loop.run_until_complete(until_queries(&dns, 2));
    EXPECT_FALSE(slow.done());
    EXPECT_GE(aio::detail::dns_queries_in_flight(loop), 1u);
    loop.close();  // destroys the task, then the channel: nothing to wake, nothing leaks
    EXPECT_EQ(aio::detail::dns_queries_in_flight(loop), 0u);
    EXPECT_THROW(aio::set_resolver_options(loop, dns.options()), std::logic_error);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, DnsTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
