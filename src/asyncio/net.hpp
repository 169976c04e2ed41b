#pragma once
// Private socket helpers shared by the transports, servers, streams and the resolver.
#include <sys/socket.h>

#include <coroutine>
#include <cstdint>
#include <string>

#include "concur/asyncio/task.hpp"
#include "concur/asyncio/transports.hpp"

namespace concur::asyncio::detail {

/// SocketAddress -> sockaddr; std::invalid_argument for a host that is not numeric.
socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage& out);
SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len);
/// A numeric host (IPv4 or IPv6) parsed, or nullopt.
std::optional<SocketAddress> parse_numeric(const std::string& host, int port);
SocketAddress peer_of(int fd);
SocketAddress local_of(int fd);

/// A non-blocking, close-on-exec socket; throws OSError.
int make_socket(int family, int type);

/// Closes an fd on scope exit unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd) noexcept : fd_(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  ~FdGuard();
  int release() noexcept { return std::exchange(fd_, -1); }
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

/// Suspends the current task until `fd` is ready for `what` (io_readable / io_writable).
/// Cancel safety: cancelling stops watching the fd; nothing else changes.
class FdReadyAwaiter final : public Suspension, public IoHandler {
 public:
  FdReadyAwaiter(int fd, std::uint32_t what) noexcept : fd_(fd), what_(what) {}
  FdReadyAwaiter(FdReadyAwaiter&& o) noexcept : fd_(o.fd_), what_(o.what_) {}
  FdReadyAwaiter& operator=(const FdReadyAwaiter&) = delete;
  ~FdReadyAwaiter();
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume();
  void io_ready(std::uint32_t events) noexcept override;
  CancelResult cancel() noexcept override;

 private:
  int fd_;
  std::uint32_t what_;
  TaskBase* task_ = nullptr;
  EventLoop* loop_ = nullptr;
  bool armed_ = false;
};

/// Connects a non-blocking socket to `addr`, awaiting completion; throws OSError naming it.
Coro<void> connect_socket(int fd, SocketAddress addr);

}  // namespace concur::asyncio::detail
