// Worker processes (detail/worker.hpp): how they start (posix_spawn of /proc/self/exe: a fresh
// process, safe whatever threads the parent runs), how they find the parent's socket
// (CONCUR_MP_WORKER=fd:parent-pid), and the loop that runs calls.
#include "concur/multiprocessing/detail/worker.hpp"

#include <cxxabi.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <typeinfo>

#include "forkserver.hpp"

#include "concur/core/trace.hpp"
#include "concur/multiprocessing/queues.hpp"

extern char** environ;

namespace concur::multiprocessing::detail {

namespace {

// The worker's pending replies, for the crash handler (worker processes only).
int g_fd = -1;
const std::string* g_out = nullptr;
volatile std::uint64_t* g_running = nullptr;

/// A task crashed the worker (SIGSEGV, SIGABRT, ...): send the replies already made, so that
/// only the crashing task fails, then die of the same signal.
void on_crash(int sig) {
  if (g_out != nullptr && g_fd >= 0) {
    const char* p = g_out->data();
    std::size_t left = g_out->size();
    while (left > 0) {
      ssize_t w = ::send(g_fd, p, left, MSG_NOSIGNAL);
      if (w <= 0) break;
      p += w;
      left -= static_cast<std::size_t>(w);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}
constexpr const char* kEnv = "CONCUR_MP_WORKER";

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && d ? std::string(d.get()) : std::string(name);
}

[[noreturn]] void worker_exit(int code) {
  flush_feeders();  // as Python's children: the items a Process put reach the queue first
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  ::_exit(code);
}

void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) worker_exit(0);  // the parent is gone
    off += static_cast<std::size_t>(w);
  }
}

/// Serves requests: reads whatever has arrived in one go, answers every whole request in it,
/// and sends the answers together once nothing more is waiting (few system calls per task when
/// the parent keeps several requests queued here).
[[noreturn]] void serve(int fd) {
  std::string in, out;
  std::vector<char> buf(256 * 1024);
  g_fd = fd;
  g_out = &out;
  // A worker moves a chunk's arguments and results through buffers of up to megabytes, again
  // and again: keep them in the heap (glibc would map and unmap each one, page-faulting every
  // page anew, until its adaptive threshold caught up). Up to 64 MiB of free heap stays.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, on_crash);
  for (;;) {
    std::size_t off = 0;
    while (in.size() - off >= 8) {
      std::uint64_t n = 0;
      for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[off + i])) << (8 * i);
      if (in.size() - off - 8 < n) break;
      Request req;
      try {
        req = loads<Request>(std::string_view(in).substr(off + 8, static_cast<std::size_t>(n)));
      } catch (...) {
        worker_exit(2);  // not a request: nothing sensible to do
      }
      off += 8 + static_cast<std::size_t>(n);
      if (req.kind == RequestKind::exit) {
        write_all(fd, out);
        worker_exit(0);
      }
      if (req.kind == RequestKind::process) {  // a Process: run the target, exit 0, or 1 after printing the error
        ::setenv("CONCUR_MP_PROCESS_NAME", req.name.c_str(), 1);
        ::close(fd);
        Outcome o = req.calls.empty() ? Outcome{} : run_call(req.calls[0]);
        if (!o.ok) {
          std::fprintf(stderr, "Process %s:\n%s: %s\n", req.name.c_str(), o.type.c_str(), o.payload.c_str());
          worker_exit(1);
        }
        worker_exit(0);
      }
      Reply reply;
      reply.id = req.id;
      reply.outcomes.reserve(req.calls.size());
      if (g_running != nullptr) *g_running = req.id;
      if (req.trace) reply.times.reserve(2 * req.calls.size());
      const std::uint64_t began = trace::monotonic_ns();
      for (const PackedCall& c : req.calls) {
        if (req.trace) reply.times.push_back(trace::monotonic_ns());
        reply.outcomes.push_back(run_call(c));
        if (req.trace) reply.times.push_back(trace::monotonic_ns());
      }
      reply.busy_ns = trace::monotonic_ns() - began;
      if (g_running != nullptr) *g_running = req.id | kIdle;
      if (req.kind == RequestKind::initialize && !reply.outcomes.empty() && !reply.outcomes[0].ok) {
        reply.init_failed = true;
      }
      write_framed(out, [&](cereal::BinaryOutputArchive& ar) { ar(reply); });
      if (reply.init_failed) {
        write_all(fd, out);
        worker_exit(1);
      }
      if (out.size() >= 256 * 1024) {
        write_all(fd, out);
        out.clear();
      }
    }
    in.erase(0, off);
    // More requests already here? Then answer them before sending; else send what is done.
    ssize_t r = ::recv(fd, buf.data(), buf.size(), out.empty() ? 0 : MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      write_all(fd, out);
      out.clear();
      r = ::recv(fd, buf.data(), buf.size(), 0);
    }
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (!out.empty()) write_all(fd, out);
      worker_exit(0);  // the parent closed (or went away): done
    }
    in.append(buf.data(), static_cast<std::size_t>(r));
  }
}

