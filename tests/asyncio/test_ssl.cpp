// asyncio TLS (OpenSSL): echo over streams and protocols, a 4 MiB transfer each way with
// drain, certificate and host name verification failures, CERT_NONE, a server without a
// certificate, SNI, ALPN, client certificates, start_tls, a peer resetting mid-handshake,
// handshake timeouts and cancellation, and peers no one here wrote: `openssl s_server` /
// `openssl s_client` and Python's ssl module, as child processes. Certificates (a CA and a
// "localhost" + 127.0.0.1 server certificate) are made at run time with the openssl command.
// Both backends; no file descriptor leaks after each test.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <any>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

extern char** environ;

namespace aio = concur::asyncio;
namespace ssl = concur::asyncio::ssl;
using namespace std::chrono_literals;

namespace {

using concur::test::open_fd_count;

// ---- child processes -------------------------------------------------------------------------

/// A child process with its stdin and stdout+stderr on pipes. Blocking calls: run them through
/// aio::to_thread from a coroutine. The destructor kills it if it still runs.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int rc = ::posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("posix_spawnp " + argv[0] + " failed");
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
    close_stdin();
    if (out_ >= 0) ::close(out_);
  }
  void write_stdin(const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      ssize_t n = ::write(in_, s.data() + done, s.size() - done);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }
  void close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  /// Reads output until it contains `needle` (empty: until EOF) or `timeout` passes.
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (needle.empty() || output.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || out_ < 0) return false;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) {
        ::close(out_);
        out_ = -1;
        return needle.empty();
      }
      output.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Waits for the exit (bounded); the exit status, or -1 if it had to be killed.
  int wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int st = 0;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(5ms);
    }
    return -1;
  }
  std::string output;

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
};

/// Runs a command to completion (bounded); its exit status and output.
std::pair<int, std::string> run_command(const std::vector<std::string>& argv) {
  Child c(argv);
  c.close_stdin();
  c.read_until("", 30s);
  int rc = c.wait(5s);
  return {rc, c.output};
}

// ---- certificates ------------------------------------------------------------------------------

struct Certs {
  std::string dir, ca, ca_key, cert, key;
};

Certs& certs() {
  static Certs c = [] {
    Certs r;
    char tmpl[] = "/tmp/concur-ssl-test-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    r.dir = tmpl;
    r.ca = r.dir + "/ca.pem";
    r.ca_key = r.dir + "/ca.key";
    r.cert = r.dir + "/server.pem";
    r.key = r.dir + "/server.key";
    std::ofstream(r.dir + "/ext.cnf") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                         "basicConstraints=critical,CA:FALSE\n"
                                         "keyUsage=critical,digitalSignature\n"
                                         "extendedKeyUsage=serverAuth,clientAuth\n"
                                         "authorityKeyIdentifier=keyid\n"
                                         "subjectKeyIdentifier=hash\n";
    const std::vector<std::vector<std::string>> cmds = {
        {"openssl",
         "req",
         "-x509",
         "-newkey",
         "ec",
         "-pkeyopt",
         "ec_paramgen_curve:prime256v1",
         "-nodes",
         "-keyout",
         r.ca_key,
         "-out",
         r.ca,
         "-days",
         "2",
         "-subj",
         "/CN=concur test CA",
         "-addext",
         "basicConstraints=critical,CA:TRUE",
         "-addext",
         "keyUsage=critical,keyCertSign,cRLSign"},
        {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", r.key,
         "-out", r.dir + "/server.csr", "-subj", "/CN=localhost"},
        {"openssl", "x509", "-req", "-in", r.dir + "/server.csr", "-CA", r.ca, "-CAkey", r.ca_key, "-CAcreateserial",
         "-out", r.cert, "-days", "2", "-extfile", r.dir + "/ext.cnf"},
    };
    for (const auto& cmd : cmds) {
      auto [rc, out] = run_command(cmd);
      if (rc != 0) throw std::runtime_error("certificate generation failed: " + out);
    }
    return r;
  }();
  return c;
}

class CertEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { (void)certs(); }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(certs().dir, ec);
  }
};
[[maybe_unused]] ::testing::Environment* const cert_env = ::testing::AddGlobalTestEnvironment(new CertEnvironment);

ssl::Context server_context() {
  ssl::Context c = ssl::create_default_context(ssl::Purpose::CLIENT_AUTH);
  c.load_cert_chain(certs().cert, certs().key);
  return c;
}
ssl::Context client_context() {
  ssl::Context c = ssl::create_default_context();
  c.load_verify_locations(certs().ca);
  return c;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// Sends RST instead of FIN when the socket is closed.
void set_linger0(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

class SslTest : public concur::test::BackendTest {
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

/// Reads until EOF and answers nothing (a peer that never completes a handshake).
aio::Coro<void> silent(aio::StreamReader r, aio::StreamWriter w) {
  try {
    (void)co_await r.read();
  } catch (const concur::ConnectionError&) {
  }
  w.close();
}

/// Stream options for TLS (built outside co_await expressions: GCC 12 and braced lists there).
aio::StreamOptions tls(ssl::Context ctx, std::optional<std::string> server_hostname = std::nullopt,
                       std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(60)) {
  aio::StreamOptions o;
  o.ssl = std::move(ctx);
  o.server_hostname = std::move(server_hostname);
  o.ssl_handshake_timeout = handshake_timeout;
  return o;
}

std::string any_string(const std::any& a) {
  auto* s = std::any_cast<std::string>(&a);
  return s ? *s : std::string("<none>");
}

template <class E>
aio::Coro<std::string> expect_connect_error(int port, ssl::Context ctx, std::string hostname) {
  try {
    auto [r, w] = co_await aio::open_connection("127.0.0.1", port, tls(ctx, hostname));
    w.close();
    ADD_FAILURE() << "the TLS connection should have failed";
  } catch (const E& e) {
    co_return std::string(e.what());
  }
  co_return std::string();
}

}  // namespace

TEST_P(SslTest, EchoOverStreams) {
  std::vector<std::string> info = run_main([]() -> aio::Coro<std::vector<std::string>> {
    aio::Server server = co_await aio::start_server(echo_lines, "127.0.0.1", 0, tls(server_context()));
    int port = server.port();
    auto [r, w] = co_await aio::open_connection("localhost", port, tls(client_context(), "localhost"));
    std::vector<std::string> out;
    for (int i = 0; i < 50; ++i) {
      w.write("line " + std::to_string(i) + "\n");
      co_await w.drain();
      std::string line = co_await r.readline();
      EXPECT_EQ(line, "line " + std::to_string(i) + "\n");
    }
    out.push_back(any_string(w.get_extra_info("peercert")));
    out.push_back(any_string(w.get_extra_info("version")));
    out.push_back(any_string(w.get_extra_info("cipher")));
    EXPECT_NE(std::any_cast<SSL*>(w.get_extra_info("ssl_object")), nullptr);
    EXPECT_TRUE(w.get_extra_info("peername").has_value());
    EXPECT_TRUE(w.get_extra_info("socket").has_value());
    EXPECT_FALSE(w.can_write_eof());
    EXPECT_THROW(w.write_eof(), std::logic_error);
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
    co_return out;
  });
  ASSERT_EQ(info.size(), 3u);
  EXPECT_EQ(info[0], "CN=localhost");
  EXPECT_EQ(info[1], "TLSv1.3");
  EXPECT_NE(info[2], "<none>");
}

TEST_P(SslTest, EchoOverUnixSocket) {
  run_main([]() -> aio::Coro<void> {
    std::string path = certs().dir + "/echo.sock";
    aio::Server server = co_await aio::start_unix_server(echo_lines, path, tls(server_context()));
    // No host to default to: without server_hostname a checking context refuses.
    try {
      (void)co_await aio::open_unix_connection(path, tls(client_context()));
      ADD_FAILURE() << "server_hostname is required";
    } catch (const std::invalid_argument&) {
    }
    auto [r, w] = co_await aio::open_unix_connection(path, tls(client_context(), "localhost"));
    w.write("over unix\n");
    EXPECT_EQ(co_await r.readline(), "over unix\n");
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
  });
}

namespace {
struct EchoProto : aio::Protocol {
  aio::Transport* tr = nullptr;
  void connection_made(aio::Transport& t) override {
    tr = &t;
    // connection_made comes after the handshake: TLS details are known already.
    EXPECT_EQ(any_string(t.get_extra_info("version")), "TLSv1.3");
  }
  void data_received(std::string_view data) override { tr->write(data); }
};
struct ClientProto : aio::Protocol {
  std::string got;
  bool made = false, eof = false, lost = false;
  aio::Event done;
  void connection_made(aio::Transport&) override { made = true; }
  void data_received(std::string_view data) override {
    got.append(data);
    if (got.size() >= 11) done.set();
  }
  bool eof_received() override {
    eof = true;
    return false;
  }
  void connection_lost(std::exception_ptr) override {
    lost = true;
    done.set();
  }
};
}  // namespace

TEST_P(SslTest, EchoWithProtocols) {
  run_main([]() -> aio::Coro<void> {
    aio::ServerOptions so;
    so.ssl = server_context();
    aio::Server server = co_await aio::create_server([] { return std::make_unique<EchoProto>(); }, "127.0.0.1", 0, so);
    aio::ConnectOptions co;
    co.ssl = client_context();
    auto [t, p] =
        co_await aio::create_connection([] { return std::make_unique<ClientProto>(); }, "127.0.0.1", server.port(), co);
    EXPECT_TRUE(p->made);  // create_connection returns after connection_made
    t->write("hello ");
    t->write("world");
    co_await p->done.wait();
    EXPECT_EQ(p->got, "hello world");
    t->close();
    EXPECT_TRUE(t->is_closing());
    while (!p->lost) co_await aio::sleep(1ms);
    server.close();
    co_await server.wait_closed();
  });
}

namespace {
aio::Coro<std::string> read_n(aio::StreamReader r, std::size_t n) { co_return co_await r.readexactly(n); }
aio::Coro<void> write_all(aio::StreamWriter w, std::string data) {
  for (std::size_t off = 0; off < data.size(); off += 300000) {
    w.write(std::string_view(data).substr(off, 300000));
    co_await w.drain();
  }
}
}  // namespace

TEST_P(SslTest, LargeTransferBothWaysWithDrain) {
  run_main([]() -> aio::Coro<void> {
    aio::Server server = co_await aio::start_server(echo_bytes, "127.0.0.1", 0, tls(server_context()));
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port(), tls(client_context()));
    std::string data(4 * 1024 * 1024, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) >> 3);
    aio::Task<std::string> reader = aio::create_task(read_n(r, data.size()));
    co_await write_all(w, data);
    std::string back = co_await reader;
    EXPECT_TRUE(back == data) << "the echoed data differs";
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
  });
}

