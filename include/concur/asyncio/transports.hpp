#pragma once
/// \file asyncio transports and protocols: the event-driven, callback-style API (Python's
/// `asyncio.Protocol`/`Transport`, Twisted's model), plus loop.create_connection /
/// create_server / create_unix_* / create_datagram_endpoint.
///
/// Threads: every protocol callback runs on the loop's thread. Transports are loop-thread only.
/// Lifetime: a transport is owned by its loop while its connection is open and by the
/// shared_ptr handles users hold; it owns its protocol. A protocol's `Transport&` stays valid
/// until connection_lost() returns.
#include <any>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "concur/asyncio/ssl.hpp"
#include "concur/asyncio/task.hpp"
#include "concur/core/error.hpp"

struct sockaddr;

namespace concur::asyncio {

/// A socket address: an IP host and port, or a Unix socket path.
struct SocketAddress {
  int family = 0;    // AF_INET, AF_INET6 or AF_UNIX
  std::string host;  // numeric ("127.0.0.1", "::1"); empty for AF_UNIX
  int port = 0;
  std::string path;  // AF_UNIX only
  /// "127.0.0.1:8080", "[::1]:8080" or the path.
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;
};

class Transport;
class DatagramTransport;

/// Python's asyncio.Protocol, for stream connections. Override what you need.
class Protocol {
 public:
  virtual ~Protocol() = default;
  /// The connection is up; `t` stays valid until connection_lost() returns.
  virtual void connection_made(Transport& t) { (void)t; }
  /// Some bytes arrived (a view valid during the call only).
  virtual void data_received(std::string_view data) { (void)data; }
  /// The peer closed its writing side. Return true to keep the connection open for writing
  /// (half-close); false closes the transport.
  virtual bool eof_received() { return false; }
  /// The connection is closed: `exc` is null for a normal close or EOF, else the error.
  virtual void connection_lost(std::exception_ptr exc) { (void)exc; }
  /// Flow control: the transport's write buffer went over its high-water mark...
  virtual void pause_writing() {}
  /// ...and back under its low-water mark.
  virtual void resume_writing() {}
};

/// Python's asyncio.BufferedProtocol: the transport reads straight into your buffer.
class BufferedProtocol : public Protocol {
 public:
  /// A buffer to read into (non-empty; `size_hint` is what the transport would like).
  virtual std::span<char> get_buffer(std::size_t size_hint) = 0;
  /// `n` bytes were written at the start of the last buffer.
  virtual void buffer_updated(std::size_t n) = 0;
};

/// Python's asyncio.DatagramProtocol (UDP).
class DatagramProtocol {
 public:
  virtual ~DatagramProtocol() = default;
  virtual void connection_made(DatagramTransport& t) { (void)t; }
  virtual void datagram_received(std::string_view data, const SocketAddress& from) {
    (void)data;
    (void)from;
  }
  /// A send or receive failed (e.g. ICMP port unreachable on a connected socket).
  virtual void error_received(std::exception_ptr exc) { (void)exc; }
  virtual void connection_lost(std::exception_ptr exc) { (void)exc; }
};

/// Python's BaseTransport.
class BaseTransport {
 public:
  virtual ~BaseTransport() = default;
  /// Closes after the buffered data is sent; connection_lost(null) follows (next iteration).
  virtual void close() = 0;
  [[nodiscard]] virtual bool is_closing() const noexcept = 0;
  /// "peername", "sockname" (SocketAddress), "socket" (int fd), "pid" (subprocess pipes); an
  /// empty std::any when unknown.
  [[nodiscard]] virtual std::any get_extra_info(std::string_view name) const = 0;
};

/// Python's asyncio.Transport: a stream connection (TCP, Unix socket, pipe).
class Transport : public BaseTransport, public std::enable_shared_from_this<Transport> {
 public:
  /// Sends `data` (buffers what the kernel does not take now; never blocks). Writing to a
  /// closed or lost connection is ignored (Python logs it); a write error closes the transport
  /// and reaches the protocol through connection_lost(exc).
  virtual void write(std::string_view data) = 0;
  void writelines(const std::vector<std::string>& parts) {
    for (const auto& p : parts) write(p);
  }
  [[nodiscard]] virtual bool can_write_eof() const noexcept = 0;
  /// Half-close: sends EOF after the buffered data.
  virtual void write_eof() = 0;
  /// Closes at once, dropping buffered data; connection_lost(null) follows.
  virtual void abort() = 0;
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
  [[nodiscard]] virtual bool is_reading() const noexcept = 0;
  /// Flow control (defaults: high 64 KiB, low high/4).
  virtual void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                                       std::optional<std::size_t> low = std::nullopt) = 0;
  [[nodiscard]] virtual std::size_t get_write_buffer_size() const noexcept = 0;
  [[nodiscard]] virtual std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept = 0;
};

