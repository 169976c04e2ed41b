// mp::Process (process.hpp): a worker (worker.cpp) that runs one call and exits.
#include "concur/multiprocessing/process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "concur/multiprocessing/detail/worker.hpp"

namespace concur::multiprocessing {

namespace {

std::atomic<int> g_counter{0};

struct Child {
  Process* p;
  pid_t pid;
  bool daemon;
  std::shared_ptr<detail::ChildExit> exit;
};

// Never destroyed: the exit handler that joins children runs after static destructors may have.
std::mutex& reg_mutex() {
  static auto* m = new std::mutex();
  return *m;
}
std::vector<Child>& registry() {
  static auto* r = new std::vector<Child>();
  return *r;
}

void forget(pid_t pid) {
  std::lock_guard g(reg_mutex());
  std::erase_if(registry(), [pid](const Child& c) { return c.pid == pid; });
}

/// At normal exit: daemon children are terminated, the others joined (Python's behaviour).
void at_exit() {
  std::vector<Child> kids;
  {
    std::lock_guard g(reg_mutex());
    kids = registry();
  }
  for (const Child& c : kids) {
    if (c.daemon) ::kill(c.pid, SIGTERM);
  }
  for (const Child& c : kids) (void)c.exit->wait();
}

void register_child(Process* p, pid_t pid, bool daemon, std::shared_ptr<detail::ChildExit> exit) {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(at_exit); });
  std::lock_guard g(reg_mutex());
  registry().push_back(Child{p, pid, daemon, std::move(exit)});
}

}  // namespace

void Process::init_name() { name_ = "Process-" + std::to_string(++g_counter); }

Process::~Process() {
  if (pid_ > 0 && !status_) (void)poll_exit(false);  // reap it if it is done: no zombie
  if (pid_ > 0 && !status_) {
    std::lock_guard g(reg_mutex());
    for (Child& c : registry()) {
      if (c.pid == pid_) c.p = nullptr;
    }
  }
}

void Process::set_daemon(bool d) {
  if (pid_ > 0) throw std::logic_error("Process.daemon: set it before start()");
  daemon_ = d;
}

void Process::start() {
  if (pid_ > 0) throw std::logic_error("Process.start: a process can only be started once");
  detail::SpawnedWorker w = detail::spawn_worker();
  detail::Request r;
  r.kind = detail::RequestKind::process;
  r.calls.push_back(call_);
  r.name = name_;
  w.conn.send(r);
  pid_ = w.pid;
  exit_ = w.exit;
  register_child(this, pid_, daemon_, exit_);
}

bool Process::poll_exit(bool block) {
  if (status_) return true;
  if (pid_ <= 0) throw std::logic_error("Process: not started");
  std::optional<int> st = block ? exit_->wait() : exit_->poll();
  if (!st) return false;
  status_ = st;
  forget(pid_);
  return true;
}

void Process::join() { (void)poll_exit(true); }

bool Process::join(std::chrono::nanoseconds timeout) {
  if (poll_exit(false)) return true;
  (void)exit_->wait(timeout);
  return poll_exit(false);
}

bool Process::is_alive() { return pid_ > 0 && !poll_exit(false); }

std::optional<int> Process::exitcode() {
  if (pid_ <= 0 || !poll_exit(false)) return std::nullopt;
  return detail::exitcode_of(*status_);
}

void Process::terminate() {
  if (pid_ > 0 && !status_) ::kill(pid_, SIGTERM);
}

void Process::kill() {
  if (pid_ > 0 && !status_) ::kill(pid_, SIGKILL);
}

ProcessInfo current_process() {
  const char* n = std::getenv("CONCUR_MP_PROCESS_NAME");
  return ProcessInfo{n != nullptr ? n : "MainProcess", ::getpid()};
}

std::vector<pid_t> active_children() {
  std::vector<Child> kids;
  {
    std::lock_guard g(reg_mutex());
    kids = registry();
  }
  std::vector<pid_t> out;
  for (const Child& c : kids) {
    if (!c.exit->exited()) out.push_back(c.pid);  // exited() leaves the status to the Process
  }
  return out;
}

}  // namespace concur::multiprocessing
