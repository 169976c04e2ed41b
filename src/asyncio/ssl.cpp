// TLS for asyncio on OpenSSL 3: ssl::Context, and the TLS layer (Python's SSLProtocol model):
// a protocol for the socket's transport that drives an SSL object through memory BIOs, and the
// transport the application's protocol sees.
#include "concur/asyncio/ssl.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <stdexcept>

#include "ssl_layer.hpp"

#include "concur/asyncio/locks.hpp"

namespace concur::asyncio::ssl {

namespace detail {
struct ContextImpl {
  SSL_CTX* ctx = nullptr;
  bool check_hostname = false;
  VerifyMode verify_mode = CERT_NONE;
  std::string alpn;  // wire format
  ContextImpl() = default;
  ContextImpl(const ContextImpl&) = delete;
  ContextImpl& operator=(const ContextImpl&) = delete;
  ~ContextImpl() { SSL_CTX_free(ctx); }
};
}  // namespace detail

/// Drains OpenSSL's (thread-local) error queue into "error:...; error:...".
static std::string take_openssl_errors(unsigned long* first = nullptr) {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    if (first && *first == 0) *first = e;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

namespace {

[[noreturn]] void throw_ssl_error(const std::string& what) {
  unsigned long code = 0;
  std::string errs = ssl::take_openssl_errors(&code);
  throw SSLError(what + (errs.empty() ? std::string() : ": " + errs), code);
}

void check_readable(const std::string& path, const char* what) {
  if (!path.empty() && ::access(path.c_str(), R_OK) != 0) throw_os_error(errno, std::string(what) + ": " + path);
}

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* arg) {
  auto* impl = static_cast<detail::ContextImpl*>(arg);
  if (impl->alpn.empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* o = nullptr;
  int r = SSL_select_next_proto(&o, outlen, reinterpret_cast<const unsigned char*>(impl->alpn.data()),
                                static_cast<unsigned int>(impl->alpn.size()), in, inlen);
  if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;  // no common protocol: no ALPN
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

Context::Context(Purpose purpose) : impl_(std::make_shared<detail::ContextImpl>()) {
  ERR_clear_error();
  impl_->ctx = SSL_CTX_new(TLS_method());
  if (!impl_->ctx) throw_ssl_error("SSL_CTX_new");
  SSL_CTX* c = impl_->ctx;
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  // No renegotiation: with it a write could have to wait for a read (TLS 1.2 only anyway).
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_alpn_select_cb(c, &alpn_select, impl_.get());
  if (purpose == Purpose::SERVER_AUTH) {
    impl_->check_hostname = true;
    impl_->verify_mode = CERT_REQUIRED;
  }
}

void Context::load_verify_locations(const std::string& cafile, const std::string& capath) {
  if (cafile.empty() && capath.empty()) throw std::invalid_argument("load_verify_locations: give cafile or capath");
  check_readable(cafile, "load_verify_locations");
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(impl_->ctx, cafile.empty() ? nullptr : cafile.c_str(),
                                    capath.empty() ? nullptr : capath.c_str()) != 1)
    throw_ssl_error("load_verify_locations(" + cafile + (capath.empty() ? "" : ", " + capath) + ")");
}

void Context::load_default_certs() {
  ERR_clear_error();
  if (SSL_CTX_set_default_verify_paths(impl_->ctx) != 1) throw_ssl_error("load_default_certs");
}

void Context::load_cert_chain(const std::string& certfile, const std::string& keyfile) {
  const std::string& key = keyfile.empty() ? certfile : keyfile;
  check_readable(certfile, "load_cert_chain");
  check_readable(key, "load_cert_chain");
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(impl_->ctx, certfile.c_str()) != 1)
    throw_ssl_error("load_cert_chain: certificate " + certfile);
  if (SSL_CTX_use_PrivateKey_file(impl_->ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw_ssl_error("load_cert_chain: private key " + key);
  if (SSL_CTX_check_private_key(impl_->ctx) != 1)
    throw_ssl_error("load_cert_chain: the key " + key + " does not match the certificate " + certfile);
}

void Context::set_check_hostname(bool on) {
  if (on && impl_->verify_mode == CERT_NONE) impl_->verify_mode = CERT_REQUIRED;
  impl_->check_hostname = on;
}
bool Context::check_hostname() const noexcept { return impl_->check_hostname; }

void Context::set_verify_mode(VerifyMode mode) {
  if (mode == CERT_NONE && impl_->check_hostname)
    throw std::invalid_argument("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
  impl_->verify_mode = mode;
}
VerifyMode Context::verify_mode() const noexcept { return impl_->verify_mode; }

void Context::set_alpn_protocols(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255)
      throw std::invalid_argument("set_alpn_protocols: a protocol name is 1 to 255 bytes");
    wire += static_cast<char>(p.size());
    wire += p;
  }
  // Note: SSL_CTX_set_alpn_protos returns 0 on success.
  if (SSL_CTX_set_alpn_protos(impl_->ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned int>(wire.size())) != 0)
    throw_ssl_error("set_alpn_protocols");
  impl_->alpn = std::move(wire);
}

void Context::set_ciphers(const std::string& ciphers) {
  ERR_clear_error();
  if (SSL_CTX_set_cipher_list(impl_->ctx, ciphers.c_str()) != 1) throw_ssl_error("set_ciphers(" + ciphers + ")");
}

void* Context::native_handle() const noexcept { return impl_->ctx; }

Context create_default_context(Purpose purpose) {
  Context c(purpose);
  c.load_default_certs();
  return c;
}

}  // namespace concur::asyncio::ssl

namespace concur::asyncio::detail {

namespace {

constexpr std::size_t kTlsReadSize = 256 * 1024;

bool is_ip_address(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

class TlsTransport final : public Transport {
 public:
  TlsTransport(EventLoop& loop, std::unique_ptr<Protocol> app, TlsParams params)
      : loop_(&loop), params_(std::move(params)) {
    app_made_ = !params_.call_connection_made;
    set_app(std::move(app));
  }
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;
  ~TlsTransport() override {
    if (ssl_) SSL_free(ssl_);  // frees the BIOs too
  }

  std::shared_ptr<TlsTransport> me() { return std::static_pointer_cast<TlsTransport>(shared_from_this()); }

  void set_app(std::unique_ptr<Protocol> app) {
    app_ = std::move(app);
    buffered_ = dynamic_cast<BufferedProtocol*>(app_.get());
  }
  Protocol* app() noexcept { return app_.get(); }

  /// Makes the SSL object; throws.
  void init() {
    auto* ctx = static_cast<SSL_CTX*>(params_.ctx.native_handle());
    ERR_clear_error();
    ssl_ = SSL_new(ctx);
    if (!ssl_) ssl_error_now("SSL_new");
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    if (!in || !out) {
      BIO_free(in);
      BIO_free(out);
      ssl_error_now("BIO_new");
    }
    BIO_set_mem_eof_return(in, -1);  // an empty input BIO means "want more", not EOF
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(ssl_, in, out);
    in_ = in;
    out_ = out;
    const ssl::VerifyMode mode = params_.ctx.verify_mode();
    const std::string& host = params_.server_hostname;
    if (params_.server_side) {
      SSL_set_accept_state(ssl_);
      int flags = SSL_VERIFY_NONE;
      if (mode == ssl::CERT_OPTIONAL) flags = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
      if (mode == ssl::CERT_REQUIRED)
        flags = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE;
      SSL_set_verify(ssl_, flags, nullptr);
    } else {
      SSL_set_connect_state(ssl_);
      SSL_set_verify(ssl_, mode == ssl::CERT_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
      if (params_.ctx.check_hostname() && host.empty())
        throw std::invalid_argument("TLS: check_hostname requires server_hostname");
      if (!host.empty()) {
        const bool ip = is_ip_address(host);
        if (!ip && SSL_set_tlsext_host_name(ssl_, host.c_str()) != 1) ssl_error_now("SNI " + host);
        if (params_.ctx.check_hostname()) {
          X509_VERIFY_PARAM* vp = SSL_get0_param(ssl_);
          X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
          int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host.c_str())
                      : X509_VERIFY_PARAM_set1_host(vp, host.c_str(), host.size());
          if (ok != 1) ssl_error_now("server_hostname " + host);
        }
      }
    }
  }

  // ---- the socket's side (through TlsRawProtocol) -------------------------------------------

  void attach_raw(Transport& raw) noexcept { raw_ = &raw; }
  void raw_detached() noexcept { raw_ = nullptr; }

  void raw_made(Transport& raw) {
    raw_ = &raw;
    if (state_ != State::handshake || closing_) return;
    if (params_.handshake_timeout.count() > 0) {
      std::weak_ptr<TlsTransport> weak = me();
      timer_ = loop_->call_later(params_.handshake_timeout, [weak] {
        if (auto s = weak.lock()) s->handshake_timed_out();
      });
    }
    do_handshake();
  }

  void raw_data(std::string_view d) {
    if (state_ == State::closed || !ssl_ || d.empty()) return;
    auto keep = me();
    while (!d.empty()) {
      std::size_t chunk = std::min<std::size_t>(d.size(), INT_MAX);
      int n = BIO_write(in_, d.data(), static_cast<int>(chunk));
      if (n <= 0) {
        fatal(ssl_error_ptr("TLS: buffering received data"), nullptr);
        return;
      }
      d.remove_prefix(static_cast<std::size_t>(n));
    }
    if (state_ == State::handshake) {
      do_handshake();
    } else {
      do_read();
    }
  }

  bool raw_eof() {
    auto keep = me();
    peer_eof_ = true;
    if (state_ == State::handshake) {
      fail_handshake(std::make_exception_ptr(ConnectionResetError(
                         ECONNRESET, "TLS handshake with " + describe() + ": connection closed by the peer")),
                     false);
      return false;
    }
    if (state_ == State::wrapped) {
      do_read();    // delivers what is left, then the EOF (unless reading is paused)
      return true;  // the layer closes the socket once the EOF reached the application
    }
    return false;
  }

  void raw_lost(std::exception_ptr exc) {
    auto keep = me();
    raw_lost_ = true;
    closing_ = true;
    timer_.cancel();
    if (state_ == State::handshake) {
      state_ = State::closed;
      std::exception_ptr e = handshake_lost(exc);
      if (!failure_) failure_ = e;
      complete_handshake(e);
      if (params_.report_failures) report_unraisable("asyncio: TLS handshake failed", e);
    }
    state_ = State::closed;
    if (app_made_ && !app_lost_) {
      app_lost_ = true;
      try {
        app_->connection_lost(exc ? exc : failure_);
      } catch (...) {
        report_unraisable("exception in connection_lost", std::current_exception());
      }
    }
  }

  void raw_pause_writing() {
    if (!app_made_ || app_lost_ || app_write_paused_) return;
    app_write_paused_ = true;
    try {
      app_->pause_writing();
    } catch (...) {
      report_unraisable("exception in pause_writing", std::current_exception());
    }
  }
  void raw_resume_writing() {
    if (!app_write_paused_ || app_lost_) return;
    app_write_paused_ = false;
    try {
      app_->resume_writing();
    } catch (...) {
      report_unraisable("exception in resume_writing", std::current_exception());
    }
  }

  // ---- handshake completion, for the awaiting coroutine --------------------------------------
  Event handshake_event;
  bool handshake_done = false;
  std::exception_ptr handshake_error;

  // ---- Transport --------------------------------------------------------------------------------
  void write(std::string_view data) override {
    if (data.empty()) return;
    if (closing_ || state_ == State::closed || raw_lost_) {
      ++writes_after_close_;
      return;
    }
    if (state_ == State::handshake) {  // start_tls: sent once the handshake completes
      pending_.append(data);
      return;
    }
    ssl_write(data);
  }
  [[nodiscard]] bool can_write_eof() const noexcept override { return false; }
  void write_eof() override { throw std::logic_error("write_eof: TLS transports do not support half-close"); }
  void close() override {
    if (closing_) return;
    closing_ = true;
    auto keep = me();
    if (state_ == State::handshake) {
      fail_handshake(std::make_exception_ptr(ConnectionAbortedError(
                         ECONNABORTED, "TLS handshake with " + describe() + ": the transport was closed")),
                     true);
      return;
    }
    if (state_ == State::wrapped) {
      state_ = State::shutdown;
      if (!peer_eof_ && !raw_lost_) {
        ERR_clear_error();
        (void)SSL_shutdown(ssl_);  // queues our close_notify
        ERR_clear_error();
        flush_out();
      }
    }
    if (raw_) raw_->close();
  }
  void abort() override {
    auto keep = me();
    closing_ = true;
    if (state_ == State::handshake) {
      state_ = State::closed;
      timer_.cancel();
      auto e = std::make_exception_ptr(
          ConnectionAbortedError(ECONNABORTED, "TLS handshake with " + describe() + ": the transport was aborted"));
      complete_handshake(e);
    }
    if (raw_) raw_->abort();
  }
  [[nodiscard]] bool is_closing() const noexcept override { return closing_ || raw_lost_; }
  void pause_reading() override {
    if (closing_ || reading_paused_) return;
    reading_paused_ = true;
    if (raw_) raw_->pause_reading();
  }
  void resume_reading() override {
    if (closing_ || !reading_paused_) return;
    reading_paused_ = false;
    if (raw_) raw_->resume_reading();
    // Data may be waiting in the SSL object or its input BIO: deliver it soon.
    std::weak_ptr<TlsTransport> weak = me();
    loop_->call_soon([weak] {
      if (auto s = weak.lock()) s->do_read();
    });
  }
  [[nodiscard]] bool is_reading() const noexcept override { return !reading_paused_ && !closing_ && !raw_lost_; }
  void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) override {
    if (raw_) raw_->set_write_buffer_limits(high, low);
  }
  [[nodiscard]] std::size_t get_write_buffer_size() const noexcept override {
    return pending_.size() + (raw_ ? raw_->get_write_buffer_size() : 0);
  }
  [[nodiscard]] std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override {
    return raw_ ? raw_->get_write_buffer_limits() : std::pair<std::size_t, std::size_t>(0, 0);
  }
  [[nodiscard]] std::any get_extra_info(std::string_view name) const override {
    if (name == "ssl_object") return ssl_;
    if (name == "sslcontext") return params_.ctx;
    const bool up = ssl_ && state_ != State::handshake && !(state_ == State::closed && !handshake_ok_);
    if (name == "server_hostname") {
      if (!params_.server_side) return params_.server_hostname.empty() ? std::any() : std::any(params_.server_hostname);
      const char* sni = ssl_ ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
      return sni ? std::any(std::string(sni)) : std::any();
    }
    if (name == "peercert" || name == "cipher" || name == "version" || name == "selected_alpn_protocol") {
      if (!up) return {};
      if (name == "cipher") return std::string(SSL_get_cipher_name(ssl_));
      if (name == "version") return std::string(SSL_get_version(ssl_));
      if (name == "selected_alpn_protocol") {
        const unsigned char* p = nullptr;
        unsigned int len = 0;
        SSL_get0_alpn_selected(ssl_, &p, &len);
        if (!p || len == 0) return {};
        return std::string(reinterpret_cast<const char*>(p), len);
      }
      X509* cert = SSL_get0_peer_certificate(ssl_);
      if (!cert) return {};
      BIO* b = BIO_new(BIO_s_mem());
      if (!b) return {};
      X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      long n = BIO_get_mem_data(b, &data);
      std::string subject(data, n > 0 ? static_cast<std::size_t>(n) : 0);
      BIO_free(b);
      return subject;
    }
    return raw_ ? raw_->get_extra_info(name) : std::any();
  }

 private:
  enum class State { handshake, wrapped, shutdown, closed };

  [[noreturn]] void ssl_error_now(const std::string& what) {
    unsigned long code = 0;
    std::string errs = ssl::take_openssl_errors(&code);
    throw ssl::SSLError(what + (errs.empty() ? std::string() : ": " + errs), code);
  }
  std::exception_ptr ssl_error_ptr(const std::string& what) {
    unsigned long code = 0;
    std::string errs = ssl::take_openssl_errors(&code);
    return std::make_exception_ptr(ssl::SSLError(what + ": " + (errs.empty() ? "unknown error" : errs), code));
  }

  std::string describe() const {
    std::string peer;
    if (raw_) {
      std::any a = raw_->get_extra_info("peername");
      if (auto* sa = std::any_cast<SocketAddress>(&a)) peer = sa->to_string();
    }
    if (params_.server_side) return "client " + (peer.empty() ? std::string("(unknown)") : peer);
    std::string who = params_.server_hostname.empty() ? std::string() : "'" + params_.server_hostname + "'";
    if (!peer.empty()) who += (who.empty() ? "" : " at ") + peer;
    return who.empty() ? std::string("the server") : who;
  }

  /// After a failed handshake step: the error OpenSSL left in its queue, as an exception.
  std::exception_ptr handshake_failure() {
    unsigned long code = 0;
    std::string errs = ssl::take_openssl_errors(&code);
    long vr = SSL_get_verify_result(ssl_);
    bool verify_failed = ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED;
    if (verify_failed && vr != X509_V_OK) {
      const std::string& host = params_.server_hostname;
      std::string reason;
      if (vr == X509_V_ERR_HOSTNAME_MISMATCH) {
        reason = "Hostname mismatch, certificate is not valid for '" + host + "'";
      } else if (vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        reason = "IP address mismatch, certificate is not valid for '" + host + "'";
      } else {
        reason = X509_verify_cert_error_string(vr);
      }
      return std::make_exception_ptr(
          ssl::SSLCertVerificationError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: " + reason +
                                            " (TLS handshake with " + describe() + ")",
                                        vr, reason));
    }
    return std::make_exception_ptr(ssl::SSLError(
        "TLS handshake with " + describe() + " failed: " + (errs.empty() ? std::string("unknown error") : errs), code));
  }

  /// The connection was lost during the handshake (`exc`: why, or null): an OSError of the same
  /// kind whose message says so.
  std::exception_ptr handshake_lost(const std::exception_ptr& exc) {
    std::string what = "TLS handshake with " + describe() + ": connection lost";
    try {
      if (exc) std::rethrow_exception(exc);
    } catch (const OSError& e) {
      if (e.errno_code() != 0) return make_os_error(e.errno_code(), what);
      return exc;
    } catch (...) {
      return exc;
    }
    return std::make_exception_ptr(ConnectionResetError(ECONNRESET, what));
  }

  void do_handshake() {
    auto keep = me();
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    std::exception_ptr failure;
    if (r != 1 && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) failure = handshake_failure();
    flush_out();  // our next flight, or the alert that tells the peer why we stop
    if (failure) {
      fail_handshake(failure, true);
      return;
    }
    if (r == 1) handshake_succeeded();
  }

  void handshake_succeeded() {
    state_ = State::wrapped;
    handshake_ok_ = true;
    timer_.cancel();
    if (params_.call_connection_made) {
      app_made_ = true;
      try {
        app_->connection_made(*this);
      } catch (...) {
        auto e = std::current_exception();
        complete_handshake(e);
        fatal(e, "exception in connection_made");
        return;
      }
    }
    complete_handshake(nullptr);
    if (!pending_.empty() && !closing_) {
      std::string p = std::move(pending_);
      pending_.clear();
      ssl_write(p);
    }
    do_read();  // application data that came with the last handshake flight
  }

  void fail_handshake(std::exception_ptr e, bool graceful) {
    if (state_ != State::handshake) return;
    state_ = State::closed;
    closing_ = true;
    timer_.cancel();
    failure_ = e;
    complete_handshake(e);
    if (params_.report_failures) report_unraisable("asyncio: TLS handshake failed", e);
    if (raw_) {
      if (graceful) {
        raw_->close();
      } else {
        raw_->abort();
      }
    }
  }

  void handshake_timed_out() {
    if (state_ != State::handshake) return;
    auto keep = me();
    double secs = std::chrono::duration<double>(params_.handshake_timeout).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", secs);
    fail_handshake(std::make_exception_ptr(ConnectionAbortedError(ETIMEDOUT, "TLS handshake with " + describe() +
                                                                                 " is taking longer than " + buf +
                                                                                 " seconds: aborting the connection")),
                   false);
  }

  void complete_handshake(std::exception_ptr e) {
    if (handshake_done) return;
    handshake_done = true;
    handshake_error = std::move(e);
    handshake_event.set();
  }

  void ssl_write(std::string_view data) {
    ERR_clear_error();
    while (!data.empty()) {
      std::size_t n = 0;
      if (SSL_write_ex(ssl_, data.data(), data.size(), &n) == 1) {
        data.remove_prefix(n);
        continue;
      }
      fatal(ssl_error_ptr("TLS write to " + describe()), nullptr);
      return;
    }
    flush_out();
  }

  /// Hands what the SSL object produced to the socket's transport.
  void flush_out() {
    for (;;) {
      std::size_t pend = BIO_ctrl_pending(out_);
      if (pend == 0) return;
      std::string chunk(pend, '\0');
      int n = BIO_read(out_, chunk.data(), static_cast<int>(std::min<std::size_t>(pend, INT_MAX)));
      if (n <= 0) return;
      chunk.resize(static_cast<std::size_t>(n));
      if (raw_ && !raw_lost_) raw_->write(chunk);
    }
  }

  void do_read() {
    if (state_ != State::wrapped) return;
    auto keep = me();
    while (!reading_paused_ && state_ == State::wrapped) {
      if (BIO_ctrl_pending(in_) == 0 && SSL_has_pending(ssl_) == 0) break;
      char* buf;
      std::size_t cap;
      if (buffered_) {
        std::span<char> s;
        try {
          s = buffered_->get_buffer(kTlsReadSize);
        } catch (...) {
          fatal(std::current_exception(), "exception in get_buffer");
          return;
        }
        if (s.empty()) {
          fatal(std::make_exception_ptr(std::logic_error("get_buffer() returned an empty buffer")), "");
          return;
        }
        buf = s.data();
        cap = s.size();
      } else {
        if (!rbuf_) rbuf_ = std::make_unique<char[]>(kTlsReadSize);
        buf = rbuf_.get();
        cap = kTlsReadSize;
      }
      std::size_t filled = 0;
      int err = SSL_ERROR_NONE;
      ERR_clear_error();
      while (filled < cap) {
        std::size_t got = 0;
        int r = SSL_read_ex(ssl_, buf + filled, cap - filled, &got);
        if (r == 1) {
          filled += got;
          continue;
        }
        err = SSL_get_error(ssl_, r);
        break;
      }
      std::exception_ptr read_error;
      if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_ZERO_RETURN)
        read_error = ssl_error_ptr("TLS read from " + describe());
      if (filled > 0) {
        try {
          if (buffered_) {
            buffered_->buffer_updated(filled);
          } else {
            app_->data_received(std::string_view(buf, filled));
          }
        } catch (...) {
          fatal(std::current_exception(), "exception in data_received");
          return;
        }
      }
      if (read_error) {
        fatal(read_error, nullptr);
        return;
      }
      if (err == SSL_ERROR_ZERO_RETURN) {  // the peer's close_notify
        peer_close_notify_ = true;
        break;
      }
      if (err == SSL_ERROR_WANT_READ) break;
    }
    flush_out();  // e.g. a KeyUpdate answer
    if ((peer_eof_ || peer_close_notify_) && !reading_paused_ && state_ == State::wrapped) deliver_eof();
  }

  void deliver_eof() {
    if (eof_delivered_) return;
    eof_delivered_ = true;
    if (app_made_ && !app_lost_) {
      try {
        (void)app_->eof_received();  // no half-close over TLS (as Python): the result is ignored
      } catch (...) {
        fatal(std::current_exception(), "exception in eof_received");
        return;
      }
    }
    close();
  }

  void fatal(std::exception_ptr e, const char* where) {
    if (where && *where) report_unraisable(where, e);
    if (!failure_) failure_ = e;
    closing_ = true;
    if (state_ != State::closed) state_ = State::shutdown;
    if (raw_) raw_->abort();
  }

  EventLoop* loop_;
  std::unique_ptr<Protocol> app_;
  BufferedProtocol* buffered_ = nullptr;
  TlsParams params_;
  Transport* raw_ = nullptr;  // the socket's transport; null once it is destroyed
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
  State state_ = State::handshake;
  std::string pending_;  // written before the handshake completed
  std::unique_ptr<char[]> rbuf_;
  TimerHandle timer_;
  std::exception_ptr failure_;
  bool app_made_ = false, app_lost_ = false, app_write_paused_ = false;
  bool handshake_ok_ = false, closing_ = false, raw_lost_ = false, reading_paused_ = false;
  bool peer_eof_ = false, peer_close_notify_ = false, eof_delivered_ = false;
  int writes_after_close_ = 0;
};

/// The protocol the socket's transport sees: forwards to the TLS transport.
class TlsRawProtocol final : public Protocol {
 public:
  explicit TlsRawProtocol(std::shared_ptr<TlsTransport> t) noexcept : t_(std::move(t)) {}
  TlsRawProtocol(const TlsRawProtocol&) = delete;
  TlsRawProtocol& operator=(const TlsRawProtocol&) = delete;
  ~TlsRawProtocol() override { t_->raw_detached(); }
  void connection_made(Transport& t) override { t_->raw_made(t); }
  void data_received(std::string_view data) override { t_->raw_data(data); }
  bool eof_received() override { return t_->raw_eof(); }
  void connection_lost(std::exception_ptr exc) override { t_->raw_lost(std::move(exc)); }
  void pause_writing() override { t_->raw_pause_writing(); }
  void resume_writing() override { t_->raw_resume_writing(); }

 private:
  std::shared_ptr<TlsTransport> t_;
};

}  // namespace

TlsWrapped wrap_tls(EventLoop& loop, std::unique_ptr<Protocol> app, TlsParams params) {
  auto t = std::make_shared<TlsTransport>(loop, std::move(app), std::move(params));
  t->init();
  TlsWrapped w;
  w.raw_protocol = std::make_unique<TlsRawProtocol>(t);
  w.app_transport = std::move(t);
  return w;
}

Coro<std::shared_ptr<Transport>> tls_handshake(std::shared_ptr<Transport> app_transport,
                                               std::shared_ptr<Transport> raw) {
  auto t = std::static_pointer_cast<TlsTransport>(app_transport);
  t->attach_raw(*raw);
  try {
    while (!t->handshake_done) co_await t->handshake_event.wait();
  } catch (...) {
    t->abort();  // cancelled: the connection goes, and its socket with it
    throw;
  }
  if (t->handshake_error) std::rethrow_exception(t->handshake_error);
  co_return app_transport;
}

ProtocolFactory tls_server_factory(ProtocolFactory f, ssl::Context ctx, std::chrono::nanoseconds handshake_timeout) {
  return [f = std::move(f), ctx = std::move(ctx), handshake_timeout]() -> std::unique_ptr<Protocol> {
    std::unique_ptr<Protocol> app = f();
    if (!app) return nullptr;
    TlsParams p;
    p.ctx = ctx;
    p.server_side = true;
    p.handshake_timeout = handshake_timeout;
    p.report_failures = true;
    return wrap_tls(get_running_loop(), std::move(app), std::move(p)).raw_protocol;
  };
}

Protocol* tls_app_protocol_of(Transport& t) noexcept {
  auto* s = dynamic_cast<TlsTransport*>(&t);
  return s ? s->app() : nullptr;
}

}  // namespace concur::asyncio::detail

