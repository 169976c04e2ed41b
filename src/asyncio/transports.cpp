// Stream and datagram transports over non-blocking sockets and pipes, readiness-driven
// (the model of Python's selector event loop), and the connection / server factories.
#include "concur/asyncio/transports.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <deque>
#include <stdexcept>

#include "net.hpp"
#include "ssl_layer.hpp"

#include "concur/asyncio/locks.hpp"
#include "concur/asyncio/sleep.hpp"

namespace concur::asyncio::detail {

namespace {

constexpr std::size_t kReadSize = 256 * 1024;
constexpr std::size_t kDefaultHigh = 64 * 1024;
/// Writes up to this size into an empty buffer wait for the loop's batch (io_uring backend);
/// larger ones are sent at once, as before.
constexpr std::size_t kBatchedWrite = 64 * 1024;

bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

/// One read buffer per thread, shared by every transport on it: data_received() gets a view
/// valid only during the call, so nothing else can be using it (and a transport costs no
/// 256 KiB of its own).
char* thread_read_buffer() {
  thread_local std::unique_ptr<char[]> buf(new char[kReadSize]);
  return buf.get();
}

// ---- stream transport ------------------------------------------------------------------------

class StreamTransport final : public Transport, public IoHandler, public LoopResource, public Flushable {
 public:
  std::shared_ptr<StreamTransport> me() { return std::static_pointer_cast<StreamTransport>(shared_from_this()); }
  StreamTransport(EventLoop& loop, int fd, std::unique_ptr<Protocol> p, bool is_socket, std::any pid)
      : loop_(&loop), fd_(fd), protocol_(std::move(p)), is_socket_(is_socket), pid_(std::move(pid)) {
    buffered_ = dynamic_cast<BufferedProtocol*>(protocol_.get());
  }
  StreamTransport(const StreamTransport&) = delete;
  StreamTransport& operator=(const StreamTransport&) = delete;

  ~StreamTransport() override {
    if (queued_ && loop_) loop_->unqueue_flush(this);
    if (fd_ >= 0) {
      if (loop_) {
        loop_->watch(fd_, nullptr, 0);
        loop_->remove_resource(this);
      }
      ::close(fd_);
    }
  }

  void start() {
    self_ = me();
    if (is_socket_) {
      peer_ = peer_of(fd_);  // kept: after a reset the kernel no longer tells
      local_ = local_of(fd_);
    }
    loop_->add_resource(this);
    // As Python: connection_made always comes first (it is queued before anything else can
    // be), so a connection that fails early still gets connection_made, then connection_lost.
    loop_->call_soon([self = self_] {
      self->made_ = true;
      try {
        self->protocol_->connection_made(*self);
      } catch (...) {
        self->fatal(std::current_exception(), "exception in connection_made");
        return;
      }
      if (self->lost_ || self->closing_) return;
      self->reading_ = true;
      self->update_interest();
    });
  }

  Protocol* protocol() noexcept { return protocol_.get(); }
  /// start_tls: the TLS layer becomes the protocol; returns the old one.
  std::unique_ptr<Protocol> replace_protocol(std::unique_ptr<Protocol> p) {
    std::unique_ptr<Protocol> old = std::move(protocol_);
    protocol_ = std::move(p);
    buffered_ = dynamic_cast<BufferedProtocol*>(protocol_.get());
    return old;
  }
  void set_on_lost(std::function<void()> f) { on_lost_ = std::move(f); }

