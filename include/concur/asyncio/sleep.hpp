#pragma once
/// \file asyncio.sleep.
#include <chrono>
#include <coroutine>
#include <cstdint>

#include "concur/asyncio/task.hpp"

namespace concur::asyncio {

namespace detail {
/// The await behind sleep(): a timer node living in the sleeping coroutine's frame.
class SleepAwaiter final : public Suspension, public TimerNode {
 public:
  explicit SleepAwaiter(std::int64_t delay_ns) noexcept : delay_ns_(delay_ns) {}
  /// Only before it is awaited (it is not yet in the timer heap then).
  SleepAwaiter(SleepAwaiter&& o) noexcept : delay_ns_(o.delay_ns_) {}
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  ~SleepAwaiter() {
    if (loop_ && scheduled()) loop_->remove_timer(this);
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume() {
    if (task_) task_->check_cancelled();
  }
  void fire() noexcept override { loop_->schedule(task_); }
  CancelResult cancel() noexcept override;

 private:
  std::int64_t delay_ns_;
  TaskBase* task_ = nullptr;
  EventLoop* loop_ = nullptr;
};
}  // namespace detail

/// Suspends the calling task for `delay` (Python's asyncio.sleep); `sleep(0s)` just yields to
/// the loop. Resumed on the loop's thread. Cancel safety: cancelling ends the sleep at once
/// with CancelledError; nothing is lost.
template <class Rep, class Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> delay) noexcept {
  return detail::SleepAwaiter(std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count());
}

}  // namespace concur::asyncio
