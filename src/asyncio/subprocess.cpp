// asyncio subprocesses: posix_spawn (which reports a failed exec to the parent), pipes wrapped in
// stream transports, and child exit watched with a pidfd (or a waitpid polling timer).
#include "concur/asyncio/subprocess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "concur/asyncio/locks.hpp"
#include "concur/asyncio/sleep.hpp"
#include "concur/core/error.hpp"

extern char** environ;  // NOLINT: POSIX

namespace concur::asyncio {

namespace detail {

namespace {

std::atomic<bool> g_use_pidfd{true};

int pidfd_open(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  if (!g_use_pidfd.load(std::memory_order_relaxed)) {
    errno = ENOSYS;
    return -1;
  }
  // pidfd_open(2) returns a close-on-exec descriptor.
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

/// Writing to a child that stopped reading must give EPIPE, not kill this process.
void ignore_sigpipe() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
      ::signal(SIGPIPE, SIG_IGN);
  });
}

/// The protocol of a subprocess pipe: a stream protocol (reader/writer state, flow control)
/// that closes its pipe at EOF (a pipe has no half-close), and that never reads from the
/// stdin pipe's write end.
class PipeProtocol final : public Protocol {
 public:
  PipeProtocol(std::unique_ptr<Protocol> inner, bool write_end, std::shared_ptr<int> unconnected)
      : inner_(std::move(inner)), write_end_(write_end), unconnected_(std::move(unconnected)) {}
  void connection_made(Transport& t) override {
    --*unconnected_;
    inner_->connection_made(t);
    if (write_end_) t.pause_reading();
  }
  void data_received(std::string_view data) override { inner_->data_received(data); }
  bool eof_received() override {
    (void)inner_->eof_received();
    return false;
  }
  void connection_lost(std::exception_ptr exc) override { inner_->connection_lost(std::move(exc)); }
  void pause_writing() override { inner_->pause_writing(); }
  void resume_writing() override { inner_->resume_writing(); }

 private:
  std::unique_ptr<Protocol> inner_;
  bool write_end_;
  std::shared_ptr<int> unconnected_;  // pipes whose connection_made has not run yet
};

/// Owns file descriptors until released.
struct FdSet {
  std::vector<int> fds;
  FdSet() = default;
  FdSet(const FdSet&) = delete;
  FdSet& operator=(const FdSet&) = delete;
  ~FdSet() {
    for (int fd : fds) ::close(fd);
  }
  int add(int fd) {
    fds.push_back(fd);
    return fd;
  }
  void close_one(int fd) noexcept {
    auto it = std::find(fds.begin(), fds.end(), fd);
    if (it != fds.end()) {
      ::close(fd);
      fds.erase(it);
    }
  }
  void release(int fd) noexcept {
    auto it = std::find(fds.begin(), fds.end(), fd);
    if (it != fds.end()) fds.erase(it);
  }
};

std::string quoted(const std::string& s) { return "'" + s + "'"; }

/// execvp's lookup: `prog` itself if it has a '/', else the first executable regular file named
/// `prog` in PATH (the child's PATH when `env` is given, as Python does).
std::string find_program(const std::string& prog, const std::optional<std::vector<std::string>>& env) {
  if (prog.empty()) throw_os_error(ENOENT, "cannot run '': empty program name");
  if (prog.find('/') != std::string::npos) return prog;
  std::string path;
  bool found = false;
  if (env) {
    for (const auto& e : *env) {
      if (e.rfind("PATH=", 0) == 0) {
        path = e.substr(5);
        found = true;
      }
    }
  } else if (const char* p = std::getenv("PATH")) {
    path = p;
    found = true;
  }
  if (!found) path = "/bin:/usr/bin";
  int err = ENOENT;
  std::size_t start = 0;
  for (;;) {
    std::size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + prog;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      err = EACCES;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  throw_os_error(err, "cannot run " + quoted(prog));
}

}  // namespace

void set_use_pidfd(bool use) noexcept { g_use_pidfd.store(use, std::memory_order_relaxed); }

/// A child process: shared by the Process handles and, until the child is reaped, by itself
/// (the loop's watcher), so that every child is reaped even when the handles are gone.
struct ProcessState final : IoHandler, LoopResource, std::enable_shared_from_this<ProcessState> {
  explicit ProcessState(EventLoop& l, pid_t p) : loop(&l), pid(p) {}
  ProcessState(const ProcessState&) = delete;
  ProcessState& operator=(const ProcessState&) = delete;
  ~ProcessState() override = default;

