#pragma once
/// \file asyncio.Task, create_task, and the suspension protocol every awaitable follows.
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "concur/asyncio/coro.hpp"
#include "concur/asyncio/loop.hpp"
#include "concur/core/waiter.hpp"
#include "concur/futures/future.hpp"

namespace concur::asyncio {

namespace detail {

/// What cancelling a suspended await achieved.
enum class CancelResult {
  detached,    ///< the await will never be woken: resume the task now with CancelledError
  propagated,  ///< the cancellation was passed on (to an awaited task); its outcome decides
  too_late,    ///< a wake-up is already on its way: CancelledError is delivered when it lands
};

/// One suspended await of a task (every leaf awaitable implements it).
class Suspension {
 public:
  virtual CancelResult cancel() noexcept = 0;

 protected:
  virtual ~Suspension() = default;  // virtual: -Wnon-virtual-dtor (Werror) on StateAwaiter
};

/// The coroutine side of a Task: its root frame, where it is suspended, and the cancellation
/// bookkeeping of Python's Task (`_must_cancel`, `_num_cancels_requested`).
/// Loop thread only.
class TaskBase {
 public:
  TaskBase(const TaskBase&) = delete;
  TaskBase& operator=(const TaskBase&) = delete;

  /// The future side (refcount, result, listeners).
  virtual futures::detail::StateBase& state() noexcept = 0;

  /// Python's Task.cancel(): requests cancellation; false if already done.
  bool cancel() noexcept;
  /// Number of pending cancellation requests (Python's cancelling()).
  [[nodiscard]] int cancelling() const noexcept { return cancel_requests_; }
  /// Python's uncancel(): one request fewer; returns the remaining count.
  int uncancel() noexcept {
    if (cancel_requests_ > 0) --cancel_requests_;
    if (cancel_requests_ == 0) must_cancel_ = false;
    return cancel_requests_;
  }
  /// Python's name: the one given, else "Task-N" (N: the task's number).
  [[nodiscard]] std::string name() const;
  void set_name(std::string n);
  /// The task's number, unique in the process, taken when it was created (Python's Task-N
  /// counter): 1, 2, 3, ... for the tasks one thread creates; each thread draws its numbers
  /// from the shared counter in blocks of 256. Also the task's id in traces.
  [[nodiscard]] std::uint64_t number() const noexcept {
    return (name_ & 1U) != 0 ? name_ >> 1U : reinterpret_cast<const Named*>(name_)->number;
  }
  [[nodiscard]] EventLoop& loop() const noexcept { return *loop_; }

  // ---- the suspension protocol (called by awaitables on the task's thread) ----
  /// Before suspending: if a cancellation is pending, consumes it and returns true (then do
  /// not suspend; await_resume must call check_cancelled()).
  bool cancel_before_suspend() noexcept {
    if (!must_cancel_) return false;
    must_cancel_ = false;
    cancel_delivered_ = true;
    return true;
  }
  /// Records where the task sleeps and what to cancel.
  void suspended_at(std::coroutine_handle<> h, Suspension* s) noexcept {
    resume_ = h;
    waiting_on_ = s;
  }
  /// After resuming: throws CancelledError if a cancellation was delivered to this await.
  void check_cancelled() {
    if (cancel_delivered_) {
      cancel_delivered_ = false;
      throw CancelledError();
    }
  }
  /// True if a cancellation is due at this await (consumes it); for awaitables that must undo
  /// something before throwing.
  bool take_cancelled() noexcept { return std::exchange(cancel_delivered_, false); }
  /// Records that the result or exception was looked at (no "never retrieved" report).
  void mark_retrieved() noexcept { retrieved_ = true; }

  /// "name: outer -> inner -> ... " — where the task is suspended (debug dumps).
  [[nodiscard]] std::string await_chain() const;
  /// Runs one step (loop internals).
  void step() noexcept;
  /// Destroys a task that never finished (loop closing).
  void abandon() noexcept;

  TaskBase* next_in_loop = nullptr;  // the loop's list of pending tasks
  TaskBase* prev_in_loop = nullptr;

 protected:
  TaskBase(EventLoop& loop, std::coroutine_handle<> root, std::string name);
  ~TaskBase();
  virtual PromiseBase* root_promise() const noexcept = 0;
  /// Stores the root coroutine's outcome into the future side.
  virtual void complete_from_root() noexcept = 0;
  void report_if_unretrieved() noexcept;
  std::coroutine_handle<> root_;

 private:
  struct Named {
    std::uint64_t number;
    std::string name;
  };
  void finish() noexcept;
  EventLoop* loop_;
  // While unnamed, the task's number as (N << 1) | 1; once named, a Named (owned). One word
  // either way: a task stays 128 bytes, one size class of the frame pool.
  std::uintptr_t name_;
  std::coroutine_handle<> resume_;  // where to continue
  Suspension* waiting_on_ = nullptr;
  std::uint16_t cancel_requests_ = 0;  // with the flags below: one 8-byte slot

