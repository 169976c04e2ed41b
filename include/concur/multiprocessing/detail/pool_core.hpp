#pragma once
// The engine under mp::Pool and futures::ProcessPoolExecutor: worker processes, a queue of
// chunks of calls, and one manager thread that hands chunks to workers, collects results, and
// replaces a worker that died (failing only the chunk it was running with BrokenProcessPool).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "concur/multiprocessing/detail/worker.hpp"

namespace concur::multiprocessing::detail {

/// One call and what to do with its outcome (run on the pool's manager thread).
struct Job {
  PackedCall call;
  std::function<void(const Outcome&)> done;
};

struct PoolConfig {
  int processes = 1;
  std::optional<PackedCall> initializer;
  int max_tasks_per_child = 0;  // 0: no limit
  /// Trace events: the category of each call's span (a static string) and the lane names'
  /// prefix ("Pool#2 worker 0 (pid ...)").
  const char* trace_source = "multiprocessing.Pool";
  const char* trace_lane = "Pool";
};

class PoolCore {
 public:
  explicit PoolCore(PoolConfig config);
  ~PoolCore();  // terminate() then join()
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  /// Queues `jobs` as one chunk (sent to one worker in one message). std::logic_error after
  /// close(); every job fails with BrokenProcessPool once the pool is broken (its initializer
  /// failed) or terminated.
  void submit(std::vector<Job> jobs);
  /// Takes every queued (not yet sent) job off the queue; each gets an Outcome of type
  /// "concur::CancelledError".
  void cancel_queued();
  /// No more submissions; the workers exit once the queue is done.
  void close();
  /// Kills the workers now; queued and running jobs fail with BrokenProcessPool.
  void terminate();
  /// Waits until the manager thread ended (after close() or terminate()).
  void join();
  [[nodiscard]] int processes() const noexcept;
  /// Worker pids now (tests kill them).
  [[nodiscard]] std::vector<pid_t> pids() const;

 private:
  struct State;
  std::shared_ptr<State> s_;
};

}  // namespace concur::multiprocessing::detail
