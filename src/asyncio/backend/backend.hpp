#pragma once
// The readiness backend behind the event loop (private): waits for I/O and cross-thread
// wake-ups with a nanosecond timeout. Two implementations: epoll and io_uring.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace concur::asyncio::detail {

/// Readiness bits reported for a watched file descriptor.
enum IoEvents : std::uint32_t {
  kReadable = 1,
  kWritable = 2,
  kIoError = 4,  // error or hang-up: reported with both directions, the handler's syscall tells
};

struct IoEvent {
  int fd;
  std::uint32_t events;
};

/// One non-blocking send or recv for Backend::run_batch.
struct BatchOp {
  int fd = -1;
  bool send = true;
  char* data = nullptr;
  std::size_t len = 0;
  long res = 0;  ///< bytes, or -errno (-EAGAIN when the socket was not ready)
};

class Backend {
 public:
  virtual ~Backend() = default;
  [[nodiscard]] virtual const char* name() const noexcept = 0;
  /// Blocks until an fd is ready, woken, or `timeout_ns` passes (-1: no limit, 0: just poll).
  /// Appends the ready fds to `out` (level-triggered: an fd still ready is reported again).
  virtual void poll(std::int64_t timeout_ns, std::vector<IoEvent>& out) = 0;
  /// Sets what `fd` is watched for (kReadable|kWritable; 0 stops watching). `old_events` is
  /// what it was watched for until now. Loop thread.
  virtual void set_interest(int fd, std::uint32_t old_events, std::uint32_t new_events) = 0;
  /// Interrupts a poll() in progress (or the next one). Any thread.
  virtual void wakeup() noexcept = 0;
  /// Whether run_batch saves system calls (the loop batches socket I/O only then).
  [[nodiscard]] virtual bool batches() const noexcept { return false; }
  /// Runs every op (never blocking: MSG_DONTWAIT) with as few system calls as the backend can,
  /// and sets each op's res before returning. This default makes one call per op. Loop thread.
  virtual void run_batch(BatchOp* ops, std::size_t n);
};

std::unique_ptr<Backend> make_epoll_backend();
/// Shared by both backends (io_uring watches fds through an epoll set it polls in its ring).
void epoll_set_interest(int epfd, int fd, std::uint32_t old_events, std::uint32_t new_events);
/// Takes what is ready in `epfd` now (no waiting), appending it to `out`; returns how many.
int epoll_harvest(int epfd, std::vector<IoEvent>& out);
/// Null where io_uring cannot be used (no kernel support, or forbidden by a sandbox).
std::unique_ptr<Backend> make_io_uring_backend();
/// `requested`: "epoll", "io_uring" or empty (CONCUR_ASYNCIO_BACKEND, else the default).
std::unique_ptr<Backend> make_backend(const std::string& requested);

}  // namespace concur::asyncio::detail