  // ---- Transport ----
  void write(std::string_view data) override {
    if (data.empty()) return;
    if (eof_pending_) throw std::logic_error("cannot write() after write_eof()");
    if (lost_ || fd_ < 0) {
      ++writes_after_lost_;
      return;
    }
    if (pending() == 0) {
      if (is_socket_ && data.size() <= kBatchedWrite && loop_->batches_writes()) {
        // Sent with every other connection's writes of this iteration, in one system call,
        // before the loop polls again (io_uring backend).
        wbuf_.append(data);
        queued_ = true;
        loop_->queue_flush(this);
        return;
      }
      ssize_t n = send_some(data.data(), data.size());
      if (n < 0) {
        int err = errno;
        if (!would_block(err)) {
          fatal_errno(err, "write to " + describe_peer());
          return;
        }
        n = 0;
      }
      if (static_cast<std::size_t>(n) == data.size()) return;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    wbuf_.append(data);
    update_interest();
    maybe_pause_protocol();
  }
  [[nodiscard]] bool can_write_eof() const noexcept override { return is_socket_; }
  void write_eof() override {
    if (closing_ || eof_pending_) return;
    eof_pending_ = true;
    if (pending() == 0) shutdown_write();
  }
  void close() override {
    if (closing_) return;
    closing_ = true;
    reading_ = false;
    if (!lost_) update_interest();
    if (pending() == 0) schedule_lost(nullptr);
  }
  void abort() override { force_close(nullptr); }
  [[nodiscard]] bool is_closing() const noexcept override { return closing_ || lost_; }
  void pause_reading() override {
    if (closing_ || paused_) return;
    paused_ = true;
    update_interest();
  }
  void resume_reading() override {
    if (closing_ || !paused_) return;
    paused_ = false;
    update_interest();
    if (!stash_.empty() || stash_eof_) {
      // What a batched read brought in after pause_reading: delivered first, from the loop.
      loop_->call_soon([self = me()] { self->deliver_stash(); });
    }
  }
  [[nodiscard]] bool is_reading() const noexcept override { return reading_ && !paused_ && !closing_ && !lost_; }
  void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) override {
    std::size_t h = high ? *high : (low ? 4 * *low : kDefaultHigh);
    std::size_t l = low ? *low : h / 4;
    if (l > h) throw std::invalid_argument("set_write_buffer_limits: high must be >= low");
    high_ = h;
    low_ = l;
    maybe_pause_protocol();
    maybe_resume_protocol();
  }
  [[nodiscard]] std::size_t get_write_buffer_size() const noexcept override { return pending(); }
  [[nodiscard]] std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override {
    return {low_, high_};
  }
  [[nodiscard]] std::any get_extra_info(std::string_view name) const override {
    if (name == "socket" || name == "fd") return fd_;
    if (name == "pid") return pid_;
    if (!is_socket_) return {};
    if (name == "peername") return peer_.family ? std::any(peer_) : std::any();
    if (name == "sockname") return local_.family ? std::any(local_) : std::any();
    return {};
  }

  // ---- readiness ----
  void io_ready(std::uint32_t events) noexcept override {
    auto keep = me();  // a callback may drop the last outside reference
    if ((events & io_readable) && is_reading()) {
      if (!stash_.empty() || stash_eof_) deliver_stash();  // older bytes first
      if (is_reading()) read_ready();
    }
    if ((events & io_writable) && !lost_ && pending() > 0) write_ready();
  }

  // ---- batched reads (EventLoop::dispatch_io_batched) ----
  bool batch_read() noexcept override { return is_socket_ && !buffered_ && is_reading() && stash_.empty(); }
  void read_done(const char* data, long res) noexcept override {
    auto keep = me();  // a callback may drop the last outside reference
    if (lost_) return;
    if (res < 0) {
      if (!would_block(static_cast<int>(-res))) fatal_errno(static_cast<int>(-res), "read from " + describe_peer());
      return;
    }
    if (!is_reading()) {  // paused by an earlier callback of the same batch: kept for resume
      if (closing_) return;
      if (res == 0) {
        stash_eof_ = true;
      } else {
        stash_.append(data, static_cast<std::size_t>(res));
      }
      return;
    }
    if (res == 0) {
      eof_received();
      return;
    }
    try {
      protocol_->data_received(std::string_view(data, static_cast<std::size_t>(res)));
    } catch (...) {
      fatal(std::current_exception(), "exception in data_received");
    }
  }

  // ---- batched writes (EventLoop::queue_flush) ----
  void flush_take(int& fd, char*& data, std::size_t& len) noexcept override {
    if (lost_ || fd_ < 0 || pending() == 0) {
      len = 0;
      return;
    }
    fd = fd_;
    data = wbuf_.data() + wpos_;
    len = pending();
  }
  void flush_done(long res) noexcept override {
    queued_ = false;
    if (lost_ || fd_ < 0) return;
    auto keep = me();  // connection_lost may be scheduled below
    if (res < 0) {
      if (!would_block(static_cast<int>(-res))) {
        fatal_errno(static_cast<int>(-res), "write to " + describe_peer());
        return;
      }
      update_interest();  // not writable now: wait for it
      return;
    }
    after_sent(static_cast<std::size_t>(res));
  }

  void loop_closing() noexcept override {
    // The loop closes with this connection open: release the fd without calling back.
    if (queued_) {
      loop_->unqueue_flush(this);
      queued_ = false;
    }
    if (fd_ >= 0) {
      loop_->watch(fd_, nullptr, 0);
      ::close(fd_);
      fd_ = -1;
    }
    lost_ = true;
    loop_ = nullptr;
    auto self = std::move(self_);  // may destroy *this at the end of this scope
  }

 private:
  [[nodiscard]] std::size_t pending() const noexcept { return wbuf_.size() - wpos_; }

