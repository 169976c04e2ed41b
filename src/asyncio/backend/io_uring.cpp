// The io_uring backend is built when liburing is available (CONCUR_HAVE_LIBURING).
#include "backend.hpp"

#if defined(CONCUR_HAVE_LIBURING)
#include <liburing.h>
#include <poll.h>
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
    if (!b->arm_wakeup()) return nullptr;
    return b;
  }
  ~UringBackend() override {
    if (ring_ok_) {
      ring_unmapping();
      io_uring_queue_exit(&ring_);
    }
    if (evfd_ >= 0) ::close(evfd_);
  }
  const char* name() const noexcept override { return "io_uring"; }

  // Each watched fd has at most one one-shot POLL_ADD in flight, tagged (generation << 32 | fd);
  // a poll replaced or removed bumps the generation, so its late completion is ignored.
  void set_interest(int fd, std::uint32_t, std::uint32_t new_events) override {
    if (fd < 0) return;
    if (static_cast<std::size_t>(fd) >= slots_.size()) slots_.resize(static_cast<std::size_t>(fd) + 64);
    Slot& s = slots_[static_cast<std::size_t>(fd)];
    s.interest = new_events;
    if (s.armed && s.armed_for == new_events) return;
    if (s.armed) {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_poll_remove(sqe, tag(fd, s.gen));
      io_uring_sqe_set_data64(sqe, kIgnoreTag);
      s.armed = false;
    }
    if (new_events != 0) arm(fd, s);
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
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      std::uint64_t data = io_uring_cqe_get_data64(cqe);
      if (data == kWakeTag) {
        rearm = true;
        continue;
      }
      if (data == kIgnoreTag) continue;
      auto fd = static_cast<int>(data & 0xffffffffu);
      auto gen = static_cast<std::uint32_t>(data >> 32);
      if (static_cast<std::size_t>(fd) >= slots_.size()) continue;
      Slot& s = slots_[static_cast<std::size_t>(fd)];
      if (!s.armed || s.gen != gen) continue;  // replaced or removed since
      s.armed = false;
      std::uint32_t ready;
      if (cqe->res < 0) {
        ready = kIoError | kReadable | kWritable;  // e.g. EBADF: let the handler find out
      } else {
        auto e = static_cast<unsigned>(cqe->res);
        ready = (e & POLLIN ? kReadable : 0u) | (e & POLLOUT ? kWritable : 0u);
        if (e & (POLLERR | POLLHUP | POLLNVAL)) ready |= kIoError | kReadable | kWritable;
      }
      out.push_back({fd, ready});
      pending_rearm_.push_back(fd);
    }
    io_uring_cq_advance(&ring_, seen);
    // Level-triggered like epoll: a completed poll is re-armed for what is still wanted (the
    // handlers run after this returns and may change it through set_interest).
    for (int fd : pending_rearm_) {
      Slot& s = slots_[static_cast<std::size_t>(fd)];
      if (!s.armed && s.interest != 0) arm(fd, s);
    }
    pending_rearm_.clear();
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
  static constexpr std::uint64_t kWakeTag = ~std::uint64_t(0);
  static constexpr std::uint64_t kIgnoreTag = ~std::uint64_t(0) - 1;
  struct Slot {
    std::uint32_t interest = 0;
    std::uint32_t armed_for = 0;
    std::uint32_t gen = 0;
    bool armed = false;
  };
  static std::uint64_t tag(int fd, std::uint32_t gen) noexcept {
    return (static_cast<std::uint64_t>(gen) << 32) | static_cast<std::uint32_t>(fd);
  }
  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (!sqe) {  // the submission queue is full: hand it to the kernel and retry
      int r = io_uring_submit(&ring_);
      if (r < 0 && r != -EAGAIN && r != -EBUSY) throw std::system_error(-r, std::generic_category(), "io_uring_submit");
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }
  void arm(int fd, Slot& s) {
    io_uring_sqe* sqe = get_sqe();
    unsigned mask = (s.interest & kReadable ? POLLIN : 0u) | (s.interest & kWritable ? POLLOUT : 0u);
    io_uring_prep_poll_add(sqe, fd, mask);
    ++s.gen;
    if (s.gen == 0) s.gen = 1;
    io_uring_sqe_set_data64(sqe, tag(fd, s.gen));
    s.armed = true;
    s.armed_for = s.interest;
  }
  std::vector<Slot> slots_;
  std::vector<int> pending_rearm_;
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
