#pragma once
/// \file threading.Timer.
#include <chrono>
#include <memory>

#include "concur/core/detail/unique_function.hpp"
#include "concur/threading/event.hpp"
#include "concur/threading/thread.hpp"

namespace concur::threading {

/// Runs a function after an interval on its own thread unless cancelled first
/// (Python's `threading.Timer`). Destroying the Timer does not cancel it.
/// Thread safety: all members.
class Timer {
 public:
  template <class Rep, class Period, class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&&...>
  Timer(std::chrono::duration<Rep, Period> interval, F&& f, Args&&... args)
      : Timer(std::chrono::duration_cast<std::chrono::nanoseconds>(interval),
              concur::detail::unique_function(
                  [call = concur::detail::bind_call(std::forward<F>(f), std::forward<Args>(args)...)]() mutable {
                    (void)call();
                  })) {}
  Timer(std::chrono::nanoseconds interval, concur::detail::unique_function fn);

  void start() { thread_.start(); }
  /// Stops the timer if it has not fired yet.
  void cancel() noexcept { finished_->set(); }
  void join() { thread_.join(); }
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) { return thread_.join(timeout); }
  [[nodiscard]] bool is_alive() const noexcept { return thread_.is_alive(); }
  [[nodiscard]] Thread& thread() noexcept { return thread_; }

 private:
  std::shared_ptr<Event> finished_;
  Thread thread_;
};

}  // namespace concur::threading