/// Python's DatagramTransport.
class DatagramTransport : public BaseTransport, public std::enable_shared_from_this<DatagramTransport> {
 public:
  /// Sends one datagram to `to` (or to the connected peer when omitted).
  virtual void sendto(std::string_view data, const std::optional<SocketAddress>& to = std::nullopt) = 0;
  virtual void abort() = 0;
};

using ProtocolFactory = std::function<std::unique_ptr<Protocol>()>;
using DatagramProtocolFactory = std::function<std::unique_ptr<DatagramProtocol>()>;

/// Options of create_server / start_server.
struct ServerOptions {
  int backlog = 100;
  bool reuse_address = true;  // SO_REUSEADDR
  bool reuse_port = false;    // SO_REUSEPORT: several loops may listen on one port
  bool start_serving = true;
  /// TLS (see ssl.hpp): each accepted connection's protocol gets connection_made once the
  /// handshake completed; a failing handshake closes that connection and is reported.
  std::optional<ssl::Context> ssl;
  std::chrono::nanoseconds ssl_handshake_timeout = std::chrono::seconds(60);
};

/// Options of create_connection / open_connection.
struct ConnectOptions {
  /// Local address to bind to first (host, port).
  std::optional<std::pair<std::string, int>> local_addr;
  /// TLS (see ssl.hpp): the connection is returned once the handshake completed (its error,
  /// e.g. ssl::SSLCertVerificationError, is thrown otherwise and the socket closed).
  std::optional<ssl::Context> ssl;
  /// For SNI and the host name check; unset: the host connected to ("": no SNI, and no host
  /// name to check). std::optional, as every non-trivial member of these option structs: GCC 12
  /// destroys an aggregate temporary made inside a co_await expression twice, which is harmless
  /// only for members left empty. So build options with TLS settings before the co_await:
  /// `aio::ConnectOptions o; o.ssl = ctx; co_await aio::create_connection(f, host, port, o);`.
  std::optional<std::string> server_hostname;
  std::chrono::nanoseconds ssl_handshake_timeout = std::chrono::seconds(60);
};

/// Options of start_tls.
struct StartTlsOptions {
  bool server_side = false;
  std::optional<std::string> server_hostname;  // client side: for SNI and the host name check
  std::chrono::nanoseconds ssl_handshake_timeout = std::chrono::seconds(60);
};

/// Options of create_datagram_endpoint.
struct DatagramOptions {
  std::optional<std::pair<std::string, int>> local_addr;   // bind here
  std::optional<std::pair<std::string, int>> remote_addr;  // connect there
  bool reuse_port = false;
  bool allow_broadcast = false;
};

namespace detail {
struct ServerState;
}

/// A listening server (Python's asyncio.Server). A handle: copies share the server.
/// Loop thread only.
class Server {
 public:
  Server() = default;
  explicit Server(std::shared_ptr<detail::ServerState> s) noexcept : s_(std::move(s)) {}
  /// The port of the first listening socket (useful with port 0).
  [[nodiscard]] int port() const;
  /// The addresses listened on.
  [[nodiscard]] std::vector<SocketAddress> sockets() const;
  /// The listening file descriptors.
  [[nodiscard]] std::vector<int> fds() const;
  [[nodiscard]] bool is_serving() const noexcept;
  /// Starts accepting (when created with start_serving = false).
  void start_serving();
  /// Stops listening (closes the listening sockets); open connections stay open.
  void close();
  /// Python 3.12: waits until the server is closed and every connection it accepted is gone.
  Coro<void> wait_closed();
  /// Accepts until cancelled; closes the server when cancelled (Python's serve_forever).
  Coro<void> serve_forever();
  /// Connections accepted and still open.
  [[nodiscard]] std::size_t active_connections() const noexcept;