TEST_P(SslTest, WrongHostnameIsAVerificationErrorNamingTheHost) {
  concur::test::UnraisableRecorder rec;
  std::string what = run_main([]() -> aio::Coro<std::string> {
    aio::Server server = co_await aio::start_server(echo_lines, "127.0.0.1", 0, tls(server_context()));
    std::string msg =
        co_await expect_connect_error<ssl::SSLCertVerificationError>(server.port(), client_context(), "wrong.example");
    // The server is still there for others.
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port(), tls(client_context(), "localhost"));
    w.write("again\n");
    EXPECT_EQ(co_await r.readline(), "again\n");
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
    co_return msg;
  });
  EXPECT_NE(what.find("certificate verify failed"), std::string::npos) << what;
  EXPECT_NE(what.find("wrong.example"), std::string::npos) << what;
  EXPECT_NE(what.find("Hostname mismatch"), std::string::npos) << what;
}

TEST_P(SslTest, UnknownCaIsAVerificationError) {
  concur::test::UnraisableRecorder rec;
  std::string what = run_main([]() -> aio::Coro<std::string> {
    aio::Server server = co_await aio::start_server(echo_lines, "127.0.0.1", 0, tls(server_context()));
    // The system store does not know our CA.
    std::string msg =
        co_await expect_connect_error<ssl::CertificateError>(server.port(), ssl::create_default_context(), "localhost");
    server.close();
    co_await server.wait_closed();
    co_return msg;
  });
  EXPECT_NE(what.find("unable to get local issuer certificate"), std::string::npos) << what;
  EXPECT_NE(what.find("localhost"), std::string::npos) << what;
}