  EventLoop* loop;
  pid_t pid;
  int pidfd = -1;
  std::optional<int> returncode;
  Event exited;
  std::optional<StreamWriter> in;
  std::optional<StreamReader> out, err;
  std::vector<std::shared_ptr<Transport>> pipes;
  std::shared_ptr<int> unconnected = std::make_shared<int>(0);
  std::shared_ptr<ProcessState> self;  // while the child runs
  TimerHandle poll_timer;
  std::chrono::microseconds poll_delay{500};

  void start_watching() {
    self = shared_from_this();
    loop->add_resource(this);
    pidfd = pidfd_open(pid);
    if (pidfd >= 0) {
      try {
        loop->watch(pidfd, this, io_readable);
        return;
      } catch (...) {
        ::close(pidfd);
        pidfd = -1;
      }
    }
    schedule_poll();
  }

  void schedule_poll() {
    poll_timer = loop->call_later(poll_delay, [w = weak_from_this()] {
      auto s = w.lock();
      if (!s || s->returncode) return;
      if (s->try_reap()) return;
      s->poll_delay = std::min<std::chrono::microseconds>(s->poll_delay * 2, std::chrono::milliseconds(50));
      s->schedule_poll();
    });
  }

  void io_ready(std::uint32_t) noexcept override {
    auto keep = shared_from_this();
    (void)try_reap();
  }

  static int decode(int status) noexcept {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return 255;
  }

  /// Reaps the child if it has exited; true then.
  bool try_reap() noexcept {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return false;
    // r < 0 (ECHILD): someone else reaped it; Python reports 255 then.
    finish(r < 0 ? 255 : decode(status));
    return true;
  }

  void finish(int code) noexcept {
    returncode = code;
    stop_watching();
    loop->remove_resource(this);
    exited.set();
    auto keep = std::move(self);  // may be the last reference: nothing after this
  }

  void stop_watching() noexcept {
    if (pidfd >= 0) {
      loop->watch(pidfd, nullptr, 0);
      ::close(pidfd);
      pidfd = -1;
    }
    poll_timer.cancel();
  }

  void loop_closing() noexcept override {
    if (returncode) return;
    // The loop closes under a running child: kill and reap it (no zombie, no orphan).
    ::kill(pid, SIGKILL);
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    finish(r < 0 ? 255 : decode(status));
  }
};

namespace {

Process spawn(EventLoop& loop, const std::string& program, std::vector<std::string> argv, const SubprocessOptions& o) {
  std::string path = find_program(program, o.env);
  const int spec[3] = {o.stdin_, o.stdout_, o.stderr_};
  FdSet owned;
  int child_fd[3] = {-1, -1, -1};
  int parent_fd[3] = {-1, -1, -1};
  bool stderr_to_stdout = false;
  for (int i = 0; i < 3; ++i) {
    int s = spec[i];
    if (s == INHERIT) continue;
    if (s == PIPE) {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) < 0) throw_os_error(errno, "create_subprocess: pipe");
      owned.add(p[0]);
      owned.add(p[1]);
      child_fd[i] = i == 0 ? p[0] : p[1];
      parent_fd[i] = i == 0 ? p[1] : p[0];
    } else if (s == DEVNULL) {
      int fd = ::open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
      if (fd < 0) throw_os_error(errno, "create_subprocess: open /dev/null");
      child_fd[i] = owned.add(fd);
    } else if (s == STDOUT) {
      if (i != 2) throw std::invalid_argument("create_subprocess: STDOUT is only valid for stderr_");
      stderr_to_stdout = true;
    } else if (s >= 0) {
      // Duplicated (close-on-exec, >= 3) so the dup2s below cannot clobber one another.
      int fd = ::fcntl(s, F_DUPFD_CLOEXEC, 3);
      if (fd < 0) throw_os_error(errno, "create_subprocess: file descriptor " + std::to_string(s));
      child_fd[i] = owned.add(fd);
    } else {
      throw std::invalid_argument("create_subprocess: invalid stream specification " + std::to_string(s));
    }
  }
  // Keep the child's ends above 2 so that the dup2s onto 0, 1, 2 do not clobber one another.
  for (int i = 0; i < 3; ++i) {
    if (child_fd[i] >= 0 && child_fd[i] < 3) {
      int fd = ::fcntl(child_fd[i], F_DUPFD_CLOEXEC, 3);
      if (fd < 0) throw_os_error(errno, "create_subprocess: fcntl");
      owned.close_one(child_fd[i]);
      child_fd[i] = owned.add(fd);
    }
  }