 private:
  std::shared_ptr<detail::ServerState> s_;
};

namespace detail {
Coro<std::shared_ptr<Transport>> create_connection_impl(EventLoop& loop, ProtocolFactory factory, std::string host,
                                                        int port, ConnectOptions options);
Coro<std::shared_ptr<Transport>> create_unix_connection_impl(EventLoop& loop, ProtocolFactory factory, std::string path,
                                                             ConnectOptions options = {});
Coro<Server> create_server_impl(EventLoop& loop, ProtocolFactory factory, std::string host, int port,
                                ServerOptions options);
Coro<Server> create_unix_server_impl(EventLoop& loop, ProtocolFactory factory, std::string path, ServerOptions options);
Coro<std::shared_ptr<DatagramTransport>> create_datagram_endpoint_impl(EventLoop& loop, DatagramProtocolFactory factory,
                                                                       DatagramOptions options);
/// Wraps a connected, non-blocking stream socket (or pipe) in a transport for `protocol`;
/// connection_made is called on the next iteration. `is_socket`: use send/recv, else write/read.
std::shared_ptr<Transport> make_stream_transport(EventLoop& loop, int fd, std::unique_ptr<Protocol> protocol,
                                                 bool is_socket, std::any extra_pid = {});
/// The protocol of a transport made by the functions above.
Protocol* protocol_of(Transport& t) noexcept;
DatagramProtocol* protocol_of(DatagramTransport& t) noexcept;
/// Resolves host:port to socket addresses (numeric hosts without a lookup; names through the
/// loop's resolver). `passive`: for binding (empty host = every interface).
Coro<std::vector<SocketAddress>> resolve(EventLoop& loop, std::string host, int port, int type, bool passive);

template <class P>
auto typed_factory(std::function<std::unique_ptr<P>()> f) {
  return ProtocolFactory([f = std::move(f)]() -> std::unique_ptr<Protocol> { return f(); });
}
}  // namespace detail

/// Python's loop.create_connection: connects to host:port (IPv4 or IPv6; names are resolved)
/// and returns the transport and the protocol `factory()` made. Resumed on the loop's thread.
/// Errors: ConnectionRefusedError and other OSError subclasses (the message names the
/// address). Cancel safety: a cancelled connect closes its socket; nothing leaks.
template <class F>
auto create_connection(F factory, std::string host, int port, ConnectOptions options)
    -> Coro<std::pair<std::shared_ptr<Transport>, typename std::invoke_result_t<F&>::element_type*>> {
  using P = typename std::invoke_result_t<F&>::element_type;
  std::shared_ptr<Transport> t = co_await detail::create_connection_impl(
      get_running_loop(), [f = std::move(factory)]() mutable -> std::unique_ptr<Protocol> { return f(); },
      std::move(host), port, std::move(options));
  co_return std::pair<std::shared_ptr<Transport>, P*>(t, static_cast<P*>(detail::protocol_of(*t)));
}

/// As create_connection, over a Unix domain socket (TLS: give options.server_hostname unless
/// the context's check_hostname is off).
template <class F>
auto create_unix_connection(F factory, std::string path, ConnectOptions options)
    -> Coro<std::pair<std::shared_ptr<Transport>, typename std::invoke_result_t<F&>::element_type*>> {
  using P = typename std::invoke_result_t<F&>::element_type;
  std::shared_ptr<Transport> t = co_await detail::create_unix_connection_impl(
      get_running_loop(), [f = std::move(factory)]() mutable -> std::unique_ptr<Protocol> { return f(); },
      std::move(path), std::move(options));
  co_return std::pair<std::shared_ptr<Transport>, P*>(t, static_cast<P*>(detail::protocol_of(*t)));
}

