#pragma once
/// \file The waiter abstraction: "resume this party".
///
/// A blocked party is an OS thread (ThreadWaiter, here), an asyncio coroutine or a greenlet
/// (later modules derive their own Waiter). Every primitive is written once against `Waiter`:
/// it keeps `WaitNode`s in a `WaitList` and calls `Waiter::wake()` to resume a party, without
/// knowing what kind of party it is. `EventCore` and `SemaphoreCore` below are the two shared
/// cores that `threading::Event/Lock/Semaphore` use today and that the asyncio and green faces
/// reuse.
#include <atomic>
#include <cstdint>
#include <mutex>

#include "concur/core/futex.hpp"

namespace concur::core {

/// A party that can be resumed. `wake()` may be called from any thread, at most a few times per
/// wait; it must not block and must not throw.
class Waiter {
 public:
  Waiter() = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;
  /// Resume the party. Thread-safe; called with the owning primitive's internal lock held, so it
  /// must only signal (never call back into the primitive).
  virtual void wake() noexcept = 0;
  virtual ~Waiter() = default;
};

/// An OS thread's waiter: parks on a futex word. Reusable: `reset()` before each wait.
/// wake() makes a system call only when the thread is actually asleep in the kernel.
/// Thread safety: `wake` from any thread; `reset`/`park` only from the owning thread.
class ThreadWaiter final : public Waiter {
 public:
  ThreadWaiter() = default;
  void reset() noexcept { word_.store(kIdle, std::memory_order_relaxed); }
  void wake() noexcept override;
  /// True once wake() was called since the last reset().
  [[nodiscard]] bool woken() const noexcept { return word_.load(std::memory_order_acquire) == kWoken; }
  /// Blocks until woken or the deadline passes; returns woken().
  bool park(Deadline deadline = std::nullopt) noexcept;

 private:
  // kIdle: not woken, not asleep. kWoken: wake() was called (release: the parked thread sees
  // what the waker wrote before waking it). kParked: the owner sleeps (or is about to) in
  // futex_wait, so wake() must call futex_wake.
  static constexpr std::uint32_t kIdle = 0, kWoken = 1, kParked = 2;
  std::atomic<std::uint32_t> word_{kIdle};
};

/// A node in a WaitList: one registration of one waiter in one primitive. Lives on the waiting
/// party's stack (or coroutine frame) for the duration of the wait.
struct WaitNode {
  Waiter* waiter = nullptr;
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  /// Set (under the primitive's lock) when the primitive granted this waiter what it waited for
  /// (a semaphore unit, a queue slot) rather than merely waking it.
  bool granted = false;
  bool linked = false;
  /// Free for the primitive's use (e.g. how many units are requested).
  std::uintptr_t tag = 0;
};

/// An intrusive FIFO of WaitNodes. Not thread-safe: the owning primitive guards it with its lock.
class WaitList {
 public:
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] WaitNode* front() const noexcept { return head_; }
  void push_back(WaitNode& n) noexcept;
  /// Unlinks `n` if it is linked; returns whether it was.
  bool remove(WaitNode& n) noexcept;
  WaitNode* pop_front() noexcept;
  /// Wakes (and unlinks) every waiter; returns how many.
  std::size_t wake_all() noexcept;

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
};

/// A small spin-then-yield lock guarding primitives' internal state; critical sections are a
/// few instructions long. Lockable.
class SpinLock {
 public:
  void lock() noexcept {
    if (!flag_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }
  bool try_lock() noexcept { return !flag_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept;
  std::atomic<bool> flag_{false};
};

/// The shared core of every Event (threading, asyncio, green): a flag plus the parties waiting
/// for it. Thread-safe.
class EventCore {
 public:
  /// Sets the flag and wakes every registered waiter; returns false if it was already set
  /// (exactly one of several racing set() calls returns true).
  bool set() noexcept;
  void clear() noexcept;
  [[nodiscard]] bool is_set() const noexcept { return flag_.load(std::memory_order_acquire); }
  /// Registers `node` unless the flag is already set; returns false (and registers nothing) if
  /// it is set. The waiter is woken once by the next set().
  bool arm(WaitNode& node) noexcept;
  /// Unregisters `node` if it is still registered (after a timeout or a cancellation).
  void disarm(WaitNode& node) noexcept;

 private:
  mutable SpinLock lock_;
  std::atomic<bool> flag_{false};
  WaitList waiters_;
};

/// The shared core of every Lock and Semaphore: a counter with FIFO hand-off to waiters.
/// A unit released while parties wait goes straight to the first of them (no barging past a
/// queued waiter by a later releaser). Thread-safe.
class SemaphoreCore {
 public:
  explicit SemaphoreCore(std::int64_t initial = 0) noexcept : value_(initial) {}
  /// Takes a unit if one is free; never blocks.
  bool try_acquire() noexcept;
  /// Takes a unit or registers `node`; returns true if a unit was taken at once. A registered
  /// node is granted (`node.granted`, under the lock) and woken when a unit is handed to it.
  bool acquire_or_arm(WaitNode& node) noexcept;
  /// Unregisters `node` after a timeout or cancellation. Returns true if the node had already
  /// been granted a unit meanwhile: the caller then owns that unit (and may release it).
  bool disarm(WaitNode& node) noexcept;
  /// Adds `n` units, handing them to waiters first.
  void release(std::int64_t n = 1) noexcept;
  /// As release(n), unless that would raise the free units above `max`: then changes nothing
  /// and returns false (a Lock released while unlocked, a BoundedSemaphore over-released).
  bool release_bounded(std::int64_t n, std::int64_t max) noexcept;
  [[nodiscard]] std::int64_t value() const noexcept { return value_.load(std::memory_order_acquire); }

 private:
  void release_locked(std::int64_t n) noexcept;
  SpinLock lock_;
  // Free units. Decremented lock-free by try_acquire; incremented only under lock_ and only
  // when no waiter is queued, so a queued waiter never sleeps while units are free.
  std::atomic<std::int64_t> value_;
  WaitList waiters_;
};

/// Blocks the calling thread on `core` until a unit is acquired or the deadline passes.
bool acquire_blocking(SemaphoreCore& core, Deadline deadline) noexcept;
/// Blocks the calling thread until `core` is set or the deadline passes; returns is_set().
bool wait_blocking(EventCore& core, Deadline deadline) noexcept;

}  // namespace concur::core
