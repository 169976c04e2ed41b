#pragma once
/// \file asyncio.wait, wait_for, shield, as_completed, and ensure_task (any awaitable -> Task).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "concur/asyncio/task.hpp"
#include "concur/futures/wait.hpp"

namespace concur::asyncio {

using futures::ALL_COMPLETED;
using futures::FIRST_COMPLETED;
using futures::FIRST_EXCEPTION;
using futures::ReturnWhen;

namespace detail {

/// The leaf await behind wait/gather/wait_for/shield/TaskGroup: wakes its task when a
/// condition over several futures holds, or at a deadline. Futures may complete on other
/// threads. Cancel safety: cancelling only stops the waiting; the futures are untouched.
class MultiWait final : public Suspension, public TimerNode {
 public:
  /// deadline_ns: loop time in ns, or -1 for none. `cancelled_fails`: with FIRST_EXCEPTION, a
  /// cancelled future also ends the wait (gather's rule; wait()'s ignores cancellations).
  MultiWait(std::vector<futures::detail::StateBase*> states, ReturnWhen when, std::int64_t deadline_ns,
            bool cancelled_fails = false);
  MultiWait(MultiWait&& o) noexcept;
  MultiWait& operator=(const MultiWait&) = delete;
  ~MultiWait();
  bool await_ready() const noexcept { return satisfied(); }
  bool await_suspend(std::coroutine_handle<> h);
  /// True if the condition holds; false if the deadline passed first.
  bool await_resume();
  CancelResult cancel() noexcept override;
  void fire() noexcept override;

 private:
  struct Node final : futures::detail::Listener {
    MultiWait* owner = nullptr;
    void fire(futures::detail::StateBase& s) noexcept override { owner->on_done(s); }
  };
  [[nodiscard]] bool satisfied() const noexcept;
  [[nodiscard]] bool bad(const futures::detail::StateBase& s) const noexcept {
    return s.failed() || (cancelled_fails_ && s.cancelled());
  }
  void on_done(futures::detail::StateBase& s) noexcept;
  void detach() noexcept;
  std::vector<futures::detail::StateBase*> states_;
  std::vector<Node> nodes_;
  ReturnWhen when_;
  std::int64_t deadline_ns_;
  bool cancelled_fails_ = false;
  std::atomic<std::size_t> done_{0};
  std::atomic<bool> failed_{false};
  std::atomic<bool> woken_{false};
  TaskBase* task_ = nullptr;
  EventLoop* loop_ = nullptr;
  std::optional<TaskWaiter> waiter_;
  bool armed_ = false;
};

template <class A>
struct awaitable_result;
template <class T>
struct awaitable_result<Coro<T>> {
  using type = T;
};
template <class T>
struct awaitable_result<Task<T>> {
  using type = T;
};
template <class T>
struct awaitable_result<futures::Future<T>> {
  using type = T;
};
template <class A>
concept has_await_resume = requires(A& a) {
  a.await_resume();
};
template <class A>
concept has_member_co_await = requires(A&& a) {
  std::forward<A>(a).operator co_await();
};
template <class A>
requires has_await_resume<A>
struct awaitable_result<A> {
  using type = std::decay_t<decltype(std::declval<A&>().await_resume())>;
};

template <class A>
Coro<typename awaitable_result<A>::type> await_any(A a) {
  if constexpr (std::is_void_v<typename awaitable_result<A>::type>) {
    co_await std::move(a);
  } else {
    co_return co_await std::move(a);
  }
}

}  // namespace detail

/// The result type of awaiting `A` (Coro<T>, Task<T>, futures::Future<T>, or any awaiter).
template <class A>
using awaitable_result_t = typename detail::awaitable_result<std::remove_cvref_t<A>>::type;

/// Wraps any awaitable in a Task on the running loop (Python's ensure_future); a Task is
/// returned as it is.
template <class A>
auto ensure_task(A&& aw) {
  using D = std::remove_cvref_t<A>;
  using R = awaitable_result_t<D>;
  if constexpr (std::is_same_v<D, Task<R>>) {
    return Task<R>(std::forward<A>(aw));
  } else if constexpr (std::is_same_v<D, Coro<R>>) {
    return create_task(std::move(aw));
  } else {
    return create_task(detail::await_any<D>(std::forward<A>(aw)));
  }
}

template <class T>
struct WaitResult {
  std::vector<Task<T>> done;
  std::vector<Task<T>> pending;
};

struct WaitOptions {
  std::optional<std::chrono::nanoseconds> timeout;
  ReturnWhen return_when = ALL_COMPLETED;
};

/// Python's asyncio.wait: waits for the tasks; on timeout returns what is done so far.
/// Cancel safety: cancelling the caller leaves the tasks running.
template <class T>
Coro<WaitResult<T>> wait(std::vector<Task<T>> tasks, WaitOptions options = {}) {
  std::vector<futures::detail::StateBase*> states;
  for (auto& t : tasks) states.push_back(t.state());
  std::int64_t deadline = -1;
  if (options.timeout) deadline = get_running_loop().now_ns() + options.timeout->count();
  co_await detail::MultiWait(std::move(states), options.return_when, deadline);
  WaitResult<T> r;
  for (auto& t : tasks) (t.done() ? r.done : r.pending).push_back(t);
  co_return r;
}

namespace detail {
template <class T>
decltype(auto) task_value(const Task<T>& t) {
  return t.result();
}
}  // namespace detail

/// Python's asyncio.wait_for: the awaitable's result, or concur::TimeoutError after `timeout`
/// — the inner task is then cancelled and awaited first. If the caller is cancelled, the inner
/// task is cancelled too. Resumed on the loop's thread.
template <class A, class Rep, class Period>
Coro<awaitable_result_t<A>> wait_for(A aw, std::chrono::duration<Rep, Period> timeout) {
  using R = awaitable_result_t<A>;
  Task<R> inner = ensure_task(std::move(aw));
  EventLoop& loop = get_running_loop();
  const std::int64_t deadline = loop.now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  bool in_time = false;
  try {
    in_time =
        co_await detail::MultiWait(std::vector<futures::detail::StateBase*>(1, inner.state()), ALL_COMPLETED, deadline);
  } catch (const CancelledError&) {
    inner.cancel();
    throw;
  }
  if (!in_time) {
    inner.cancel();
    co_await detail::MultiWait(std::vector<futures::detail::StateBase*>(1, inner.state()), ALL_COMPLETED, -1);
    if (inner.cancelled()) throw TimeoutError("asyncio::wait_for timed out");
  }
  if constexpr (std::is_void_v<R>) {
    inner.result();
  } else {
    co_return R(inner.result());
  }
}

/// Python's asyncio.shield: awaits the awaitable, but cancelling the caller does not cancel
/// it (the caller gets CancelledError; the inner task runs on, owned by the loop).
template <class A>
Coro<awaitable_result_t<A>> shield(A aw) {
  using R = awaitable_result_t<A>;
  Task<R> inner = ensure_task(std::move(aw));
  co_await detail::MultiWait(std::vector<futures::detail::StateBase*>(1, inner.state()), ALL_COMPLETED, -1);
  if constexpr (std::is_void_v<R>) {
    inner.result();
  } else {
    co_return R(inner.result());
  }
}

namespace detail {
/// The completion order of as_completed's tasks: a listener on each task appends its index
/// when it finishes (on the loop thread), and wakes a next() that waits. O(1) per result.
class CompletionQueue {
 public:
  explicit CompletionQueue(const std::vector<futures::detail::StateBase*>& states);
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;
  ~CompletionQueue();
  /// The index of the next finished task, if one is waiting to be taken.
  std::optional<std::size_t> pop() noexcept {
    if (read_ == order_.size()) return std::nullopt;
    return order_[read_++];
  }
  /// A future that completes when the next task finishes (replaces any earlier one).
  futures::Future<void> arm();

