#pragma once
/// \file concurrent.futures.Future and Promise.
#include <chrono>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include "concur/core/error.hpp"
#include "concur/futures/detail/state.hpp"
#include "concur/futures/errors.hpp"

namespace concur::futures {

template <class T>
class Future;
template <class T>
class Promise;

namespace detail {
struct Adopt {};
template <class T>
Future<T> adopt_future(State<T>* s) noexcept;
template <class T>
State<T>* state_of(const Future<T>& f) noexcept;
}  // namespace detail

/// The eventual result of an asynchronous call (Python's `concurrent.futures.Future`).
///
/// A Future is a handle: copies share one state (as Python references do), and the state lives
/// as long as any handle, Promise or queue refers to it. Dropping every handle does not cancel
/// the task.
///
/// Thread safety: every member may be called from any thread, concurrently.
/// Waiting: `result()`/`exception()` block the calling thread; on a ThreadPoolExecutor worker
/// they run other queued tasks of that pool meanwhile, so nested waits never deadlock.
template <class T>
class Future {
 public:
  using value_type = T;

  /// An empty handle (`valid()` is false); any other call on it is undefined.
  Future() = default;
  Future(const Future& o) noexcept : s_(o.s_) {
    if (s_) s_->add_ref();
  }
  Future(Future&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Future& operator=(Future o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Future() {
    if (s_) s_->release_ref();
  }

  /// Waits for the result and returns it (a reference into the shared state, valid while any
  /// handle lives); rethrows the task's exception; CancelledError if cancelled.
  decltype(auto) result() const { return result_impl(std::nullopt); }
  /// As result(), but throws concur::TimeoutError if not done within `timeout`.
  template <class Rep, class Period>
  decltype(auto) result(std::chrono::duration<Rep, Period> timeout) const {
    return result_impl(core::deadline_after(timeout));
  }

  /// Waits, then returns the task's exception (null if it succeeded). CancelledError if
  /// cancelled; TimeoutError on timeout.
  std::exception_ptr exception() const { return exception_impl(std::nullopt); }
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
    return exception_impl(core::deadline_after(timeout));
  }

  /// Cancels the call if it has not started; returns whether the future is cancelled.
  /// Waiters are woken and done-callbacks run (on the calling thread).
  bool cancel() const noexcept { return s_->cancel(); }
  [[nodiscard]] bool cancelled() const noexcept { return s_->cancelled(); }
  [[nodiscard]] bool running() const noexcept { return s_->running(); }
  [[nodiscard]] bool done() const noexcept { return s_->done(); }
  [[nodiscard]] bool valid() const noexcept { return s_ != nullptr; }

  /// Calls `fn(future)` when the future completes or is cancelled — at once, on this thread,
  /// if it already is; otherwise on the thread that completes it. Callbacks run in the order
  /// they were added. An exception thrown by a callback is reported (concur::report_unraisable)
  /// and never propagated.
  template <class F>
    requires std::is_invocable_v<F&, Future<T>>
  void add_done_callback(F&& fn) const {
    auto* cb = new Callback<std::decay_t<F>>(std::forward<F>(fn));
    cb->internal = false;
    if (!s_->add_listener(*cb)) cb->fire(*s_);
  }

  /// Beyond Python: a future of `fn(result)` (or `fn()` for void), run on the thread that
  /// completes this future (or at once if done). Exceptions and cancellation propagate.
  template <class F>
  auto then(F&& fn) const;

  /// For executor authors and other faces (asyncio, green): the type-erased state.
  [[nodiscard]] detail::StateBase* state() const noexcept { return s_; }

  friend bool operator==(const Future& a, const Future& b) noexcept { return a.s_ == b.s_; }

 private:
  friend Future detail::adopt_future<T>(detail::State<T>*) noexcept;
  friend detail::State<T>* detail::state_of<T>(const Future&) noexcept;
  Future(detail::Adopt, detail::State<T>* s) noexcept : s_(s) {}

  template <class F>
  struct Callback final : detail::Listener {
    explicit Callback(F&& f) : fn(std::move(f)) {}
    explicit Callback(const F& f) : fn(f) {}
    void fire(detail::StateBase& st) noexcept override {
      auto* typed = static_cast<detail::State<T>*>(&st);
      typed->add_ref();
      try {
        fn(Future(detail::Adopt{}, typed));
      } catch (...) {
        report_unraisable("exception calling callback for future", std::current_exception());
      }
      delete this;
    }
    void discard() noexcept override { delete this; }
    F fn;
  };

  decltype(auto) result_impl(core::Deadline deadline) const {
    s_->wait_or_throw(deadline);
    if (s_->exception_ptr()) std::rethrow_exception(s_->exception_ptr());
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<const T&>(s_->value());
    }
  }
  std::exception_ptr exception_impl(core::Deadline deadline) const {
    s_->wait_or_throw(deadline);
    return s_->exception_ptr();
  }

