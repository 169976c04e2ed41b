#include "concur/asyncio/locks.hpp"

#include <stdexcept>

namespace concur::asyncio {

namespace detail {

namespace {
TaskBase* require_task(const char* what) {
  TaskBase* t = current_task_base();
  if (!t)
    throw std::logic_error(std::string(what) +
                           " awaited outside of an asyncio task; await it from a coroutine run by a loop");
  return t;
}
}  // namespace

// ---- AcquireAwaiter -----------------------------------------------------------------------

AcquireAwaiter::~AcquireAwaiter() {
  // The frame dies while waiting (its loop closes): give back a unit granted meanwhile.
  if (state_ == State::armed && core_->disarm(node_)) core_->release();
}

bool AcquireAwaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = require_task("asyncio Lock/Semaphore acquire()");
  if (task_->cancel_before_suspend()) {
    state_ = State::cancelled;
    return false;
  }
  waiter_.emplace(task_);
  node_.waiter = &*waiter_;
  if (core_->acquire_or_arm(node_)) {
    state_ = State::acquired;
    return false;
  }
  state_ = State::armed;
  task_->suspended_at(h, this);
  return true;
}

CancelResult AcquireAwaiter::cancel() noexcept {
  // disarm() is true if a unit was handed over meanwhile: the task resumes owning it and gives
  // it back in await_resume (Python's Lock.acquire: "if not self._locked: self._wake_up_first()").
  if (core_->disarm(node_)) return CancelResult::too_late;
  state_ = State::cancelled;
  return CancelResult::detached;
}

bool AcquireAwaiter::await_resume() {
  State s = std::exchange(state_, State::idle);
  if (s == State::cancelled) {
    task_->check_cancelled();  // throws: the cancellation was consumed before or at detaching
  } else if (s == State::armed && task_->take_cancelled()) {
    // Woken only by a grant, then cancelled: we own a unit we must not keep.
    core_->release();  // to the next waiter, not leaked
    throw CancelledError();
  }
  return true;
}

// ---- EventAwaiter -------------------------------------------------------------------------

EventAwaiter::~EventAwaiter() {
  if (armed_) core_->disarm(node_);
}

bool EventAwaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = require_task("asyncio Event.wait()");
  if (task_->cancel_before_suspend()) return false;
  waiter_.emplace(task_);
  node_.waiter = &*waiter_;
  if (!core_->arm(node_)) return false;  // set meanwhile
  armed_ = true;
  task_->suspended_at(h, this);
  return true;
}

CancelResult EventAwaiter::cancel() noexcept {
  core_->disarm(node_);  // after this, no wake() is in flight for us
  armed_ = false;
  return waiter_->woken.load(std::memory_order_acquire) ? CancelResult::too_late : CancelResult::detached;
}

bool EventAwaiter::await_resume() {
  armed_ = false;
  if (task_) task_->check_cancelled();
  return true;
}

// ---- ListAwaiter --------------------------------------------------------------------------

bool ListAwaiter::await_suspend(std::coroutine_handle<> h) {
  task_ = require_task("asyncio Condition/Barrier/Queue wait");
  if (task_->cancel_before_suspend()) return false;
  waiter_.emplace(task_);
  node_.waiter = &*waiter_;
  node_.granted = false;
  list_->push_back(node_);
  task_->suspended_at(h, this);
  return true;
}

bool notify_first(core::WaitList& list) noexcept {
  core::WaitNode* n = list.pop_front();
  if (!n) return false;
  n->granted = true;
  n->waiter->wake();
  return true;
}

std::size_t notify_all(core::WaitList& list) noexcept {
  std::size_t count = 0;
  while (notify_first(list)) ++count;
  return count;
}

void detach_all(core::WaitList& list) noexcept {
  while (list.pop_front()) {
  }
}

}  // namespace detail

// ---- Lock ---------------------------------------------------------------------------------

