#include "net.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "concur/asyncio/dns.hpp"

namespace concur::asyncio {

std::string SocketAddress::to_string() const {
  if (family == AF_UNIX) return path;
  if (family == AF_INET6) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace detail {

FdGuard::~FdGuard() {
  if (fd_ >= 0) ::close(fd_);
}

socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (a.family == AF_UNIX) {
    auto* un = reinterpret_cast<sockaddr_un*>(&out);
    un->sun_family = AF_UNIX;
    if (a.path.size() >= sizeof un->sun_path) throw std::invalid_argument("Unix socket path too long: " + a.path);
    std::memcpy(un->sun_path, a.path.data(), a.path.size());
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.path.size() + 1);
  }
  if (a.family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<std::uint16_t>(a.port));
    if (::inet_pton(AF_INET6, a.host.c_str(), &in6->sin6_addr) != 1)
      throw std::invalid_argument("not a numeric IPv6 address: " + a.host);
    return sizeof(sockaddr_in6);
  }
  auto* in = reinterpret_cast<sockaddr_in*>(&out);
  in->sin_family = AF_INET;
  in->sin_port = htons(static_cast<std::uint16_t>(a.port));
  if (::inet_pton(AF_INET, a.host.c_str(), &in->sin_addr) != 1)
    throw std::invalid_argument("not a numeric IPv4 address: " + a.host);
  return sizeof(sockaddr_in);
}

SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress a;
  if (!sa || len == 0) return a;
  a.family = sa->sa_family;
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    a.host = buf;
    a.port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    a.host = buf;
    a.port = ntohs(in6->sin6_port);
  } else if (sa->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    std::size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    a.path.assign(un->sun_path, ::strnlen(un->sun_path, n));
  }
  return a;
}

std::optional<SocketAddress> parse_numeric(const std::string& host, int port) {
  in6_addr a6{};
  in_addr a4{};
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (::inet_pton(AF_INET, h.c_str(), &a4) == 1) return SocketAddress{AF_INET, h, port, {}};
  if (::inet_pton(AF_INET6, h.c_str(), &a6) == 1) return SocketAddress{AF_INET6, h, port, {}};
  return std::nullopt;
}

SocketAddress peer_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return {};
  return from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

SocketAddress local_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return {};
  return from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

int make_socket(int family, int type) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_os_error(errno, "socket");
  return fd;
}

// ---- FdReadyAwaiter ----------------------------------------------------------------------

FdReadyAwaiter::~FdReadyAwaiter() {
  if (armed_) loop_->watch(fd_, nullptr, 0);
}

bool FdReadyAwaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = current_task_base();
  if (!task_) throw std::logic_error("awaiting a socket outside of an asyncio task");
  if (task_->cancel_before_suspend()) return false;
  loop_ = &task_->loop();
  loop_->watch(fd_, this, what_);
  armed_ = true;
  task_->suspended_at(h, this);
  return true;
}

void FdReadyAwaiter::await_resume() {
  if (task_) task_->check_cancelled();
}

void FdReadyAwaiter::io_ready(std::uint32_t) noexcept {
  if (!armed_) return;
  armed_ = false;
  loop_->watch(fd_, nullptr, 0);
  loop_->schedule(task_);
}

CancelResult FdReadyAwaiter::cancel() noexcept {
  if (!armed_) return CancelResult::too_late;
  armed_ = false;
  loop_->watch(fd_, nullptr, 0);
  return CancelResult::detached;
}

Coro<void> connect_socket(int fd, SocketAddress addr) {
  sockaddr_storage ss{};
  socklen_t len = to_sockaddr(addr, ss);
  int r;
  do {
    r = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  } while (r < 0 && errno == EINTR);
  if (r == 0) co_return;
  if (errno != EINPROGRESS && errno != EAGAIN) throw_os_error(errno, "connect to " + addr.to_string());
  co_await FdReadyAwaiter(fd, io_writable);
  int err = 0;
  socklen_t elen = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) err = errno;
  if (err != 0) throw_os_error(err, "connect to " + addr.to_string());
}

// ---- name resolution -----------------------------------------------------------------------

Coro<std::vector<SocketAddress>> resolve(EventLoop& loop, std::string host, int port, int type, bool passive) {
  if (auto a = parse_numeric(host, port)) co_return std::vector<SocketAddress>{*a};
  if (host.empty() && passive) {
    // Every interface: IPv4 and, where available, IPv6 (as Python's create_server).
    std::vector<SocketAddress> out{SocketAddress{AF_INET, "0.0.0.0", port, {}}};
    int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
      ::close(probe);
      out.push_back(SocketAddress{AF_INET6, "::", port, {}});
    }
    co_return out;
  }
  if (host == "localhost") {
    // No lookup needed; IPv4 first (what most local servers listen on).
    std::vector<SocketAddress> out{SocketAddress{AF_INET, "127.0.0.1", port, {}}};
    int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
      ::close(probe);
      out.push_back(SocketAddress{AF_INET6, "::1", port, {}});
    }
    co_return out;
  }
  // Names: the loop's asynchronous, cancellable resolver (dns.hpp; GaiError naming the host).
  GetaddrinfoOptions options;
  options.type = type;
  options.flags = passive ? AI_PASSIVE : 0;
  std::vector<AddrInfo> infos = co_await loop.getaddrinfo(std::move(host), port, options);
  std::vector<SocketAddress> out;
  for (auto& info : infos) {
    if (std::find(out.begin(), out.end(), info.address) == out.end()) out.push_back(std::move(info.address));
  }
  co_return out;
}

}  // namespace detail
}  // namespace concur::asyncio