TEST_P(SslTest, CheckHostnameOffAndCertNoneConnects) {
  run_main([]() -> aio::Coro<void> {
    ssl::Context c = ssl::create_default_context();
    EXPECT_TRUE(c.check_hostname());
    EXPECT_EQ(c.verify_mode(), ssl::CERT_REQUIRED);
    EXPECT_THROW(c.set_verify_mode(ssl::CERT_NONE), std::invalid_argument);  // as Python
    c.set_check_hostname(false);
    c.set_verify_mode(ssl::CERT_NONE);
    aio::Server server = co_await aio::start_server(echo_lines, "127.0.0.1", 0, tls(server_context()));
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port(), tls(c, "anything.invalid"));
    w.write("ok\n");
    EXPECT_EQ(co_await r.readline(), "ok\n");
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
  });
}

TEST_P(SslTest, ServerWithoutCertificateFailsTheHandshakeAndIsReported) {
  concur::test::UnraisableRecorder rec;
  std::string what = run_main([]() -> aio::Coro<std::string> {
    ssl::Context bare = ssl::create_default_context(ssl::Purpose::CLIENT_AUTH);  // no load_cert_chain
    aio::Server server = co_await aio::start_server(echo_lines, "127.0.0.1", 0, tls(bare));
    std::string msg = co_await expect_connect_error<ssl::SSLError>(server.port(), client_context(), "localhost");
    co_await concur::test::settle(20);
    server.close();
    co_await server.wait_closed();
    co_return msg;
  });
  EXPECT_NE(what.find("TLS handshake"), std::string::npos) << what;
  EXPECT_NE(what.find("alert"), std::string::npos) << what;  // the server's alert
  ASSERT_GE(rec.count(), 1u);
  EXPECT_NE(rec.get()[0].context.find("TLS handshake failed"), std::string::npos);
}

TEST_P(SslTest, GarbageClientIsReportedAndTheServerGoesOn) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    aio::Server server = co_await aio::start_server(echo_lines, "127.0.0.1", 0, tls(server_context()));
    {
      auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());  // plain TCP
      w.write("GET / HTTP/1.0\r\n\r\n");
      std::string rest;
      try {
        rest = co_await r.read();  // the server answers with an alert, then closes
      } catch (const concur::ConnectionError&) {
      }
      w.close();
      co_await w.wait_closed();
    }
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port(), tls(client_context()));
    w.write("still here\n");
    EXPECT_EQ(co_await r.readline(), "still here\n");
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
  });
  ASSERT_GE(rec.count(), 1u);
  EXPECT_NE(rec.get()[0].what.find("TLS handshake with client"), std::string::npos) << rec.get()[0].what;
}

namespace {
aio::Coro<void> tell_sni(aio::StreamReader r, aio::StreamWriter w) {
  (void)co_await r.readline();
  std::any sni = w.get_extra_info("server_hostname");
  w.write((sni.has_value() ? std::any_cast<std::string>(sni) : std::string("<no SNI>")) + "\n");
  co_await w.drain();
  w.close();
}
}  // namespace

