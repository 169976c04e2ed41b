#pragma once
/// \file threading.Barrier.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>

#include "concur/core/error.hpp"
#include "concur/core/futex.hpp"

namespace concur::threading {

/// The barrier was broken (aborted, reset while waited on, timed out, or its action threw).
class BrokenBarrierError : public Error {
 public:
  BrokenBarrierError() : Error("the barrier is broken") {}
  using Error::Error;
};

/// Options of Barrier (Python's `action=`, `timeout=`).
struct BarrierOptions {
  std::function<void()> action;                             ///< run by one thread when all arrive
  std::optional<std::chrono::nanoseconds> timeout;          ///< default timeout of wait()
};

/// A cyclic barrier for a fixed number of threads (Python's `threading.Barrier`).
/// Thread safety: all members.
class Barrier {
 public:
  /// Throws std::invalid_argument if parties < 1.
  explicit Barrier(std::size_t parties, BarrierOptions options = {});
  Barrier(std::size_t parties, std::function<void()> action);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// Waits until `parties` threads have called wait(); returns a distinct index in
  /// [0, parties). Throws BrokenBarrierError if the barrier is or becomes broken, or the
  /// default timeout passes (which breaks it). If the action throws, the barrier breaks and
  /// the thread that ran it gets the action's exception.
  std::size_t wait();
  template <class Rep, class Period>
  std::size_t wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_impl(core::deadline_after(timeout));
  }

  /// Returns the barrier to its empty state; threads waiting get BrokenBarrierError.
  void reset();
  /// Breaks the barrier: current and future wait() calls throw BrokenBarrierError.
  void abort();
  [[nodiscard]] bool broken() const;
  [[nodiscard]] std::size_t parties() const noexcept { return parties_; }
  [[nodiscard]] std::size_t n_waiting() const;

 private:
  enum class State { filling, draining, resetting, broken };
  std::size_t wait_impl(core::Deadline deadline);
  void break_locked();
  void exit_locked();
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::size_t parties_;
  BarrierOptions options_;
  State state_ = State::filling;
  std::size_t count_ = 0;
};

}  // namespace concur::threading
