// asyncio DNS on c-ares: one channel per loop, its sockets watched by the loop
// (add_reader/add_writer from the socket-state callback), its retries driven by a loop timer
// set from ares_timeout().
//
// Lifetime of a query: the awaiter (in the awaiting coroutine's frame) starts it with a heap
// `Query` as the c-ares callback argument. The callback always runs exactly once (answer,
// error, ares_cancel or ares_destroy) and frees the Query. While the awaiter waits,
// Query::waiter points back at it; an awaiter that goes away first (cancelled, or its frame
// destroyed) clears that pointer, so a late callback finds nothing to wake.
#include "concur/asyncio/dns.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "net.hpp"

#include "concur/asyncio/task.hpp"

namespace concur::asyncio {

namespace detail {
namespace {

// ---- errors ---------------------------------------------------------------------------------

int eai_of(int ares_status) noexcept {
  switch (ares_status) {
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
    case ARES_EBADNAME:
      return EAI_NONAME;
    case ARES_ENODATA:
#ifdef EAI_NODATA
      return EAI_NODATA;
#else
      return EAI_NONAME;
#endif
    case ARES_ETIMEOUT:
    case ARES_ESERVFAIL:
    case ARES_ECONNREFUSED:
      return EAI_AGAIN;
    case ARES_ENOMEM:
      return EAI_MEMORY;
    case ARES_ESERVICE:
      return EAI_SERVICE;
    case ARES_EBADFLAGS:
    case ARES_EBADHINTS:
      return EAI_BADFLAGS;
    case ARES_EBADFAMILY:
    case ARES_ENOTIMP:
      return EAI_FAMILY;
#ifdef EAI_CANCELED
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      return EAI_CANCELED;
#endif
    default:
      return EAI_FAIL;
  }
}

std::exception_ptr gai_error(int ares_status, const std::string& what) {
  return std::make_exception_ptr(GaiError(eai_of(ares_status), what + ": " + ::ares_strerror(ares_status)));
}

void library_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    int rc = ::ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) throw GaiError(EAI_FAIL, std::string("c-ares initialisation: ") + ::ares_strerror(rc));
  });
}

class Resolver;
class QueryAwaiter;

/// The c-ares callback argument of one query; freed by its callback.
struct Query {
  Resolver* resolver;
  QueryAwaiter* waiter;  // null once the awaiter has gone (cancelled or destroyed)
};

// ---- the per-loop resolver ------------------------------------------------------------------

class Resolver final : public LoopResource {
 public:
  ~Resolver() override = default;  // only through loop_closing() once registered
  /// The loop's resolver, made on first use. std::logic_error once the loop is closed.
  static Resolver& of(EventLoop& loop) {
    std::lock_guard g(registry_mutex());
    auto& reg = registry();
    auto it = reg.find(&loop);
    if (it != reg.end()) return *it->second;
    if (loop.is_closed()) throw std::logic_error("the event loop is closed");
    std::unique_ptr<Resolver> r(new Resolver(loop));
    reg.emplace(&loop, r.get());
    loop.add_resource(r.get());  // from now on the loop's close() deletes it (loop_closing)
    return *r.release();
  }
  static Resolver* find(const EventLoop& loop) noexcept {
    std::lock_guard g(registry_mutex());
    auto& reg = registry();
    auto it = reg.find(&loop);
    return it == reg.end() ? nullptr : it->second;
  }

  [[nodiscard]] EventLoop& loop() const noexcept { return loop_; }
  [[nodiscard]] std::size_t in_flight() const noexcept { return outstanding_; }

  /// The channel, made on first use (with the options in force then).
  ares_channel channel() {
    if (!ch_) open_channel();
    return ch_;
  }

  void configure(ResolverOptions o) {
    if (outstanding_ > 0) throw std::logic_error("set_resolver_options: DNS queries are still pending on this loop");
    close_channel();
    options_ = std::move(o);
  }

  /// A query was handed to c-ares.
  void started() noexcept {
    ++outstanding_;
    ++awaited_;
  }
  /// Its awaiter gave up on it.
  void abandoned() noexcept {
    --awaited_;
    maybe_stop_abandoned();
  }
  /// Its callback ran (`awaited`: an awaiter still wanted the answer).
  void finished(bool awaited) noexcept {
    --outstanding_;
    if (awaited) --awaited_;
    maybe_stop_abandoned();
  }