/// Exits when the process `parent` does (see worker_entry). `watch_thread` false (a forked
/// child of a process with threads, where starting threads is not safe): PR_SET_PDEATHSIG only,
/// which fires when the thread that forked exits.
void die_with(pid_t parent, bool watch_thread = true) {
  int pfd = watch_thread ? static_cast<int>(::syscall(SYS_pidfd_open, parent, 0)) : -1;
  if (::getppid() != parent) worker_exit(1);  // it died before we could watch it
  if (pfd >= 0) {
    std::thread([pfd] {
      pollfd p{pfd, POLLIN, 0};
      while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
      ::_exit(1);  // the parent is gone
    }).detach();
  } else {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) worker_exit(1);
  }
}

/// The worker entry point: runs before main() in a worker, returns at once in any other process.
/// Default priority, so the program's own static objects (linked before this library) are
/// constructed first, as a Python worker imports the main module's top level.
__attribute__((constructor)) void worker_entry() {
  const char* v = std::getenv(kEnv);
  if (v == nullptr) return;
  const bool forkserver = std::strncmp(v, "forkserver:", 11) == 0;
  const auto parent = static_cast<pid_t>(std::atol(forkserver ? v + 11 : v));
  ::unsetenv(kEnv);
  // A worker records nothing itself: the parent asks for call times in its requests and
  // writes the trace file (CONCUR_TRACE is the parent's, whichever order start-up runs in).
  ::unsetenv("CONCUR_TRACE");
  trace::disable();
  if (forkserver) forkserver_main(parent);
  // No orphans: die with the parent process. A pidfd of the parent, watched by a thread, fires
  // when the whole parent process is gone (PR_SET_PDEATHSIG would fire when the parent *thread*
  // that started us exits, e.g. a short-lived thread that started a Process). Kernels without
  // pidfd_open get PR_SET_PDEATHSIG.
  die_with(parent);
  ::signal(SIGPIPE, SIG_IGN);
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, kProgressFd, 0);
  if (page != MAP_FAILED) g_running = static_cast<volatile std::uint64_t*>(page);
  ::close(kProgressFd);
  serve(kWorkerFd);
}

}  // namespace

[[noreturn]] void serve_forked(int sock, int progress_fd, int parent_pidfd) {
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, progress_fd, 0);
  if (page != MAP_FAILED) g_running = static_cast<volatile std::uint64_t*>(page);
  ::close(progress_fd);
  ::signal(SIGPIPE, SIG_IGN);
  if (parent_pidfd < 0) worker_exit(1);
  // The server is single-threaded, so a thread may start here (unlike after a plain fork).
  std::thread([parent_pidfd] {
    pollfd p{parent_pidfd, POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    ::_exit(1);  // the program is gone
  }).detach();
  serve(sock);
}

namespace {
std::atomic<int> g_start_method{0};  // 0 spawn, 1 fork, 2 forkserver
}  // namespace

void ensure_worker_entry() noexcept {
  // Referencing this function from Pool/Process pulls this object file (and its constructor)
  // into programs linked against the static library.
  static volatile bool touched = true;
  (void)touched;
}

Outcome run_call(const PackedCall& c) noexcept {
  Outcome o;
  try {
    auto tramp = reinterpret_cast<Trampoline>(const_cast<void*>(resolve(c.trampoline)));
    const void* fn = resolve(c.fn);
    o.payload = tramp(fn, c.args);
    o.ok = true;
  } catch (const std::exception& e) {
    o.type = demangle(typeid(e).name());
    o.payload = e.what();
  } catch (...) {
    o.type = "unknown";
    o.payload = "an exception that is not a std::exception";
  }
  return o;
}

std::exception_ptr outcome_error(const Outcome& o) {
  const std::string& t = o.type;
  const std::string& m = o.payload;
  if (t == "std::runtime_error") return std::make_exception_ptr(std::runtime_error(m));
  if (t == "std::logic_error") return std::make_exception_ptr(std::logic_error(m));
  if (t == "std::invalid_argument") return std::make_exception_ptr(std::invalid_argument(m));
  if (t == "std::out_of_range") return std::make_exception_ptr(std::out_of_range(m));
  if (t == "std::domain_error") return std::make_exception_ptr(std::domain_error(m));
  if (t == "std::length_error") return std::make_exception_ptr(std::length_error(m));
  if (t == "std::range_error") return std::make_exception_ptr(std::range_error(m));
  if (t == "std::overflow_error") return std::make_exception_ptr(std::overflow_error(m));
  if (t == "std::underflow_error") return std::make_exception_ptr(std::underflow_error(m));
  if (t == "concur::Error") return std::make_exception_ptr(Error(m));
  if (t == "concur::TimeoutError") return std::make_exception_ptr(TimeoutError(m));
  if (t == "concur::multiprocessing::CodeMismatchError") return std::make_exception_ptr(CodeMismatchError(m));
  if (t == "concur::multiprocessing::UnpicklingError") return std::make_exception_ptr(UnpicklingError(m));
  return std::make_exception_ptr(RemoteError(t, m));
}

