#pragma once
// Private: the TLS layer (ssl.cpp) as the transports and streams use it.
#include <chrono>
#include <memory>
#include <string>

#include "concur/asyncio/ssl.hpp"
#include "concur/asyncio/task.hpp"
#include "concur/asyncio/transports.hpp"

namespace concur::asyncio::detail {

struct TlsParams {
  ssl::Context ctx;
  bool server_side = false;
  std::string server_hostname;
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(60);
  /// False for start_tls: the application's protocol already had connection_made.
  bool call_connection_made = true;
  /// Report a failed handshake through report_unraisable (server connections: nobody awaits).
  bool report_failures = false;
};

struct TlsWrapped {
  std::unique_ptr<Protocol> raw_protocol;    // give this to the socket's transport
  std::shared_ptr<Transport> app_transport;  // what the application sees
};

/// Wraps `app` (may be null for start_tls, then set by start_tls) in the TLS layer.
/// Throws SSLError (or std::invalid_argument for missing server_hostname with check_hostname).
TlsWrapped wrap_tls(EventLoop& loop, std::unique_ptr<Protocol> app, TlsParams params);

/// Ties `app_transport` (from wrap_tls) to its socket's transport `raw`, waits for the
/// handshake and returns app_transport; throws the handshake error. Cancelled: aborts.
Coro<std::shared_ptr<Transport>> tls_handshake(std::shared_ptr<Transport> app_transport,
                                               std::shared_ptr<Transport> raw);

/// A server's factory whose connections speak TLS.
ProtocolFactory tls_server_factory(ProtocolFactory f, ssl::Context ctx, std::chrono::nanoseconds handshake_timeout);

/// The application's protocol of a TLS transport (null if `t` is not one).
Protocol* tls_app_protocol_of(Transport& t) noexcept;

/// Replaces the protocol of a stream transport made by make_stream_transport (transports.cpp);
/// returns the old one, or null (and changes nothing) if `t` is not such a transport.
std::unique_ptr<Protocol> replace_protocol(Transport& t, std::unique_ptr<Protocol> p);

}  // namespace concur::asyncio::detail
