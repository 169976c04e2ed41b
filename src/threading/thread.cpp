#include "concur/threading/thread.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "concur/core/error.hpp"
#include "concur/core/trace.hpp"
#include "concur/core/waiter.hpp"

namespace concur::threading {

namespace detail {
struct ThreadState {
  std::mutex m;  // guards name, daemon
  std::string name;
  bool daemon = false;
  bool dummy = false;  // not started by concur (main or foreign thread)
  std::atomic<bool> started{false};
  std::atomic<bool> alive{false};
  std::atomic<std::uint64_t> ident{0};
  std::atomic<std::uint64_t> native_id{0};
  concur::detail::unique_function target;
  core::EventCore running;   // set once the new thread runs
  core::EventCore finished;  // set once the target returned
};
}  // namespace detail

using detail::ThreadState;

namespace {

std::uint64_t self_ident() noexcept { return static_cast<std::uint64_t>(pthread_self()); }
std::uint64_t self_tid() noexcept { return static_cast<std::uint64_t>(::syscall(SYS_gettid)); }

// The registry outlives everything (leaked on purpose): daemon threads may still run while
// static destructors do.
struct Registry {
  std::mutex m;
  std::vector<std::shared_ptr<ThreadState>> alive;  // guarded by m
  std::shared_ptr<ThreadState> main;                // guarded by m
  std::atomic<std::uint64_t> counter{0};
  std::atomic<std::uint64_t> dummy_counter{0};
  std::mutex hook_m;
  std::function<void(const ExceptHookArgs&)> hook;  // guarded by hook_m
  std::once_flag atexit_once;
};
Registry& registry() {
  static auto* r = new Registry;
  return *r;
}

void add_alive(const std::shared_ptr<ThreadState>& s) {
  auto& r = registry();
  std::lock_guard g(r.m);
  r.alive.push_back(s);
}
void remove_alive(const ThreadState* s) {
  auto& r = registry();
  std::lock_guard g(r.m);
  std::erase_if(r.alive, [&](const auto& p) { return p.get() == s; });
}

std::shared_ptr<ThreadState> make_main_locked(Registry& r) {
  if (!r.main) {
    auto s = std::make_shared<ThreadState>();
    s->name = "MainThread";
    s->dummy = true;
    s->started = true;
    s->alive = true;
    s->native_id = static_cast<std::uint64_t>(::getpid());
    s->running.set();
    r.main = s;
    r.alive.push_back(s);
  }
  return r.main;
}

// A foreign thread's handle unregisters itself when that thread exits.
struct ForeignGuard {
  std::shared_ptr<ThreadState> s;
  ~ForeignGuard() {
    if (s && s != registry().main) {
      s->alive = false;
      remove_alive(s.get());
      s->finished.set();
    }
  }
};

thread_local std::shared_ptr<ThreadState> tls_self;

std::shared_ptr<ThreadState> self_state() {
  if (tls_self) return tls_self;
  auto& r = registry();
  if (self_tid() == static_cast<std::uint64_t>(::getpid())) {
    std::lock_guard g(r.m);
    tls_self = make_main_locked(r);
    tls_self->ident = self_ident();
    return tls_self;
  }
  auto s = std::make_shared<ThreadState>();
  s->name = "Dummy-" + std::to_string(r.dummy_counter.fetch_add(1) + 1);
  s->dummy = true;
  s->daemon = true;
  s->started = true;
  s->alive = true;
  s->ident = self_ident();
  s->native_id = self_tid();
  s->running.set();
  add_alive(s);
  thread_local ForeignGuard guard;
  guard.s = s;
  tls_self = s;
  return s;
}

void join_non_daemon_at_exit() {
  // Python's threading._shutdown: wait for every non-daemon thread, including ones started
  // meanwhile.
  for (;;) {
    std::vector<std::shared_ptr<ThreadState>> pending;
    {
      auto& r = registry();
      std::lock_guard g(r.m);
      for (auto& s : r.alive) {
        std::lock_guard sg(s->m);
        if (!s->daemon && !s->dummy && s.get() != tls_self.get()) pending.push_back(s);
      }
    }
    if (pending.empty()) return;
    for (auto& s : pending) core::wait_blocking(s->finished, std::nullopt);
  }
}

void run_hook(const std::shared_ptr<ThreadState>& s, std::exception_ptr e) noexcept {
  std::function<void(const ExceptHookArgs&)> hook;
  {
    std::lock_guard g(registry().hook_m);
    hook = registry().hook;
  }
  std::string name;
  {
    std::lock_guard g(s->m);
    name = s->name;
  }
  if (hook) {
    try {
      hook(ExceptHookArgs{e, current_thread()});
      return;
    } catch (...) {
      report_unraisable("Exception in threading.excepthook", std::current_exception());
    }
  }
  report_unraisable("Exception in thread " + name, e);
}

void thread_main(std::shared_ptr<ThreadState> s) {
  tls_self = s;
  s->ident = self_ident();
  s->native_id = self_tid();
  {
    std::lock_guard g(s->m);
    std::string short_name = s->name.substr(0, 15);
    pthread_setname_np(pthread_self(), short_name.c_str());
  }
  s->running.set();
  try {
    if (trace::enabled()) {
      {
        std::lock_guard g(s->m);
        trace::name_lane(static_cast<std::uint32_t>(::getpid()), trace::current_tid(), s->name);
      }
      trace::Span span("threading.Thread", 0, 0);
      s->target();
    } else {
      s->target();
    }
  } catch (...) {
    run_hook(s, std::current_exception());
  }
  try {
    s->target = {};  // destroy the target and its arguments on this thread, as Python does
  } catch (...) {
    report_unraisable("Exception destroying the target of a thread", std::current_exception());
  }
  s->alive = false;
  remove_alive(s.get());
  s->finished.set();
}

}  // namespace

Thread::Thread(ThreadOptions options, concur::detail::unique_function target)
    : state_(std::make_shared<ThreadState>()) {
  auto& r = registry();
  state_->name = options.name.empty() ? "Thread-" + std::to_string(r.counter.fetch_add(1) + 1) : options.name;
  state_->daemon = options.daemon ? *options.daemon : current_thread().daemon();
  state_->target = std::move(target);
}

void Thread::start() {
  if (!state_) throw std::logic_error("Thread::start on an empty Thread handle");
  if (state_->started.exchange(true)) throw std::logic_error("threads can only be started once");
  std::call_once(registry().atexit_once, [] { std::atexit(join_non_daemon_at_exit); });
  state_->alive = true;
  add_alive(state_);
  try {
    std::thread(thread_main, state_).detach();
  } catch (...) {
    state_->alive = false;
    remove_alive(state_.get());
    state_->finished.set();
    throw;
  }
  core::wait_blocking(state_->running, std::nullopt);
}

void Thread::join() {
  if (!state_ || !state_->started) throw std::logic_error("cannot join thread before it is started");
  if (tls_self == state_) throw std::logic_error("cannot join current thread");
  core::wait_blocking(state_->finished, std::nullopt);
}

bool Thread::join_until(core::Clock::time_point deadline) {
  if (!state_ || !state_->started) throw std::logic_error("cannot join thread before it is started");
  if (tls_self == state_) throw std::logic_error("cannot join current thread");
  return core::wait_blocking(state_->finished, deadline);
}

bool Thread::is_alive() const noexcept { return state_ && state_->alive.load(); }

std::string Thread::name() const {
  if (!state_) return {};
  std::lock_guard g(state_->m);
  return state_->name;
}

void Thread::set_name(std::string name) {
  if (!state_) throw std::logic_error("Thread::set_name on an empty Thread handle");
  std::lock_guard g(state_->m);
  state_->name = std::move(name);
}

bool Thread::daemon() const noexcept {
  if (!state_) return false;
  std::lock_guard g(state_->m);
  return state_->daemon;
}

void Thread::set_daemon(bool daemon) {
  if (!state_) throw std::logic_error("Thread::set_daemon on an empty Thread handle");
  if (state_->started) throw std::logic_error("cannot set daemon status of active thread");
  std::lock_guard g(state_->m);
  state_->daemon = daemon;
}

std::uint64_t Thread::ident() const noexcept { return state_ ? state_->ident.load() : 0; }
std::uint64_t Thread::native_id() const noexcept { return state_ ? state_->native_id.load() : 0; }

Thread current_thread() { return Thread(self_state()); }

Thread main_thread() {
  auto& r = registry();
  std::lock_guard g(r.m);
  return Thread(make_main_locked(r));
}

std::vector<Thread> enumerate() {
  (void)main_thread();
  (void)self_state();
  auto& r = registry();
  std::lock_guard g(r.m);
  std::vector<Thread> out;
  out.reserve(r.alive.size());
  for (auto& s : r.alive) out.push_back(Thread(s));
  return out;
}

std::size_t active_count() { return enumerate().size(); }

std::uint64_t get_ident() noexcept { return self_ident(); }
std::uint64_t get_native_id() noexcept { return self_tid(); }

void set_excepthook(std::function<void(const ExceptHookArgs&)> hook) {
  std::lock_guard g(registry().hook_m);
  registry().hook = std::move(hook);
}

namespace {
// Register the main thread while static initialisation runs on it.
const bool g_main_registered = [] {
  (void)self_state();
  return true;
}();
}  // namespace

}  // namespace concur::threading
