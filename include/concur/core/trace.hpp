#pragma once
/// \file Trace events: task begin/end per worker, recorded by every executor, loop and pool.
///
/// Off by default. When off, `trace::enabled()` is one relaxed load and nothing else happens.
/// When on (`trace::enable()`, or the CONCUR_TRACE environment variable naming an output file),
/// each thread appends fixed-size records to its own buffer (pre-faulted blocks; its own lock,
/// taken by another thread only while collect() or clear() runs); `trace::collect()` gathers
/// them and `trace::to_json()` writes them as Chrome trace-event JSON (Perfetto,
/// chrome://tracing). With CONCUR_TRACE=<file> the file is written when the program exits
/// normally (return from main or exit()).
///
/// Who records: ThreadPoolExecutor (one span per task), the asyncio event loop (one span per
/// task step, tagged with the task), multiprocessing.Pool / ProcessPoolExecutor (one span per
/// call, timed in the worker process on CLOCK_MONOTONIC, recorded by the parent with the
/// worker's pid as its lane) and threading::Thread (one span per run of the target).
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace concur::trace {

/// One finished task, as a bar on a timeline.
struct Event {
  std::uint64_t begin_ns = 0;  ///< CLOCK_MONOTONIC nanoseconds since the trace epoch
  std::uint64_t end_ns = 0;
  std::uint64_t task_id = 0;      ///< unique per task within the process
  std::uint32_t pid = 0;          ///< process id (lanes of different processes)
  std::uint32_t tid = 0;          ///< OS thread id (native_id), the lane
  const char* source = "";        ///< static string: the executor/loop kind, e.g. "ThreadPoolExecutor"
  std::uint32_t source_id = 0;    ///< which executor instance of that kind
  std::uint32_t worker = 0;       ///< worker index within the executor
  std::uint64_t parent_task = 0;  ///< for one step of a longer task (an asyncio task): that task's id; else 0
};

namespace detail {
extern std::atomic<bool> g_enabled;
}

/// True while recording. Thread-safe, near-free.
inline bool enabled() noexcept { return detail::g_enabled.load(std::memory_order_relaxed); }
void enable() noexcept;
void disable() noexcept;
/// Nanoseconds since the trace epoch (process start), CLOCK_MONOTONIC.
std::uint64_t now_ns() noexcept;
/// Absolute CLOCK_MONOTONIC nanoseconds: one clock for every process of the machine (a worker
/// process stamps its calls with it; the parent converts them with from_monotonic_ns()).
std::uint64_t monotonic_ns() noexcept;
/// An absolute CLOCK_MONOTONIC time as nanoseconds since this process's trace epoch (0 if earlier).
std::uint64_t from_monotonic_ns(std::uint64_t abs_ns) noexcept;
/// A fresh task id.
std::uint64_t next_task_id() noexcept;
/// Appends one record to the calling thread's buffer (only call when enabled()).
void record(const Event& e) noexcept;
/// Every record of every thread so far, ordered by begin time. Thread-safe.
std::vector<Event> collect();
/// Drops every record (lane names stay).
void clear();

/// Names the lane (pid, tid) in exported traces, e.g. "Pool#1 worker 2 (pid 4242)" or a
/// threading::Thread's name. Thread-safe; the last name given wins.
void name_lane(std::uint32_t pid, std::uint32_t tid, std::string name);
/// The name given to a lane, or "" if none.
std::string lane_name(std::uint32_t pid, std::uint32_t tid);
/// The calling thread's OS thread id (cached per thread).
std::uint32_t current_tid() noexcept;

/// Chrome trace-event JSON ({"traceEvents": [...]}) of `events`: one complete ("X") event per
/// record, timestamps in microseconds, and thread_name/process_name metadata for every lane.
std::string to_json(const std::vector<Event>& events);
/// Writes to_json(collect()) to `path`. Returns false (and leaves errno) if it cannot be written.
bool write_json_file(const std::string& path);

/// RAII: records one task from construction to destruction when tracing is on.
class Span {
 public:
  Span(const char* source, std::uint32_t source_id, std::uint32_t worker, std::uint64_t parent_task = 0) noexcept {
    if (enabled()) start(source, source_id, worker, parent_task);
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span() {
    if (active_) finish();
  }

 private:
  void start(const char* source, std::uint32_t source_id, std::uint32_t worker, std::uint64_t parent_task) noexcept;
  void finish() noexcept;
  Event ev_{};
  bool active_ = false;
};

}  // namespace concur::trace
