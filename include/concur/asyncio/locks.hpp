#pragma once
/// \file asyncio.Lock, Event, Condition, Semaphore, BoundedSemaphore and Barrier.
///
/// The asyncio faces of the shared waiter cores (concur/core/waiter.hpp): `Event` is an
/// `EventCore`, `Lock` a `SemaphoreCore` of one unit and `Semaphore` a `SemaphoreCore` of n,
/// each woken through a `detail::TaskWaiter` — the same implementation that threading's
/// Event/Lock/Semaphore drive with a thread waiter. Condition and Barrier are loop-thread state
/// machines over a `core::WaitList` of suspended tasks.
///
/// Like Python's, these primitives are not thread-safe (except where a member says otherwise)
/// and every awaitable must be awaited from inside an asyncio task (std::logic_error
/// otherwise). Waiters are served in FIFO order. A primitive must outlive the tasks waiting on
/// it (as a std::mutex must outlive its users). The frame of a task destroyed while it waits
/// (its loop closing) unregisters itself; a Lock or Semaphore unit already handed to it is
/// released, not leaked.
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "concur/asyncio/coro.hpp"
#include "concur/asyncio/task.hpp"
#include "concur/core/error.hpp"
#include "concur/core/waiter.hpp"

namespace concur::asyncio {

/// A Barrier was aborted, or reset while a task waited on it (Python's
/// `asyncio.BrokenBarrierError`).
class BrokenBarrierError : public Error {
 public:
  BrokenBarrierError() : Error("the barrier is broken") {}
  using Error::Error;
};

namespace detail {

/// The await behind Lock/Semaphore acquire(): one registration in a SemaphoreCore.
/// A unit handed to the task while it is being cancelled is given back (to the next waiter).
class AcquireAwaiter : public Suspension {
 public:
  explicit AcquireAwaiter(core::SemaphoreCore& core) noexcept : core_(&core) {}
  /// Only before it is awaited.
  AcquireAwaiter(AcquireAwaiter&& o) noexcept : core_(o.core_) {}
  AcquireAwaiter& operator=(const AcquireAwaiter&) = delete;
  ~AcquireAwaiter();
  bool await_ready() noexcept {
    if (!core_->try_acquire()) return false;
    state_ = State::acquired;
    return true;
  }
  bool await_suspend(std::coroutine_handle<> h);
  /// True (as Python's acquire()), or throws CancelledError.
  bool await_resume();
  CancelResult cancel() noexcept override;

 private:
  enum class State : unsigned char { idle, acquired, cancelled, armed };
  core::SemaphoreCore* core_;
  TaskBase* task_ = nullptr;
  std::optional<TaskWaiter> waiter_;
  core::WaitNode node_;
  State state_ = State::idle;
};

/// The await behind Event::wait(): one registration in an EventCore. Returns true.
class EventAwaiter : public Suspension {
 public:
  explicit EventAwaiter(core::EventCore& core) noexcept : core_(&core) {}
  /// Only before it is awaited.
  EventAwaiter(EventAwaiter&& o) noexcept : core_(o.core_) {}
  EventAwaiter& operator=(const EventAwaiter&) = delete;
  ~EventAwaiter();
  bool await_ready() const noexcept { return core_->is_set(); }
  bool await_suspend(std::coroutine_handle<> h);
  bool await_resume();
  CancelResult cancel() noexcept override;