  /// After every call into c-ares: the timer follows ares_timeout().
  void rearm() noexcept {
    if (timer_.scheduled()) loop_.remove_timer(&timer_);
    if (!ch_) return;
    timeval tv{};
    timeval* t = ::ares_timeout(ch_, nullptr, &tv);
    if (!t) return;
    std::int64_t ns =
        static_cast<std::int64_t>(t->tv_sec) * 1'000'000'000 + static_cast<std::int64_t>(t->tv_usec) * 1000;
    ns = std::max<std::int64_t>(ns, 1'000'000);  // never a busy loop on a due retry
    timer_.when_ns = loop_.now_ns() + ns;
    try {
      loop_.add_timer(&timer_);
    } catch (...) {
      report_unraisable("asyncio DNS: arming the retry timer", std::current_exception());
    }
  }

  void loop_closing() noexcept override {
    // Every awaiting task is gone by now (the loop destroys pending tasks first): the
    // callbacks ares_destroy runs (ARES_EDESTRUCTION) only free their queries.
    closing_ = true;
    close_channel();
    {
      std::lock_guard g(registry_mutex());
      registry().erase(&loop_);
    }
    delete this;
  }

 private:
  explicit Resolver(EventLoop& loop) : loop_(loop) { timer_.self = this; }

  static std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
  }
  static std::unordered_map<const EventLoop*, Resolver*>& registry() {
    static std::unordered_map<const EventLoop*, Resolver*> r;
    return r;
  }

  void open_channel() {
    library_init();
    ares_options o{};
    int mask = ARES_OPT_SOCK_STATE_CB;
    o.sock_state_cb = &Resolver::socket_state;
    o.sock_state_cb_data = this;
    if (options_.timeout.count() > 0) {
      mask |= ARES_OPT_TIMEOUTMS;
      o.timeout = static_cast<int>(options_.timeout.count());
    }
    if (options_.tries > 0) {
      mask |= ARES_OPT_TRIES;
      o.tries = options_.tries;
    }
    if (!options_.lookups.empty()) {
      mask |= ARES_OPT_LOOKUPS;
      o.lookups = options_.lookups.data();
    }
    ares_channel ch = nullptr;
    int rc = ::ares_init_options(&ch, &o, mask);
    if (rc != ARES_SUCCESS) {
      if (ch) ::ares_destroy(ch);
      throw GaiError(eai_of(rc), std::string("c-ares channel: ") + ::ares_strerror(rc));
    }
    std::string servers = options_.servers;
    if (servers.empty()) {
      if (const char* env = std::getenv("CONCUR_DNS_SERVERS")) servers = env;
    }
    if (!servers.empty()) {
      rc = ::ares_set_servers_ports_csv(ch, servers.c_str());
      if (rc != ARES_SUCCESS) {
        ::ares_destroy(ch);
        throw std::invalid_argument("invalid DNS server list \"" + servers + "\": " + ::ares_strerror(rc));
      }
    }
    ch_ = ch;
  }

  void close_channel() noexcept {
    if (!ch_) return;
    ares_channel ch = ch_;
    ::ares_destroy(ch);  // runs the pending callbacks and closes the sockets (socket_state)
    ch_ = nullptr;
    if (timer_.scheduled()) loop_.remove_timer(&timer_);
    socks_.clear();
  }

  /// Nobody awaits the queries still in c-ares: stop them (on the next iteration, outside any
  /// c-ares callback; ares_cancel is not re-entrant).
  void maybe_stop_abandoned() noexcept {
    if (awaited_ > 0 || outstanding_ == 0 || stop_scheduled_ || closing_ || loop_.is_closed()) return;
    try {
      loop_.call_soon([this] {
        stop_scheduled_ = false;
        if (ch_ && awaited_ == 0 && outstanding_ > 0) {
          ::ares_cancel(ch_);
          rearm();
        }
      });
      stop_scheduled_ = true;
    } catch (...) {
      // Out of memory: the abandoned queries end by their own timeout instead.
    }
  }

  static void socket_state(void* data, ares_socket_t fd, int readable, int writable) noexcept {
    static_cast<Resolver*>(data)->on_socket_state(fd, readable != 0, writable != 0);
  }

  void on_socket_state(int fd, bool readable, bool writable) noexcept {
    unsigned want = (readable ? io_readable : 0u) | (writable ? io_writable : 0u);
    auto it = socks_.find(fd);
    unsigned have = it == socks_.end() ? 0u : it->second;
    try {
      if ((want & io_readable) && !(have & io_readable)) {
        loop_.add_reader(fd, [this, fd] { process(fd, ARES_SOCKET_BAD); });
      } else if (!(want & io_readable) && (have & io_readable)) {
        loop_.remove_reader(fd);
      }
      if ((want & io_writable) && !(have & io_writable)) {
        loop_.add_writer(fd, [this, fd] { process(ARES_SOCKET_BAD, fd); });
      } else if (!(want & io_writable) && (have & io_writable)) {
        loop_.remove_writer(fd);
      }
      if (want == 0) {
        if (it != socks_.end()) socks_.erase(it);
      } else {
        socks_[fd] = want;
      }
    } catch (...) {
      // The socket cannot be watched (out of memory): its queries end by timeout.
      report_unraisable("asyncio DNS: watching a resolver socket", std::current_exception());
    }
  }

  void process(ares_socket_t read_fd, ares_socket_t write_fd) noexcept {
    if (!ch_) return;
    ::ares_process_fd(ch_, read_fd, write_fd);
    rearm();
  }

  struct RetryTimer final : TimerNode {
    Resolver* self = nullptr;
    void fire() noexcept override { self->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD); }
  };

  EventLoop& loop_;
  ResolverOptions options_;
  ares_channel ch_ = nullptr;
  RetryTimer timer_;
  std::unordered_map<int, unsigned> socks_;  // fd -> io_readable|io_writable being watched
  std::size_t outstanding_ = 0;              // queries in c-ares (their callback has not run yet)
  std::size_t awaited_ = 0;                  // of those, the ones an awaiter still waits for
  bool stop_scheduled_ = false;
  bool closing_ = false;
};

