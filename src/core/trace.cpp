#include "concur/core/trace.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>

namespace concur::trace {

namespace detail {
std::atomic<bool> g_enabled{false};
}

namespace {
const auto g_epoch = std::chrono::steady_clock::now();
std::atomic<std::uint64_t> g_next_task{1};

// Per-thread buffers are owned by a global registry (never destroyed, so threads that exit
// during static destruction can still record) and survive their thread.
struct Buffer {
  std::mutex m;  // uncontended except while collect() runs
  std::vector<Event> events;
};
struct Registry {
  std::mutex m;
  std::vector<std::shared_ptr<Buffer>> buffers;
};
Registry& registry() {
  static auto* r = new Registry;  // intentionally leaked: see above
  return *r;
}
Buffer& local_buffer() {
  thread_local std::shared_ptr<Buffer> buf = [] {
    auto b = std::make_shared<Buffer>();
    std::lock_guard g(registry().m);
    registry().buffers.push_back(b);
    return b;
  }();
  return *buf;
}

// CONCUR_TRACE=<file> switches tracing on at start-up (the file is written by later modules).
const bool g_env_init = [] {
  if (const char* p = std::getenv("CONCUR_TRACE"); p && *p) detail::g_enabled.store(true);
  return true;
}();
}  // namespace

void enable() noexcept { detail::g_enabled.store(true, std::memory_order_relaxed); }
void disable() noexcept { detail::g_enabled.store(false, std::memory_order_relaxed); }

std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - g_epoch).count());
}

std::uint64_t next_task_id() noexcept { return g_next_task.fetch_add(1, std::memory_order_relaxed); }

void record(const Event& e) noexcept {
  try {
    Buffer& b = local_buffer();
    std::lock_guard g(b.m);
    b.events.push_back(e);
  } catch (...) {
    // Out of memory while tracing: drop the record rather than disturb the program.
  }
}

std::vector<Event> collect() {
  std::vector<Event> out;
  std::lock_guard g(registry().m);
  for (auto& b : registry().buffers) {
    std::lock_guard bg(b->m);
    out.insert(out.end(), b->events.begin(), b->events.end());
  }
  std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) { return a.begin_ns < b.begin_ns; });
  return out;
}

void clear() {
  std::lock_guard g(registry().m);
  for (auto& b : registry().buffers) {
    std::lock_guard bg(b->m);
    b->events.clear();
  }
}

void Span::start(const char* source, std::uint32_t source_id, std::uint32_t worker) noexcept {
  active_ = true;
  thread_local const auto tid = static_cast<std::uint32_t>(::syscall(SYS_gettid));
  ev_.source = source;
  ev_.source_id = source_id;
  ev_.worker = worker;
  ev_.tid = tid;
  ev_.pid = static_cast<std::uint32_t>(::getpid());
  ev_.task_id = next_task_id();
  ev_.begin_ns = now_ns();
}

void Span::finish() noexcept {
  ev_.end_ns = now_ns();
  record(ev_);
}

}  // namespace concur::trace