  posix_spawn_file_actions_t fa;
  if (int rc = ::posix_spawn_file_actions_init(&fa)) throw_os_error(rc, "posix_spawn_file_actions_init");
  struct FaGuard {
    posix_spawn_file_actions_t* p;
    ~FaGuard() { ::posix_spawn_file_actions_destroy(p); }
  } fa_guard{&fa};
  posix_spawnattr_t attr;
  if (int rc = ::posix_spawnattr_init(&attr)) throw_os_error(rc, "posix_spawnattr_init");
  struct AttrGuard {
    posix_spawnattr_t* p;
    ~AttrGuard() { ::posix_spawnattr_destroy(p); }
  } attr_guard{&attr};

  auto check = [](int rc, const char* what) {
    if (rc != 0) throw_os_error(rc, what);
  };
  for (int i = 0; i < 3; ++i)
    if (child_fd[i] >= 0)
      check(::posix_spawn_file_actions_adddup2(&fa, child_fd[i], i), "posix_spawn_file_actions_adddup2");
  if (stderr_to_stdout) check(::posix_spawn_file_actions_adddup2(&fa, 1, 2), "posix_spawn_file_actions_adddup2");
  if (o.cwd) check(::posix_spawn_file_actions_addchdir_np(&fa, o.cwd->c_str()), "posix_spawn_file_actions_addchdir_np");
  // The child starts with no blocked signals and SIGPIPE / SIGXFSZ at their defaults (this
  // process may ignore SIGPIPE), as Python's restore_signals.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGXFSZ);
  check(::posix_spawnattr_setsigmask(&attr, &none), "posix_spawnattr_setsigmask");
  check(::posix_spawnattr_setsigdefault(&attr, &defaults), "posix_spawnattr_setsigdefault");
  check(::posix_spawnattr_setflags(&attr, static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)),
        "posix_spawnattr_setflags");

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_copy;
  std::vector<char*> envp;
  char** envv = environ;
  if (o.env) {
    env_copy = *o.env;
    for (auto& e : env_copy) envp.push_back(e.data());
    envp.push_back(nullptr);
    envv = envp.data();
  }
  if (spec[0] == PIPE) ignore_sigpipe();

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, path.c_str(), &fa, &attr, args.data(), envv);
  if (rc != 0) {
    std::string what = "cannot run " + quoted(program);
    if (o.cwd) {
      struct stat st {};
      if (::stat(o.cwd->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) what += " in " + quoted(*o.cwd);
    }
    throw_os_error(rc, what);
  }
  for (int i = 0; i < 3; ++i)
    if (child_fd[i] >= 0) owned.close_one(child_fd[i]);

  auto ps = std::make_shared<ProcessState>(loop, pid);
  ps->start_watching();  // from here the child is reaped whatever happens
  for (int i = 0; i < 3; ++i) {
    if (parent_fd[i] < 0) continue;
    int fd = parent_fd[i];
    int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    std::shared_ptr<StreamState> st;
    ProtocolFactory factory = stream_protocol_factory(&st, o.limit);
    auto proto = std::make_unique<PipeProtocol>(factory(), i == 0, ps->unconnected);
    owned.release(fd);
    ++*ps->unconnected;
    std::shared_ptr<Transport> t =
        make_stream_transport(loop, fd, std::move(proto), false, std::any(static_cast<int>(pid)));
    ps->pipes.push_back(t);
    if (i == 0) {
      ps->in.emplace(t, st);
    } else if (i == 1) {
      ps->out.emplace(st);
    } else {
      ps->err.emplace(st);
    }
  }
  return Process(std::move(ps));
}

