#pragma once
// The readiness backend behind the event loop (private): waits for I/O and cross-thread
// wake-ups with a nanosecond timeout. Two implementations: epoll and io_uring.
#include <cstdint>
#include <memory>
#include <string>

namespace concur::asyncio::detail {

class Backend {
 public:
  virtual ~Backend() = default;
  [[nodiscard]] virtual const char* name() const noexcept = 0;
  /// Blocks until woken or `timeout_ns` passes (-1: no limit, 0: just poll).
  virtual void poll(std::int64_t timeout_ns) = 0;
  /// Interrupts a poll() in progress (or the next one). Any thread.
  virtual void wakeup() noexcept = 0;
};

std::unique_ptr<Backend> make_epoll_backend();
/// Null where io_uring cannot be used (no kernel support, or forbidden by a sandbox).
std::unique_ptr<Backend> make_io_uring_backend();
/// `requested`: "epoll", "io_uring" or empty (CONCUR_ASYNCIO_BACKEND, else the default).
std::unique_ptr<Backend> make_backend(const std::string& requested);

}  // namespace concur::asyncio::detail