TEST_P(SslTest, ServerSeesSni) {
  run_main([]() -> aio::Coro<void> {
    aio::Server server = co_await aio::start_server(tell_sni, "127.0.0.1", 0, tls(server_context()));
    {
      auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port(), tls(client_context(), "localhost"));
      EXPECT_EQ(any_string(w.get_extra_info("server_hostname")), "localhost");
      w.write("?\n");
      EXPECT_EQ(co_await r.readline(), "localhost\n");
      w.close();
      co_await w.wait_closed();
    }
    {
      // An IP address is checked against the certificate's IP entries and never sent as SNI.
      auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port(), tls(client_context()));
      w.write("?\n");
      EXPECT_EQ(co_await r.readline(), "<no SNI>\n");
      w.close();
      co_await w.wait_closed();
    }
    server.close();
    co_await server.wait_closed();
  });
}

namespace {
aio::Coro<void> tell_alpn_and_cert(aio::StreamReader r, aio::StreamWriter w) {
  (void)co_await r.readline();
  w.write(any_string(w.get_extra_info("selected_alpn_protocol")) + " " + any_string(w.get_extra_info("peercert")) +
          "\n");
  co_await w.drain();
  w.close();
}
}  // namespace

TEST_P(SslTest, AlpnAndClientCertificates) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    ssl::Context sctx = server_context();
    sctx.set_alpn_protocols({"http/1.1", "x-test"});
    sctx.load_verify_locations(certs().ca);
    sctx.set_verify_mode(ssl::CERT_REQUIRED);
    aio::Server server = co_await aio::start_server(tell_alpn_and_cert, "127.0.0.1", 0, tls(sctx));
    ssl::Context cctx = client_context();
    cctx.set_alpn_protocols({"h2", "x-test"});
    cctx.load_cert_chain(certs().cert, certs().key);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port(), tls(cctx));
    EXPECT_EQ(any_string(w.get_extra_info("selected_alpn_protocol")), "x-test");
    w.write("?\n");
    EXPECT_EQ(co_await r.readline(), "x-test CN=localhost\n");
    w.close();
    co_await w.wait_closed();
    // Without a client certificate the server refuses (TLS 1.3: the client learns it on read).
    bool refused = false;
    try {
      auto [r2, w2] = co_await aio::open_connection("127.0.0.1", server.port(), tls(client_context()));
      w2.write("?\n");
      std::string line = co_await r2.readline();
      refused = line.empty();
      w2.close();
    } catch (const ssl::SSLError&) {
      refused = true;
    } catch (const concur::ConnectionError&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    co_await concur::test::settle(20);
    server.close();
    co_await server.wait_closed();
  });
}

namespace {
aio::Coro<void> starttls_server(aio::StreamReader r, aio::StreamWriter w) {
  EXPECT_EQ(co_await r.readline(), "STARTTLS\n");
  w.write("OK\n");
  co_await w.drain();
  co_await w.start_tls(server_context());
  EXPECT_EQ(any_string(w.get_extra_info("version")), "TLSv1.3");
  co_await echo_lines(r, w);
}
}  // namespace

TEST_P(SslTest, StartTlsUpgradesAPlainConnection) {
  run_main([]() -> aio::Coro<void> {
    aio::Server server = co_await aio::start_server(starttls_server, "127.0.0.1", 0);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    w.write("STARTTLS\n");
    EXPECT_EQ(co_await r.readline(), "OK\n");
    aio::StartTlsOptions o;
    o.server_hostname = "localhost";
    co_await w.start_tls(client_context(), o);
    EXPECT_EQ(any_string(w.get_extra_info("peercert")), "CN=localhost");
    for (int i = 0; i < 10; ++i) {
      w.write("secret " + std::to_string(i) + "\n");
      EXPECT_EQ(co_await r.readline(), "secret " + std::to_string(i) + "\n");
    }
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
  });
}

namespace {
aio::Coro<void> reset_after_hello(aio::StreamReader r, aio::StreamWriter w) {
  (void)co_await r.read(5);  // the start of the ClientHello
  set_linger0(std::any_cast<int>(w.get_extra_info("socket")));
  w.transport().abort();
}
}  // namespace