/// As Python, returns once every pipe's protocol is connected (connection_made has run), so
/// that everything the user does with the streams comes after it. Cancelled here: the child
/// is killed (and reaped by the loop) and its pipes closed.
Coro<Process> connected(Process p) {
  auto s = p.state();
  try {
    for (int i = 0; i < 1000 && *s->unconnected > 0; ++i) co_await sleep(std::chrono::seconds(0));
  } catch (...) {
    p.kill();
    for (auto& t : s->pipes) t->abort();
    throw;
  }
  co_return p;
}

Coro<std::string> read_all(StreamReader r) { co_return co_await r.read(); }

Coro<void> feed_stdin(StreamWriter w, std::string input) {
  try {
    if (!input.empty()) {
      w.write(input);
      co_await w.drain();
    }
  } catch (const ConnectionError&) {
    // The child exited or closed its stdin without reading everything: not an error (Python).
  }
  w.close();
}

Coro<int> wait_exit(std::shared_ptr<ProcessState> s) {
  while (!s->returncode) co_await s->exited.wait();
  co_return *s->returncode;
}

}  // namespace
}  // namespace detail

// ---- Process -----------------------------------------------------------------------------------

int Process::pid() const noexcept { return static_cast<int>(s_->pid); }
std::optional<int> Process::returncode() const noexcept { return s_->returncode; }
bool Process::has_stdin() const noexcept { return s_->in.has_value(); }
bool Process::has_stdout() const noexcept { return s_->out.has_value(); }
bool Process::has_stderr() const noexcept { return s_->err.has_value(); }

StreamWriter& Process::stdin_() const {
  if (!s_->in) throw std::logic_error("Process::stdin_: the process was not created with stdin_ = PIPE");
  return *s_->in;
}
StreamReader& Process::stdout_() const {
  if (!s_->out) throw std::logic_error("Process::stdout_: the process was not created with stdout_ = PIPE");
  return *s_->out;
}
StreamReader& Process::stderr_() const {
  if (!s_->err) throw std::logic_error("Process::stderr_: the process was not created with stderr_ = PIPE");
  return *s_->err;
}

Coro<int> Process::wait() { return detail::wait_exit(s_); }

Coro<std::pair<std::string, std::string>> Process::communicate(std::string input) {
  auto s = s_;
  Task<std::string> out_t, err_t;
  if (s->out) out_t = create_task(detail::read_all(*s->out), "communicate stdout");
  if (s->err) err_t = create_task(detail::read_all(*s->err), "communicate stderr");
  try {
    if (s->in) co_await detail::feed_stdin(*s->in, std::move(input));
    std::string out, err;
    if (out_t.valid()) out = co_await out_t;
    if (err_t.valid()) err = co_await err_t;
    co_await detail::wait_exit(s);
    co_return std::pair<std::string, std::string>(std::move(out), std::move(err));
  } catch (...) {
    if (out_t.valid() && !out_t.done()) out_t.cancel();
    if (err_t.valid() && !err_t.done()) err_t.cancel();
    throw;
  }
}

void Process::send_signal(int sig) {
  if (s_->returncode) return;  // reaped: the pid may belong to someone else now
  if (::kill(s_->pid, sig) < 0) throw_os_error(errno, "send_signal to process " + std::to_string(s_->pid));
}

// ---- creation ----------------------------------------------------------------------------------

Coro<Process> create_subprocess_exec(std::string program, std::vector<std::string> args, SubprocessOptions options) {
  EventLoop& loop = get_running_loop();
  std::vector<std::string> argv;
  argv.reserve(args.size() + 1);
  argv.push_back(program);
  for (auto& a : args) argv.push_back(std::move(a));
  co_return co_await detail::connected(detail::spawn(loop, program, std::move(argv), options));
}

Coro<Process> create_subprocess_shell(std::string cmd, SubprocessOptions options) {
  EventLoop& loop = get_running_loop();
  std::vector<std::string> argv;
  argv.emplace_back("/bin/sh");
  argv.emplace_back("-c");
  argv.push_back(std::move(cmd));
  co_return co_await detail::connected(detail::spawn(loop, "/bin/sh", std::move(argv), options));
}

}  // namespace concur::asyncio
