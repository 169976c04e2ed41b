#pragma once
/// \file threading.Event.
#include <chrono>

#include "concur/core/futex.hpp"
#include "concur/core/waiter.hpp"

namespace concur::threading {

/// A flag threads can wait for (Python's `threading.Event`). Thread safety: all members.
/// wait() returns when set() is called; a clear() right after set() does not un-wake waiters.
class Event {
 public:
  void set() noexcept { core_.set(); }
  void clear() noexcept { core_.clear(); }
  [[nodiscard]] bool is_set() const noexcept { return core_.is_set(); }
  /// Blocks until set. Always true.
  bool wait() noexcept { return core::wait_blocking(core_, std::nullopt); }
  /// Blocks at most `timeout`; returns is_set() at return (false on timeout).
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) noexcept {
    return core::wait_blocking(core_, core::deadline_after(timeout));
  }
  /// The shared core, for other faces (asyncio, green) to wait on the same event.
  core::EventCore& core() noexcept { return core_; }

 private:
  core::EventCore core_;
};

}  // namespace concur::threading