  ssize_t send_some(const char* p, std::size_t n) noexcept {
    if (is_socket_) return ::send(fd_, p, n, MSG_NOSIGNAL);
    return ::write(fd_, p, n);
  }

  std::string describe_peer() const {
    if (!is_socket_) return "pipe";
    return peer_.family ? peer_.to_string() : "socket";
  }

  void update_interest() {
    if (lost_ || fd_ < 0) return;
    std::uint32_t want = (is_reading() ? io_readable : 0u) | (pending() > 0 && !queued_ ? io_writable : 0u);
    loop_->watch(fd_, this, want);
  }

  void read_ready() {
    char* buf;
    std::size_t cap;
    if (buffered_) {
      std::span<char> s;
      try {
        s = buffered_->get_buffer(kReadSize);
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
      buf = thread_read_buffer();
      cap = kReadSize;
    }
    ssize_t n = is_socket_ ? ::recv(fd_, buf, cap, 0) : ::read(fd_, buf, cap);
    if (n < 0) {
      int err = errno;
      if (!would_block(err)) fatal_errno(err, "read from " + describe_peer());
      return;
    }
    if (n == 0) {
      eof_received();
      return;
    }
    try {
      if (buffered_) {
        buffered_->buffer_updated(static_cast<std::size_t>(n));
      } else {
        protocol_->data_received(std::string_view(buf, static_cast<std::size_t>(n)));
      }
    } catch (...) {
      fatal(std::current_exception(), "exception in data_received");
    }
  }

  void deliver_stash() {
    if (!is_reading()) return;  // paused again, or closed: kept, or dropped with the connection
    std::string data = std::move(stash_);
    stash_.clear();
    if (!data.empty()) {
      try {
        protocol_->data_received(data);
      } catch (...) {
        fatal(std::current_exception(), "exception in data_received");
        return;
      }
    }
    if (stash_eof_ && is_reading()) {
      stash_eof_ = false;
      eof_received();
    }
  }

  void eof_received() {
    reading_ = false;
    update_interest();
    bool keep_open = false;
    try {
      keep_open = protocol_->eof_received();
    } catch (...) {
      fatal(std::current_exception(), "exception in eof_received");
      return;
    }
    if (!keep_open) close();
  }

  void write_ready() {
    ssize_t n = send_some(wbuf_.data() + wpos_, pending());
    if (n < 0) {
      int err = errno;
      if (!would_block(err)) fatal_errno(err, "write to " + describe_peer());
      return;
    }
    after_sent(static_cast<std::size_t>(n));
  }

  /// `n` more bytes of the buffer went out.
  void after_sent(std::size_t n) {
    wpos_ += n;
    if (wpos_ == wbuf_.size()) {
      wbuf_.clear();
      wpos_ = 0;
    } else if (wpos_ > 64 * 1024 && wpos_ * 2 > wbuf_.size()) {
      wbuf_.erase(0, wpos_);
      wpos_ = 0;
    }
    maybe_resume_protocol();
    if (pending() == 0) {
      update_interest();
      if (closing_) {
        schedule_lost(nullptr);
      } else if (eof_pending_) {
        shutdown_write();
      }
    } else {
      update_interest();  // the rest when writable
    }
  }

  void shutdown_write() {
    if (is_socket_) {
      ::shutdown(fd_, SHUT_WR);
    } else {
      close();  // a pipe has no half-close: closing it is the EOF
    }
  }

  void maybe_pause_protocol() {
    if (protocol_paused_ || pending() <= high_ || lost_) return;
    protocol_paused_ = true;
    try {
      protocol_->pause_writing();
    } catch (...) {
      report_unraisable("exception in pause_writing", std::current_exception());
    }
  }
  void maybe_resume_protocol() {
    if (!protocol_paused_ || pending() > low_) return;
    protocol_paused_ = false;
    try {
      protocol_->resume_writing();
    } catch (...) {
      report_unraisable("exception in resume_writing", std::current_exception());
    }
  }

  void fatal_errno(int err, const std::string& what) { force_close(make_os_error(err, what)); }
  void fatal(std::exception_ptr e, const char* where) {
    if (where && *where) report_unraisable(where, e);
    force_close(std::move(e));
  }

  void force_close(std::exception_ptr exc) {
    if (lost_) return;
    wbuf_.clear();
    wpos_ = 0;
    closing_ = true;
    reading_ = false;
    schedule_lost(std::move(exc));
  }

  void schedule_lost(std::exception_ptr exc) {
    if (lost_) return;
    lost_ = true;
    if (fd_ >= 0) loop_->watch(fd_, nullptr, 0);
    loop_->call_soon([self = me(), exc = std::move(exc)] { self->call_connection_lost(exc); });
  }

  void call_connection_lost(const std::exception_ptr& exc) {
    if (made_) {
      try {
        protocol_->connection_lost(exc);
      } catch (...) {
        report_unraisable("exception in connection_lost", std::current_exception());
      }
    }
    if (fd_ >= 0 && loop_) {
      loop_->remove_resource(this);
      ::close(fd_);
      fd_ = -1;
    }
    if (on_lost_) std::exchange(on_lost_, nullptr)();
    self_.reset();  // the caller's lambda still holds a reference
  }

  EventLoop* loop_;
  int fd_;
  std::unique_ptr<Protocol> protocol_;
  BufferedProtocol* buffered_ = nullptr;
  bool is_socket_;
  std::any pid_;
  SocketAddress peer_, local_;
  std::string wbuf_;
  std::size_t wpos_ = 0;
  std::size_t high_ = kDefaultHigh, low_ = kDefaultHigh / 4;
  bool made_ = false, reading_ = false, paused_ = false, closing_ = false, lost_ = false;
  bool eof_pending_ = false, protocol_paused_ = false;
  bool queued_ = false;  // in the loop's flush list (batched writes)
  std::string stash_;    // received by a batched read while paused
  bool stash_eof_ = false;
  int writes_after_lost_ = 0;
  std::function<void()> on_lost_;
  std::shared_ptr<StreamTransport> self_;  // the loop's reference while the connection is open
};

// ---- datagram transport ----------------------------------------------------------------------

class UdpTransport final : public DatagramTransport, public IoHandler, public LoopResource {
 public:
  std::shared_ptr<UdpTransport> me() { return std::static_pointer_cast<UdpTransport>(shared_from_this()); }
  UdpTransport(EventLoop& loop, int fd, std::unique_ptr<DatagramProtocol> p, bool connected)
      : loop_(&loop), fd_(fd), protocol_(std::move(p)), connected_(connected) {}
  UdpTransport(const UdpTransport&) = delete;
  UdpTransport& operator=(const UdpTransport&) = delete;
  ~UdpTransport() override {
    if (fd_ >= 0) {
      if (loop_) {
        loop_->watch(fd_, nullptr, 0);
        loop_->remove_resource(this);
      }
      ::close(fd_);
    }
  }
  DatagramProtocol* protocol() noexcept { return protocol_.get(); }

