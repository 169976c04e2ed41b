#pragma once
/// \file Thin, timed futex wrappers over a std::atomic<uint32_t> (Linux).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace concur::core {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;

/// Makes a deadline from an optional timeout; negative timeouts are treated as zero.
template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) {
  if (timeout <= timeout.zero()) return Clock::now();
  auto now = Clock::now();
  // Compare before converting: casting a huge timeout (hours::max()) to nanoseconds overflows.
  // The one-second margin absorbs the double's rounding near the limit.
  using fsec = std::chrono::duration<double>;
  if (fsec(timeout) >= fsec(Clock::time_point::max() - now) - fsec(1.0)) return Clock::time_point::max();
  return now + std::chrono::duration_cast<Clock::duration>(timeout);
}

/// Blocks while `*word == expected`, until woken or `deadline` passes. May wake spuriously.
/// Returns false only when the deadline has passed.
bool futex_wait(std::atomic<uint32_t>& word, uint32_t expected, Deadline deadline = std::nullopt) noexcept;
/// Wakes up to `n` threads blocked in futex_wait on `word`.
void futex_wake(std::atomic<uint32_t>& word, int n) noexcept;

}  // namespace concur::core
