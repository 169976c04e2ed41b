#pragma once
/// \file asyncio TLS (Python's `ssl` module, the part asyncio uses), on OpenSSL 3.
///
/// `ssl::Context` is Python's SSLContext: a handle (copies share one OpenSSL SSL_CTX, so a
/// setting changed through one copy is seen by all). Pass it to open_connection /
/// create_connection (`{.ssl = ctx, .server_hostname = "example.org"}`), start_server /
/// create_server (`{.ssl = ctx}`) or start_tls. This header does not include OpenSSL's.
/// With GCC 12, build such options in a variable first rather than as a braced list inside the
/// co_await expression (GCC 12 destroys aggregate temporaries in co_await expressions twice):
///   aio::StreamOptions o; o.ssl = ctx; auto [r, w] = co_await aio::open_connection(host, port, o);
///
/// The TLS layer follows Python's SSLProtocol: it sits between the socket's transport and the
/// application's protocol and drives an SSL object through memory BIOs, so it works the same on
/// every loop backend. What the application's protocol sees:
///  - connection_made() only once the handshake completed (create_connection / open_connection
///    return only then too; a failed handshake or verification throws there, and closes the
///    socket). On a server, a failing handshake closes that connection and is reported through
///    concur::report_unraisable; the server goes on serving.
///  - close() flushes what was written, sends close_notify, then closes the socket (it does not
///    wait for the peer's close_notify). abort() closes at once.
///  - The peer's close_notify, and also a peer closing the TCP connection without one (a
///    "ragged EOF", as Python's default suppress_ragged_eofs=True), reach the protocol as
///    eof_received(); the connection then closes (TLS has no half-close here: returning true
///    from eof_received() has no effect, as in Python; can_write_eof() is false and write_eof()
///    throws std::logic_error).
///  - Flow control goes through: pause_writing()/resume_writing() follow the socket's buffer
///    of encrypted data; pause_reading() also stops delivering data already decrypted.
///  - get_extra_info: "ssl_object" (SSL*), "sslcontext" (ssl::Context), "peercert" (the
///    peer certificate's subject, RFC 2253 string, e.g. "CN=localhost"), "cipher" and "version"
///    (strings), "server_hostname" (what the client sent as SNI; on a server, what it received),
///    "selected_alpn_protocol" (string), and the socket's "peername"/"sockname"/"socket".
///  - A handshake that takes longer than ssl_handshake_timeout (default 60 s) aborts the
///    connection with ConnectionAbortedError (as Python).
/// Cancel safety: a cancelled connect or handshake aborts the connection; nothing leaks.
#include <memory>
#include <string>
#include <vector>

#include "concur/core/error.hpp"

namespace concur::asyncio::ssl {

/// What a context is for (Python's ssl.Purpose): SERVER_AUTH makes a client context (it
/// authenticates servers), CLIENT_AUTH a server context.
enum class Purpose { SERVER_AUTH, CLIENT_AUTH };

/// Python's ssl.CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED.
enum VerifyMode { CERT_NONE = 0, CERT_OPTIONAL = 1, CERT_REQUIRED = 2 };

/// Python's ssl.SSLError: the message holds OpenSSL's error strings ("error:0A00010B:SSL
/// routines::wrong version number"); code() is OpenSSL's packed error code (0 if none).
class SSLError : public Error {
 public:
  explicit SSLError(const std::string& message, unsigned long code = 0) : Error(message), code_(code) {}
  [[nodiscard]] unsigned long code() const noexcept { return code_; }

 private:
  unsigned long code_;
};

/// Python's ssl.SSLCertVerificationError (ssl.CertificateError is the same class): the peer's
/// certificate did not verify. The message says why (X509_verify_cert_error_string, e.g.
/// "Hostname mismatch, certificate is not valid for 'example.org'" or "unable to get local
/// issuer certificate") and for which host.
class SSLCertVerificationError : public SSLError {
 public:
  SSLCertVerificationError(const std::string& message, long verify_code, std::string verify_message)
      : SSLError(message), verify_code_(verify_code), verify_message_(std::move(verify_message)) {}
  /// OpenSSL's X509_V_ERR_* code.
  [[nodiscard]] long verify_code() const noexcept { return verify_code_; }
  [[nodiscard]] const std::string& verify_message() const noexcept { return verify_message_; }

 private:
  long verify_code_;
  std::string verify_message_;
};
using CertificateError = SSLCertVerificationError;

namespace detail {
struct ContextImpl;
}

/// Python's ssl.SSLContext (TLS 1.2 or newer). Loop-thread use; sharing one context between
/// loops on several threads is fine as long as nobody changes its settings meanwhile.
class Context {
 public:
  /// A context with no certificates and no CA store: create_default_context() is what you want
  /// usually. `purpose` sets the defaults as create_default_context does, without the CA store.
  explicit Context(Purpose purpose = Purpose::SERVER_AUTH);

  /// Trusts the CA certificates in `cafile` (PEM) and/or the directory `capath`. SSLError.
  void load_verify_locations(const std::string& cafile, const std::string& capath = {});
  /// Trusts the system's CA store (create_default_context does it).
  void load_default_certs();
  /// This side's certificate chain (PEM, leaf first) and private key (PEM; empty: in
  /// `certfile`). SSLError if unreadable or if the key does not match the certificate.
  void load_cert_chain(const std::string& certfile, const std::string& keyfile = {});
  /// Check that the server's certificate matches server_hostname (client side). Turning it
  /// on with CERT_NONE sets CERT_REQUIRED, as Python.
  void set_check_hostname(bool on);
  [[nodiscard]] bool check_hostname() const noexcept;
  /// Whether and how the peer's certificate is verified. CERT_NONE while check_hostname is on
  /// throws std::invalid_argument, as Python. On a server, CERT_OPTIONAL asks for a client
  /// certificate and CERT_REQUIRED requires one.
  void set_verify_mode(VerifyMode mode);
  [[nodiscard]] VerifyMode verify_mode() const noexcept;
  /// ALPN protocols in order of preference (e.g. {"h2", "http/1.1"}).
  void set_alpn_protocols(const std::vector<std::string>& protocols);
  /// OpenSSL cipher list for TLS 1.2 (SSL_CTX_set_cipher_list). SSLError if none matches.
  void set_ciphers(const std::string& ciphers);
  /// The SSL_CTX* (cast it after including <openssl/ssl.h>).
  [[nodiscard]] void* native_handle() const noexcept;
  [[nodiscard]] const std::shared_ptr<detail::ContextImpl>& impl() const noexcept { return impl_; }

 private:
  std::shared_ptr<detail::ContextImpl> impl_;
};

/// Python's ssl.create_default_context. SERVER_AUTH (a client context): verifies the server
/// against the system CA store (CERT_REQUIRED) and checks host names. CLIENT_AUTH (a server
/// context): does not ask for client certificates (CERT_NONE), no host name check.
/// TLS 1.2 or newer either way.
Context create_default_context(Purpose purpose = Purpose::SERVER_AUTH);

}  // namespace concur::asyncio::ssl