  detail::State<T>* s_ = nullptr;
};

/// The producing side of a Future, for executor authors (Python's Future.set_result etc.).
/// Move-only. Destroying a Promise whose future is not done sets BrokenPromise, so no waiter
/// hangs. Thread safety: set_* may race with any Future member; only one set_* wins, the
/// others throw InvalidStateError.
template <class T>
class Promise {
 public:
  Promise() : s_(new detail::State<T>()) {}
  Promise(Promise&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Promise& operator=(Promise&& o) noexcept {
    if (this != &o) {
      abandon();
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() { abandon(); }

  /// A handle to the future (may be called any number of times).
  Future<T> get_future() const {
    s_->add_ref();
    return detail::adopt_future<T>(s_);
  }
  template <class... A>
  void set_result(A&&... a) {
    s_->set_value(std::forward<A>(a)...);
  }
  void set_exception(std::exception_ptr e) { s_->set_exception(std::move(e)); }
  template <class E>
  void set_exception(E&& e) {
    s_->set_exception(std::make_exception_ptr(std::forward<E>(e)));
  }
  /// pending -> running; false if the future was cancelled (then don't run the work).
  bool set_running_or_notify_cancel() { return s_->set_running_or_notify_cancel(); }

 private:
  void abandon() noexcept {
    if (!s_) return;
    if (!s_->done()) s_->try_set_exception(std::make_exception_ptr(BrokenPromise()));
    s_->release_ref();
    s_ = nullptr;
  }
  detail::State<T>* s_;
};

namespace detail {
template <class T>
Future<T> adopt_future(State<T>* s) noexcept {
  return Future<T>(Adopt{}, s);
}
template <class T>
State<T>* state_of(const Future<T>& f) noexcept {
  return f.s_;
}

template <class T, class F>
struct then_result {
  using type = std::invoke_result_t<F&, const T&>;
};
template <class F>
struct then_result<void, F> {
  using type = std::invoke_result_t<F&>;
};
}  // namespace detail

template <class T>
template <class F>
auto Future<T>::then(F&& fn) const {
  using U = typename detail::then_result<T, std::decay_t<F>>::type;
  auto p = std::make_shared<Promise<U>>();
  Future<U> out = p->get_future();
  add_done_callback([p, f = std::decay_t<F>(std::forward<F>(fn))](Future<T> done) mutable {
    if (done.cancelled()) {
      detail::state_of(p->get_future())->cancel();
      return;
    }
    if (auto e = done.state()->exception_ptr()) {
      p->set_exception(e);
      return;
    }
    try {
      if constexpr (std::is_void_v<T>) {
        if constexpr (std::is_void_v<U>) {
          f();
          p->set_result();
        } else {
          p->set_result(f());
        }
      } else {
        if constexpr (std::is_void_v<U>) {
          f(done.result());
          p->set_result();
        } else {
          p->set_result(f(done.result()));
        }
      }
    } catch (...) {
      p->set_exception(std::current_exception());
    }
  });
  return out;
}

}  // namespace concur::futures
