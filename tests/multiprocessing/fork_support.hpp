#pragma once
// Helpers for the multiprocessing tests that fork plain children: start a child that runs a
// function and _exit()s with its result, wait for it without ever hanging, and check that a test
// left no shared-memory segment and no file descriptor behind.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace concur::test {

/// Forks; the child runs `f` (which returns an exit code) and _exit()s with it: 99 if `f` threw.
/// The child must only use shared objects and must not return into the test.
template <class F>
pid_t fork_child(F&& f) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 99;
    try {
      rc = f();
    } catch (...) {
      rc = 99;
    }
    ::_exit(rc);
  }
  return pid;
}

/// Waits for `pid` at most `timeout` (polling with WNOHANG), then SIGKILLs it. Returns its exit
/// code, minus the signal number if a signal ended it, or -1000 if it had to be killed.
inline int wait_child(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -2000;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1000;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -3000;
}

/// Kills and reaps `pid` (a child that waits to be killed).
inline void kill_child(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

/// The first 255 bytes of a small file ("" if it cannot be read).
inline std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return {};
  char buf[256] = {};
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  return std::string(buf, n);
}

/// `pid` no longer runs (gone, or a zombie waiting to be reaped).
inline bool gone_or_zombie(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::string st = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (st.empty()) return true;
  std::size_t paren = st.rfind(')');
  return paren != std::string::npos && paren + 2 < st.size() && st[paren + 2] == 'Z';
}

/// Forks a program that runs `start()` (it starts processes and returns the `n` pids to watch),
/// kills it with SIGKILL once they run, and waits (at most 5 s) for each of them to end: no
/// orphans. Returns "" when all ended, else what went wrong. The pipe that carries the pids is
/// inheritable on purpose: spawned children must not keep it open.
template <class F>
std::string survivors_of_a_killed_parent(F start, std::size_t n) {
  int p[2];
  if (::pipe(p) != 0) return "pipe failed";
  std::fflush(nullptr);
  pid_t parent = ::fork();
  if (parent == 0) {
    ::close(p[0]);
    std::vector<pid_t> pids = start();
    for (pid_t w : pids) {
      if (::write(p[1], &w, sizeof w) != static_cast<ssize_t>(sizeof w)) ::_exit(2);
    }
    ::close(p[1]);
    ::pause();
    ::_exit(0);
  }
  ::close(p[1]);
  std::vector<pid_t> pids;
  pid_t w = 0;
  while (pids.size() < n && ::read(p[0], &w, sizeof w) == static_cast<ssize_t>(sizeof w)) pids.push_back(w);
  ::close(p[0]);
  std::string out;
  if (pids.size() != n) out = "the program reported " + std::to_string(pids.size()) + " pids, not " + std::to_string(n);
  for (pid_t x : pids) {
    if (gone_or_zombie(x)) out += " pid " + std::to_string(x) + " was not running;";
  }
  ::kill(parent, SIGKILL);
  ::waitpid(parent, nullptr, 0);
  for (int i = 0; i < 500; ++i) {
    bool all_gone = true;
    for (pid_t x : pids) all_gone = all_gone && gone_or_zombie(x);
    if (all_gone) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (pid_t x : pids) {
    if (!gone_or_zombie(x)) out += " pid " + std::to_string(x) + " outlived its parent (an orphan);";
  }
  return out;
}

/// Names in /dev/shm that start with `prefix`.
inline std::vector<std::string> shm_entries(const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind(prefix, 0) == 0) out.push_back(n);
    }
    ::closedir(d);
  }
  return out;
}

inline bool shm_exists(const std::string& name) { return ::access(("/dev/shm/" + name).c_str(), F_OK) == 0; }

inline int open_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    --n;  // the directory's own descriptor
  }
  return n;
}

/// A segment name private to this test process.
inline std::string test_shm_name(const std::string& what) {
  return "concur_test_" + std::to_string(::getpid()) + "_" + what;
}

/// Base fixture: after each test, no segment this process named or created and no descriptor
/// it opened is left.
class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_ = open_fds(); }
  void TearDown() override {
    std::string pid = std::to_string(::getpid());
    EXPECT_EQ(shm_entries("concur_" + pid + "_"), std::vector<std::string>{}) << "leaked anonymous segments";
    EXPECT_EQ(shm_entries("concur_test_" + pid + "_"), std::vector<std::string>{}) << "leaked named segments";
    EXPECT_EQ(open_fds(), fds_) << "leaked file descriptors";
  }

 private:
  int fds_ = 0;
};

/// A pipe a child uses to say "ready" to its parent.
class ReadyPipe {
 public:
  ReadyPipe() {
    if (::pipe(fds_) != 0) fds_[0] = fds_[1] = -1;
  }
  ~ReadyPipe() {
    close_fd(fds_[0]);
    close_fd(fds_[1]);
  }
  ReadyPipe(const ReadyPipe&) = delete;
  ReadyPipe& operator=(const ReadyPipe&) = delete;
  void signal() const {
    char c = 'r';
    [[maybe_unused]] auto n = ::write(fds_[1], &c, 1);
  }
  /// Parent: waits (at most 10 s) for the child's signal.
  bool wait() {
    close_fd(fds_[1]);
    pollfd p{fds_[0], POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return false;
    char c = 0;
    return ::read(fds_[0], &c, 1) == 1;  // EOF (child died) gives 0
  }

 private:
  static void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int fds_[2];
};

}  // namespace concur::test
