#pragma once
/// \file asyncio.Coro<T>: the `async def` analogue.
///
/// A Coro is lazy (nothing runs until it is awaited or wrapped in a Task), move-only, and owns
/// its frame. Awaiting a Coro runs it on the awaiting task. Control transfers between coroutines
/// go through a trampoline (`detail::drive`) rather than nested resume() calls, so a million
/// synchronous `co_await`s in a loop or a 100,000-deep recursion never grow the stack — in
/// optimised, debug and sanitizer builds alike (GCC only turns symmetric transfer into a tail
/// call when optimising). Frames come from a per-thread pool.
#include <coroutine>
#include <exception>
#include <source_location>
#include <type_traits>
#include <utility>
#include <variant>

#include "concur/core/error.hpp"
#include "concur/futures/future.hpp"

namespace concur::asyncio {

template <class T = void>
class Coro;

namespace detail {

template <class T>
inline constexpr bool is_future_v = false;
template <class T>
inline constexpr bool is_future_v<futures::Future<T>> = true;

/// Makes a concurrent futures::Future awaitable (defined in task.hpp).
template <class T>
auto await_future(const futures::Future<T>& f);

template <class U>
class CoroAwaiter;

template <class A>
concept has_await_members = requires(A& a) {
  a.await_ready();
};

/// Awaits a named awaiter where it lives.
template <class A>
struct LvalueAwaiter {
  A* a;
  bool await_ready() { return a->await_ready(); }
  template <class H>
  auto await_suspend(H h) {
    return a->await_suspend(h);
  }
  decltype(auto) await_resume() { return a->await_resume(); }
};

/// Per-thread frame pool (plain operator new under AddressSanitizer, so it can see misuse).
void* frame_alloc(std::size_t n);
void frame_free(void* p, std::size_t n) noexcept;

/// The handle the trampoline resumes next (null: return to the caller of drive()).
extern thread_local std::coroutine_handle<> tls_next;

/// Resumes `h`, then whatever it transfers control to, until a coroutine suspends without
/// naming a successor. The stack stays flat. Re-entrant.
void drive(std::coroutine_handle<> h);

/// Names the coroutine to run once the current one has suspended.
inline void transfer_to(std::coroutine_handle<> h) noexcept { tls_next = h; }

struct PromiseBase {
  /// Records the coroutine's name (for debug dumps of await chains); free at run time.
  explicit PromiseBase(std::source_location where = std::source_location::current()) noexcept
      : function(where.function_name()) {}
  std::coroutine_handle<> continuation;  // who awaits us (null for a task's root)
  const char* function;                  // e.g. "concur::asyncio::Coro<int> compute(int)"
  PromiseBase* parent = nullptr;         // the coroutine awaiting us, while it does
  PromiseBase* child = nullptr;          // the coroutine we await, while we do
  // The Coro object (in the parent's frame) that owns this frame while the parent awaits it,
  // and how to make it let go: lets a chain be destroyed leaf first, without recursion.
  void* owner = nullptr;
  void (*disown)(void*) noexcept = nullptr;
  void* frame = nullptr;  // this coroutine's frame address
  static void* operator new(std::size_t n) { return frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
      if (PromiseBase* p = h.promise().parent) p->child = nullptr;
      if (h.promise().continuation) transfer_to(h.promise().continuation);
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  /// `co_await pool.submit(...)`: a futures::Future is awaitable without blocking the loop.
  template <class T>
  auto await_transform(const futures::Future<T>& f) {
    return await_future(f);
  }
  template <class T>
  auto await_transform(futures::Future<T>&& f) {
    return await_future(f);
  }
  /// Awaiting another Coro links the two (await-chain dumps; leaf-first destruction).
  template <class U>
  CoroAwaiter<U> await_transform(Coro<U>&& c) noexcept {
    link(c);
    return CoroAwaiter<U>(std::move(c));
  }
  template <class U>
  auto await_transform(Coro<U>& c) noexcept {
    link(c);
    c.handle().promise().owner = &c;
    c.handle().promise().disown = [](void* o) noexcept { (void)static_cast<Coro<U>*>(o)->release(); };
    return LvalueAwaiter<Coro<U>>{&c};
  }
  /// Everything else is awaited as it is: temporaries are moved into the frame; named
  /// awaiters are awaited in place (GCC 12 would otherwise copy them).
  template <class A>
  requires(!is_future_v<std::remove_cvref_t<A>>) auto await_transform(A&& a) noexcept(
      std::is_nothrow_move_constructible_v<std::remove_cvref_t<A>>) {
    if constexpr (std::is_lvalue_reference_v<A> && has_await_members<std::remove_cvref_t<A>>) {
      return LvalueAwaiter<std::remove_reference_t<A>>{&a};
    } else if constexpr (std::is_lvalue_reference_v<A>) {
      return std::remove_cvref_t<A>(a);  // e.g. a Task handle: copies share the task
    } else {
      return std::remove_cvref_t<A>(std::move(a));
    }
  }

 private:
  template <class U>
  void link(Coro<U>& c) noexcept {
    if (c.valid()) {
      child = &c.handle().promise();
      child->parent = this;
    }
  }
};

template <class T>
struct Promise : PromiseBase {
  explicit Promise(std::source_location where = std::source_location::current()) noexcept : PromiseBase(where) {}
  std::variant<std::monostate, T, std::exception_ptr> result;
  Coro<T> get_return_object() noexcept;
  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& v) { result.template emplace<1>(std::forward<U>(v)); }
  void unhandled_exception() noexcept { result.template emplace<2>(std::current_exception()); }
  T take() {
    if (auto* e = std::get_if<2>(&result)) std::rethrow_exception(*e);
    return std::move(std::get<1>(result));
  }
  std::exception_ptr exception() const noexcept {
    if (auto* e = std::get_if<2>(&result)) return *e;
    return nullptr;
  }
};

template <>
struct Promise<void> : PromiseBase {
  explicit Promise(std::source_location where = std::source_location::current()) noexcept : PromiseBase(where) {}
  std::exception_ptr error;
  Coro<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void unhandled_exception() noexcept { error = std::current_exception(); }
  void take() {
    if (error) std::rethrow_exception(error);
  }
  std::exception_ptr exception() const noexcept { return error; }
};

}  // namespace detail

/// A coroutine returning T (Python's coroutine object of an `async def`).
///
/// `co_await coro` runs it to completion on the awaiting task and returns its value or rethrows
/// its exception. A Coro can be awaited once. Destroying a Coro that never ran just frees it;
/// destroying one that is suspended mid-way destroys its frame (its locals' destructors run).
/// Thread safety: none; a Coro belongs to one thread's loop at a time.
template <class T>
class [[nodiscard]] Coro {
 public:
  using promise_type = detail::Promise<T>;
  using value_type = T;