// ---- the awaiters ---------------------------------------------------------------------------

/// One lookup awaited by a task: starts the query when the task suspends, resumes it from the
/// query's callback. Cancel safety: cancelling detaches it from the query (see the file comment).
class QueryAwaiter : public Suspension {
 public:
  explicit QueryAwaiter(Resolver& r) noexcept : r_(&r) {}
  QueryAwaiter(const QueryAwaiter&) = delete;
  QueryAwaiter& operator=(const QueryAwaiter&) = delete;
  ~QueryAwaiter() override { detach(); }

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    task_ = current_task_base();
    if (!task_) throw std::logic_error("a DNS lookup awaited outside of an asyncio task");
    if (&task_->loop() != &r_->loop()) throw std::logic_error("a DNS lookup awaited on another loop than its own");
    if (task_->cancel_before_suspend()) return false;
    ares_channel ch = r_->channel();
    q_ = new Query{r_, this};
    r_->started();
    starting_ = true;
    start(ch, q_);  // the callback may run in here (hosts file, numeric, errors)
    starting_ = false;
    r_->rearm();
    if (done_) return false;
    task_->suspended_at(h, this);
    return true;
  }
  CancelResult cancel() noexcept override {
    if (done_) return CancelResult::too_late;
    detach();
    return CancelResult::detached;
  }

  /// From the query's callback: the outcome is stored; wake the task.
  void completed(bool wake) noexcept {
    done_ = true;
    q_ = nullptr;
    if (wake && !starting_) task_->loop().schedule(task_);
  }

 protected:
  virtual void start(ares_channel ch, Query* q) = 0;
  void resume_checks() {
    if (task_) task_->check_cancelled();
    if (error_) std::rethrow_exception(error_);
  }
  std::exception_ptr error_;

 private:
  void detach() noexcept {
    if (!q_) return;
    q_->waiter = nullptr;
    q_ = nullptr;
    r_->abandoned();
  }
  Resolver* r_;
  TaskBase* task_ = nullptr;
  Query* q_ = nullptr;
  bool starting_ = false;
  bool done_ = false;
};

int ares_ai_flags(int flags) noexcept {
  int f = 0;
  if (flags & AI_CANONNAME) f |= ARES_AI_CANONNAME;
  if (flags & AI_NUMERICHOST) f |= ARES_AI_NUMERICHOST;
  if (flags & AI_PASSIVE) f |= ARES_AI_PASSIVE;
  if (flags & AI_NUMERICSERV) f |= ARES_AI_NUMERICSERV;
  if (flags & AI_V4MAPPED) f |= ARES_AI_V4MAPPED;
  if (flags & AI_ALL) f |= ARES_AI_ALL;
  if (flags & AI_ADDRCONFIG) f |= ARES_AI_ADDRCONFIG;
  return f;
}

int ares_ni_flags(int flags) noexcept {
  int f = ARES_NI_LOOKUPHOST | ARES_NI_LOOKUPSERVICE;
  if (flags & NI_NUMERICHOST) f |= ARES_NI_NUMERICHOST;
  if (flags & NI_NUMERICSERV) f |= ARES_NI_NUMERICSERV;
  if (flags & NI_NOFQDN) f |= ARES_NI_NOFQDN;
  if (flags & NI_NAMEREQD) f |= ARES_NI_NAMEREQD;
  if (flags & NI_DGRAM) f |= ARES_NI_DGRAM;
  return f;
}

