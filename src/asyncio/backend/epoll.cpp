#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <system_error>

#include "backend.hpp"

namespace concur::asyncio::detail {

namespace {

std::uint32_t to_io_events(std::uint32_t e) noexcept {
  std::uint32_t r = (e & EPOLLIN ? kReadable : 0u) | (e & EPOLLOUT ? kWritable : 0u);
  if (e & (EPOLLERR | EPOLLHUP)) r |= kIoError | kReadable | kWritable;
  return r;
}

class EpollBackend final : public Backend {
 public:
  EpollBackend() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    evfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (evfd_ < 0) {
      ::close(epfd_);
      throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = evfd_;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev);
  }
  ~EpollBackend() override {
    ::close(evfd_);
    ::close(epfd_);
  }
  const char* name() const noexcept override { return "epoll"; }

  void set_interest(int fd, std::uint32_t old_events, std::uint32_t new_events) override {
    epoll_set_interest(epfd_, fd, old_events, new_events);
  }

  void poll(std::int64_t timeout_ns, std::vector<IoEvent>& out) override {
    epoll_event events[64];
    int n;
    if (timeout_ns < 0) {
      n = ::epoll_wait(epfd_, events, 64, -1);
    } else if (have_pwait2_) {
      timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
      n = ::epoll_pwait2(epfd_, events, 64, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        have_pwait2_ = false;
        n = ::epoll_wait(epfd_, events, 64, static_cast<int>((timeout_ns + 999'999) / 1'000'000));
      }
    } else {
      // Millisecond resolution only: round up, the loop fires timers that are due on return.
      n = ::epoll_wait(epfd_, events, 64, static_cast<int>((timeout_ns + 999'999) / 1'000'000));
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == evfd_) {
        std::uint64_t v;
        while (::read(evfd_, &v, sizeof v) > 0) {
        }
        continue;
      }
      out.push_back({events[i].data.fd, to_io_events(events[i].events)});
    }
  }

  void wakeup() noexcept override {
    std::uint64_t one = 1;
    ssize_t r = ::write(evfd_, &one, sizeof one);
    (void)r;  // EAGAIN: the counter is already non-zero, the loop will wake anyway
  }

 private:
  int epfd_ = -1;
  int evfd_ = -1;
  bool have_pwait2_ = true;
};

}  // namespace

std::unique_ptr<Backend> make_epoll_backend() { return std::make_unique<EpollBackend>(); }

void epoll_set_interest(int epfd, int fd, std::uint32_t old_events, std::uint32_t new_events) {
  if (old_events == 0 && new_events == 0) return;
  epoll_event ev{};
  ev.events = (new_events & kReadable ? EPOLLIN : 0u) | (new_events & kWritable ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  int op = old_events == 0 ? EPOLL_CTL_ADD : new_events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  if (::epoll_ctl(epfd, op, fd, &ev) < 0) {
    if (op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT)) return;  // already closed
    if (op == EPOLL_CTL_ADD && errno == EEXIST) {
      ::epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
      return;
    }
    if (op == EPOLL_CTL_ADD && errno == EPERM) {
      throw std::system_error(errno, std::generic_category(),
                              "this file descriptor does not support polling (a regular file?)");
    }
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  }
}

int epoll_harvest(int epfd, std::vector<IoEvent>& out) {
  epoll_event events[128];
  int n = ::epoll_wait(epfd, events, 128, 0);
  for (int i = 0; i < n; ++i) out.push_back({events[i].data.fd, to_io_events(events[i].events)});
  return n < 0 ? 0 : n;
}

void Backend::run_batch(BatchOp* ops, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    BatchOp& op = ops[i];
    ssize_t r = op.send ? ::send(op.fd, op.data, op.len, MSG_NOSIGNAL | MSG_DONTWAIT)
                        : ::recv(op.fd, op.data, op.len, MSG_DONTWAIT);
    op.res = r < 0 ? -errno : r;
  }
}

std::unique_ptr<Backend> make_backend(const std::string& requested) {
  std::string which = requested;
  if (which.empty()) {
    if (const char* env = std::getenv("CONCUR_ASYNCIO_BACKEND")) which = env;
  }
  // Default: io_uring, measured faster here (bench/asyncio: reaping completions needs no system
  // call, while epoll pays one per poll); epoll where io_uring is unavailable.
  if (which.empty() || which == "io_uring") {
    if (auto b = make_io_uring_backend()) return b;
    return make_epoll_backend();
  }
  if (which == "epoll") return make_epoll_backend();
  throw std::invalid_argument("unknown asyncio backend '" + which + "' (use epoll or io_uring)");
}

}  // namespace concur::asyncio::detail
