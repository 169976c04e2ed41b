// The "forkserver" start method (detail/worker.hpp: set_start_method) and ChildExit, how a
// parent learns a child's exit status whichever way it started.
//
// The fork server is this executable spawned again (spawn_self) with
// CONCUR_MP_WORKER=forkserver:<parent pid>: worker.cpp's constructor sees it before main() and
// calls forkserver_main(), which never returns and never starts a thread. It polls three
// descriptors: its socket to the parent (a request is one byte with three descriptors attached
// by SCM_RIGHTS: the child's socket, its progress page and the write end of its status pipe), a
// pidfd of the parent (gone: the server exits) and a signalfd for SIGCHLD (it reaps its
// children and writes each one's waitpid status to that child's status pipe). The answer to a
// request is the child's pid, or minus errno, as 4 bytes.
#include "forkserver.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>

namespace concur::multiprocessing::detail {

namespace {

/// The status reported when none can be had (the fork server died before the child, or the
/// child was reaped behind our back): exit code 255.
constexpr int kUnknownStatus = 255 << 8;

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int r = 0;
  while ((r = ::poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
  }
  return r > 0;
}

bool write_full(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_full(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

constexpr int kFdsPerRequest = 3;  // the child's socket, its progress page, its status pipe

/// Server side: one request's descriptors. Returns how many arrived (closing any beyond
/// `fds`), or -1 at EOF / on error.
int recv_request(int sock, int (&fds)[kFdsPerRequest]) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * 8)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctrl;
  msg.msg_controllen = sizeof ctrl;
  ssize_t r = 0;
  while ((r = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (r <= 0) return -1;
  int n = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (n < kFdsPerRequest) {
        fds[n++] = fd;
      } else {
        ::close(fd);
      }
    }
  }
  return n;
}

/// Client side: sends one request, reads the answer. False: the server is gone.
bool send_request(int sock, const int (&fds)[kFdsPerRequest], std::int32_t& answer) {
  char byte = 'F';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof fds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctrl;
  msg.msg_controllen = sizeof ctrl;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  std::memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t w = 0;
  while ((w = ::sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return w == 1 && read_full(sock, &answer, sizeof answer);
}

/// Reaps every child that exited and reports its status.
void reap_children(std::map<pid_t, int>& status_pipes) {
  int st = 0;
  pid_t p = 0;
  while ((p = ::waitpid(-1, &st, WNOHANG)) > 0 || (p < 0 && errno == EINTR)) {
    if (p < 0) continue;
    auto it = status_pipes.find(p);
    if (it == status_pipes.end()) continue;
    [[maybe_unused]] ssize_t w = ::write(it->second, &st, sizeof st);  // 4 bytes to an empty pipe
    ::close(it->second);
    status_pipes.erase(it);
  }
}

/// This process's connection to its fork server. Never destroyed: children are still joined by
/// exit handlers after static destructors may have run.
struct Client {
  std::mutex m;
  pid_t owner = -1;  // the process that started the server (a forked copy starts its own)
  int sock = -1;
  pid_t pid = -1;
};
Client& client() {
  static auto* c = new Client();
  return *c;
}
std::atomic<pid_t> g_server_pid{-1};

void start_server(Client& c) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_os_error(errno, "forkserver: socketpair");
  pid_t pid = -1;
  try {
    pid = spawn_self(sv[1], -1, "forkserver:" + std::to_string(::getpid()));
  } catch (...) {
    ::close(sv[0]);
    ::close(sv[1]);
    throw;
  }
  ::close(sv[1]);
  c.sock = sv[0];
  c.pid = pid;
  g_server_pid = pid;
}

/// The server stopped answering: make sure it is gone and reap it.
void stop_server(Client& c) {
  ::close(c.sock);
  c.sock = -1;
  if (c.pid > 0) {
    ::kill(c.pid, SIGKILL);
    while (::waitpid(c.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  c.pid = -1;
  g_server_pid = -1;
}

}  // namespace

[[noreturn]] void forkserver_main(pid_t parent) {
  const int sock = kWorkerFd;
  const int parent_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, parent, 0));
  if (parent_pidfd < 0 || ::getppid() != parent) ::_exit(0);  // the parent is already gone
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, &old);
  const int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) ::_exit(3);
  std::map<pid_t, int> status_pipes;
  for (;;) {
    pollfd fds[3] = {{sock, POLLIN, 0}, {parent_pidfd, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      ::_exit(3);
    }
    if (fds[2].revents != 0) {
      signalfd_siginfo si;
      while (::read(sfd, &si, sizeof si) > 0) {
      }
      reap_children(status_pipes);
    }
    // The program is gone: so is the server (its children watch the program themselves).
    if (fds[1].revents != 0) ::_exit(0);
    if (fds[0].revents == 0) continue;
    int got[kFdsPerRequest] = {-1, -1, -1};
    const int n = recv_request(sock, got);
    if (n < 0) ::_exit(0);  // the program closed its end
    std::int32_t answer = -EINVAL;
    if (n == kFdsPerRequest) {
      pid_t pid = ::fork();
      if (pid == 0) {  // the child: nothing of the server's but the parent's pidfd
        ::sigprocmask(SIG_SETMASK, &old, nullptr);
        ::close(sfd);
        ::close(sock);
        ::close(got[2]);
        for (const auto& [p, fd] : status_pipes) ::close(fd);
        serve_forked(got[0], got[1], parent_pidfd);
      }
      answer = pid > 0 ? static_cast<std::int32_t>(pid) : -errno;
      if (pid > 0) {
        status_pipes.emplace(pid, got[2]);
        got[2] = -1;
      }
    }
    for (int fd : got) {
      if (fd >= 0) ::close(fd);
    }
    if (!write_full(sock, &answer, sizeof answer)) ::_exit(0);
  }
}

SpawnedWorker forkserver_spawn(int child_sock, int progress_fd) {
  int st[2];
  if (::pipe2(st, O_CLOEXEC | O_NONBLOCK) != 0) throw_os_error(errno, "forkserver: pipe");
  Client& c = client();
  std::int32_t answer = 0;
  bool ok = false;
  try {
    std::lock_guard g(c.m);
    if (c.owner != ::getpid()) {  // a forked copy of the program: the server is its parent's
      if (c.sock >= 0) ::close(c.sock);
      c.sock = -1;
      c.pid = -1;
      c.owner = ::getpid();
    }
    // One retry: a server that died since the last request is replaced.
    for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
      if (c.sock < 0) start_server(c);
      const int fds[kFdsPerRequest] = {child_sock, progress_fd, st[1]};
      ok = send_request(c.sock, fds, answer);
      if (!ok) stop_server(c);
    }
  } catch (...) {
    ::close(st[0]);
    ::close(st[1]);
    throw;
  }
  ::close(st[1]);
  if (!ok || answer <= 0) {
    ::close(st[0]);
    if (!ok) throw_os_error(EPIPE, "forkserver: the fork server does not answer");
    throw_os_error(-answer, "forkserver: fork");
  }
  SpawnedWorker w;
  w.pid = answer;
  w.exit = std::make_shared<ChildExit>(answer, st[0]);
  return w;
}

pid_t forkserver_pid() noexcept { return g_server_pid.load(); }

// ---- ChildExit ----

ChildExit::ChildExit(pid_t pid, int status_fd) noexcept
    : pid_(pid),
      status_fd_(status_fd),
      pidfd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))),
      foreign_(status_fd >= 0) {}

