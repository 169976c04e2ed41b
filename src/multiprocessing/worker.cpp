// Worker processes (detail/worker.hpp): how they start (posix_spawn of /proc/self/exe: a fresh
// process, safe whatever threads the parent runs), how they find the parent's socket
// (CONCUR_MP_WORKER=fd:parent-pid), and the loop that runs calls.
#include "concur/multiprocessing/detail/worker.hpp"

#include <cxxabi.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <typeinfo>

extern char** environ;

namespace concur::multiprocessing::detail {

namespace {

constexpr int kWorkerFd = 3;  // where the worker finds its socket
constexpr const char* kEnv = "CONCUR_MP_WORKER";

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && d ? std::string(d.get()) : std::string(name);
}

[[noreturn]] void worker_exit(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  ::_exit(code);
}

[[noreturn]] void serve(int fd) {
  Connection conn(fd);
  for (;;) {
    Request req;
    try {
      req = conn.recv<Request>();
    } catch (...) {  // the parent closed (or went away): done
      worker_exit(0);
    }
    if (req.kind == RequestKind::exit) worker_exit(0);
    if (req.kind == RequestKind::process) {  // a Process: run the target, exit 0, or 1 after printing the error
      ::setenv("CONCUR_MP_PROCESS_NAME", req.name.c_str(), 1);
      conn.close();
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
    for (const PackedCall& c : req.calls) reply.outcomes.push_back(run_call(c));
    if (req.kind == RequestKind::initialize && !reply.outcomes.empty() && !reply.outcomes[0].ok)
      reply.init_failed = true;
    try {
      conn.send(reply);
    } catch (...) {
      worker_exit(0);
    }
    if (reply.init_failed) worker_exit(1);
  }
}

/// The worker entry point: runs before main() in a worker, returns at once in any other process.
/// Default priority, so the program's own static objects (linked before this library) are
/// constructed first, as a Python worker imports the main module's top level.
__attribute__((constructor)) void worker_entry() {
  const char* v = std::getenv(kEnv);
  if (v == nullptr) return;
  long parent = std::atol(v);
  ::unsetenv(kEnv);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphans when the parent dies
  if (::getppid() != parent) worker_exit(1);
  ::signal(SIGPIPE, SIG_IGN);
  serve(kWorkerFd);
}

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
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], kWorkerFd);
  std::vector<std::string> env_store;
  std::vector<char*> envp;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "CONCUR_MP_WORKER=", 17) != 0) envp.push_back(*e);
  }
  env_store.push_back(std::string(kEnv) + "=" + std::to_string(::getpid()));
  envp.push_back(env_store.back().data());
  envp.push_back(nullptr);
  char exe[] = "/proc/self/exe";
  char name[] = "concur-mp-worker";
  char* argv[] = {name, nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, exe, &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(sv[1]);
  if (rc != 0) {
    ::close(sv[0]);
    throw_os_error(rc, "worker: posix_spawn(/proc/self/exe)");
  }
  return SpawnedWorker{pid, Connection(sv[0])};
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
