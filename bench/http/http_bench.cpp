// HTTP on loopback, issue #5's benchmark, every figure from one run:
//
//   server: "hello" under `wrk -t1 -c50` — concur http::web vs nginx (one worker process) vs
//           Python aiohttp's web server (bench/compare/aiohttp_hello_server.py);
//   client: N GETs with C in flight against that nginx — concur http::ClientSession vs Python
//           aiohttp's ClientSession (bench/compare/aiohttp_client_bench.py).
//
//   bench_http [--seconds S] [--requests N] [--inflight C] [--python PATH] [--nginx PATH] [--wrk PATH]
//
// Each peer that is missing (nginx, wrk, python3 with aiohttp) is reported as n/a.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <concur/asyncio.hpp>
#include <concur/http.hpp>

extern char** environ;

namespace aio = concur::asyncio;
namespace http = concur::http;
namespace web = concur::http::web;

namespace {

struct Config {
  int seconds = 5;
  int requests = 20000;
  int inflight = 100;
  std::string python = "/usr/bin/python3";
  std::string nginx = "/usr/sbin/nginx";
  std::string wrk = "/usr/bin/wrk";
};

/// A child process with its stdout on a pipe.
struct Child {
  pid_t pid = -1;
  int out = -1;

  Child(const std::vector<std::string>& argv) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[1]);
    out = p[0];
  }
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (out >= 0) ::close(out);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  /// Reads stdout to EOF (or one line with `line_only`).
  std::string read(bool line_only = false) const {
    std::string s;
    char c;
    while (::read(out, &c, 1) == 1) {
      s += c;
      if (line_only && c == '\n') break;
    }
    return s;
  }
  int wait() {
    int st = 0;
    ::waitpid(pid, &st, 0);
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
};

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

bool python_has_aiohttp(const Config& cfg) {
  if (!executable(cfg.python)) return false;
  Child c({cfg.python, "-c", "import aiohttp; print('yes')"});
  return c.read().find("yes") != std::string::npos;
}

/// Requests per second that `wrk -t1 -c50` measured against `url`; nullopt when wrk failed.
std::optional<double> run_wrk(const Config& cfg, const std::string& url) {
  Child c({cfg.wrk, "-t1", "-c50", "-d" + std::to_string(cfg.seconds) + "s", url});
  std::string out = c.read();
  c.wait();
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) {
    std::fprintf(stderr, "wrk output not understood:\n%s\n", out.c_str());
    return std::nullopt;
  }
  if (out.find("Non-2xx") != std::string::npos || out.find("Socket errors") != std::string::npos) {
    std::fprintf(stderr, "note: wrk reported errors against %s:\n%s\n", url.c_str(), out.c_str());
  }
  return std::stod(m[1]);
}

int free_port() {
  int port = 0;
  aio::run([&]() -> aio::Coro<void> {
    aio::Server s = co_await aio::start_server(
        [](aio::StreamReader, aio::StreamWriter w) -> aio::Coro<void> {
          w.close();
          co_return;
        },
        "127.0.0.1", 0);
    port = s.port();
    s.close();
    co_await s.wait_closed();
  }());
  return port;
}

/// nginx with one worker (master_process off: a single process) answering "hello".
struct Nginx {
  std::filesystem::path dir;
  std::unique_ptr<Child> proc;
  int port = 0;

