#pragma once
// Private: the primitives that process-shared objects in shared memory are built from
// (synchronize.cpp, queues.cpp): non-private futexes on 32-bit words (the wait's deadline is
// steady_clock = CLOCK_MONOTONIC) and robust, process-shared pthread mutexes.
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

#include "concur/core/error.hpp"
#include "concur/core/waiter.hpp"

namespace concur::multiprocessing::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == 4 && std::atomic<std::uint32_t>::is_always_lock_free);

/// True when a deadline is set and has passed.
inline bool passed(const core::Deadline& d) {
  return d && *d != core::Clock::time_point::max() && core::Clock::now() >= *d;
}

/// Sleeps while `word == expected`, until woken or `d`.
inline void futex_wait_shared(std::atomic<std::uint32_t>& word, std::uint32_t expected, const core::Deadline& d) {
  timespec ts{};
  timespec* tp = nullptr;
  if (d && *d != core::Clock::time_point::max()) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d->time_since_epoch()).count();
    if (ns < 0) ns = 0;
    ts.tv_sec = static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
    tp = &ts;
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_BITSET, expected, tp, nullptr,
            FUTEX_BITSET_MATCH_ANY);
}

/// Wakes every sleeper on `word` (in any process).
inline void futex_wake_shared(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

/// Initialises a robust, process-shared mutex of `type` (PTHREAD_MUTEX_NORMAL, ...).
inline void init_robust(pthread_mutex_t* m, int type = PTHREAD_MUTEX_NORMAL) {
  pthread_mutexattr_t a;
  ::pthread_mutexattr_init(&a);
  ::pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  ::pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  ::pthread_mutexattr_settype(&a, type);
  int r = ::pthread_mutex_init(m, &a);
  ::pthread_mutexattr_destroy(&a);
  if (r != 0) throw_os_error(r, "initialise a process-shared mutex");
}

}  // namespace concur::multiprocessing::detail