  Coro() = default;
  explicit Coro(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  Coro(Coro&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Coro& operator=(Coro&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Coro(const Coro&) = delete;
  Coro& operator=(const Coro&) = delete;
  ~Coro() {
    if (h_) h_.destroy();
  }

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }
  [[nodiscard]] bool done() const noexcept { return h_ && h_.done(); }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) noexcept {
    h_.promise().continuation = awaiting;
    detail::transfer_to(h_);
  }
  T await_resume() { return h_.promise().take(); }

  /// For the Task machinery: the frame, and giving it up.
  [[nodiscard]] std::coroutine_handle<promise_type> handle() const noexcept { return h_; }
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }

 private:
  std::coroutine_handle<promise_type> h_;
};

namespace detail {
/// The awaiter of a temporary Coro: owns it where the awaiting frame keeps it (never moved,
/// so the awaited frame can point back at it).
template <class U>
class CoroAwaiter {
 public:
  explicit CoroAwaiter(Coro<U>&& c) noexcept : c_(std::move(c)) {
    if (c_.valid()) {
      c_.handle().promise().owner = this;
      c_.handle().promise().disown = [](void* o) noexcept { (void)static_cast<CoroAwaiter*>(o)->c_.release(); };
    }
  }
  CoroAwaiter(const CoroAwaiter&) = delete;
  CoroAwaiter& operator=(const CoroAwaiter&) = delete;
  bool await_ready() const noexcept { return c_.await_ready(); }
  void await_suspend(std::coroutine_handle<> h) noexcept { c_.await_suspend(h); }
  U await_resume() { return c_.await_resume(); }

 private:
  Coro<U> c_;
};
}  // namespace detail

namespace detail {
template <class T>
Coro<T> Promise<T>::get_return_object() noexcept {
  auto h = std::coroutine_handle<Promise<T>>::from_promise(*this);
  frame = h.address();
  return Coro<T>(h);
}
inline Coro<void> Promise<void>::get_return_object() noexcept {
  auto h = std::coroutine_handle<Promise<void>>::from_promise(*this);
  frame = h.address();
  return Coro<void>(h);
}
}  // namespace detail

}  // namespace concur::asyncio