TEST_P(SslTest, PeerResettingMidHandshake) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    // Client side: the "server" resets the connection on the ClientHello.
    aio::Server plain = co_await aio::start_server(reset_after_hello, "127.0.0.1", 0);
    try {
      auto [r, w] = co_await aio::open_connection("127.0.0.1", plain.port(), tls(client_context()));
      w.close();
      ADD_FAILURE() << "the handshake should have failed";
    } catch (const concur::ConnectionResetError& e) {
      EXPECT_NE(std::string(e.what()).find("TLS handshake"), std::string::npos) << e.what();
    }
    plain.close();
    co_await plain.wait_closed();

    // Server side: a client sends half a ClientHello and resets; the server goes on.
    aio::Server server = co_await aio::start_server(echo_lines, "127.0.0.1", 0, tls(server_context()));
    {
      auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
      w.write(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
      co_await w.drain();
      co_await aio::sleep(20ms);
      set_linger0(std::any_cast<int>(w.get_extra_info("socket")));
      w.transport().abort();
      co_await aio::sleep(20ms);
    }
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port(), tls(client_context()));
    w.write("fine\n");
    EXPECT_EQ(co_await r.readline(), "fine\n");
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
  });
  ASSERT_GE(rec.count(), 1u);
}

TEST_P(SslTest, HandshakeTimeoutAbortsTheConnection) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    aio::Server plain = co_await aio::start_server(silent, "127.0.0.1", 0);
    auto t0 = std::chrono::steady_clock::now();
    try {
      auto [r, w] =
          co_await aio::open_connection("127.0.0.1", plain.port(), tls(client_context(), std::nullopt, 200ms));
      w.close();
      ADD_FAILURE() << "the handshake should have timed out";
    } catch (const concur::ConnectionAbortedError& e) {
      EXPECT_NE(std::string(e.what()).find("taking longer than 0.2 seconds"), std::string::npos) << e.what();
    }
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 5s);
    co_await concur::test::settle(10);
    plain.close();
    co_await plain.wait_closed();

    // Server side: a client that never speaks is dropped after the server's timeout.
    aio::ServerOptions so;
    so.ssl = server_context();
    so.ssl_handshake_timeout = 200ms;
    aio::Server server = co_await aio::start_server(echo_lines, "127.0.0.1", 0, aio::StreamOptions(), so);
    auto [r, w] = co_await aio::open_connection("127.0.0.1", server.port());
    std::string got = "x";
    try {
      got = co_await aio::wait_for(r.read(), 5s);
    } catch (const concur::ConnectionError&) {
      got.clear();
    }
    EXPECT_EQ(got, "");
    w.close();
    co_await w.wait_closed();
    server.close();
    co_await server.wait_closed();
  });
  ASSERT_GE(rec.count(), 1u);
  EXPECT_NE(rec.get()[0].what.find("taking longer"), std::string::npos) << rec.get()[0].what;
}

TEST_P(SslTest, CancelledHandshakeLeaksNothing) {
  run_main([]() -> aio::Coro<void> {
    aio::Server plain = co_await aio::start_server(silent, "127.0.0.1", 0);
    for (int i = 0; i < 5; ++i) {
      try {
        (void)co_await aio::wait_for(aio::open_connection("127.0.0.1", plain.port(), tls(client_context())),
                                     std::chrono::milliseconds(10 * i));
        ADD_FAILURE() << "the silent server never completes a handshake";
      } catch (const concur::TimeoutError&) {
      }
    }
    co_await concur::test::settle(20);
    plain.close();
    co_await plain.wait_closed();
  });
}

// ---- peers no one here wrote ------------------------------------------------------------------

TEST_P(SslTest, ClientTalksToOpensslSServer) {
  run_main([]() -> aio::Coro<void> {
    int port = free_port();
    Child server({"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", certs().cert, "-key",
                  certs().key, "-naccept", "1", "-rev"});
    bool ready = co_await aio::to_thread([&server] { return server.read_until("ACCEPT", 10s); });
    EXPECT_TRUE(ready) << server.output;
    if (!ready) co_return;
    auto [r, w] = co_await aio::open_connection("localhost", port, tls(client_context(), "localhost"));
    w.write("hello openssl\n");
    EXPECT_EQ(co_await aio::wait_for(r.readline(), 10s), "lssnepo olleh\n");
    w.close();
    co_await w.wait_closed();
    int rc = co_await aio::to_thread([&server] {
      server.read_until("", 10s);
      return server.wait(10s);
    });
    EXPECT_EQ(rc, 0) << server.output;
  });
}