  explicit Nginx(const Config& cfg) {
    if (!executable(cfg.nginx)) return;
    char tmpl[] = "/tmp/concur-bench-nginx-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir = tmpl;
    port = free_port();
    std::ofstream(dir / "nginx.conf") << "daemon off;\nmaster_process off;\nworker_processes 1;\n"
                                      << "error_log " << (dir / "error.log").string() << ";\npid "
                                      << (dir / "nginx.pid").string() << ";\n"
                                      << "events { worker_connections 1024; }\n"
                                      << "http {\n  access_log off;\n  keepalive_requests 1000000;\n"
                                      << "  client_body_temp_path " << dir.string() << ";\n"
                                      << "  proxy_temp_path " << dir.string() << ";\n"
                                      << "  fastcgi_temp_path " << dir.string() << ";\n"
                                      << "  uwsgi_temp_path " << dir.string() << ";\n"
                                      << "  scgi_temp_path " << dir.string() << ";\n"
                                      << "  server {\n    listen 127.0.0.1:" << port << ";\n"
                                      << "    location / { default_type text/plain; return 200 \"hello\"; }\n"
                                      << "  }\n}\n";
    proc = std::make_unique<Child>(
        std::vector<std::string>{cfg.nginx, "-p", dir.string(), "-c", (dir / "nginx.conf").string()});
    // Wait until it answers.
    for (int i = 0; i < 100; ++i) {
      try {
        http::Session s;
        if (s.get(url()).status_code == 200) return;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::fprintf(stderr, "nginx did not start (see %s)\n", (dir / "error.log").c_str());
    proc.reset();
  }
  ~Nginx() {
    proc.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
  [[nodiscard]] bool ok() const { return proc != nullptr; }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/"; }
};

/// concur's web server answering "hello", on a loop thread of its own.
struct ConcurServer {
  std::thread t;
  std::atomic<bool> stop{false};
  int port = 0;

  ConcurServer() {
    std::promise<int> p;
    auto f = p.get_future();
    t = std::thread([this, &p] {
      aio::run([&]() -> aio::Coro<void> {
        web::Application app;
        app.router().add_get("/",
                             [](web::Request&) -> aio::Coro<web::Response> { co_return web::Response::text("hello"); });
        web::Site site = co_await web::start(app, "127.0.0.1", 0);
        p.set_value(site.port());
        while (!stop.load()) co_await aio::sleep(std::chrono::milliseconds(20));
        co_await site.shutdown();
      }());
    });
    port = f.get();
  }
  ~ConcurServer() {
    stop = true;
    t.join();
  }
  ConcurServer(const ConcurServer&) = delete;
  ConcurServer& operator=(const ConcurServer&) = delete;
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/"; }
};

/// concur's ClientSession: `n` GETs with `c` in flight; requests per second.
double concur_client(const std::string& url, int n, int c) {
  return aio::run([&]() -> aio::Coro<double> {
    http::ClientSessionOptions so;
    so.limit = static_cast<std::size_t>(c);
    http::ClientSession session(so);
    int left = n;
    int failed = 0;
    auto worker = [&]() -> aio::Coro<void> {
      while (left > 0) {
        --left;
        http::ClientResponse r = co_await session.get(url);
        std::string body = co_await r.read();
        if (r.status != 200 || body.empty()) ++failed;
      }
    };
    auto t0 = std::chrono::steady_clock::now();
    std::vector<aio::Task<void>> tasks;
    for (int i = 0; i < c; ++i) tasks.push_back(aio::create_task(worker()));
    co_await aio::gather(std::move(tasks));
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
    co_await session.close();
    if (failed > 0) std::fprintf(stderr, "concur client: %d requests failed\n", failed);
    co_return n / took.count();
  }());
}

void row(const char* name, std::optional<double> v, std::optional<double> ref1, const char* ref1_name,
         std::optional<double> ref2 = std::nullopt, const char* ref2_name = "") {
  if (!v) {
    std::printf("  %-38s %12s\n", name, "n/a");
    return;
  }
  std::printf("  %-38s %12.0f", name, *v);
  if (ref1) std::printf("   %5.2fx %s", *v / *ref1, ref1_name);
  if (ref2) std::printf("   %5.2fx %s", *v / *ref2, ref2_name);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--seconds") {
      cfg.seconds = std::atoi(next().c_str());
    } else if (a == "--requests") {
      cfg.requests = std::atoi(next().c_str());
    } else if (a == "--inflight") {
      cfg.inflight = std::atoi(next().c_str());
    } else if (a == "--python") {
      cfg.python = next();
    } else if (a == "--nginx") {
      cfg.nginx = next();
    } else if (a == "--wrk") {
      cfg.wrk = next();
    } else {
      std::printf("usage: %s [--seconds S] [--requests N] [--inflight C] [--python PATH] [--nginx PATH] [--wrk PATH]\n",
                  argv[0]);
      return a == "--help" ? 0 : 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  const bool have_wrk = executable(cfg.wrk);
  const bool have_aiohttp = python_has_aiohttp(cfg);
  const std::string dir = std::string(CONCUR_SOURCE_DIR) + "/bench/compare/";

  Nginx nginx(cfg);
  std::optional<double> s_concur, s_nginx, s_aiohttp, c_concur, c_aiohttp;
  if (have_wrk) {
    {
      ConcurServer server;
      s_concur = run_wrk(cfg, server.url());
    }
    if (nginx.ok()) s_nginx = run_wrk(cfg, nginx.url());
    if (have_aiohttp) {
      Child py({cfg.python, dir + "aiohttp_hello_server.py"});
      std::string port = py.read(true);
      if (!port.empty()) s_aiohttp = run_wrk(cfg, "http://127.0.0.1:" + port.substr(0, port.find('\n')) + "/");
    }
  }
  if (nginx.ok()) {
    c_concur = concur_client(nginx.url(), cfg.requests, cfg.inflight);
    if (have_aiohttp) {
      Child py({cfg.python, dir + "aiohttp_client_bench.py", nginx.url(), std::to_string(cfg.requests),
                std::to_string(cfg.inflight)});
      std::string out = py.read();
      if (py.wait() == 0 && !out.empty()) c_aiohttp = std::stod(out);
    }
  }

  std::printf("HTTP on loopback, same run\n\n");
  std::printf("server: GET / -> \"hello\", wrk -t1 -c50 -d%ds (requests/s)\n", cfg.seconds);
  row("concur http::web (1 loop)", s_concur, s_nginx, "nginx", s_aiohttp, "aiohttp");
  row("nginx (1 worker)", s_nginx, std::nullopt, "");
  row("Python aiohttp web", s_aiohttp, std::nullopt, "");
  std::printf("\nclient: %d GETs, %d in flight, against that nginx (requests/s)\n", cfg.requests, cfg.inflight);
  row("concur http::ClientSession", c_concur, c_aiohttp, "aiohttp");
  row("Python aiohttp ClientSession", c_aiohttp, std::nullopt, "");
  if (!have_wrk) std::printf("\n(wrk not found at %s: no server figures)\n", cfg.wrk.c_str());
  if (!nginx.ok()) std::printf("\n(nginx not found or did not start: no client figures)\n");
  return 0;
}