ChildExit::~ChildExit() {
  if (status_fd_ >= 0) ::close(status_fd_);
  if (pidfd_ >= 0) ::close(pidfd_);
}

std::optional<int> ChildExit::poll() {
  std::lock_guard g(m_);
  return poll_locked();
}

std::optional<int> ChildExit::poll_locked() {
  if (status_) return status_;
  if (!foreign_) {
    int st = 0;
    pid_t r = 0;
    while ((r = ::waitpid(pid_, &st, WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == pid_) status_ = st;
    if (r < 0 && errno == ECHILD) status_ = kUnknownStatus;  // reaped behind our back
    return status_;
  }
  if (!pipe_eof_) {
    int st = 0;
    ssize_t n = 0;
    while ((n = ::read(status_fd_, &st, sizeof st)) < 0 && errno == EINTR) {
    }
    if (n == static_cast<ssize_t>(sizeof st)) {
      status_ = st;
      return status_;
    }
    if (n < 0) return std::nullopt;  // EAGAIN: not yet
    pipe_eof_ = true;                // the server died without reporting: the child's pidfd tells when it ends
  }
  if (pidfd_ < 0 || readable(pidfd_, 0)) status_ = kUnknownStatus;
  return status_;
}

std::optional<int> ChildExit::wait(std::optional<std::chrono::nanoseconds> timeout) {
  using clock = std::chrono::steady_clock;
  const auto end = timeout ? clock::now() + *timeout : clock::time_point::max();
  for (;;) {
    int fd = -1;
    {
      std::lock_guard g(m_);
      if (auto s = poll_locked()) return s;
      // Descriptors stay open until destruction, so `fd` is still this child's below.
      fd = foreign_ && !pipe_eof_ ? status_fd_ : pidfd_;
    }
    int ms = -1;
    if (timeout) {
      const auto left = end - clock::now();
      if (left <= clock::duration::zero()) return std::nullopt;
      ms = static_cast<int>((std::chrono::duration_cast<std::chrono::nanoseconds>(left).count() + 999'999) / 1'000'000);
    }
    if (fd >= 0) {
      (void)readable(fd, ms);
    } else {
      ::usleep(1000);  // no pidfd (an old kernel): poll
    }
  }
}

bool ChildExit::exited() {
  std::lock_guard g(m_);
  if (status_) return true;
  if (foreign_) return poll_locked().has_value();
  siginfo_t info{};
  // WNOWAIT: look without reaping, so that poll() still gets the exit status.
  return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_;
}

}  // namespace concur::multiprocessing::detail
