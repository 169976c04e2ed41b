#pragma once
/// \file multiprocessing.Process: run a function in a new process.
///
/// ```cpp
/// mp::Process p(worker, 42); p.start(); p.join(); p.exitcode();
/// ```
///
/// The target is a plain function, static member function or captureless lambda; its
/// arguments are serialised (serialize.hpp). The process starts as set_start_method() says
/// (detail/worker.hpp): by default this executable started again (posix_spawn, Python's "spawn":
/// safe when the parent runs threads), or forked by the fork server ("forkserver", equally
/// safe), or forked from this process ("fork"); it runs the target and exits with 0, or prints
/// the exception to stderr and exits with 1 (as Python).
/// exitcode() is negative for a signal (-9 after kill()). Children die with their parent
/// process (a pidfd of the parent, watched in the child; not the thread that started them);
/// non-daemon children still running at normal exit are joined, daemon ones
/// terminated, as Python does. No zombies: join() reaps.
///
/// Thread safety: one Process object is used from one thread at a time.
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "concur/multiprocessing/detail/task.hpp"

namespace concur::multiprocessing {

namespace detail {
class ChildExit;
}  // namespace detail

class Process {
 public:
  template <class F, class... A>
  explicit Process(F target, A&&... args) : call_(detail::pack(target, std::forward<A>(args)...)) {
    init_name();
  }
  /// Terminates nothing: a started, unjoined process goes on (and is joined at exit unless
  /// daemon).
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// Starts the process; std::logic_error when started twice.
  void start();
  /// Waits until it exits.
  void join();
  /// Waits at most `timeout`; true when it exited.
  bool join(std::chrono::nanoseconds timeout);
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }
  [[nodiscard]] bool is_alive();
  /// nullopt before start().
  [[nodiscard]] std::optional<pid_t> pid() const noexcept {
    return pid_ > 0 ? std::optional<pid_t>(pid_) : std::nullopt;
  }
  /// nullopt while running (or before start); the exit status, or minus the signal number.
  [[nodiscard]] std::optional<int> exitcode();
  /// SIGTERM / SIGKILL.
  void terminate();
  void kill();
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  [[nodiscard]] bool daemon() const noexcept { return daemon_; }
  /// Before start(): a daemon child is terminated when the parent exits normally.
  void set_daemon(bool d);

 private:
  void init_name();
  bool poll_exit(bool block);
  detail::PackedCall call_;
  std::string name_;
  bool daemon_ = false;
  pid_t pid_ = -1;
  std::shared_ptr<detail::ChildExit> exit_;
  std::optional<int> status_;
};

/// The process this runs in (Python's current_process()).
struct ProcessInfo {
  std::string name;
  pid_t pid;
  [[nodiscard]] const std::string& get_name() const noexcept { return name; }
};
ProcessInfo current_process();
/// Pids of the children started here and not yet joined (Python's active_children(), which
/// also reaps those that finished).
std::vector<pid_t> active_children();

}  // namespace concur::multiprocessing