  void start() {
    self_ = me();
    loop_->add_resource(this);
    loop_->call_soon([self = self_] {
      if (self->lost_) return;
      self->made_ = true;
      try {
        self->protocol_->connection_made(*self);
      } catch (...) {
        report_unraisable("exception in connection_made", std::current_exception());
      }
      self->update_interest();
    });
  }

  void sendto(std::string_view data, const std::optional<SocketAddress>& to) override {
    if (lost_ || closing_) {
      ++writes_after_lost_;
      return;
    }
    if (connected_ && to) throw std::invalid_argument("sendto: the transport is connected; omit the address");
    if (!connected_ && !to)
      throw std::invalid_argument("sendto: an address is needed (the transport is not connected)");
    if (queue_.empty()) {
      int err = send_one(data, to);
      if (err == 0) return;
      if (!would_block(err) && err != ENOBUFS) {
        report_error(err, to);
        return;
      }
    }
    queue_.push_back({std::string(data), to});
    update_interest();
  }
  void close() override {
    if (closing_) return;
    closing_ = true;
    if (queue_.empty())
      schedule_lost(nullptr);
    else
      update_interest();
  }
  void abort() override {
    queue_.clear();
    closing_ = true;
    schedule_lost(nullptr);
  }
  [[nodiscard]] bool is_closing() const noexcept override { return closing_ || lost_; }
  [[nodiscard]] std::any get_extra_info(std::string_view name) const override {
    if (name == "socket" || name == "fd") return fd_;
    if (fd_ < 0) return {};
    if (name == "sockname") return local_of(fd_);
    if (name == "peername" && connected_) return peer_of(fd_);
    return {};
  }

  void io_ready(std::uint32_t events) noexcept override {
    auto keep = me();
    if ((events & io_readable) && !closing_ && !lost_) read_ready();
    if ((events & io_writable) && !lost_) write_ready();
  }
  void loop_closing() noexcept override {
    if (fd_ >= 0) {
      loop_->watch(fd_, nullptr, 0);
      ::close(fd_);
      fd_ = -1;
    }
    lost_ = true;
    loop_ = nullptr;
    auto self = std::move(self_);
  }

