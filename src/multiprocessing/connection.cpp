// mp::Connection / Pipe (connection.hpp): 8-byte little-endian length, then the bytes.
#include "concur/multiprocessing/connection.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace concur::multiprocessing {

namespace {

/// Writes all of `iov` (MSG_NOSIGNAL: a closed peer is an error, not a signal).
void write_all(int fd, iovec* iov, int n) {
  while (n > 0) {
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = static_cast<std::size_t>(n);
    ssize_t w = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOTSOCK) {  // a pipe end
        w = ::writev(fd, iov, n);
        if (w < 0 && errno == EINTR) continue;
      }
      if (w < 0) throw_os_error(errno, "Connection.send");
    }
    auto left = static_cast<std::size_t>(w);
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --n;
    }
    if (n > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
}

/// Reads exactly `n` bytes; false on EOF before the first byte, EOFError after it.
bool read_all(int fd, char* p, std::size_t n, bool header) {
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_os_error(errno, "Connection.recv");
    }
    if (r == 0) {
      if (got == 0 && header) return false;
      throw EOFError("Connection.recv: the other end closed in the middle of a message (" + std::to_string(got) +
                     " of " + std::to_string(n) + " bytes)");
    }
    got += static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace

Connection::~Connection() { close(); }

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    readable_ = o.readable_;
    writable_ = o.writable_;
  }
  return *this;
}

void Connection::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Connection::send_bytes(std::string_view data) {
  if (fd_ < 0) throw std::logic_error("Connection.send: the connection is closed");
  if (!writable_) throw std::logic_error("Connection.send: this end is read-only");
  unsigned char len[8];
  auto n = static_cast<std::uint64_t>(data.size());
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  iovec iov[2] = {{len, 8}, {const_cast<char*>(data.data()), data.size()}};
  write_all(fd_, iov, data.empty() ? 1 : 2);
}

std::string Connection::recv_bytes(std::optional<std::size_t> maxlength) {
  if (fd_ < 0) throw std::logic_error("Connection.recv: the connection is closed");
  if (!readable_) throw std::logic_error("Connection.recv: this end is write-only");
  unsigned char len[8];
  if (!read_all(fd_, reinterpret_cast<char*>(len), 8, true)) throw EOFError("Connection.recv: the other end closed");
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(len[i]) << (8 * i);
  if (maxlength && n > *maxlength) {
    throw OSError(EMSGSIZE, "Connection.recv_bytes: a message of " + std::to_string(n) + " bytes is over maxlength " +
                                std::to_string(*maxlength));
  }
  std::string out;
  out.resize(static_cast<std::size_t>(n));
  if (n > 0) read_all(fd_, out.data(), out.size(), false);
  return out;
}

bool Connection::poll(std::chrono::nanoseconds timeout) const {
  if (fd_ < 0) throw std::logic_error("Connection.poll: the connection is closed");
  pollfd p{fd_, POLLIN, 0};
  int ms = timeout.count() < 0 ? -1 : static_cast<int>((timeout.count() + 999'999) / 1'000'000);
  for (;;) {
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_os_error(errno, "Connection.poll");
    return r > 0;
  }
}

std::pair<Connection, Connection> Pipe(bool duplex) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_os_error(errno, "Pipe: socketpair");
  // Larger socket buffers: big messages move in fewer wake-ups.
  int sz = 1 << 20;
  for (int fd : sv) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  }
  if (duplex) return {Connection(sv[0]), Connection(sv[1])};
  ::shutdown(sv[0], SHUT_WR);
  ::shutdown(sv[1], SHUT_RD);
  return {Connection(sv[0], true, false), Connection(sv[1], false, true)};
}

}  // namespace concur::multiprocessing
