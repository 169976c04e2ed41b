#include "concur/futures/future.hpp"

#include <mutex>

namespace concur::futures::detail {

StateBase::~StateBase() {
  // Callbacks never fired (a state dropped while pending) are freed without running.
  Listener* l = head_;
  while (l) {
    Listener* n = l->next;
    l->linked = false;
    if (!l->internal) l->discard();
    l = n;
  }
}

bool StateBase::cancel() noexcept {
  Status s = status_.load(std::memory_order_acquire);
  for (;;) {
    if (s == Status::cancelled) return true;
    if (s != Status::pending) return false;
    if (status_.compare_exchange_weak(s, Status::cancelled, std::memory_order_seq_cst, std::memory_order_acquire))
      break;
  }
  fire_listeners();
  return true;
}

bool StateBase::set_cancelled() noexcept {
  Status s = status_.load(std::memory_order_acquire);
  for (;;) {
    if (s != Status::pending && s != Status::running) return false;
    if (status_.compare_exchange_weak(s, Status::cancelled, std::memory_order_seq_cst, std::memory_order_acquire))
      break;
  }
  fire_listeners();
  return true;
}

bool StateBase::set_running_or_notify_cancel() {
  Status s = Status::pending;
  if (status_.compare_exchange_strong(s, Status::running, std::memory_order_acq_rel, std::memory_order_acquire))
    return true;
  if (s == Status::cancelled) return false;
  throw InvalidStateError("set_running_or_notify_cancel: the future is already running or done");
}

bool StateBase::begin_running() noexcept {
  Status s = Status::pending;
  return status_.compare_exchange_strong(s, Status::running, std::memory_order_acq_rel, std::memory_order_acquire);
}

bool StateBase::begin_complete() noexcept {
  Status s = status_.load(std::memory_order_acquire);
  for (;;) {
    if (s != Status::pending && s != Status::running) return false;
    if (status_.compare_exchange_weak(s, Status::completing, std::memory_order_acquire, std::memory_order_acquire))
      return true;
  }
}

void StateBase::end_complete() noexcept {
  // seq_cst: pairs with add_listener's store of has_listeners_ then load of status_.
  status_.store(Status::finished, std::memory_order_seq_cst);
  fire_listeners();
}

void StateBase::set_exception(std::exception_ptr e) {
  if (!try_set_exception(std::move(e))) throw InvalidStateError("the future is already done");
}

bool StateBase::try_set_exception(std::exception_ptr e) noexcept {
  if (!begin_complete()) return false;
  exc_ = std::move(e);
  end_complete();
  return true;
}

void set_exception_completing(StateBase& s, std::exception_ptr e) noexcept {
  s.exc_ = std::move(e);
  s.end_complete();
}

bool StateBase::add_listener(Listener& l) noexcept {
  std::lock_guard g(lock_);
  has_listeners_.store(true, std::memory_order_seq_cst);
  if (done()) return false;
  l.next = nullptr;
  l.prev = tail_;
  l.linked = true;
  if (tail_)
    tail_->next = &l;
  else
    head_ = &l;
  tail_ = &l;
  return true;
}

bool StateBase::remove_listener(Listener& l) noexcept {
  std::lock_guard g(lock_);
  if (!l.linked) return false;
  if (l.prev)
    l.prev->next = l.next;
  else
    head_ = l.next;
  if (l.next)
    l.next->prev = l.prev;
  else
    tail_ = l.prev;
  l.next = l.prev = nullptr;
  l.linked = false;
  return true;
}

void StateBase::fire_listeners() noexcept {
  if (!has_listeners_.load(std::memory_order_seq_cst)) return;
  Listener* callbacks = nullptr;
  Listener* callbacks_tail = nullptr;
  {
    std::lock_guard g(lock_);
    Listener* l = head_;
    head_ = tail_ = nullptr;
    while (l) {
      Listener* n = l->next;
      l->linked = false;
      l->prev = l->next = nullptr;
      if (l->internal) {
        l->fire(*this);  // waiters only signal; firing under the lock lets remove_listener sync
      } else {
        if (callbacks_tail)
          callbacks_tail->next = l;
        else
          callbacks = l;
        callbacks_tail = l;
      }
      l = n;
    }
  }
  while (callbacks) {
    Listener* n = callbacks->next;
    callbacks->fire(*this);  // user callback: deletes itself
    callbacks = n;
  }
}

bool StateBase::wait(core::Deadline deadline) {
  if (done()) return true;
  WaiterListener listener;
  return block_until([this] { return done(); },
                     [&](core::Waiter& w) {
                       listener.waiter = &w;
                       return add_listener(listener);
                     },
                     [&](core::Waiter&) { remove_listener(listener); }, deadline);
}

void StateBase::wait_or_throw(core::Deadline deadline) {
  if (!wait(deadline)) throw TimeoutError("the future did not complete in time");
  if (cancelled()) throw CancelledError("the future was cancelled");
}

}  // namespace concur::futures::detail