namespace {
aio::Coro<void> upper_once(aio::StreamReader r, aio::StreamWriter w) {
  std::string line = co_await r.readline();
  for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  w.write(line);
  co_await w.drain();
  w.close();
}
}  // namespace

TEST_P(SslTest, ServerTalksToOpensslSClient) {
  std::string out = run_main([]() -> aio::Coro<std::string> {
    aio::Server server = co_await aio::start_server(upper_once, "127.0.0.1", 0, tls(server_context()));
    Child client({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(server.port()), "-CAfile",
                  certs().ca, "-servername", "localhost", "-verify_return_error", "-quiet"});
    client.write_stdin("shout please\n");
    bool got = co_await aio::to_thread([&client] { return client.read_until("SHOUT PLEASE", 10s); });
    EXPECT_TRUE(got) << client.output;
    client.close_stdin();
    (void)co_await aio::to_thread([&client] {
      client.read_until("", 10s);
      return client.wait(10s);
    });
    server.close();
    co_await server.wait_closed();
    co_return client.output;
  });
  EXPECT_NE(out.find("SHOUT PLEASE"), std::string::npos) << out;
}

namespace {
const char* kPythonClient = R"PY(
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    with ctx.wrap_socket(s, server_hostname="localhost") as t:
        t.sendall(b"from python\n")
        data = b""
        while not data.endswith(b"\n"):
            d = t.recv(1024)
            if not d:
                break
            data += d
        print("got:", data.decode().strip(), t.version())
)PY";

const char* kPythonServer = R"PY(
import socket, ssl, sys
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
srv.settimeout(10)
print("port", srv.getsockname()[1], flush=True)
c, _ = srv.accept()
c.settimeout(10)
with ctx.wrap_socket(c, server_side=True) as t:
    data = b""
    while not data.endswith(b"\n"):
        d = t.recv(1024)
        if not d:
            break
        data += d
    t.sendall(data.upper())
    print("server sni ok", flush=True)
)PY";
}  // namespace

TEST_P(SslTest, PythonClientTalksToOurServer) {
  std::string out = run_main([]() -> aio::Coro<std::string> {
    aio::Server server = co_await aio::start_server(upper_once, "127.0.0.1", 0, tls(server_context()));
    Child client({"/usr/bin/python3", "-c", kPythonClient, std::to_string(server.port()), certs().ca});
    (void)co_await aio::to_thread([&client] {
      client.read_until("", 20s);
      return client.wait(10s);
    });
    server.close();
    co_await server.wait_closed();
    co_return client.output;
  });
  EXPECT_NE(out.find("got: FROM PYTHON TLSv1.3"), std::string::npos) << out;
}

TEST_P(SslTest, OurClientTalksToPythonServer) {
  run_main([]() -> aio::Coro<void> {
    Child server({"/usr/bin/python3", "-c", kPythonServer, certs().cert, certs().key});
    bool ready = co_await aio::to_thread([&server] { return server.read_until("\n", 20s); });
    EXPECT_TRUE(ready) << server.output;
    if (!ready) co_return;
    int port = std::atoi(server.output.substr(server.output.find("port ") + 5).c_str());
    auto [r, w] = co_await aio::open_connection("127.0.0.1", port, tls(client_context(), "localhost"));
    w.write("hi python\n");
    EXPECT_EQ(co_await aio::wait_for(r.readline(), 10s), "HI PYTHON\n");
    w.close();
    co_await w.wait_closed();
    int rc = co_await aio::to_thread([&server] {
      server.read_until("", 10s);
      return server.wait(10s);
    });
    EXPECT_EQ(rc, 0) << server.output;
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, SslTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