 private:
  // A TaskWaiter that remembers it was woken, so cancel() can tell "never woken" (detached)
  // from "set() already woke us" (too late) even when set() runs on another thread.
  struct FlagWaiter final : core::Waiter {
    explicit FlagWaiter(TaskBase* t) noexcept : inner(t) {}
    void wake() noexcept override {
      woken.store(true, std::memory_order_release);
      inner.wake();
    }
    TaskWaiter inner;
    std::atomic<bool> woken{false};
  };
  core::EventCore* core_;
  TaskBase* task_ = nullptr;
  std::optional<FlagWaiter> waiter_;
  core::WaitNode node_;
  bool armed_ = false;
};

/// A plain "wait until notified" registration in a loop-thread-only WaitList (Condition,
/// Barrier, the queues). If `notified` is given, resuming stores there whether a
/// notify_first/notify_all reached this waiter — also when it then throws CancelledError (the
/// task was cancelled after being notified), so the caller can pass the notification on.
class ListAwaiter : public Suspension {
 public:
  explicit ListAwaiter(core::WaitList& list, bool* notified = nullptr) noexcept : list_(&list), notified_(notified) {}
  /// Only before it is awaited.
  ListAwaiter(ListAwaiter&& o) noexcept : list_(o.list_), notified_(o.notified_) {}
  ListAwaiter& operator=(const ListAwaiter&) = delete;
  ~ListAwaiter() {
    if (node_.linked) list_->remove(node_);
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  void await_resume() {
    if (notified_) *notified_ = node_.granted;
    if (task_) task_->check_cancelled();
  }
  CancelResult cancel() noexcept override {
    return list_->remove(node_) ? CancelResult::detached : CancelResult::too_late;
  }

 private:
  core::WaitList* list_;
  bool* notified_;
  TaskBase* task_ = nullptr;
  std::optional<TaskWaiter> waiter_;
  core::WaitNode node_;
};

/// Wakes the first waiter of `list` (marking it notified); false if there is none.
bool notify_first(core::WaitList& list) noexcept;
/// Wakes every waiter of `list`; returns how many.
std::size_t notify_all(core::WaitList& list) noexcept;
/// Unlinks every waiter without waking it (the owning primitive is being destroyed).
void detach_all(core::WaitList& list) noexcept;

/// What abort()/reset() return: already complete, so both `bar.abort();` and Python's
/// `co_await bar.abort();` work.
struct ReadyAwaitable {
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const noexcept {}
};

}  // namespace detail

/// Owns one acquisition of a Lock or Semaphore and releases it when destroyed (the C++ form of
/// Python's `async with lock:`): `auto guard = co_await lock.lock_guard();`. Movable.
template <class P>
class [[nodiscard]] LockGuard {
 public:
  LockGuard() = default;
  /// Adopts an acquisition the caller already holds.
  explicit LockGuard(P& p) noexcept : p_(&p) {}
  LockGuard(LockGuard&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  LockGuard& operator=(LockGuard&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~LockGuard() { reset(); }
  /// Releases now (at most once); the destructor then does nothing.
  void release() {
    if (p_) std::exchange(p_, nullptr)->release();
  }
  [[nodiscard]] bool owns_lock() const noexcept { return p_ != nullptr; }

 private:
  void reset() noexcept {
    try {
      release();
    } catch (...) {
      report_unraisable("asyncio LockGuard: releasing on destruction failed", std::current_exception());
    }
  }
  P* p_ = nullptr;
};

namespace detail {
template <class P>
class GuardAwaiter : public AcquireAwaiter {
 public:
  GuardAwaiter(core::SemaphoreCore& core, P& p) noexcept : AcquireAwaiter(core), p_(&p) {}
  GuardAwaiter(GuardAwaiter&& o) noexcept : AcquireAwaiter(std::move(o)), p_(o.p_) {}
  LockGuard<P> await_resume() {
    AcquireAwaiter::await_resume();
    return LockGuard<P>(*p_);
  }

 private:
  P* p_;
};
}  // namespace detail

/// A mutual-exclusion lock for tasks (Python's `asyncio.Lock`). Not owned: any task may
/// release it. FIFO: a release hands the lock straight to the longest-waiting task.
class Lock {
 public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  /// `co_await lock.acquire()`: takes the lock, suspending while another task holds it;
  /// returns true (as Python's).
  /// Does not suspend (and sees no cancellation) when the lock is free.
  /// Cancel safety: cancelling a waiting acquire() leaves the lock untouched; if the lock had
  /// already been handed to the cancelled task, it is passed on to the next waiter (or freed),
  /// never leaked.
  [[nodiscard]] detail::AcquireAwaiter acquire() noexcept { return detail::AcquireAwaiter(core_); }
  /// `auto guard = co_await lock.lock_guard();` — acquire(), then release when `guard` goes.
  /// Cancel safety: as acquire(); a cancelled call returns no guard and holds nothing.
  [[nodiscard]] detail::GuardAwaiter<Lock> lock_guard() noexcept { return {core_, *this}; }
  /// Releases the lock, waking the first waiter. std::logic_error if it is not locked.
  void release();
  [[nodiscard]] bool locked() const noexcept { return core_.value() == 0; }

 private:
  core::SemaphoreCore core_{1};
};

/// A one-shot flag tasks can wait for (Python's `asyncio.Event`).
/// Thread safety: set(), clear() and is_set() may be called from any thread (beyond Python);
/// the woken tasks resume on their own loops. wait() from a task only.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// `co_await ev.wait()`: returns true once the flag is set (at once if it is).
  /// Cancel safety: cancelling a waiting wait() just ends it with CancelledError; nothing is
  /// lost (an Event has nothing to hand out).
  [[nodiscard]] detail::EventAwaiter wait() noexcept { return detail::EventAwaiter(core_); }
  /// Sets the flag and wakes every waiting task.
  void set() noexcept { core_.set(); }
  /// Resets the flag; tasks already woken still return true.
  void clear() noexcept { core_.clear(); }
  [[nodiscard]] bool is_set() const noexcept { return core_.is_set(); }

 private:
  core::EventCore core_;
};

/// A semaphore for tasks (Python's `asyncio.Semaphore`): acquire() takes a unit, release() adds
/// one. FIFO hand-off to waiters.
class Semaphore {
 public:
  /// std::invalid_argument if `value` < 0.
  explicit Semaphore(std::int64_t value = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// `co_await sem.acquire()`: takes a unit, suspending while none is free; returns true.
  /// Cancel safety: a cancelled acquire() holds no unit; a unit handed to it while it was
  /// being cancelled goes to the next waiter (or back to the semaphore).
  [[nodiscard]] detail::AcquireAwaiter acquire() noexcept { return detail::AcquireAwaiter(core_); }
  /// `auto guard = co_await sem.lock_guard();` — acquire(), release when `guard` goes.
  /// Cancel safety: as acquire().
  [[nodiscard]] detail::GuardAwaiter<Semaphore> lock_guard() noexcept { return {core_, *this}; }
  /// Adds a unit (to the first waiter if any). BoundedSemaphore: std::invalid_argument if that
  /// would exceed the initial value.
  void release();
  /// True if acquire() would suspend.
  [[nodiscard]] bool locked() const noexcept { return core_.value() == 0; }
  /// Free units.
  [[nodiscard]] std::int64_t value() const noexcept { return core_.value(); }

 protected:
  Semaphore(std::int64_t value, bool bounded);

 private:
  core::SemaphoreCore core_;
  std::int64_t bound_ = -1;  // the initial value for a BoundedSemaphore, else -1
};

/// A Semaphore that refuses to be released above its initial value (Python's
/// `asyncio.BoundedSemaphore`): over-release throws std::invalid_argument.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::int64_t value = 1) : Semaphore(value, true) {}
};

/// A condition variable for tasks (Python's `asyncio.Condition`), bound to an asyncio Lock:
/// its own, or one given to the constructor (which must outlive it).
class Condition {
 public:
  Condition() noexcept : lock_(&own_) {}
  explicit Condition(Lock& lock) noexcept : lock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;
  ~Condition() { detail::detach_all(waiters_); }