int default_protocol(int type) noexcept {
  if (type == SOCK_STREAM) return IPPROTO_TCP;
  if (type == SOCK_DGRAM) return IPPROTO_UDP;
  return 0;
}

/// Python's result rows for one address: one per socket type asked for (all three for 0).
void append_rows(std::vector<AddrInfo>& out, const SocketAddress& a, int type, int protocol) {
  if (type == 0 && protocol == 0) {
    out.push_back(AddrInfo{a.family, SOCK_STREAM, IPPROTO_TCP, {}, a});
    out.push_back(AddrInfo{a.family, SOCK_DGRAM, IPPROTO_UDP, {}, a});
    out.push_back(AddrInfo{a.family, SOCK_RAW, 0, {}, a});
  } else {
    out.push_back(AddrInfo{a.family, type, protocol ? protocol : default_protocol(type), {}, a});
  }
}

class AddrInfoAwaiter final : public QueryAwaiter {
 public:
  AddrInfoAwaiter(Resolver& r, const std::string& host, int port, const GetaddrinfoOptions& o)
      : QueryAwaiter(r), host_(host), port_(port), options_(o) {}
  std::vector<AddrInfo> await_resume() {
    resume_checks();
    return std::move(result_);
  }

 private:
  void start(ares_channel ch, Query* q) override {
    ares_addrinfo_hints hints{};
    hints.ai_flags = ares_ai_flags(options_.flags);
    hints.ai_family = options_.family;
    hints.ai_socktype = options_.type;
    hints.ai_protocol = options_.protocol;
    // No service: the port is set below (c-ares rejects port 0 as a numeric service).
    ::ares_getaddrinfo(ch, host_.c_str(), nullptr, &hints, &AddrInfoAwaiter::on_done, q);
  }

  static void on_done(void* arg, int status, int /*timeouts*/, ares_addrinfo* res) noexcept {
    auto* q = static_cast<Query*>(arg);
    auto* self = static_cast<AddrInfoAwaiter*>(q->waiter);
    q->resolver->finished(self != nullptr);
    if (self) self->deliver(status, res);
    if (res) ::ares_freeaddrinfo(res);
    delete q;
  }

  void deliver(int status, const ares_addrinfo* res) noexcept {
    try {
      if (status == ARES_SUCCESS && res) {
        for (const ares_addrinfo_node* n = res->nodes; n; n = n->ai_next) {
          if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
          SocketAddress a = from_sockaddr(n->ai_addr, static_cast<socklen_t>(n->ai_addrlen));
          a.port = port_;
          append_rows(result_, a, n->ai_socktype, n->ai_protocol);
        }
        if (result_.empty()) {
          status = ARES_ENODATA;
        } else if (options_.flags & AI_CANONNAME) {
          const char* canon = res->name;
          for (const ares_addrinfo_cname* c = res->cnames; c; c = c->next)
            if (c->name) canon = c->name;
          result_.front().canonname = canon ? canon : host_;
        }
      }
      if (status != ARES_SUCCESS) error_ = gai_error(status, "getaddrinfo(" + host_ + ")");
    } catch (...) {
      error_ = std::current_exception();
    }
    completed(status != ARES_EDESTRUCTION);
  }

  std::string host_;
  int port_;
  GetaddrinfoOptions options_;
  std::vector<AddrInfo> result_;
};

class NameInfoAwaiter final : public QueryAwaiter {
 public:
  NameInfoAwaiter(Resolver& r, const SocketAddress& a, int flags, const sockaddr_storage& ss, socklen_t len)
      : QueryAwaiter(r), address_(a), flags_(flags), ss_(ss), len_(len) {}
  std::pair<std::string, std::string> await_resume() {
    resume_checks();
    return std::move(result_);
  }

 private:
  void start(ares_channel ch, Query* q) override {
    ::ares_getnameinfo(ch, reinterpret_cast<const sockaddr*>(&ss_), static_cast<ares_socklen_t>(len_),
                       ares_ni_flags(flags_), &NameInfoAwaiter::on_done, q);
  }

  static void on_done(void* arg, int status, int /*timeouts*/, char* node, char* service) noexcept {
    auto* q = static_cast<Query*>(arg);
    auto* self = static_cast<NameInfoAwaiter*>(q->waiter);
    q->resolver->finished(self != nullptr);
    if (self) self->deliver(status, node, service);
    delete q;
  }

