#pragma once
/// \file asyncio streams: StreamReader / StreamWriter, open_connection, start_server (and the
/// Unix-socket forms), on top of the transports.
///
/// Threads: loop thread only; every await resumes on the loop's thread.
/// Cancel safety: every read waits until it can be satisfied and only then takes data from
/// the buffer, so a cancelled (or timed-out) read consumes nothing and the stream stays usable.
/// A cancelled drain() leaves the data queued in the transport.
#include <any>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "concur/asyncio/task.hpp"
#include "concur/asyncio/transports.hpp"
#include "concur/core/error.hpp"

namespace concur::asyncio {

/// readexactly()/readuntil() met EOF first: partial() holds what was read (Python's
/// IncompleteReadError).
class IncompleteReadError : public Error {
 public:
  IncompleteReadError(std::string partial, std::size_t expected);
  [[nodiscard]] const std::string& partial() const noexcept { return partial_; }
  /// Bytes expected (0: unknown, readuntil).
  [[nodiscard]] std::size_t expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::size_t expected_;
};

/// readuntil()/readline() found no separator within the stream's limit (Python's
/// LimitOverrunError). readuntil leaves the data in the buffer; readline discards it.
class LimitOverrunError : public Error {
 public:
  LimitOverrunError(const std::string& message, std::size_t consumed) : Error(message), consumed_(consumed) {}
  [[nodiscard]] std::size_t consumed() const noexcept { return consumed_; }

 private:
  std::size_t consumed_;
};

inline constexpr std::size_t kDefaultStreamLimit = 64 * 1024;

namespace detail {
struct StreamState;
}

/// Python's asyncio.StreamReader. A handle: copies share the stream.
class StreamReader {
 public:
  /// A reader fed by hand (feed_data/feed_eof), e.g. in tests.
  explicit StreamReader(std::size_t limit = kDefaultStreamLimit);
  explicit StreamReader(std::shared_ptr<detail::StreamState> s) noexcept : s_(std::move(s)) {}

  /// Up to `n` bytes (at least one unless at EOF); n < 0: everything up to EOF.
  Coro<std::string> read(std::ptrdiff_t n = -1);
  /// One line with its "\n"; at EOF, what is left (possibly empty).
  Coro<std::string> readline();
  /// Exactly `n` bytes; IncompleteReadError if EOF comes first.
  Coro<std::string> readexactly(std::size_t n);
  /// Data up to and including `separator`; IncompleteReadError at EOF, LimitOverrunError past
  /// the limit (the data stays buffered).
  Coro<std::string> readuntil(std::string separator = "\n");
  /// True when the buffer is empty and EOF was received.
  [[nodiscard]] bool at_eof() const noexcept;
  [[nodiscard]] std::size_t buffered() const noexcept;
  [[nodiscard]] std::exception_ptr exception() const noexcept;

  void feed_data(std::string_view data);
  void feed_eof();
  void set_exception(std::exception_ptr e);

  [[nodiscard]] const std::shared_ptr<detail::StreamState>& state() const noexcept { return s_; }

 private:
  std::shared_ptr<detail::StreamState> s_;
};

/// Python's asyncio.StreamWriter. A handle: copies share the stream.
class StreamWriter {
 public:
  StreamWriter(std::shared_ptr<Transport> t, std::shared_ptr<detail::StreamState> s) noexcept
      : t_(std::move(t)), s_(std::move(s)) {}
  void write(std::string_view data) { t_->write(data); }
  void writelines(const std::vector<std::string>& parts) { t_->writelines(parts); }
  /// Waits until the write buffer is under its low-water mark; rethrows a connection error
  /// (ConnectionResetError when the connection was lost).
  Coro<void> drain();
  [[nodiscard]] bool can_write_eof() const noexcept { return t_->can_write_eof(); }
  void write_eof() { t_->write_eof(); }
  void close() { t_->close(); }
  [[nodiscard]] bool is_closing() const noexcept { return t_->is_closing(); }
  /// Waits until the connection is closed (rethrows the error it was lost with, if any).
  Coro<void> wait_closed();
  /// As Transport::get_extra_info ("peername", "sockname", "socket").
  [[nodiscard]] std::any get_extra_info(std::string_view name) const { return t_->get_extra_info(name); }
  [[nodiscard]] Transport& transport() const noexcept { return *t_; }
  /// Python's StreamWriter.start_tls: upgrades the connection to TLS (the side is the
  /// stream's: a start_server callback's writer is the server; options.server_side is
  /// ignored). This writer and its reader go on over TLS; copies of the writer made before
  /// keep the plain transport, so use this one. Throws the handshake error.
  Coro<void> start_tls(ssl::Context ctx, StartTlsOptions options = {});

