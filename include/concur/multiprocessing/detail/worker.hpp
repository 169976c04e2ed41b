#pragma once
// The worker side of concur's process pools and Processes, and the messages between a parent
// and its workers. A worker is this same executable started again (posix_spawn of
// /proc/self/exe) with CONCUR_MP_WORKER in its environment: a constructor in worker.cpp sees
// it before main() runs and serves requests on the inherited socket until told to exit or the
// parent goes away. Under the "forkserver" start method that constructor runs the fork server
// instead (src/multiprocessing/forkserver.cpp), whose forked copies serve the same way.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "concur/multiprocessing/connection.hpp"
#include "concur/multiprocessing/detail/task.hpp"

namespace concur::multiprocessing {

/// How worker processes and Processes start (Python's set_start_method), for the whole
/// program. Each is safe in its own way when the parent already runs threads:
///
/// - "spawn" (the default): this executable started again (posix_spawn of /proc/self/exe, with
///   only stdio and the child's own descriptors). posix_spawn execs at once in the child (vfork
///   style), running nothing of the parent's that another thread could have left half done (a
///   held malloc or stdio lock); the child starts from a fresh process image. Safe whatever
///   threads run, at the cost of the program's start-up (dynamic loading, static initialisers)
///   per child.
/// - "forkserver": a fork server is spawned as above, once, on first use (lazily): this
///   executable again, which stops before main() — after the program's static initialisers, as
///   Python's forkserver after its preloads — and stays single-threaded for good. Each child is
///   fork()ed by that server on request over a Unix socket (the child's socket and its progress
///   page travel with SCM_RIGHTS), so it is a copy of a process that never ran a second thread:
///   no lock can be held by a thread that does not exist in it. It is started faster than with
///   spawn (no exec, no start-up). Children are the server's, not this process's: the server
///   reaps them and writes each one's exit status to a pipe this process reads, so exit codes
///   and signals are reported exactly as for spawn (if the server itself is killed, a child's
///   status, once it is gone, reads as exit code 255). Children get the environment the server
///   started with. The server and its children all die with this process (each watches a pidfd
///   of it).
/// - "fork": a copy of this process, started fastest and inheriting its state, but only safe
///   while the program runs no other threads, as in Python: a lock another thread held at the
///   fork stays held in the child; and a forked child dies with the *thread* that started it
///   (PR_SET_PDEATHSIG's rule: starting a watcher thread in it is not safe).
///
/// std::invalid_argument for any other name. Changing the method affects processes started
/// afterwards only.
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
  /// How long the worker spent running the request's calls (nanoseconds): the pool's
  /// dispatch window follows it. Measured in the worker, because replies a worker batches
  /// arrive together and their arrival times say nothing about how long each one took.
  std::uint64_t busy_ns = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, init_failed, outcomes, times, busy_ns);
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

/// How the parent learns that a child it started has exited, and its waitpid status: waitpid
/// for spawn and fork children (this process's own); for forkserver children (the fork
/// server's) the status the server writes to a pipe when it reaps them, with a pidfd of the
/// child as the fallback should the server be gone. Thread safety: every member, from any
/// thread of the process that started the child.
class ChildExit {
 public:
  /// `status_fd`: the read end of the forkserver status pipe (owned), or -1 for a child of ours.
  explicit ChildExit(pid_t pid, int status_fd = -1) noexcept;
  ~ChildExit();
  ChildExit(const ChildExit&) = delete;
  ChildExit& operator=(const ChildExit&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// The status if the child has exited (reaping it), else nullopt; never blocks.
  std::optional<int> poll();
  /// Waits until it exits, at most `timeout` when given; nullopt when that passed first.
  std::optional<int> wait(std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  /// Whether it has exited, without reaping it (the status stays for poll()).
  [[nodiscard]] bool exited();

 private:
  std::optional<int> poll_locked();
  const pid_t pid_;
  int status_fd_;          // forkserver: the status pipe (open until destruction); else -1
  int pidfd_;              // a pidfd of the child (-1 if unavailable)
  bool foreign_;           // the fork server's child, not ours
  bool pipe_eof_ = false;  // the server closed the pipe without a status (it died)
  std::mutex m_;
  std::optional<int> status_;
};

/// A started worker process: its pid, the parent's end of its socket, its progress word, and
/// how to learn its exit status.
struct SpawnedWorker {
  pid_t pid = -1;
  Connection conn;
  std::shared_ptr<void> progress_map;               // unmaps the shared page
  const volatile std::uint64_t* running = nullptr;  // see kIdle
  std::shared_ptr<ChildExit> exit;
};
/// Starts a worker (this executable again). Throws OSError.
SpawnedWorker spawn_worker();
/// "exit code 3", "signal 11 (SIGSEGV)" for a waitpid status.
std::string describe_status(int status);
/// Python's exitcode: the exit status, or minus the signal number.
int exitcode_of(int status);
/// The fork server's pid, once started ("forkserver" start method), else -1.
pid_t forkserver_pid() noexcept;
/// Makes sure the worker entry point is linked into the program (it lives in a constructor).
void ensure_worker_entry() noexcept;

}  // namespace detail
}  // namespace concur::multiprocessing