  void deliver(int status, const char* node, const char* service) noexcept {
    try {
      if (status == ARES_SUCCESS) {
        result_.first = node ? node : address_.host;
        result_.second = service ? service : std::to_string(address_.port);
      } else {
        error_ = gai_error(status, "getnameinfo(" + address_.to_string() + ")");
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    completed(status != ARES_EDESTRUCTION);
  }

  SocketAddress address_;
  int flags_;
  sockaddr_storage ss_;
  socklen_t len_;
  std::pair<std::string, std::string> result_;
};

/// Hosts that need no query: numeric ones, and the empty host (loopback, or with AI_PASSIVE
/// every interface). nullopt: ask the resolver.
std::optional<std::vector<AddrInfo>> without_lookup(const std::string& host, int port, const GetaddrinfoOptions& o) {
  std::vector<SocketAddress> addrs;
  if (host.empty()) {
    bool passive = (o.flags & AI_PASSIVE) != 0;
    addrs.push_back(SocketAddress{AF_INET, passive ? "0.0.0.0" : "127.0.0.1", port, {}});
    addrs.push_back(SocketAddress{AF_INET6, passive ? "::" : "::1", port, {}});
  } else if (auto a = parse_numeric(host, port)) {
    addrs.push_back(*a);
  } else if (o.flags & AI_NUMERICHOST) {
    throw GaiError(EAI_NONAME, "getaddrinfo(" + host + "): " + ::gai_strerror(EAI_NONAME));
  } else {
    return std::nullopt;
  }
  std::vector<AddrInfo> out;
  for (const auto& a : addrs) {
    if (o.family != AF_UNSPEC && a.family != o.family) continue;
    append_rows(out, a, o.type, o.protocol);
  }
  if (out.empty()) {
#ifdef EAI_ADDRFAMILY
    const int code = EAI_ADDRFAMILY;
#else
    const int code = EAI_FAMILY;
#endif
    throw GaiError(code, "getaddrinfo(" + host + "): " + ::gai_strerror(code));
  }
  if (o.flags & AI_CANONNAME) out.front().canonname = host;
  return out;
}

void check_options(const GetaddrinfoOptions& o, int port) {
  if (port < 0 || port > 65535)
    throw std::invalid_argument("getaddrinfo: port must be 0-65535, not " + std::to_string(port));
  if (o.family != AF_UNSPEC && o.family != AF_INET && o.family != AF_INET6)
    throw GaiError(EAI_FAMILY, "getaddrinfo: " + std::string(::gai_strerror(EAI_FAMILY)));
}

Coro<std::vector<AddrInfo>> lookup(EventLoop& loop, std::string host, int port, GetaddrinfoOptions options) {
  check_options(options, port);
  if (auto rows = without_lookup(host, port, options)) co_return std::move(*rows);
  Resolver& resolver = Resolver::of(loop);  // a statement of its own: see reverse_lookup
  AddrInfoAwaiter query(resolver, host, port, options);
  co_return co_await query;
}

Coro<std::pair<std::string, std::string>> reverse_lookup(EventLoop& loop, SocketAddress address, int flags) {
  if (address.family != AF_INET && address.family != AF_INET6)
    throw GaiError(EAI_FAMILY, "getnameinfo(" + address.to_string() + "): " + ::gai_strerror(EAI_FAMILY));
  // Converted first: a coroutine local whose constructor throws is destroyed twice (GCC 12).
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(address, ss);  // std::invalid_argument unless numeric
  Resolver& resolver = Resolver::of(loop);
  NameInfoAwaiter query(resolver, address, flags, ss, len);
  co_return co_await query;
}

}  // namespace

std::size_t dns_queries_in_flight(const EventLoop& loop) noexcept {
  Resolver* r = Resolver::find(loop);
  return r ? r->in_flight() : 0;
}

}  // namespace detail

void set_resolver_options(EventLoop& loop, ResolverOptions options) {
  detail::Resolver::of(loop).configure(std::move(options));
}

Coro<std::vector<AddrInfo>> EventLoop::getaddrinfo(std::string host, int port) {
  return detail::lookup(*this, std::move(host), port, GetaddrinfoOptions{});
}

Coro<std::vector<AddrInfo>> EventLoop::getaddrinfo(std::string host, int port, GetaddrinfoOptions options) {
  return detail::lookup(*this, std::move(host), port, options);
}

Coro<std::pair<std::string, std::string>> EventLoop::getnameinfo(SocketAddress address, int flags) {
  return detail::reverse_lookup(*this, std::move(address), flags);
}

Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, int port, GetaddrinfoOptions options) {
  return get_running_loop().getaddrinfo(std::move(host), port, options);
}

Coro<std::pair<std::string, std::string>> getnameinfo(SocketAddress address, int flags) {
  return get_running_loop().getnameinfo(std::move(address), flags);
}

}  // namespace concur::asyncio