  /// The underlying lock's acquire(). Cancel safety: as Lock::acquire().
  [[nodiscard]] detail::AcquireAwaiter acquire() noexcept { return lock_->acquire(); }
  /// The underlying lock's lock_guard(). Cancel safety: as Lock::acquire().
  [[nodiscard]] detail::GuardAwaiter<Lock> lock_guard() noexcept { return lock_->lock_guard(); }
  void release() { lock_->release(); }
  [[nodiscard]] bool locked() const noexcept { return lock_->locked(); }

  /// `co_await cond.wait()`: releases the lock, waits for a notify, re-acquires the lock and
  /// returns true. std::logic_error if the lock is not held.
  /// Cancel safety: the lock is always re-acquired before wait() ends, CancelledError or not
  /// (cancellations during the re-acquire are absorbed and reported once); a notification
  /// that reached a cancelled waiter is passed on to the next waiter, so none is lost.
  Coro<bool> wait();
  /// `co_await cond.wait_for(pred)`: waits until pred() is truthy; returns its last value.
  /// The lock must be held. Cancel safety: as wait().
  template <class Pred>
  Coro<std::decay_t<std::invoke_result_t<Pred&>>> wait_for(Pred pred) {
    auto result = pred();
    while (!result) {
      co_await wait();
      result = pred();
    }
    co_return result;
  }
  /// Wakes up to `n` waiting tasks (they then re-acquire the lock). std::logic_error if the
  /// lock is not held.
  void notify(std::size_t n = 1);
  /// Wakes every waiting task. std::logic_error if the lock is not held.
  void notify_all();

 private:
  void notify_n(std::size_t n) noexcept;
  Lock own_;
  Lock* lock_;
  core::WaitList waiters_;
};

/// A cyclic barrier for a fixed number of tasks (Python's `asyncio.Barrier`).
class Barrier {
 public:
  /// std::invalid_argument if `parties` < 1.
  explicit Barrier(std::size_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;
  ~Barrier() { detail::detach_all(waiters_); }

  /// `std::size_t i = co_await bar.wait();`: suspends until `parties` tasks have called wait()
  /// and returns a distinct index in [0, parties) (arrival order). Throws BrokenBarrierError if
  /// the barrier is broken, or is aborted or reset while the task waits. Tasks arriving while
  /// the previous cycle drains wait for the next cycle.
  /// Cancel safety: a cancelled waiter leaves the barrier (n_waiting drops by one) without
  /// breaking it, as in Python.
  Coro<std::size_t> wait();
  /// Returns the barrier to its empty state; waiting tasks get BrokenBarrierError. Takes effect
  /// at once; the result may be co_awaited as in Python.
  detail::ReadyAwaitable reset();
  /// Breaks the barrier: waiting and later wait() calls throw BrokenBarrierError until reset().
  /// Takes effect at once; the result may be co_awaited as in Python.
  detail::ReadyAwaitable abort();
  [[nodiscard]] bool broken() const noexcept { return state_ == State::broken; }
  [[nodiscard]] std::size_t parties() const noexcept { return parties_; }
  /// Tasks waiting in the current filling cycle.
  [[nodiscard]] std::size_t n_waiting() const noexcept { return state_ == State::filling ? count_ : 0; }

 private:
  enum class State : unsigned char { filling, draining, resetting, broken };
  void exit() noexcept;
  std::size_t parties_;
  std::size_t count_ = 0;
  State state_ = State::filling;
  core::WaitList waiters_;
};

}  // namespace concur::asyncio