 protected:
  bool retrieved_ = false;

 private:
  bool must_cancel_ = false;
  bool cancel_delivered_ = false;
  bool started_ = false;
  bool finished_ = false;
};

/// The task whose step is running on this thread (null outside tasks).
TaskBase* current_task_base() noexcept;

template <class T>
class TaskState final : public futures::detail::State<T>, public TaskBase {
 public:
  TaskState(EventLoop& loop, Coro<T>&& coro, std::string name) : TaskBase(loop, coro.release(), std::move(name)) {}
  // Task objects come from the same per-thread pool as coroutine frames.
  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
  ~TaskState() override {
    report_if_unretrieved();
    if (root_) root_.destroy();
  }
  futures::detail::StateBase& state() noexcept override { return *this; }

 private:
  PromiseBase* root_promise() const noexcept override {
    if (!root_) return nullptr;
    return &std::coroutine_handle<Promise<T>>::from_address(root_.address()).promise();
  }
  void complete_from_root() noexcept override {
    auto h = std::coroutine_handle<Promise<T>>::from_address(root_.address());
    std::exception_ptr e = h.promise().exception();
    if (e) {
      bool cancelled = false;
      try {
        std::rethrow_exception(e);
      } catch (const CancelledError&) {
        cancelled = true;
      } catch (...) {
      }
      if (cancelled) {
        this->set_cancelled();
      } else {
        this->try_set_exception(e);
      }
    } else {
      try {
        if constexpr (std::is_void_v<T>) {
          this->set_value();
        } else {
          this->set_value(h.promise().take());
        }
      } catch (...) {
        this->try_set_exception(std::current_exception());
      }
    }
    root_.destroy();
    root_ = {};
  }
};

/// Wakes a task from any thread: the await it sleeps in completes.
class TaskWaiter final : public core::Waiter {
 public:
  explicit TaskWaiter(TaskBase* t) noexcept : task_(t) {}
  void wake() noexcept override { task_->loop().schedule_threadsafe(task_); }

 private:
  TaskBase* task_;
};

/// Awaits a futures::detail::StateBase (a Task, or a concurrent futures::Future) without
/// blocking the loop. `propagate_cancel`: cancelling the await cancels the awaited task
/// (Python's Task semantics); otherwise the await is detached and the concurrent future is
/// asked to cancel (Python's wrap_future semantics).
class StateAwaiter : public Suspension {
 public:
  StateAwaiter(futures::detail::StateBase* s, TaskBase* awaited_task) noexcept : s_(s), awaited_task_(awaited_task) {}
  StateAwaiter(StateAwaiter&& o) noexcept : s_(o.s_), awaited_task_(o.awaited_task_) {}
  StateAwaiter(const StateAwaiter&) = delete;
  StateAwaiter& operator=(const StateAwaiter&) = delete;
  ~StateAwaiter();
  bool await_ready() const noexcept { return s_->done(); }
  bool await_suspend(std::coroutine_handle<> h);
  void resume_checks();
  CancelResult cancel() noexcept override;

