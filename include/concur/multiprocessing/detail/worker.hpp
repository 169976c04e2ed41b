#pragma once
// The worker side of concur's process pools and Processes, and the messages between a parent
// and its workers. A worker is this same executable started again (posix_spawn of
// /proc/self/exe) with CONCUR_MP_WORKER in its environment: a constructor in worker.cpp sees
// it before main() runs and serves requests on the inherited socket until told to exit or the
// parent goes away.
#include <sys/types.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "concur/multiprocessing/connection.hpp"
#include "concur/multiprocessing/detail/task.hpp"

namespace concur::multiprocessing {

/// How worker processes and Processes start (Python's set_start_method), for the whole
/// program: "spawn" (the default: this executable started again, safe whatever threads run)
/// or "fork" (a copy of this process, started faster and inheriting its state, but only safe
/// while the program runs no other threads, as in Python: a lock another thread held at the
/// fork stays held in the child; and a forked child dies with the *thread* that started it,
/// PR_SET_PDEATHSIG's rule). std::invalid_argument for anything else ("forkserver" is not
/// available yet).
void set_start_method(std::string_view method);
std::string get_start_method();
std::vector<std::string> get_all_start_methods();

/// A worker process died while running a task (segfault, abort, _exit, killed): the task's
/// result (Python's BrokenProcessPool, but only that task fails here).
class BrokenProcessPool : public Error {
 public:
  using Error::Error;
};

/// An exception of a type this process cannot recreate, raised in a worker: type() is its C++
/// type name, what() its message.
class RemoteError : public Error {
 public:
  RemoteError(std::string type, const std::string& message) : Error(type + ": " + message), type_(std::move(type)) {}
  [[nodiscard]] const std::string& type() const noexcept { return type_; }

 private:
  std::string type_;
};

namespace detail {

/// One call's outcome, as the worker sends it.
struct Outcome {
  bool ok = false;
  std::string payload;  // the serialised result, or the exception's message
  std::string type;     // the exception's type name
  template <class Archive>
  void serialize(Archive& ar) {
    ar(ok, payload, type);
  }
};

enum class RequestKind : std::uint8_t { run = 1, exit = 2, initialize = 3, process = 4 };

struct Request {
  RequestKind kind = RequestKind::run;
  std::uint64_t id = 0;
  std::vector<PackedCall> calls;
  std::string name;    // process: the Process's name (current_process().name in the child)
  bool trace = false;  // the parent is tracing: time each call (Reply::times)
  template <class Archive>
  void serialize(Archive& ar) {
    ar(kind, id, calls, name, trace);
  }
};

struct Reply {
  std::uint64_t id = 0;
  bool init_failed = false;
  std::vector<Outcome> outcomes;
  /// When the request asked for it: begin and end of each call, CLOCK_MONOTONIC nanoseconds
  /// (one clock for parent and workers), two per outcome; else empty.
  std::vector<std::uint64_t> times;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, init_failed, outcomes, times);
  }
};

/// Runs one call here; never throws.
Outcome run_call(const PackedCall& c) noexcept;
/// The exception an Outcome stands for: the standard exception types and concur::Error are
/// recreated with the message; others become RemoteError.
std::exception_ptr outcome_error(const Outcome& o);

/// The request a worker is running, in memory shared with its parent: the id, with kIdle set
/// once it finished (so that after a crash the parent knows which task killed it, even when
/// the replies of the tasks before it were still unsent).
inline constexpr std::uint64_t kIdle = std::uint64_t{1} << 63;

/// A started worker process: its pid, the parent's end of its socket, and its progress word.
struct SpawnedWorker {
  pid_t pid = -1;
  Connection conn;
  std::shared_ptr<void> progress_map;               // unmaps the shared page
  const volatile std::uint64_t* running = nullptr;  // see kIdle
};
/// Starts a worker (this executable again). Throws OSError.
SpawnedWorker spawn_worker();
/// "exit code 3", "signal 11 (SIGSEGV)" for a waitpid status.
std::string describe_status(int status);
/// Python's exitcode: the exit status, or minus the signal number.
int exitcode_of(int status);
/// Makes sure the worker entry point is linked into the program (it lives in a constructor).
void ensure_worker_entry() noexcept;

}  // namespace detail
}  // namespace concur::multiprocessing