 private:
  struct Outgoing {
    std::string data;
    std::optional<SocketAddress> to;
  };
  int send_one(std::string_view data, const std::optional<SocketAddress>& to) {
    ssize_t n;
    if (to) {
      sockaddr_storage ss{};
      socklen_t len = to_sockaddr(*to, ss);
      n = ::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&ss), len);
    } else {
      n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    }
    return n < 0 ? errno : 0;
  }
  void report_error(int err, const std::optional<SocketAddress>& to) {
    try {
      protocol_->error_received(make_os_error(err, "UDP send to " + (to ? to->to_string() : peer_of(fd_).to_string())));
    } catch (...) {
      report_unraisable("exception in error_received", std::current_exception());
    }
  }
  void update_interest() {
    if (lost_ || fd_ < 0) return;
    std::uint32_t want = (made_ && !closing_ ? io_readable : 0u) | (!queue_.empty() ? io_writable : 0u);
    loop_->watch(fd_, this, want);
  }
  void read_ready() {
    char* rbuf = thread_read_buffer();
    for (int i = 0; i < 64 && !lost_ && !closing_; ++i) {  // a bounded batch per readiness
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      ssize_t n = ::recvfrom(fd_, rbuf, 65536, 0, reinterpret_cast<sockaddr*>(&ss), &len);
      if (n < 0) {
        if (would_block(errno)) return;
        int err = errno;
        try {
          protocol_->error_received(make_os_error(err, "UDP receive"));
        } catch (...) {
          report_unraisable("exception in error_received", std::current_exception());
        }
        continue;
      }
      try {
        protocol_->datagram_received(std::string_view(rbuf, static_cast<std::size_t>(n)),
                                     from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len));
      } catch (...) {
        report_unraisable("exception in datagram_received", std::current_exception());
      }
    }
  }
  void write_ready() {
    while (!queue_.empty()) {
      int err = send_one(queue_.front().data, queue_.front().to);
      if (err != 0 && (would_block(err) || err == ENOBUFS)) break;
      if (err != 0) report_error(err, queue_.front().to);
      queue_.pop_front();
    }
    update_interest();
    if (queue_.empty() && closing_) schedule_lost(nullptr);
  }
  void schedule_lost(std::exception_ptr exc) {
    if (lost_) return;
    lost_ = true;
    if (fd_ >= 0) loop_->watch(fd_, nullptr, 0);
    loop_->call_soon([self = me(), exc = std::move(exc)] {
      if (self->made_) {
        try {
          self->protocol_->connection_lost(exc);
        } catch (...) {
          report_unraisable("exception in connection_lost", std::current_exception());
        }
      }
      if (self->fd_ >= 0 && self->loop_) {
        self->loop_->remove_resource(self.get());
        ::close(self->fd_);
        self->fd_ = -1;
      }
      self->self_.reset();
    });
  }

  EventLoop* loop_;
  int fd_;
  std::unique_ptr<DatagramProtocol> protocol_;
  bool connected_;
  bool made_ = false, closing_ = false, lost_ = false;
  int writes_after_lost_ = 0;
  std::deque<Outgoing> queue_;
  std::shared_ptr<UdpTransport> self_;
};

}  // namespace

std::shared_ptr<Transport> make_stream_transport(EventLoop& loop, int fd, std::unique_ptr<Protocol> protocol,
                                                 bool is_socket, std::any extra_pid) {
  if (!is_socket) {
    // write() to a pipe whose reader is gone raises SIGPIPE (sockets use MSG_NOSIGNAL): as
    // Python does at start-up, ignore it (only if nobody installed a handler), so the write
    // fails with EPIPE and the protocol gets connection_lost(BrokenPipeError) instead.
    static const bool ignored = [] {
      struct sigaction old {};
      if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
      return true;
    }();
    (void)ignored;
  }
  auto t = std::make_shared<StreamTransport>(loop, fd, std::move(protocol), is_socket, std::move(extra_pid));
  t->start();
  return t;
}

Protocol* protocol_of(Transport& t) noexcept {
  if (Protocol* app = tls_app_protocol_of(t)) return app;
  auto* s = dynamic_cast<StreamTransport*>(&t);
  return s ? s->protocol() : nullptr;
}

std::unique_ptr<Protocol> replace_protocol(Transport& t, std::unique_ptr<Protocol> p) {
  auto* s = dynamic_cast<StreamTransport*>(&t);
  return s ? s->replace_protocol(std::move(p)) : nullptr;
}

DatagramProtocol* protocol_of(DatagramTransport& t) noexcept {
  auto* u = dynamic_cast<UdpTransport*>(&t);
  return u ? u->protocol() : nullptr;
}