 private:
  struct Slot final : futures::detail::Listener {
    CompletionQueue* q = nullptr;
    futures::detail::StateBase* state = nullptr;
    std::size_t index = 0;
    void fire(futures::detail::StateBase&) noexcept override { q->push(index); }
  };
  void push(std::size_t i) noexcept;
  std::vector<Slot> slots_;
  std::vector<std::size_t> order_;  // reserved for every task: push never allocates
  std::size_t read_ = 0;
  std::optional<futures::Promise<void>> signal_;
};
}  // namespace detail

/// Python's asyncio.as_completed: `while (it.has_next()) { T r = co_await it.next(); }`
/// yields results in completion order (next() rethrows a task's exception). With a timeout
/// (counted from the call), next() throws concur::TimeoutError once it has passed.
/// Cost: O(1) per result (each task reports its completion once).
/// Thread safety: loop thread only. Cancel safety: a cancelled next() loses no result; the
/// next call returns it.
template <class T>
class AsCompleted {
 public:
  AsCompleted(std::vector<Task<T>> tasks, std::int64_t deadline_ns) : tasks_(std::move(tasks)), deadline_(deadline_ns) {
    std::vector<futures::detail::StateBase*> states;
    states.reserve(tasks_.size());
    for (auto& t : tasks_) states.push_back(t.state());
    queue_ = std::make_unique<detail::CompletionQueue>(states);
  }
  [[nodiscard]] bool has_next() const noexcept { return delivered_ < tasks_.size(); }
  Coro<T> next() {
    for (;;) {
      if (auto i = queue_->pop()) {
        ++delivered_;
        if constexpr (std::is_void_v<T>) {
          tasks_[*i].result();
          co_return;
        } else {
          co_return T(tasks_[*i].result());
        }
      }
      if (!has_next()) throw std::logic_error("as_completed: no more results");
      futures::Future<void> signal = queue_->arm();
      std::vector<futures::detail::StateBase*> pending(1, signal.state());
      if (!co_await detail::MultiWait(std::move(pending), FIRST_COMPLETED, deadline_))
        throw TimeoutError("asyncio::as_completed timed out");
    }
  }

 private:
  std::vector<Task<T>> tasks_;
  std::unique_ptr<detail::CompletionQueue> queue_;  // stable address for its listeners
  std::size_t delivered_ = 0;
  std::int64_t deadline_;
};

template <class T>
AsCompleted<T> as_completed(std::vector<Task<T>> tasks) {
  return AsCompleted<T>(std::move(tasks), -1);
}
template <class T, class Rep, class Period>
AsCompleted<T> as_completed(std::vector<Task<T>> tasks, std::chrono::duration<Rep, Period> timeout) {
  return AsCompleted<T>(std::move(tasks), get_running_loop().now_ns() +
                                              std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count());
}

}  // namespace concur::asyncio
