#pragma once
// Small helpers shared by the core/threading/queue tests.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>

namespace concur::test {

/// Polls `pred` (every millisecond) until it is true or `timeout` passes; returns its last value.
/// For "wait until the other thread is blocked" style synchronisation: never asserts on speed.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// Iteration count for stress tests: CONCUR_STRESS_ITERS, or `fallback`.
inline std::int64_t stress_iters(std::int64_t fallback = 2000) {
  if (const char* s = std::getenv("CONCUR_STRESS_ITERS"); s && *s) {
    char* end = nullptr;
    long long v = std::strtoll(s, &end, 10);
    if (end != s && v > 0) return v;
  }
  return fallback;
}

/// A wall-clock budget for a stress loop: loops stop early (and still check their invariants)
/// when it runs out, so a slow sanitizer build never hits the ctest timeout.
class Budget {
 public:
  explicit Budget(std::chrono::seconds s = std::chrono::seconds(20))
      : end_(std::chrono::steady_clock::now() + s) {}
  [[nodiscard]] bool exhausted() const { return std::chrono::steady_clock::now() >= end_; }

 private:
  std::chrono::steady_clock::time_point end_;
};

}  // namespace concur::test
