#pragma once
/// \file concurrent.futures.ThreadPoolExecutor: a work-stealing pool.
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "concur/futures/executor.hpp"

namespace concur::futures {

/// Keyword arguments of ThreadPoolExecutor.
struct ThreadPoolOptions {
  /// Unset: min(32, cpu_count + 4), as Python. Must be > 0 (std::invalid_argument).
  std::optional<int> max_workers;
  /// Worker threads are named "<prefix>_<i>" (default "ThreadPoolExecutor-<n>_<i>").
  std::string thread_name_prefix;
  /// Run once on each worker before any task. If it throws, the pool becomes broken:
  /// pending and later futures fail with BrokenThreadPool.
  std::function<void()> initializer;
};

namespace detail {
class Pool;
}

/// A pool of worker threads (Python's `concurrent.futures.ThreadPoolExecutor`).
///
/// Work stealing: each worker owns a Chase–Lev deque; tasks submitted from outside go through
/// an injection queue, tasks submitted by a worker go to its own deque. Idle workers park on a
/// futex (an idle pool uses no CPU). A worker that waits on a future (result(), exception(),
/// wait(), as_completed()) runs queued tasks meanwhile, so nested waits never deadlock, even
/// with one worker.
///
/// Which thread runs what: tasks and done-callbacks of their futures run on worker threads;
/// callbacks added to an already-done future run on the calling thread.
/// Thread safety: all members, from any thread, including from the pool's own tasks.
/// Destruction: shutdown(true) — waits for every queued task.
class ThreadPoolExecutor final : public Executor {
 public:
  ThreadPoolExecutor() : ThreadPoolExecutor(ThreadPoolOptions{}) {}
  explicit ThreadPoolExecutor(int max_workers) : ThreadPoolExecutor(ThreadPoolOptions{.max_workers = max_workers}) {}
  explicit ThreadPoolExecutor(ThreadPoolOptions options);
  ~ThreadPoolExecutor() override;

  /// See Executor::shutdown. Called from one of this pool's own tasks, `wait` is ignored (the
  /// pool cannot wait for the task that is waiting): the workers still finish every queued task.
  void shutdown(bool wait = true, bool cancel_futures = false) override;

  /// Number of worker threads.
  [[nodiscard]] int max_workers() const noexcept;
  /// True once an initializer failed.
  [[nodiscard]] bool broken() const noexcept;

 protected:
  void schedule(detail::StateBase* task) override;

 private:
  std::shared_ptr<detail::Pool> pool_;
};

/// min(32, cpu_count + 4): Python's default max_workers.
int default_max_workers() noexcept;

}  // namespace concur::futures