/// Python's loop.create_server: listens on host:port (empty host: every interface; port 0: a
/// free port) and gives each accepted connection a new `factory()` protocol.
template <class F>
Coro<Server> create_server(F factory, std::string host, int port, ServerOptions options) {
  return detail::create_server_impl(
      get_running_loop(), [f = std::move(factory)]() mutable -> std::unique_ptr<Protocol> { return f(); },
      std::move(host), port, options);
}

/// As create_server, on a Unix domain socket at `path` (a stale socket file there is replaced).
template <class F>
Coro<Server> create_unix_server(F factory, std::string path, ServerOptions options) {
  return detail::create_unix_server_impl(
      get_running_loop(), [f = std::move(factory)]() mutable -> std::unique_ptr<Protocol> { return f(); },
      std::move(path), options);
}

// The forms without options build their defaults here, outside the caller's co_await (GCC 12
// may destroy a braced temporary there twice).
template <class F>
auto create_connection(F factory, std::string host, int port) {
  ConnectOptions defaults;
  return create_connection(std::move(factory), std::move(host), port, std::move(defaults));
}
template <class F>
auto create_unix_connection(F factory, std::string path) {
  ConnectOptions defaults;
  return create_unix_connection(std::move(factory), std::move(path), std::move(defaults));
}
template <class F>
Coro<Server> create_server(F factory, std::string host, int port) {
  ServerOptions defaults;
  return create_server(std::move(factory), std::move(host), port, std::move(defaults));
}
template <class F>
Coro<Server> create_unix_server(F factory, std::string path) {
  ServerOptions defaults;
  return create_unix_server(std::move(factory), std::move(path), std::move(defaults));
}

/// Python's loop.create_datagram_endpoint (UDP).
template <class F>
auto create_datagram_endpoint(F factory, DatagramOptions options)
    -> Coro<std::pair<std::shared_ptr<DatagramTransport>, typename std::invoke_result_t<F&>::element_type*>> {
  using P = typename std::invoke_result_t<F&>::element_type;
  std::shared_ptr<DatagramTransport> t = co_await detail::create_datagram_endpoint_impl(
      get_running_loop(), [f = std::move(factory)]() mutable -> std::unique_ptr<DatagramProtocol> { return f(); },
      std::move(options));
  co_return std::pair<std::shared_ptr<DatagramTransport>, P*>(t, static_cast<P*>(detail::protocol_of(*t)));
}

/// Python's loop.start_tls: upgrades the open connection `t` (whose protocol is `p`) to TLS and
/// returns the new transport, once the handshake completed; `p` keeps receiving the
/// connection's callbacks (decrypted) and must use the returned transport from then on (`t`
/// stays owned by the layer). Throws the handshake error (the connection is then closed and
/// `p` gets connection_lost). Cancelled: aborts the connection.
Coro<std::shared_ptr<Transport>> start_tls(std::shared_ptr<Transport> t, Protocol& p, ssl::Context ctx,
                                           StartTlsOptions options = {});

// ---- EventLoop members that forward to the functions above ------------------------------

template <class F>
auto EventLoop::create_connection(F factory, std::string host, int port) {
  return asyncio::create_connection(std::move(factory), std::move(host), port);
}
template <class F>
auto EventLoop::create_server(F factory, std::string host, int port) {
  return asyncio::create_server(std::move(factory), std::move(host), port);
}
template <class F>
auto EventLoop::create_unix_connection(F factory, std::string path) {
  return asyncio::create_unix_connection(std::move(factory), std::move(path));
}
template <class F>
auto EventLoop::create_unix_server(F factory, std::string path) {
  return asyncio::create_unix_server(std::move(factory), std::move(path));
}
template <class F>
auto EventLoop::create_datagram_endpoint(F factory, DatagramOptions options) {
  return asyncio::create_datagram_endpoint(std::move(factory), std::move(options));
}

}  // namespace concur::asyncio