SpawnedWorker spawn_worker() {
  ensure_worker_entry();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_os_error(errno, "worker: socketpair");
  int mfd = ::memfd_create("concur-mp-progress", MFD_CLOEXEC);
  if (mfd < 0 || ::ftruncate(mfd, 4096) != 0) {
    int e = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    if (mfd >= 0) ::close(mfd);
    throw_os_error(e, "worker: memfd_create");
  }
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (page == MAP_FAILED) {
    int e = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    ::close(mfd);
    throw_os_error(e, "worker: mmap");
  }
  *static_cast<volatile std::uint64_t*>(page) = kIdle;
  std::shared_ptr<void> progress(page, [](void* p) { ::munmap(p, 4096); });
  const auto* running = static_cast<const volatile std::uint64_t*>(page);
  const int method = g_start_method.load();
  if (method == 1) {
    const pid_t me = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      int e = errno;
      ::close(sv[0]);
      ::close(sv[1]);
      ::close(mfd);
      throw_os_error(e, "worker: fork");
    }
    if (pid == 0) {  // the child: this process's copy serves, no exec
      ::close(sv[0]);
      ::close(mfd);
      g_running = static_cast<volatile std::uint64_t*>(page);
      ::signal(SIGPIPE, SIG_IGN);
      die_with(me, false);
      serve(sv[1]);
    }
    ::close(sv[1]);
    ::close(mfd);
    return SpawnedWorker{pid, Connection(sv[0]), progress, running, std::make_shared<ChildExit>(pid)};
  }
  // spawn, or forkserver: the child's ends of the socket and page go to it, then close here.
  SpawnedWorker w;
  try {
    if (method == 2) {
      w = forkserver_spawn(sv[1], mfd);
    } else {
      w.pid = spawn_self(sv[1], mfd, std::to_string(::getpid()));
      w.exit = std::make_shared<ChildExit>(w.pid);
    }
  } catch (...) {
    ::close(sv[0]);
    ::close(sv[1]);
    ::close(mfd);
    throw;
  }
  ::close(sv[1]);
  ::close(mfd);
  w.conn = Connection(sv[0]);
  w.progress_map = std::move(progress);
  w.running = running;
  return w;
}

pid_t spawn_self(int socket_fd, int progress_fd, const std::string& worker_env) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, socket_fd, kWorkerFd);
  if (progress_fd >= 0) posix_spawn_file_actions_adddup2(&fa, progress_fd, kProgressFd);
  // Only stdio, the socket and the progress page reach the worker: descriptors this process
  // left inheritable (the write end of a pipe, a listening socket) must not be held open by
  // workers (Python's spawn passes only the ones it needs too).
  posix_spawn_file_actions_addclosefrom_np(&fa, progress_fd >= 0 ? kProgressFd + 1 : kWorkerFd + 1);
  std::vector<std::string> env_store;
  std::vector<char*> envp;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "CONCUR_MP_WORKER=", 17) != 0) envp.push_back(*e);
  }
  env_store.push_back(std::string(kEnv) + "=" + worker_env);
  envp.push_back(env_store.back().data());
  envp.push_back(nullptr);
  char exe[] = "/proc/self/exe";
  char name[] = "concur-mp-worker";
  char* argv[] = {name, nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, exe, &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw_os_error(rc, "worker: posix_spawn(/proc/self/exe)");
  return pid;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    return "signal " + std::to_string(sig) + (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
  }
  return "status " + std::to_string(status);
}

int exitcode_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return status;
}

}  // namespace concur::multiprocessing::detail

namespace concur::multiprocessing {

void set_start_method(std::string_view method) {
  if (method == "spawn") {
    detail::g_start_method = 0;
  } else if (method == "fork") {
    detail::g_start_method = 1;
  } else if (method == "forkserver") {
    detail::g_start_method = 2;
  } else {
    throw std::invalid_argument("set_start_method: cannot find context for '" + std::string(method) + "'");
  }
}

std::string get_start_method() {
  switch (detail::g_start_method.load()) {
    case 1:
      return "fork";
    case 2:
      return "forkserver";
    default:
      return "spawn";
  }
}

std::vector<std::string> get_all_start_methods() { return {"spawn", "fork", "forkserver"}; }

}  // namespace concur::multiprocessing