namespace {
void set_nodelay(int fd) noexcept {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
}  // namespace

// ---- connections --------------------------------------------------------------------------------

namespace {
/// As Python's create_connection: returns once connection_made() has run (it was scheduled
/// first, so one trip through the loop suffices). A cancelled caller aborts the transport.
Coro<std::shared_ptr<Transport>> connected(std::shared_ptr<Transport> t) {
  try {
    co_await sleep(std::chrono::seconds(0));
  } catch (...) {
    t->abort();
    throw;
  }
  co_return t;
}

TlsParams client_tls_params(const ConnectOptions& o, const std::string& host) {
  TlsParams p;
  p.ctx = *o.ssl;
  p.server_hostname = o.server_hostname ? *o.server_hostname : host;
  p.handshake_timeout = o.ssl_handshake_timeout;
  if (p.server_hostname.empty() && p.ctx.check_hostname())
    throw std::invalid_argument("create_connection: give server_hostname (the TLS context checks host names)");
  return p;
}

/// The connected socket `fd` (owned from now on) as a transport for `p`, over TLS when `tls`
/// is set (then returned once the handshake completed).
Coro<std::shared_ptr<Transport>> finish_connection(EventLoop& loop, int fd, std::unique_ptr<Protocol> p,
                                                   std::optional<TlsParams> tls) {
  if (!tls) return connected(make_stream_transport(loop, fd, std::move(p), true));
  FdGuard guard(fd);
  TlsWrapped w = wrap_tls(loop, std::move(p), std::move(*tls));
  std::shared_ptr<Transport> raw = make_stream_transport(loop, guard.release(), std::move(w.raw_protocol), true);
  return tls_handshake(std::move(w.app_transport), std::move(raw));
}
}  // namespace

Coro<std::shared_ptr<Transport>> create_connection_impl(EventLoop& loop, ProtocolFactory factory, std::string host,
                                                        int port, ConnectOptions options) {
  std::optional<TlsParams> tls;
  if (options.ssl) tls = client_tls_params(options, host);
  std::vector<SocketAddress> addrs = co_await resolve(loop, host, port, SOCK_STREAM, false);
  if (addrs.empty()) throw OSError(0, "no address found for " + host);
  std::exception_ptr last;
  for (const SocketAddress& a : addrs) {
    FdGuard fd(make_socket(a.family, SOCK_STREAM));
    try {
      if (options.local_addr) {
        std::vector<SocketAddress> locals =
            co_await resolve(loop, options.local_addr->first, options.local_addr->second, SOCK_STREAM, true);
        bool bound = false;
        for (const auto& l : locals) {
          if (l.family != a.family) continue;
          sockaddr_storage ss{};
          socklen_t len = to_sockaddr(l, ss);
          if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0)
            throw_os_error(errno, "bind to " + l.to_string());
          bound = true;
          break;
        }
        if (!bound) throw OSError(0, "no local address of the family of " + a.to_string());
      }
      co_await connect_socket(fd.get(), a);
    } catch (const CancelledError&) {
      throw;
    } catch (const OSError&) {
      last = std::current_exception();
      continue;
    }
    set_nodelay(fd.get());
    std::unique_ptr<Protocol> p = factory();
    if (!p) throw std::logic_error("create_connection: the protocol factory returned null");
    co_return co_await finish_connection(loop, fd.release(), std::move(p), std::move(tls));
  }
  std::rethrow_exception(last);
}

Coro<std::shared_ptr<Transport>> create_unix_connection_impl(EventLoop& loop, ProtocolFactory factory, std::string path,
                                                             ConnectOptions options) {
  std::optional<TlsParams> tls;
  if (options.ssl) tls = client_tls_params(options, std::string());
  FdGuard fd(make_socket(AF_UNIX, SOCK_STREAM));
  SocketAddress a;
  a.family = AF_UNIX;
  a.path = path;
  co_await connect_socket(fd.get(), a);
  std::unique_ptr<Protocol> p = factory();
  if (!p) throw std::logic_error("create_unix_connection: the protocol factory returned null");
  co_return co_await finish_connection(loop, fd.release(), std::move(p), std::move(tls));
}

// ---- servers --------------------------------------------------------------------------------------

struct ServerState : LoopResource, std::enable_shared_from_this<ServerState> {
  struct Listener final : IoHandler {
    ServerState* server = nullptr;
    int fd = -1;
    SocketAddress addr;
    void io_ready(std::uint32_t) noexcept override { server->accept_from(*this); }
  };

  EventLoop* loop = nullptr;
  ProtocolFactory factory;
  ServerOptions options;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::string unix_path;  // removed at close
  bool serving = false;
  bool closed = false;
  std::size_t active = 0;
  Event closed_event;    // set by close()
  Event all_gone_event;  // closed and no connection left
  TimerHandle retry;     // accepting paused after EMFILE

