// The io_uring backend is built when liburing is available (CONCUR_HAVE_LIBURING).
#include "backend.hpp"

#if defined(CONCUR_HAVE_LIBURING)
#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace concur::asyncio::detail {
namespace {

class UringBackend final : public Backend {
 public:
  static std::unique_ptr<Backend> create() {
    auto b = std::unique_ptr<UringBackend>(new UringBackend());
    if (io_uring_queue_init(256, &b->ring_, 0) < 0) return nullptr;
    b->ring_ok_ = true;
    b->ring_mapped();
    b->evfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->evfd_ < 0) return nullptr;
    b->epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd_ < 0) return nullptr;
    if (!b->arm_wakeup()) return nullptr;
    return b;
  }
  ~UringBackend() override {
    if (ring_ok_) {
      ring_unmapping();
      io_uring_queue_exit(&ring_);
    }
    if (evfd_ >= 0) ::close(evfd_);
    if (epfd_ >= 0) ::close(epfd_);
  }
  const char* name() const noexcept override { return "io_uring"; }

  // File descriptors are watched through an epoll set (persistent, level-triggered
  // registrations) whose own fd is polled in the ring with one one-shot POLL_ADD, re-armed
  // after each harvest. Measured faster than one POLL_ADD per fd and per readiness (bench:
  // TCP echo): the kernel keeps the per-fd registrations, the ring keeps cheap wake-ups and
  // timeouts, and a loop with nothing ready on its fds makes no epoll call at all.
  void set_interest(int fd, std::uint32_t old_events, std::uint32_t new_events) override {
    epoll_set_interest(epfd_, fd, old_events, new_events);
    if (old_events == 0 && new_events != 0) ++watched_;
    if (old_events != 0 && new_events == 0) --watched_;
    if (watched_ > 0 && !epoll_armed_) arm_epoll();
  }

  void poll(std::int64_t timeout_ns, std::vector<IoEvent>& out) override {
    io_uring_cqe* cqe = nullptr;
    int r;
    if (timeout_ns == 0) {
      r = io_uring_sq_ready(&ring_) > 0 ? io_uring_submit(&ring_) : 0;  // just reap what is there
    } else if (timeout_ns < 0) {
      r = io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec ts{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
      r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    (void)r;
    unsigned head;
    unsigned seen = 0;
    bool rearm = false;
    bool epoll_ready = false;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      std::uint64_t data = io_uring_cqe_get_data64(cqe);
      if (data == kWakeTag) rearm = true;
      if (data == kEpollTag) {
        epoll_ready = true;
        epoll_armed_ = false;
      }
    }
    io_uring_cq_advance(&ring_, seen);
    if (epoll_ready) epoll_harvest(epfd_, out);
    if (watched_ > 0 && !epoll_armed_) arm_epoll();
    if (rearm) {
      std::uint64_t v;
      while (::read(evfd_, &v, sizeof v) > 0) {
      }
      arm_wakeup();
    }
  }

  void wakeup() noexcept override {
    std::uint64_t one = 1;
    ssize_t r = ::write(evfd_, &one, sizeof one);
    (void)r;
  }

 private:
  static constexpr std::uint64_t kWakeTag = 1;
  static constexpr std::uint64_t kEpollTag = 2;
  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (!sqe) {  // the submission queue is full: hand it to the kernel and retry
      int r = io_uring_submit(&ring_);
      if (r < 0 && r != -EAGAIN && r != -EBUSY) throw std::system_error(-r, std::generic_category(), "io_uring_submit");
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }
  void arm_epoll() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_add(sqe, epfd_, POLLIN);
    io_uring_sqe_set_data64(sqe, kEpollTag);
    epoll_armed_ = true;
  }
  int epfd_ = -1;
  std::size_t watched_ = 0;
  bool epoll_armed_ = false;
  UringBackend() = default;
  /// liburing maps the rings with raw system calls that ThreadSanitizer does not see (its
  /// munmap interceptor never runs), so a ring mapped where another thread's closed ring was
  /// would look like racing with it. Order every unmap before every later map for TSan.
#if defined(__SANITIZE_THREAD__)
  static char* tsan_ring_token() noexcept {
    static char token;
    return &token;
  }
  static void ring_mapped() noexcept { __tsan_acquire(tsan_ring_token()); }
  static void ring_unmapping() noexcept { __tsan_release(tsan_ring_token()); }
#else
  static void ring_mapped() noexcept {}
  static void ring_unmapping() noexcept {}
#endif
  bool arm_wakeup() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) return false;
    io_uring_prep_poll_add(sqe, evfd_, POLLIN);
    io_uring_sqe_set_data64(sqe, kWakeTag);
    return io_uring_submit(&ring_) >= 0;
  }
  io_uring ring_{};
  bool ring_ok_ = false;
  int evfd_ = -1;
};

}  // namespace

std::unique_ptr<Backend> make_io_uring_backend() { return UringBackend::create(); }

}  // namespace concur::asyncio::detail

#else

namespace concur::asyncio::detail {
std::unique_ptr<Backend> make_io_uring_backend() { return nullptr; }
}  // namespace concur::asyncio::detail

#endif