 protected:
  futures::detail::StateBase* s_;
  TaskBase* awaited_task_;
  TaskBase* task_ = nullptr;
  std::optional<TaskWaiter> waiter_;
  futures::detail::WaiterListener listener_;
  bool registered_ = false;  // listener_ may still be linked (suspended, not yet resumed)
};

}  // namespace detail

/// A scheduled coroutine (Python's `asyncio.Task`), from create_task().
///
/// Strongly owned by its loop until done (never collected while pending). A handle: copies
/// refer to the same task. Awaitable any number of times, from any coroutine on its loop.
/// Cancellation: cancel() throws CancelledError into the coroutine at its current or next
/// suspension point; awaiting a cancelled task throws CancelledError.
/// A task that fails and whose exception is never retrieved is reported once (through
/// concur::report_unraisable) when its last handle goes.
/// Thread safety: loop thread only.
template <class T>
class Task {
 public:
  Task() = default;
  explicit Task(detail::TaskState<T>* s) noexcept : s_(s) {}  // adopts one reference
  Task(const Task& o) noexcept : s_(o.s_) {
    if (s_) s_->add_ref();
  }
  Task(Task&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Task& operator=(Task o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Task() {
    if (s_) s_->release_ref();
  }

  bool cancel() noexcept { return s_->TaskBase::cancel(); }
  [[nodiscard]] bool cancelled() const noexcept { return s_->cancelled(); }
  [[nodiscard]] bool done() const noexcept { return s_->done(); }
  [[nodiscard]] int cancelling() const noexcept { return s_->cancelling(); }
  int uncancel() noexcept { return s_->uncancel(); }
  /// The name given (create_task's or set_name's), else Python's "Task-N".
  [[nodiscard]] std::string get_name() const { return s_->name(); }
  void set_name(std::string n) { s_->set_name(std::move(n)); }
  [[nodiscard]] bool valid() const noexcept { return s_ != nullptr; }

  /// The result; InvalidStateError if not done; CancelledError if cancelled; rethrows.
  decltype(auto) result() const {
    check_done();
    s_->mark_retrieved();
    if (s_->cancelled()) throw CancelledError("the task was cancelled");
    if (auto e = s_->exception_ptr()) std::rethrow_exception(e);
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<const T&>(s_->value());
    }
  }
  /// The exception (null if it succeeded); InvalidStateError if not done.
  std::exception_ptr exception() const {
    check_done();
    s_->mark_retrieved();
    if (s_->cancelled()) throw CancelledError("the task was cancelled");
    return s_->exception_ptr();
  }
  /// Calls fn(task) once done (on the loop's thread), at once if already done.
  template <class F>
  void add_done_callback(F&& fn) const {
    futures::detail::adopt_future<T>((s_->add_ref(), s_))
        .add_done_callback([f = std::forward<F>(fn), self = *this](const futures::Future<T>&) mutable { f(self); });
  }

  struct Awaiter : detail::StateAwaiter {
    explicit Awaiter(detail::TaskState<T>* s) noexcept : StateAwaiter(s, s), ts(s) {}
    detail::TaskState<T>* ts;
    decltype(auto) await_resume() {
      resume_checks();
      ts->mark_retrieved();
      if (ts->cancelled()) throw CancelledError("the awaited task was cancelled");
      if (auto e = ts->exception_ptr()) std::rethrow_exception(e);
      if constexpr (std::is_void_v<T>) {
        return;
      } else {
        return static_cast<const T&>(ts->value());
      }
    }
  };
  Awaiter operator co_await() const noexcept { return Awaiter(s_); }

  [[nodiscard]] detail::TaskState<T>* state() const noexcept { return s_; }

 private:
  void check_done() const {
    if (!s_->done()) throw InvalidStateError("the task is not done yet");
  }
  detail::TaskState<T>* s_ = nullptr;
};

template <class T>
Task<T> EventLoop::create_task(Coro<T> coro, std::string name) {
  auto* s = new detail::TaskState<T>(*this, std::move(coro), std::move(name));
  s->init_refs(2);  // the handle and the loop (until done)
  schedule(s);
  return Task<T>(s);
}

/// Schedules `coro` on the running loop (Python's asyncio.create_task).
template <class T>
Task<T> create_task(Coro<T> coro, std::string name = {}) {
  return get_running_loop().create_task(std::move(coro), std::move(name));
}

template <class T>
T EventLoop::run_until_complete(Task<T> task) {
  run_until_done(task.state());
  if constexpr (std::is_void_v<T>) {
    task.result();
  } else {
    return T(task.result());
  }
}

template <class T>
T EventLoop::run_until_complete(Coro<T> coro) {
  Task<T> task = create_task(std::move(coro));
  run_until_done(task.state());
  if constexpr (std::is_void_v<T>) {
    task.result();
  } else {
    (void)task.result();  // rethrows
    // Nobody else holds this task once it is done: move the value out (move-only T works).
    return std::move(task.state()->value());
  }
}

/// Runs `coro` on a new loop and closes it (Python's asyncio.run). std::logic_error if this
/// thread already runs a loop (instead of hanging).
template <class T>
T run(Coro<T> coro, LoopOptions options = {}) {
  if (running_loop()) throw std::logic_error("asyncio::run() cannot be called from a running event loop");
  EventLoop loop(std::move(options));
  struct Closer {
    EventLoop& l;
    ~Closer() {
      l.cancel_all_tasks();
      l.close();
    }
  } closer{loop};
  return loop.run_until_complete(std::move(coro));
}

namespace detail {
/// Awaiting a concurrent futures::Future from a coroutine: the loop keeps running; the task
/// resumes on its loop's thread when the future completes. Cancelling the awaiting task asks
/// the future to cancel and throws CancelledError at once.
template <class T>
auto await_future(const futures::Future<T>& f) {
  struct Awaiter : StateAwaiter {
    explicit Awaiter(const futures::Future<T>& f) : StateAwaiter(f.state(), nullptr), fut(f) {}
    futures::Future<T> fut;
    decltype(auto) await_resume() {
      resume_checks();
      return fut.result();
    }
  };
  return Awaiter(f);
}
}  // namespace detail

}  // namespace concur::asyncio