namespace concur::asyncio {

Coro<std::shared_ptr<Transport>> start_tls(std::shared_ptr<Transport> t, Protocol& p, ssl::Context ctx,
                                           StartTlsOptions options) {
  if (!t) throw std::invalid_argument("start_tls: no transport");
  if (dynamic_cast<detail::TlsTransport*>(t.get()))
    throw std::invalid_argument("start_tls: the transport is already TLS");
  if (detail::protocol_of(*t) != &p) throw std::invalid_argument("start_tls: `p` must be the transport's protocol");
  if (t->is_closing()) throw ConnectionResetError(0, "start_tls: the transport is closing");
  detail::TlsParams params;
  params.ctx = std::move(ctx);
  params.server_side = options.server_side;
  params.server_hostname = options.server_hostname.value_or(std::string());
  params.handshake_timeout = options.ssl_handshake_timeout;
  params.call_connection_made = false;
  detail::TlsWrapped w = detail::wrap_tls(get_running_loop(), nullptr, std::move(params));
  auto tls = std::static_pointer_cast<detail::TlsTransport>(w.app_transport);
  std::unique_ptr<Protocol> app = detail::replace_protocol(*t, std::move(w.raw_protocol));
  if (!app) throw std::invalid_argument("start_tls: not a stream transport");
  tls->set_app(std::move(app));
  tls->raw_made(*t);
  co_return co_await detail::tls_handshake(std::move(w.app_transport), t);
}

}  // namespace concur::asyncio
