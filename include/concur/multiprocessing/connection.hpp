#pragma once
/// \file multiprocessing.Pipe and Connection: messages between processes over a Unix socket
/// pair, each message length-prefixed; objects travel serialised (serialize.hpp).
///
/// ```cpp
/// auto [a, b] = mp::Pipe();
/// a.send(std::string("hi"));
/// std::string s = b.recv<std::string>();
/// ```
///
/// Thread safety: a Connection may be used by one sender and one receiver thread at a time
/// (sends are not interleaved with each other only if one thread sends). Process safety: both
/// ends survive fork() and exec (the fds are inheritable when asked, see Process).
/// Errors: recv at EOF (the other end closed) throws EOFError; send to a closed peer throws
/// BrokenPipeError; a message cut short throws EOFError naming how much arrived.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "concur/multiprocessing/serialize.hpp"

namespace concur::multiprocessing {

/// The other end closed (Python's EOFError).
class EOFError : public Error {
 public:
  using Error::Error;
};

class Connection {
 public:
  Connection() = default;
  /// Takes ownership of a connected stream socket (or pipe end).
  explicit Connection(int fd, bool readable = true, bool writable = true) noexcept
      : fd_(fd), readable_(readable), writable_(writable) {}
  ~Connection();
  Connection(Connection&& o) noexcept : fd_(std::exchange(o.fd_, -1)), readable_(o.readable_), writable_(o.writable_) {}
  Connection& operator=(Connection&& o) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Sends one object (dumps(value)).
  template <class T>
  void send(const T& value) {
    send_bytes(dumps(value));
  }
  /// Receives one object sent with send<T>.
  template <class T>
  T recv() {
    return loads<T>(recv_bytes());
  }
  /// One message of raw bytes. BrokenPipeError when the other end is gone.
  void send_bytes(std::string_view data);
  /// The next message. EOFError at EOF; OSError when it is longer than `maxlength`.
  std::string recv_bytes(std::optional<std::size_t> maxlength = std::nullopt);
  /// True when a message (or EOF) can be read without blocking, waiting up to `timeout`
  /// (negative: forever).
  bool poll(std::chrono::nanoseconds timeout = std::chrono::nanoseconds(0)) const;
  template <class Rep, class Period>
  bool poll(std::chrono::duration<Rep, Period> timeout) const {
    return poll(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept { return fd_ < 0; }
  [[nodiscard]] bool readable() const noexcept { return readable_; }
  [[nodiscard]] bool writable() const noexcept { return writable_; }
  [[nodiscard]] int fileno() const noexcept { return fd_; }
  /// Gives up the fd (the caller closes it).
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
  bool readable_ = true, writable_ = true;
};

/// Python's multiprocessing.Pipe(duplex): two connected ends. duplex = false: the first end
/// only receives, the second only sends.
std::pair<Connection, Connection> Pipe(bool duplex = true);

}  // namespace concur::multiprocessing
