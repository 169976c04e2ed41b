#pragma once
/// \file asyncio.timeout / timeout_at: a deadline for a piece of the current task.
#include <chrono>
#include <memory>
#include <type_traits>

#include "concur/asyncio/task.hpp"

namespace concur::asyncio {

/// Python's `async with asyncio.timeout_at(when): await aw`: runs `aw` in the current task
/// (no new task); at loop time `when` (seconds) the task is cancelled, and the resulting
/// CancelledError becomes concur::TimeoutError here. A cancellation from elsewhere propagates
/// unchanged (told apart with cancelling()/uncancel(), as Python does).
template <class T>
Coro<T> timeout_at(double when, Coro<T> aw) {
  detail::TaskBase* me = detail::current_task_base();
  if (!me) throw std::logic_error("asyncio::timeout outside of an asyncio task");
  // As Python: the expiry is told from other cancellations by comparing the request count
  // after withdrawing ours with the count on entry (not with zero: the task may already be
  // handling a cancellation); our request is withdrawn however the block ends.
  const int cancelling_on_entry = me->cancelling();
  auto expired = std::make_shared<bool>(false);
  TimerHandle h = me->loop().call_at(when, [me, expired] {
    *expired = true;
    me->cancel();
  });
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(aw);
      h.cancel();
      if (*expired) me->uncancel();
      co_return;
    } else {
      T r = co_await std::move(aw);
      h.cancel();
      if (*expired) me->uncancel();
      co_return r;
    }
  } catch (const CancelledError&) {
    h.cancel();
    if (*expired && me->uncancel() <= cancelling_on_entry) throw TimeoutError("asyncio::timeout expired");
    throw;
  } catch (...) {
    h.cancel();
    if (*expired) me->uncancel();
    throw;
  }
}

/// As timeout_at, `delay` from now.
template <class T, class Rep, class Period>
Coro<T> timeout(std::chrono::duration<Rep, Period> delay, Coro<T> aw) {
  EventLoop& loop = get_running_loop();
  return timeout_at(loop.time() + std::chrono::duration<double>(delay).count(), std::move(aw));
}

}  // namespace concur::asyncio