 private:
  std::shared_ptr<Transport> t_;
  std::shared_ptr<detail::StreamState> s_;
};

/// Options of open_connection / start_server.
struct StreamOptions {
  std::size_t limit = kDefaultStreamLimit;  // readuntil/readline limit, and read flow control
  std::optional<std::pair<std::string, int>> local_addr;
  /// TLS (see ssl.hpp). open_connection: the client context (server_hostname defaults to the
  /// host); start_server: the server context (ServerOptions::ssl does the same). With GCC 12,
  /// fill these in before the co_await, not in a braced list inside it (see ConnectOptions).
  std::optional<ssl::Context> ssl;
  std::optional<std::string> server_hostname;
  std::chrono::nanoseconds ssl_handshake_timeout = std::chrono::seconds(60);
};

/// Callback of start_server: one task per accepted connection.
using ClientConnected = std::function<Coro<void>(StreamReader, StreamWriter)>;

namespace detail {
ProtocolFactory stream_protocol_factory(std::shared_ptr<StreamState>* out_state, std::size_t limit);
ProtocolFactory stream_server_factory(ClientConnected cb, std::size_t limit);
std::pair<StreamReader, StreamWriter> streams_of(const std::shared_ptr<Transport>& t,
                                                 std::shared_ptr<StreamState> state);
Coro<std::pair<StreamReader, StreamWriter>> open_connection_impl(std::string host, int port, StreamOptions options);
Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection_impl(std::string path, StreamOptions options);
inline ServerOptions with_stream_tls(ServerOptions options, const StreamOptions& stream) {
  if (stream.ssl && !options.ssl) {
    options.ssl = stream.ssl;
    options.ssl_handshake_timeout = stream.ssl_handshake_timeout;
  }
  return options;
}
}  // namespace detail

/// Python's asyncio.open_connection. Errors: ConnectionRefusedError and other OSError
/// subclasses, naming the address. Cancel safety: a cancelled connect leaks nothing.
///
/// GCC 12: a braced options temporary inside a `co_await` expression may be destroyed twice
/// (a compiler bug); name the options first (`aio::StreamOptions o; o.ssl = ctx;`). The forms
/// without options are safe: their defaults are built here, outside any co_await.
inline Coro<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, int port, StreamOptions options) {
  return detail::open_connection_impl(std::move(host), port, std::move(options));
}
inline Coro<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, int port) {
  StreamOptions defaults;
  return detail::open_connection_impl(std::move(host), port, std::move(defaults));
}
/// Python's asyncio.open_unix_connection.
inline Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection(std::string path, StreamOptions options) {
  return detail::open_unix_connection_impl(std::move(path), std::move(options));
}
inline Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection(std::string path) {
  StreamOptions defaults;
  return detail::open_unix_connection_impl(std::move(path), std::move(defaults));
}

/// Python's asyncio.start_server: `handle(reader, writer)` runs as a task per connection. An
/// exception escaping it is reported (concur::report_unraisable) and closes that connection.
template <class F>
Coro<Server> start_server(F handle, std::string host, int port, StreamOptions stream, ServerOptions options) {
  return create_server(detail::stream_server_factory(ClientConnected(std::move(handle)), stream.limit), std::move(host),
                       port, detail::with_stream_tls(std::move(options), stream));
}
template <class F>
Coro<Server> start_server(F handle, std::string host, int port, StreamOptions stream) {
  ServerOptions defaults;
  return start_server(std::move(handle), std::move(host), port, std::move(stream), std::move(defaults));
}
template <class F>
Coro<Server> start_server(F handle, std::string host, int port) {
  StreamOptions defaults;
  return start_server(std::move(handle), std::move(host), port, std::move(defaults));
}
/// Python's asyncio.start_unix_server.
template <class F>
Coro<Server> start_unix_server(F handle, std::string path, StreamOptions stream, ServerOptions options) {
  return create_unix_server(detail::stream_server_factory(ClientConnected(std::move(handle)), stream.limit),
                            std::move(path), detail::with_stream_tls(std::move(options), stream));
}
template <class F>
Coro<Server> start_unix_server(F handle, std::string path, StreamOptions stream) {
  ServerOptions defaults;
  return start_unix_server(std::move(handle), std::move(path), std::move(stream), std::move(defaults));
}
template <class F>
Coro<Server> start_unix_server(F handle, std::string path) {
  StreamOptions defaults;
  return start_unix_server(std::move(handle), std::move(path), std::move(defaults));
}

}  // namespace concur::asyncio
