#pragma once
/// \file asyncio subprocesses: create_subprocess_exec / create_subprocess_shell and Process
/// (Python's `asyncio.subprocess`).
///
/// Threads: loop thread only; every await resumes on the loop's thread.
/// Child exit is watched with a pidfd (pidfd_open) on the loop, or, on kernels without it, by
/// polling waitpid(WNOHANG) on a short timer. The loop reaps every child it started, even when
/// every Process handle is gone; if the loop closes while a child still runs, the child is
/// killed (SIGKILL) and reaped, as Python does when it collects a running subprocess transport.
/// No file descriptor leaks: every pipe is close-on-exec; the child keeps only its 0, 1, 2.
/// Writing to a child's stdin needs SIGPIPE ignored (as Python does at startup): the first
/// subprocess created with stdin = PIPE sets SIGPIPE to SIG_IGN if it was SIG_DFL. Children
/// start with SIGPIPE at SIG_DFL and an empty signal mask.
#include <csignal>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "concur/asyncio/streams.hpp"
#include "concur/asyncio/task.hpp"

namespace concur::asyncio {

/// What a child's stdin / stdout / stderr is connected to (Python's subprocess constants). A
/// value >= 0 is a file descriptor of this process, duplicated into the child.
inline constexpr int PIPE = -1;     ///< a pipe to this process: Process::stdin_ / stdout_ / stderr_
inline constexpr int STDOUT = -2;   ///< stderr only: the same as the child's stdout
inline constexpr int DEVNULL = -3;  ///< /dev/null
inline constexpr int INHERIT = -4;  ///< this process's own stream (the default, Python's None)

/// Options of create_subprocess_exec / create_subprocess_shell.
struct SubprocessOptions {
  int stdin_ = INHERIT;
  int stdout_ = INHERIT;
  int stderr_ = INHERIT;
  /// The child's working directory.
  std::optional<std::string> cwd;
  /// The child's whole environment, as "NAME=value" strings (default: this process's). The
  /// program is looked up in this environment's PATH when it has one.
  std::optional<std::vector<std::string>> env;
  /// The StreamReaders' limit (Python's `limit`).
  std::size_t limit = kDefaultStreamLimit;
};

namespace detail {
struct ProcessState;
/// Tests only: false makes new children be watched by polling waitpid instead of a pidfd.
void set_use_pidfd(bool use) noexcept;
}  // namespace detail

/// A child process (Python's asyncio.subprocess.Process). A handle: copies share the process.
/// Loop thread only.
class Process {
 public:
  explicit Process(std::shared_ptr<detail::ProcessState> s) noexcept : s_(std::move(s)) {}

  [[nodiscard]] int pid() const noexcept;
  /// The exit status once the child has exited and been reaped (by the loop, on its own):
  /// the exit code, or -N when signal N killed it. nullopt while it runs.
  [[nodiscard]] std::optional<int> returncode() const noexcept;

  /// The pipes, when created with PIPE (std::logic_error otherwise).
  [[nodiscard]] StreamWriter& stdin_() const;
  [[nodiscard]] StreamReader& stdout_() const;
  [[nodiscard]] StreamReader& stderr_() const;
  [[nodiscard]] bool has_stdin() const noexcept;
  [[nodiscard]] bool has_stdout() const noexcept;
  [[nodiscard]] bool has_stderr() const noexcept;

  /// Waits for the child to exit; returns returncode(). Does not read the pipes: a child that
  /// fills a pipe nobody reads blocks forever (use communicate()).
  /// Cancel safety: a cancelled wait() changes nothing; the child runs on, wait() may be called
  /// again.
  Coro<int> wait();
  /// Writes `input` to stdin and closes it, reads stdout and stderr to EOF concurrently (no
  /// deadlock whatever their sizes), then waits for the child to exit. Returns (stdout,
  /// stderr); a stream not created with PIPE gives "" (and `input` is ignored without a stdin
  /// pipe, as Python). A child that exits without reading all its input is not an error.
  /// Cancel safety: a cancelled communicate() leaves the child running and the Process usable:
  /// output not yet returned stays in the readers (unless it had already been read in full,
  /// i.e. the cancel hit the final wait); input may have been partly written.
  Coro<std::pair<std::string, std::string>> communicate(std::string input = {});

  /// Sends signal `sig` (nothing once the child has been reaped, as Python's Popen).
  void send_signal(int sig);
  /// SIGTERM.
  void terminate() { send_signal(SIGTERM); }
  /// SIGKILL.
  void kill() { send_signal(SIGKILL); }

  [[nodiscard]] const std::shared_ptr<detail::ProcessState>& state() const noexcept { return s_; }

 private:
  std::shared_ptr<detail::ProcessState> s_;
};

/// Python's asyncio.create_subprocess_exec: runs `program` (looked up in PATH as execvp does
/// unless it contains a '/') with `args` (argv[1:]). A program that cannot be run (missing,
/// not executable, bad cwd) throws OSError here, naming it, with errno_code() ENOENT, EACCES...
/// Returns, on the loop's thread, once the pipes' protocols are connected (one loop iteration,
/// as Python). Cancel safety: cancelled while waiting for that, the child is killed (the loop
/// reaps it) and its pipes are closed.
Coro<Process> create_subprocess_exec(std::string program, std::vector<std::string> args, SubprocessOptions options);
/// Without options (built here, outside the caller's co_await: GCC 12 may destroy a braced
/// temporary there twice — name options before awaiting).
inline Coro<Process> create_subprocess_exec(std::string program, std::vector<std::string> args) {
  SubprocessOptions defaults;
  return create_subprocess_exec(std::move(program), std::move(args), std::move(defaults));
}
/// Python's asyncio.create_subprocess_shell: `/bin/sh -c cmd`.
Coro<Process> create_subprocess_shell(std::string cmd, SubprocessOptions options);
inline Coro<Process> create_subprocess_shell(std::string cmd) {
  SubprocessOptions defaults;
  return create_subprocess_shell(std::move(cmd), std::move(defaults));
}

}  // namespace concur::asyncio
