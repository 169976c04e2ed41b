// EventLoop::add_signal_handler / remove_signal_handler: a process-wide, async-signal-safe
// sigaction handler writes the signal number to the self-pipe of every loop that handles it;
// each loop reads its pipe with add_reader and runs the callbacks on its own thread.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include "concur/asyncio/loop.hpp"
#include "concur/core/error.hpp"

namespace concur::asyncio {

namespace detail {

namespace {

constexpr int kMaxLoops = 64;
constexpr int kWords = (NSIG + 63) / 64;

/// One loop's registration, read by the signal handler: lock-free atomics only.
struct Slot {
  std::atomic<int> fd{-1};  // the self-pipe's write end
  std::atomic<std::uint64_t> mask[kWords] = {};
  bool in_use = false;  // g_mu
};
Slot g_slots[kMaxLoops];
/// Signal handlers running now: a loop waits for none before closing its pipe, so that a
/// handler never writes to a descriptor number that was closed (and possibly reused).
std::atomic<int> g_in_handler{0};

std::mutex g_mu;  // guards what follows and Slot::in_use
struct Installed {
  int loops = 0;  // loops handling the signal
  struct sigaction old {};
};
Installed g_installed[NSIG];

static_assert(std::atomic<int>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

void on_signal(int sig) {
  const int saved_errno = errno;
  g_in_handler.fetch_add(1);
  const std::uint64_t bit = std::uint64_t{1} << (sig % 64);
  for (Slot& s : g_slots) {
    int fd = s.fd.load();
    if (fd < 0 || !(s.mask[sig / 64].load(std::memory_order_relaxed) & bit)) continue;
    const auto b = static_cast<unsigned char>(sig);
    ssize_t r = ::write(fd, &b, 1);  // EAGAIN (pipe full): dropped, as Python's wakeup fd
    (void)r;
  }
  g_in_handler.fetch_sub(1);
  errno = saved_errno;
}

void check_signal(int sig) {
  if (sig < 1 || sig >= NSIG) throw std::invalid_argument("invalid signal number " + std::to_string(sig));
  if (sig == SIGKILL || sig == SIGSTOP)
    throw std::invalid_argument("signal " + std::to_string(sig) + " (SIGKILL/SIGSTOP) cannot be caught");
}

}  // namespace

/// A loop's signal handlers and self-pipe; exists while the loop handles at least one signal.
struct SignalHandlers final : LoopResource {
  struct Entry {
    explicit Entry(concur::detail::unique_function f) : fn(std::move(f)) {}
    concur::detail::unique_function fn;
    bool removed = false;
  };

  SignalHandlers(EventLoop& l, SignalHandlers** o) : loop(&l), owner(o) {
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) throw_os_error(errno, "add_signal_handler: pipe");
    rfd = p[0];
    wfd = p[1];
    {
      std::lock_guard g(g_mu);
      for (int i = 0; i < kMaxLoops; ++i) {
        if (!g_slots[i].in_use) {
          slot = i;
          break;
        }
      }
      if (slot < 0) {
        ::close(rfd);
        ::close(wfd);
        throw std::logic_error("add_signal_handler: too many event loops handle signals");
      }
      Slot& s = g_slots[slot];
      s.in_use = true;
      for (auto& w : s.mask) w.store(0);
      s.fd.store(wfd);
    }
    try {
      loop->add_reader(rfd, [this] { drain(); });
    } catch (...) {
      free_slot();
      throw;
    }
    loop->add_resource(this);
  }
  SignalHandlers(const SignalHandlers&) = delete;
  SignalHandlers& operator=(const SignalHandlers&) = delete;

  /// Adds or replaces the handler of `sig`.
  void add(int sig, concur::detail::unique_function fn) {
    auto it = handlers.find(sig);
    if (it == handlers.end()) {
      std::lock_guard g(g_mu);
      Slot& s = g_slots[slot];
      const std::uint64_t bit = std::uint64_t{1} << (sig % 64);
      s.mask[sig / 64].fetch_or(bit);  // before the handler is installed: nothing is missed
      Installed& in = g_installed[sig];
      if (in.loops == 0) {
        struct sigaction sa {};
        sa.sa_handler = &on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART | SA_ONSTACK;  // as Python: system calls are not interrupted
        struct sigaction old {};
        if (::sigaction(sig, &sa, &old) < 0) {
          int err = errno;
          s.mask[sig / 64].fetch_and(~bit);
          throw std::invalid_argument("add_signal_handler: signal " + std::to_string(sig) +
                                      " cannot be handled: " + std::system_category().message(err));
        }
        in.old = old;
      }
      ++in.loops;
      handlers.emplace(sig, std::make_shared<Entry>(std::move(fn)));
    } else {
      it->second->removed = true;
      it->second = std::make_shared<Entry>(std::move(fn));
    }
  }

  /// Removes the handler of `sig`; false if there is none.
  bool remove(int sig) noexcept {
    auto it = handlers.find(sig);
    if (it == handlers.end()) return false;
    it->second->removed = true;
    handlers.erase(it);
    std::lock_guard g(g_mu);
    g_slots[slot].mask[sig / 64].fetch_and(~(std::uint64_t{1} << (sig % 64)));
    Installed& in = g_installed[sig];
    if (--in.loops == 0) ::sigaction(sig, &in.old, nullptr);
    return true;
  }

  /// Reads the self-pipe and schedules one callback per delivery.
  void drain() {
    unsigned char buf[256];
    for (;;) {
      ssize_t n = ::read(rfd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      for (ssize_t i = 0; i < n; ++i) {
        auto it = handlers.find(buf[i]);
        if (it == handlers.end()) continue;
        loop->call_soon([e = it->second] {
          if (!e->removed) e->fn();
        });
      }
    }
  }

  void free_slot() noexcept {
    {
      std::lock_guard g(g_mu);
      Slot& s = g_slots[slot];
      s.fd.store(-1);
      for (auto& w : s.mask) w.store(0);
      s.in_use = false;
    }
    while (g_in_handler.load() != 0) {
    }
    ::close(rfd);
    ::close(wfd);
  }

  /// Unregisters everything and deletes this.
  void destroy() noexcept {
    while (!handlers.empty()) remove(handlers.begin()->first);
    loop->remove_reader(rfd);
    loop->remove_resource(this);
    free_slot();
    *owner = nullptr;
    delete this;
  }

  void loop_closing() noexcept override { destroy(); }

  EventLoop* loop;
  SignalHandlers** owner;  // the loop's pointer to this
  int slot = -1;
  int rfd = -1, wfd = -1;
  std::map<int, std::shared_ptr<Entry>> handlers;

 private:
  ~SignalHandlers() override = default;
};

}  // namespace detail

void EventLoop::add_signal_handler_impl(int sig, concur::detail::unique_function fn) {
  detail::check_signal(sig);
  if (closed_) throw std::logic_error("the event loop is closed");
  if (!fn) throw std::invalid_argument("add_signal_handler: empty callback");
  bool fresh = signals_ == nullptr;
  if (fresh) signals_ = new detail::SignalHandlers(*this, &signals_);
  try {
    signals_->add(sig, std::move(fn));
  } catch (...) {
    if (fresh) signals_->destroy();
    throw;
  }
}

bool EventLoop::remove_signal_handler(int sig) {
  detail::check_signal(sig);
  if (!signals_) return false;
  bool removed = signals_->remove(sig);
  if (signals_->handlers.empty()) signals_->destroy();
  return removed;
}

}  // namespace concur::asyncio
