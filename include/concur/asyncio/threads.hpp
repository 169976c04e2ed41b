#pragma once
/// \file asyncio.to_thread, loop.run_in_executor, run_coroutine_threadsafe.
#include <memory>
#include <type_traits>
#include <utility>

#include "concur/asyncio/task.hpp"
#include "concur/futures/executor.hpp"
#include "concur/futures/thread_pool.hpp"

namespace concur::asyncio {

namespace detail {
/// The loop's default executor (Python's): a process-wide ThreadPoolExecutor made on first use.
futures::ThreadPoolExecutor& default_executor();

template <class R>
Coro<R> await_future_coro(futures::Future<R> f) {
  if constexpr (std::is_void_v<R>) {
    co_await f;
  } else {
    co_return R(co_await f);
  }
}

/// Submits `call` when first resumed (not when made), then awaits it.
template <class R, class Call>
Coro<R> submit_and_await(Call call) {
  futures::Future<R> f = default_executor().submit(std::move(call));
  if constexpr (std::is_void_v<R>) {
    co_await f;
  } else {
    co_return R(co_await f);
  }
}
}  // namespace detail

/// Runs `fn(args...)` on the default thread pool and awaits it without blocking the loop
/// (Python's asyncio.to_thread). Resumed on the loop's thread. Like Python's coroutine, the call
/// is submitted when the returned Coro first runs: one never awaited, or a task cancelled
/// before its first step, never calls `fn`. Cancelling the caller cancels the call if it has
/// not started (a started call runs to its end; its result is dropped).
template <class F, class... Args>
auto to_thread(F&& fn, Args&&... args) {
  using R = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&&...>;
  return detail::submit_and_await<R>(concur::detail::bind_call(std::forward<F>(fn), std::forward<Args>(args)...));
}

/// Python's loop.run_in_executor with any futures::Executor.
template <class F, class... Args>
auto run_in_executor(futures::Executor& executor, F&& fn, Args&&... args) {
  using R = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&&...>;
  return detail::await_future_coro<R>(executor.submit(std::forward<F>(fn), std::forward<Args>(args)...));
}

template <class F, class... Args>
auto EventLoop::run_in_executor(futures::Executor& executor, F&& fn, Args&&... args) {
  return asyncio::run_in_executor(executor, std::forward<F>(fn), std::forward<Args>(args)...);
}

namespace detail {
template <class T>
Coro<void> complete_promise(Coro<T> coro, std::shared_ptr<futures::Promise<T>> p) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(coro);
      p->set_result();
    } else {
      p->set_result(co_await std::move(coro));
    }
  } catch (const InvalidStateError&) {
    // The concurrent future was cancelled meanwhile: nobody wants the result.
  } catch (...) {
    try {
      p->set_exception(std::current_exception());
    } catch (const InvalidStateError&) {
    }
  }
}
}  // namespace detail

/// Submits `coro` to `loop` from another thread (Python's asyncio.run_coroutine_threadsafe);
/// the returned concurrent future gets its result. Cancelling that future cancels the task.
/// Thread safety: any thread except the loop's own (waiting on the future there would block it).
template <class T>
futures::Future<T> run_coroutine_threadsafe(Coro<T> coro, EventLoop& loop) {
  auto p = std::make_shared<futures::Promise<T>>();
  futures::Future<T> fut = p->get_future();
  struct Shared {
    Coro<T> coro;
    Task<void> task;
  };
  auto shared = std::make_shared<Shared>();
  shared->coro = std::move(coro);
  loop.call_soon_threadsafe(
      [shared, p, &loop] { shared->task = loop.create_task(detail::complete_promise(std::move(shared->coro), p)); });
  fut.add_done_callback([shared, &loop](const futures::Future<T>& f) {
    if (f.cancelled()) {
      loop.call_soon_threadsafe([shared] {
        if (shared->task.valid()) shared->task.cancel();
      });
    }
  });
  return fut;
}

}  // namespace concur::asyncio
