#include "concur/core/waiter.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace concur::core {

bool futex_wait(std::atomic<uint32_t>& word, uint32_t expected, Deadline deadline) noexcept {
  if (!deadline) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
    return true;
  }
  if (*deadline == Clock::time_point::max()) return futex_wait(word, expected, std::nullopt);
  auto now = Clock::now();
  if (now >= *deadline) return false;
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is what steady_clock is.
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch()).count();
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  long r = syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_BITSET_PRIVATE, expected, &ts, nullptr,
                   FUTEX_BITSET_MATCH_ANY);
  if (r == -1 && errno == ETIMEDOUT) return false;
  return true;
}

void futex_wake(std::atomic<uint32_t>& word, int n) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

void ThreadWaiter::wake() noexcept {
  // acq_rel: release publishes the waker's writes; the exchange tells whether anyone sleeps.
  if (word_.exchange(kWoken, std::memory_order_acq_rel) == kParked) futex_wake(word_, 1);
}

bool ThreadWaiter::park(Deadline deadline) noexcept {
  for (int spin = 0; spin < 64; ++spin) {
    if (woken()) return true;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  std::uint32_t expected = kIdle;
  if (!word_.compare_exchange_strong(expected, kParked, std::memory_order_acq_rel, std::memory_order_acquire))
    return true;  // woken meanwhile
  while (word_.load(std::memory_order_acquire) == kParked) {
    if (!futex_wait(word_, kParked, deadline)) {
      // Timed out: go back to idle unless a wake() got in first.
      expected = kParked;
      if (word_.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel, std::memory_order_acquire))
        return false;
      return true;
    }
  }
  return true;
}

void WaitList::push_back(WaitNode& n) noexcept {
  n.next = nullptr;
  n.prev = tail_;
  n.linked = true;
  if (tail_)
    tail_->next = &n;
  else
    head_ = &n;
  tail_ = &n;
}

bool WaitList::remove(WaitNode& n) noexcept {
  if (!n.linked) return false;
  if (n.prev)
    n.prev->next = n.next;
  else
    head_ = n.next;
  if (n.next)
    n.next->prev = n.prev;
  else
    tail_ = n.prev;
  n.prev = n.next = nullptr;
  n.linked = false;
  return true;
}

WaitNode* WaitList::pop_front() noexcept {
  WaitNode* n = head_;
  if (n) remove(*n);
  return n;
}

std::size_t WaitList::wake_all() noexcept {
  std::size_t count = 0;
  while (WaitNode* n = pop_front()) {
    n->waiter->wake();
    ++count;
  }
  return count;
}

void SpinLock::lock_slow() noexcept {
  for (int i = 0;; ++i) {
    if (!flag_.load(std::memory_order_relaxed) && !flag_.exchange(true, std::memory_order_acquire)) return;
    if (i < 100) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    } else {
      sched_yield();
    }
  }
}

// ---- EventCore ----------------------------------------------------------------------------

bool EventCore::set() noexcept {
  std::lock_guard g(lock_);
  if (flag_.load(std::memory_order_relaxed)) return false;  // under lock_: no racing set()
  flag_.store(true, std::memory_order_release);
  waiters_.wake_all();
  return true;
}

void EventCore::clear() noexcept {
  std::lock_guard g(lock_);
  flag_.store(false, std::memory_order_release);
}

bool EventCore::arm(WaitNode& node) noexcept {
  std::lock_guard g(lock_);
  if (flag_.load(std::memory_order_relaxed)) return false;
  waiters_.push_back(node);
  return true;
}

void EventCore::disarm(WaitNode& node) noexcept {
  std::lock_guard g(lock_);
  waiters_.remove(node);
}

// ---- SemaphoreCore ------------------------------------------------------------------------

bool SemaphoreCore::try_acquire() noexcept {
  auto v = value_.load(std::memory_order_relaxed);
  while (v > 0) {
    if (value_.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
  }
  return false;
}

bool SemaphoreCore::acquire_or_arm(WaitNode& node) noexcept {
  if (try_acquire()) return true;
  std::lock_guard g(lock_);
  if (try_acquire()) return true;
  node.granted = false;
  waiters_.push_back(node);
  return false;
}

bool SemaphoreCore::disarm(WaitNode& node) noexcept {
  std::lock_guard g(lock_);
  if (waiters_.remove(node)) return false;
  return node.granted;
}

void SemaphoreCore::release(std::int64_t n) noexcept {
  std::lock_guard g(lock_);
  release_locked(n);
}

void SemaphoreCore::release_locked(std::int64_t n) noexcept {
  // Hand units to queued waiters first (FIFO), then bank the rest.
  while (n > 0) {
    WaitNode* w = waiters_.pop_front();
    if (!w) break;
    w->granted = true;
    w->waiter->wake();
    --n;
  }
  if (n > 0) value_.fetch_add(n, std::memory_order_release);
}

bool SemaphoreCore::release_bounded(std::int64_t n, std::int64_t max) noexcept {
  std::lock_guard g(lock_);
  if (value_.load(std::memory_order_relaxed) + n > max) return false;  // Python: _value + n > initial
  release_locked(n);
  return true;
}

bool acquire_blocking(SemaphoreCore& core, Deadline deadline) noexcept {
  if (core.try_acquire()) return true;
  ThreadWaiter w;
  WaitNode node{.waiter = &w};
  if (core.acquire_or_arm(node)) return true;
  if (w.park(deadline)) return true;  // woken only by a grant
  return core.disarm(node);
}

bool wait_blocking(EventCore& core, Deadline deadline) noexcept {
  if (core.is_set()) return true;
  ThreadWaiter w;
  WaitNode node{.waiter = &w};
  if (!core.arm(node)) return true;
  if (w.park(deadline)) return true;
  core.disarm(node);
  return core.is_set();
}

}  // namespace concur::core