  ~ServerState() {
    close_listeners();
    if (loop) loop->remove_resource(this);
  }

  void start() {
    if (closed || serving) return;
    serving = true;
    for (auto& l : listeners) loop->watch(l->fd, l.get(), io_readable);
  }

  void pause_accepting() {
    for (auto& l : listeners) loop->watch(l->fd, nullptr, 0);
  }

  void accept_from(Listener& l) {
    for (int i = 0; i < options.backlog && serving; ++i) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      int c = ::accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) {
        int err = errno;
        if (would_block(err)) return;
        if (err == ECONNABORTED || err == EPROTO) continue;
        if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
          // Out of descriptors or memory: stop accepting for a while instead of spinning
          // (the pending connections wait in the backlog), as Python does.
          report_unraisable("asyncio server: accept() failed, pausing for 100 ms",
                            make_os_error(err, "accept on " + l.addr.to_string()));
          pause_accepting();
          std::weak_ptr<ServerState> weak = weak_from_this();
          retry = loop->call_later(std::chrono::milliseconds(100), [weak] {
            if (auto s = weak.lock()) {
              if (s->serving && !s->closed)
                for (auto& li : s->listeners) s->loop->watch(li->fd, li.get(), io_readable);
            }
          });
          return;
        }
        report_unraisable("asyncio server: accept() failed", make_os_error(err, "accept on " + l.addr.to_string()));
        return;
      }
      if (l.addr.family != AF_UNIX) set_nodelay(c);
      std::unique_ptr<Protocol> p;
      try {
        p = factory();
        if (!p) throw std::logic_error("the server's protocol factory returned null");
      } catch (...) {
        ::close(c);
        report_unraisable("exception in a server's protocol factory", std::current_exception());
        continue;
      }
      auto t = std::make_shared<StreamTransport>(*loop, c, std::move(p), true, std::any{});
      ++active;
      std::weak_ptr<ServerState> weak = weak_from_this();
      t->set_on_lost([weak] {
        if (auto s = weak.lock()) s->connection_gone();
      });
      t->start();
    }
  }

  void connection_gone() {
    if (active > 0) --active;
    if (closed && active == 0) all_gone_event.set();
  }

  void close_listeners() {
    for (auto& l : listeners) {
      if (l->fd >= 0) {
        if (loop) loop->watch(l->fd, nullptr, 0);
        ::close(l->fd);
        l->fd = -1;
      }
    }
    if (!unix_path.empty()) {
      struct stat st {};
      if (::stat(unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(unix_path.c_str());
      unix_path.clear();
    }
  }

  void close() {
    if (closed) return;
    closed = true;
    serving = false;
    retry.cancel();
    close_listeners();
    closed_event.set();
    if (active == 0) all_gone_event.set();
  }

  void loop_closing() noexcept override {
    serving = false;
    closed = true;
    close_listeners();
    loop = nullptr;
  }
};

namespace {
int listen_on(const SocketAddress& a, const ServerOptions& o) {
  FdGuard fd(make_socket(a.family, SOCK_STREAM));
  int one = 1;
  if (a.family != AF_UNIX) {
    if (o.reuse_address) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (o.reuse_port) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (a.family == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  sockaddr_storage ss{};
  socklen_t len = to_sockaddr(a, ss);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0) throw_os_error(errno, "bind to " + a.to_string());
  if (::listen(fd.get(), o.backlog) < 0) throw_os_error(errno, "listen on " + a.to_string());
  return fd.release();
}

Server finish_server(EventLoop& loop, std::shared_ptr<ServerState> s) {
  loop.add_resource(s.get());
  if (s->options.start_serving) s->start();
  return Server(std::move(s));
}
}  // namespace

Coro<Server> create_server_impl(EventLoop& loop, ProtocolFactory factory, std::string host, int port,
                                ServerOptions options) {
  std::vector<SocketAddress> addrs = co_await resolve(loop, host, port, SOCK_STREAM, true);
  auto s = std::make_shared<ServerState>();
  s->loop = &loop;
  s->factory = options.ssl ? tls_server_factory(std::move(factory), *options.ssl, options.ssl_handshake_timeout)
                           : std::move(factory);
  s->options = options;
  for (const SocketAddress& a : addrs) {
    SocketAddress bind_to = a;
    // With port 0 and several addresses, every socket gets the port the first one got.
    if (port == 0 && !s->listeners.empty()) bind_to.port = s->listeners.front()->addr.port;
    int fd = listen_on(bind_to, options);
    auto l = std::make_unique<ServerState::Listener>();
    l->server = s.get();
    l->fd = fd;
    l->addr = local_of(fd);
    s->listeners.push_back(std::move(l));
  }
  co_return finish_server(loop, std::move(s));
}

Coro<Server> create_unix_server_impl(EventLoop& loop, ProtocolFactory factory, std::string path,
                                     ServerOptions options) {
  struct stat st {};
  if (!path.empty() && path[0] != '\0' && ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
    ::unlink(path.c_str());  // a stale socket left by an earlier server
  auto s = std::make_shared<ServerState>();
  s->loop = &loop;
  s->factory = options.ssl ? tls_server_factory(std::move(factory), *options.ssl, options.ssl_handshake_timeout)
                           : std::move(factory);
  s->options = options;
  SocketAddress a;
  a.family = AF_UNIX;
  a.path = path;
  auto l = std::make_unique<ServerState::Listener>();
  l->server = s.get();
  l->fd = listen_on(a, options);
  l->addr = a;
  s->listeners.push_back(std::move(l));
  s->unix_path = path;
  co_return finish_server(loop, std::move(s));
}

Coro<std::shared_ptr<DatagramTransport>> create_datagram_endpoint_impl(EventLoop& loop, DatagramProtocolFactory factory,
                                                                       DatagramOptions options) {
  std::optional<SocketAddress> local, remote;
  if (options.remote_addr) {
    auto rs = co_await resolve(loop, options.remote_addr->first, options.remote_addr->second, SOCK_DGRAM, false);
    if (rs.empty()) throw OSError(0, "no address found for " + options.remote_addr->first);
    remote = rs.front();
  }
  if (options.local_addr) {
    auto ls = co_await resolve(loop, options.local_addr->first, options.local_addr->second, SOCK_DGRAM, true);
    for (const auto& l : ls) {
      if (!remote || l.family == remote->family) {
        local = l;
        break;
      }
    }
    if (!local) throw OSError(0, "no usable local address " + options.local_addr->first);
  }
  if (!local && !remote) throw std::invalid_argument("create_datagram_endpoint: give local_addr, remote_addr or both");
  int family = local ? local->family : remote->family;
  FdGuard fd(make_socket(family, SOCK_DGRAM));
  int one = 1;
  if (options.reuse_port) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (options.allow_broadcast) ::setsockopt(fd.get(), SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  if (local) {
    sockaddr_storage ss{};
    socklen_t len = to_sockaddr(*local, ss);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0)
      throw_os_error(errno, "bind to " + local->to_string());
  }
  if (remote) {
    sockaddr_storage ss{};
    socklen_t len = to_sockaddr(*remote, ss);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0)
      throw_os_error(errno, "connect to " + remote->to_string());
  }
  std::unique_ptr<DatagramProtocol> p = factory();
  if (!p) throw std::logic_error("create_datagram_endpoint: the protocol factory returned null");
  auto t = std::make_shared<UdpTransport>(loop, fd.release(), std::move(p), remote.has_value());
  t->start();
  co_return std::shared_ptr<DatagramTransport>(t);
}

}  // namespace concur::asyncio::detail

namespace concur::asyncio {

// ---- Server ----------------------------------------------------------------------------------------

int Server::port() const {
  if (!s_ || s_->listeners.empty()) throw std::logic_error("Server::port(): the server has no socket");
  return s_->listeners.front()->addr.port;
}

std::vector<SocketAddress> Server::sockets() const {
  std::vector<SocketAddress> out;
  if (s_ && !s_->closed)
    for (auto& l : s_->listeners) out.push_back(l->addr);
  return out;
}

std::vector<int> Server::fds() const {
  std::vector<int> out;
  if (s_)
    for (auto& l : s_->listeners)
      if (l->fd >= 0) out.push_back(l->fd);
  return out;
}

bool Server::is_serving() const noexcept { return s_ && s_->serving; }
void Server::start_serving() {
  if (s_) s_->start();
}
void Server::close() {
  if (s_) s_->close();
}
std::size_t Server::active_connections() const noexcept { return s_ ? s_->active : 0; }

Coro<void> Server::wait_closed() {
  auto s = s_;  // keeps the state alive while waiting
  if (!s) co_return;
  co_await s->all_gone_event.wait();
}

Coro<void> Server::serve_forever() {
  auto s = s_;
  if (!s) throw std::logic_error("serve_forever on an empty Server");
  if (s->closed) throw std::logic_error("serve_forever on a closed server");
  s->start();
  try {
    co_await s->closed_event.wait();
  } catch (const CancelledError&) {
    s->close();
    throw;
  }
}

}  // namespace concur::asyncio
