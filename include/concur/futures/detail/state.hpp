#pragma once
// The shared state behind Future/Promise and the task object a pool runs: one allocation holds
// the state, the callable and its arguments.
#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "concur/core/detail/function_ref.hpp"
#include "concur/core/error.hpp"
#include "concur/core/futex.hpp"
#include "concur/core/waiter.hpp"

namespace concur::futures::detail {

/// What a Future<void> stores.
struct Unit {};
template <class T>
using stored_t = std::conditional_t<std::is_void_v<T>, Unit, T>;

class StateBase;
void set_exception_completing(StateBase& s, std::exception_ptr e) noexcept;

/// A registration on a future: fired once when it completes or is cancelled.
/// Internal listeners (waiters) fire under the state's lock and must only signal; user
/// callbacks (internal == false) fire after, outside the lock, in registration order, and are
/// deleted after firing.
struct Listener {
  Listener* next = nullptr;
  Listener* prev = nullptr;
  bool internal = true;
  bool linked = false;
  virtual void fire(StateBase& state) noexcept = 0;
  /// Frees a user callback that will never fire (its state died pending).
  virtual void discard() noexcept {}

 protected:
  ~Listener() = default;
};

/// Wakes a core::Waiter (a thread now; a coroutine or greenlet later) when the future is done.
struct WaiterListener final : Listener {
  WaiterListener() = default;
  explicit WaiterListener(core::Waiter& w) : waiter(&w) {}
  core::Waiter* waiter = nullptr;
  void fire(StateBase&) noexcept override { waiter->wake(); }
};

enum class Status : std::uint8_t {
  pending,     // not started; cancellable
  running,     // a worker runs it (set_running_or_notify_cancel succeeded)
  completing,  // a result is being stored (transient, exclusive)
  finished,    // result or exception stored
  cancelled,
};

/// The type-independent part of a future's state. Reference counted: each Future handle, each
/// Promise and the queue that holds a task own one reference.
class StateBase {
 public:
  StateBase() = default;
  StateBase(const StateBase&) = delete;
  StateBase& operator=(const StateBase&) = delete;
  virtual ~StateBase();

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release_ref() noexcept {
    // acq_rel: the last owner must see every write of the others before destroying.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  void init_refs(std::uint32_t n) noexcept { refs_.store(n, std::memory_order_relaxed); }

  /// Runs the task (pool side). Never throws. Does nothing if it was cancelled.
  virtual void run() noexcept {}

  [[nodiscard]] Status status() const noexcept { return status_.load(std::memory_order_acquire); }
  [[nodiscard]] bool done() const noexcept {
    auto s = status();
    return s == Status::finished || s == Status::cancelled;
  }
  [[nodiscard]] bool cancelled() const noexcept { return status() == Status::cancelled; }
  [[nodiscard]] bool running() const noexcept { return status() == Status::running; }
  /// True if done with an exception (cancelled excluded).
  [[nodiscard]] bool failed() const noexcept { return status() == Status::finished && exc_ != nullptr; }

  /// pending -> cancelled. True if the future is cancelled now.
  bool cancel() noexcept;
  /// Python's Future.set_running_or_notify_cancel: pending -> running; false if cancelled.
  /// Throws InvalidStateError if already running or done.
  bool set_running_or_notify_cancel();
  /// Stores an exception; throws InvalidStateError if already done.
  void set_exception(std::exception_ptr e);
  /// As set_exception but returns false instead of throwing.
  bool try_set_exception(std::exception_ptr e) noexcept;

  /// pending/running -> cancelled (an asyncio Task whose coroutine ended by CancelledError).
  bool set_cancelled() noexcept;

  /// Registers `l`; returns false (registering nothing) if already done.
  bool add_listener(Listener& l) noexcept;
  /// Unregisters `l` if still registered (returns whether it was); once this returns, `l` is
  /// not being fired.
  bool remove_listener(Listener& l) noexcept;

  /// Blocks (or, on a pool worker, runs other tasks) until done or the deadline; returns done().
  bool wait(core::Deadline deadline);
  /// Waits, then throws CancelledError / TimeoutError as Python's result() does.
  void wait_or_throw(core::Deadline deadline);
  [[nodiscard]] const std::exception_ptr& exception_ptr() const noexcept { return exc_; }

  /// Intrusive link used by executors' queues.
  StateBase* next_task = nullptr;

 protected:
  /// pending/running -> completing; false if already completing or done.
  bool begin_complete() noexcept;
  /// completing -> finished, then fires listeners.
  void end_complete() noexcept;
  /// pending -> running; false if cancelled (or already started).
  bool begin_running() noexcept;
  friend void set_exception_completing(StateBase& s, std::exception_ptr e) noexcept;

 private:
  void fire_listeners() noexcept;

  std::atomic<std::uint32_t> refs_{1};
  std::atomic<Status> status_{Status::pending};
  std::atomic<bool> has_listeners_{false};
  core::SpinLock lock_;       // guards the listener list
  Listener* head_ = nullptr;  // guarded by lock_
  Listener* tail_ = nullptr;  // guarded by lock_
  std::exception_ptr exc_;    // written before finished is published
};

/// A state holding a T (Unit for void).
template <class T>
class State : public StateBase {
 public:
  using value_type = stored_t<T>;

  template <class... A>
  void set_value(A&&... a) {
    if (!begin_complete()) throw InvalidStateError("the future is already done");
    try {
      value_.emplace(std::forward<A>(a)...);
    } catch (...) {
      store_exception_completing(std::current_exception());
      return;
    }
    end_complete();
  }
  /// The value; only valid once finished without exception.
  value_type& value() noexcept { return *value_; }

 protected:
  template <class F>
  void complete_with(F& f) noexcept {
    if (!begin_complete()) return;
    store_result(f);
  }
  template <class F>
  void store_result(F& f) noexcept {
    try {
      if constexpr (std::is_void_v<T>) {
        f();
        value_.emplace();
      } else {
        value_.emplace(f());
      }
    } catch (...) {
      store_exception_completing(std::current_exception());
      return;
    }
    end_complete();
  }
  void store_exception_completing(std::exception_ptr e) noexcept;

 private:
  std::optional<value_type> value_;
};

void set_exception_completing(StateBase& s, std::exception_ptr e) noexcept;

template <class T>
void State<T>::store_exception_completing(std::exception_ptr e) noexcept {
  set_exception_completing(*this, std::move(e));
}

/// A task: the state plus the callable that produces its value.
template <class T, class Fn>
class Task final : public State<T> {
 public:
  explicit Task(Fn&& fn) : fn_(std::move(fn)) {}
  void run() noexcept override {
    if (!this->begin_running()) return;
    this->store_result(*fn_);
    fn_.reset();  // drop the callable and its arguments now, as Python does
  }

 private:
  std::optional<Fn> fn_;
};

/// Blocks the calling thread until ready(), helping its pool when called on a pool worker.
/// `arm(w)` registers `w` to be woken when ready() may have become true and returns true, or
/// registers nothing and returns false (ready() already holds); `disarm(w)` undoes a successful
/// arm and is not called after a failed one.
bool block_until(concur::detail::function_ref<bool()> ready, concur::detail::function_ref<bool(core::Waiter&)> arm,
                 concur::detail::function_ref<void(core::Waiter&)> disarm, core::Deadline deadline);

}  // namespace concur::futures::detail
