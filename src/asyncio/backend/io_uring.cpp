// The io_uring backend is built when liburing is available (CONCUR_HAVE_LIBURING).
#include "backend.hpp"

#if defined(CONCUR_HAVE_LIBURING)
#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>
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
    // A batch (run_batch) may already have reaped the epoll or wake-up completion: then there
    // is something to report and nothing to wait for.
    if (epoll_ready_ || wake_ready_) timeout_ns = 0;
    if (timeout_ns == 0) {
      r = io_uring_sq_ready(&ring_) > 0 ? io_uring_submit(&ring_) : 0;  // just reap what is there
    } else if (timeout_ns < 0) {
      r = io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec ts{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
      r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    (void)r;
    reap(nullptr);
    const bool epoll_ready = std::exchange(epoll_ready_, false);
    const bool rearm = std::exchange(wake_ready_, false);
    if (epoll_ready) epoll_harvest(epfd_, out);
    if (watched_ > 0 && !epoll_armed_) arm_epoll();
    if (rearm) {
      std::uint64_t v;
      while (::read(evfd_, &v, sizeof v) > 0) {
      }
      arm_wakeup();
    }
  }

  // The batch goes into the ring as MSG_DONTWAIT sends and recvs on non-blocking sockets,
  // which io_uring completes inline (or fails with -EAGAIN) while submitting: one
  // io_uring_enter for the whole batch instead of a system call per op.
  bool batches() const noexcept override { return true; }
  void run_batch(BatchOp* ops, std::size_t n) override {
    std::size_t done = 0;
    while (done < n) {
      const std::size_t k = std::min<std::size_t>(n - done, kMaxBatch);
      BatchOp* part = ops + done;
      for (std::size_t i = 0; i < k; ++i) {
        io_uring_sqe* sqe = get_sqe();
        BatchOp& op = part[i];
        op.res = -EINPROGRESS;
        if (op.send) {
          io_uring_prep_send(sqe, op.fd, op.data, op.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
          io_uring_prep_recv(sqe, op.fd, op.data, op.len, MSG_DONTWAIT);
        }
        io_uring_sqe_set_data64(sqe, kOpTag + i);
      }
      std::size_t left = k;
      int r = io_uring_submit(&ring_);
      (void)r;
      while (left > 0) {
        left -= reap(part);
        if (left > 0) {
          io_uring_cqe* cqe = nullptr;
          int w = io_uring_wait_cqe(&ring_, &cqe);
          if (w < 0 && w != -EINTR && w != -EAGAIN)
            throw std::system_error(-w, std::generic_category(), "io_uring_wait_cqe");
        }
      }
      done += k;
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
  static constexpr std::uint64_t kOpTag = 1024;  // kOpTag + i: op i of the batch in flight
  static constexpr std::size_t kMaxBatch = 128;  // within the completion queue (512)
  /// Takes every completion there is: wake-up and epoll ones set flags for poll(), batch ones
  /// set their op's result. Returns how many batch ops completed.
  std::size_t reap(BatchOp* ops) {
    unsigned head;
    unsigned seen = 0;
    std::size_t ops_done = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      std::uint64_t data = io_uring_cqe_get_data64(cqe);
      if (data == kWakeTag) {
        wake_ready_ = true;
      } else if (data == kEpollTag) {
        epoll_ready_ = true;
        epoll_armed_ = false;
      } else if (data >= kOpTag && ops) {
        ops[data - kOpTag].res = cqe->res;
        ++ops_done;
      }
    }
    io_uring_cq_advance(&ring_, seen);
    return ops_done;
  }
  bool wake_ready_ = false;
  bool epoll_ready_ = false;
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
