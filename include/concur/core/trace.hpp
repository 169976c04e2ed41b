#pragma once
/// \file Trace events: task begin/end per worker, recorded by every executor, loop and pool.
///
/// Off by default. When off, `trace::enabled()` is one relaxed load and nothing else happens.
/// When on (`trace::enable()`, or the CONCUR_TRACE environment variable naming an output file),
/// each thread appends fixed-size records to its own buffer without locking; `trace::collect()`
/// gathers them. Later modules export them as Chrome trace-event JSON and SVG timelines.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace concur::trace {

/// One finished task, as a bar on a timeline.
struct Event {
  std::uint64_t begin_ns = 0;  ///< steady-clock nanoseconds since the trace epoch
  std::uint64_t end_ns = 0;
  std::uint64_t task_id = 0;   ///< unique per task within the process
  std::uint32_t pid = 0;       ///< process id (lanes of different processes)
  std::uint32_t tid = 0;       ///< OS thread id (native_id), the lane
  const char* source = "";     ///< static string: the executor/loop kind, e.g. "ThreadPoolExecutor"
  std::uint32_t source_id = 0; ///< which executor instance of that kind
  std::uint32_t worker = 0;    ///< worker index within the executor
};

namespace detail {
extern std::atomic<bool> g_enabled;
}

/// True while recording. Thread-safe, near-free.
inline bool enabled() noexcept { return detail::g_enabled.load(std::memory_order_relaxed); }
void enable() noexcept;
void disable() noexcept;
/// Nanoseconds since the trace epoch (process start), steady clock.
std::uint64_t now_ns() noexcept;
/// A fresh task id.
std::uint64_t next_task_id() noexcept;
/// Appends one record to the calling thread's buffer (only call when enabled()).
void record(const Event& e) noexcept;
/// Every record of every thread so far, ordered by begin time. Thread-safe.
std::vector<Event> collect();
/// Drops every record.
void clear();

/// RAII: records one task from construction to destruction when tracing is on.
class Span {
 public:
  Span(const char* source, std::uint32_t source_id, std::uint32_t worker) noexcept {
    if (enabled()) start(source, source_id, worker);
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span() {
    if (active_) finish();
  }

 private:
  void start(const char* source, std::uint32_t source_id, std::uint32_t worker) noexcept;
  void finish() noexcept;
  Event ev_{};
  bool active_ = false;
};

}  // namespace concur::trace