void Lock::release() {
  if (!core_.release_bounded(1, 1))
    throw std::logic_error("asyncio Lock.release(): the lock is not acquired; release only a lock you acquired");
}

// ---- Semaphore ----------------------------------------------------------------------------

Semaphore::Semaphore(std::int64_t value) : Semaphore(value, false) {}

Semaphore::Semaphore(std::int64_t value, bool bounded) : core_(value), bound_(bounded ? value : -1) {
  if (value < 0) throw std::invalid_argument("asyncio Semaphore: the initial value must be >= 0");
}

void Semaphore::release() {
  if (bound_ < 0) {
    core_.release(1);
    return;
  }
  if (!core_.release_bounded(1, bound_))
    throw std::invalid_argument(
        "asyncio BoundedSemaphore.release(): released too many times (above the initial value)");
}

// ---- Condition ----------------------------------------------------------------------------

Coro<bool> Condition::wait() {
  if (!lock_->locked())
    throw std::logic_error("asyncio Condition.wait(): the lock is not acquired; co_await cond.acquire() first");
  lock_->release();
  std::exception_ptr err;
  bool notified = false;
  try {
    co_await detail::ListAwaiter(waiters_, &notified);
  } catch (...) {
    err = std::current_exception();
  }
  // The lock is re-acquired even if the wait was cancelled (Python does the same).
  for (;;) {
    try {
      co_await lock_->acquire();
      break;
    } catch (const CancelledError&) {
      if (!err) err = std::current_exception();
    }
  }
  if (err) {
    // A notification this task consumed but cannot act on goes to the next waiter.
    if (notified) notify_n(1);
    std::rethrow_exception(err);
  }
  co_return true;
}

void Condition::notify(std::size_t n) {
  if (!lock_->locked())
    throw std::logic_error("asyncio Condition.notify(): the lock is not acquired; co_await cond.acquire() first");
  notify_n(n);
}

void Condition::notify_all() {
  if (!lock_->locked())
    throw std::logic_error("asyncio Condition.notify_all(): the lock is not acquired; co_await cond.acquire() first");
  detail::notify_all(waiters_);
}

void Condition::notify_n(std::size_t n) noexcept {
  for (std::size_t i = 0; i < n && detail::notify_first(waiters_); ++i) {
  }
}

// ---- Barrier ------------------------------------------------------------------------------

Barrier::Barrier(std::size_t parties) : parties_(parties) {
  if (parties < 1) throw std::invalid_argument("asyncio Barrier: parties must be >= 1");
}

Coro<std::size_t> Barrier::wait() {
  // Tasks arriving while the previous cycle drains (or resets) wait for the next one.
  while (state_ == State::draining || state_ == State::resetting) {
    co_await detail::ListAwaiter(waiters_);
  }
  if (state_ == State::broken) throw BrokenBarrierError("the barrier is broken (aborted); reset() it first");
  std::size_t index = count_++;
  std::exception_ptr err;
  if (index + 1 == parties_) {
    state_ = State::draining;
    detail::notify_all(waiters_);
  } else {
    try {
      while (state_ == State::filling) {
        co_await detail::ListAwaiter(waiters_);
      }
      if (state_ == State::broken || state_ == State::resetting)
        throw BrokenBarrierError("the barrier was aborted or reset while waiting");
    } catch (...) {
      err = std::current_exception();
    }
  }
  --count_;
  exit();
  if (err) std::rethrow_exception(err);
  co_return index;
}

void Barrier::exit() noexcept {
  if (count_ == 0) {
    if (state_ == State::resetting || state_ == State::draining) state_ = State::filling;
    detail::notify_all(waiters_);
  }
}

detail::ReadyAwaitable Barrier::reset() {
  if (count_ > 0) {
    state_ = State::resetting;
  } else {
    state_ = State::filling;
  }
  detail::notify_all(waiters_);
  return {};
}

detail::ReadyAwaitable Barrier::abort() {
  state_ = State::broken;
  detail::notify_all(waiters_);
  return {};
}

}  // namespace concur::asyncio
