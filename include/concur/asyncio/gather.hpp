#pragma once
/// \file asyncio.gather.
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "concur/asyncio/wait.hpp"

namespace concur::asyncio {

/// One result of gather(..., GatherOptions{.return_exceptions = true}): a value or an error.
template <class T>
struct Outcome {
  using value_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  std::optional<value_type> value;
  std::exception_ptr exception;
  [[nodiscard]] bool ok() const noexcept { return exception == nullptr; }
  /// The value, or rethrows the error.
  value_type& get() {
    if (exception) std::rethrow_exception(exception);
    return *value;
  }
};

struct GatherOptions {
  /// true: errors (and cancellations, as CancelledError) become results instead of being thrown.
  bool return_exceptions = false;
};

namespace detail {
/// (Built outside the co_await expression: GCC 12 mishandles initializer lists there.)
template <class... Ts>
std::vector<futures::detail::StateBase*> state_list(Task<Ts>&... ts) {
  std::vector<futures::detail::StateBase*> v;
  v.reserve(sizeof...(Ts));
  (v.push_back(ts.state()), ...);
  return v;
}

/// Cancels the unfinished children of a gather whose caller was cancelled (Python semantics).
template <class... Ts>
void cancel_unfinished(Task<Ts>&... ts) noexcept {
  ((ts.done() ? void() : void(ts.cancel())), ...);
}

/// After a FIRST_EXCEPTION wait: rethrows the error of the first failed task (in argument
/// order), if any. The others may still be pending: their result() would be InvalidStateError.
template <class T>
void take_failure(Task<T>& t, std::exception_ptr& first) {
  if (first) return;
  if (t.state()->failed()) {
    first = t.exception();
  } else if (t.done() && t.cancelled()) {  // Python: a cancelled child counts as raising CancelledError
    first = std::make_exception_ptr(CancelledError("a gathered task was cancelled"));
  }
}
template <class... Ts>
void rethrow_first_failure(Task<Ts>&... ts) {
  std::exception_ptr first;
  (take_failure(ts, first), ...);
  if (first) std::rethrow_exception(first);
}
template <class T>
void rethrow_first_failure(std::vector<Task<T>>& ts) {
  std::exception_ptr first;
  for (auto& t : ts) take_failure(t, first);
  if (first) std::rethrow_exception(first);
}

template <class T>
auto gather_value(Task<T>& t) {
  if constexpr (std::is_void_v<T>) {
    t.result();
    return std::monostate{};
  } else {
    return T(t.result());
  }
}

template <class T>
Outcome<T> gather_outcome(Task<T>& t) {
  Outcome<T> o;
  try {
    o.value.emplace(gather_value(t));
  } catch (...) {
    o.exception = std::current_exception();
  }
  return o;
}

template <class... Ts>
Coro<std::tuple<std::conditional_t<std::is_void_v<Ts>, std::monostate, Ts>...>> gather_tuple(Task<Ts>... ts) {
  try {
    co_await MultiWait(state_list(ts...), FIRST_EXCEPTION, -1, true);
  } catch (const CancelledError&) {
    cancel_unfinished(ts...);
    throw;
  }
  // The first exception (in argument order among the failed) propagates; the others run on.
  rethrow_first_failure(ts...);
  co_return std::tuple<std::conditional_t<std::is_void_v<Ts>, std::monostate, Ts>...>(gather_value(ts)...);
}

template <class... Ts>
Coro<void> gather_void(Task<Ts>... ts) {
  try {
    co_await MultiWait(state_list(ts...), FIRST_EXCEPTION, -1, true);
  } catch (const CancelledError&) {
    cancel_unfinished(ts...);
    throw;
  }
  rethrow_first_failure(ts...);
  (ts.result(), ...);
}

template <class T>
Coro<std::vector<std::conditional_t<std::is_void_v<T>, std::monostate, T>>> gather_vector(std::vector<Task<T>> ts) {
  std::vector<futures::detail::StateBase*> states;
  for (auto& t : ts) states.push_back(t.state());
  try {
    co_await MultiWait(std::move(states), FIRST_EXCEPTION, -1, true);
  } catch (const CancelledError&) {
    for (auto& t : ts)
      if (!t.done()) t.cancel();
    throw;
  }
  rethrow_first_failure(ts);
  std::vector<std::conditional_t<std::is_void_v<T>, std::monostate, T>> out;
  out.reserve(ts.size());
  for (auto& t : ts) out.push_back(gather_value(t));
  co_return out;
}

template <class T>
Coro<std::vector<Outcome<T>>> gather_outcomes(std::vector<Task<T>> ts, GatherOptions options) {
  std::vector<futures::detail::StateBase*> states;
  for (auto& t : ts) states.push_back(t.state());
  try {
    co_await MultiWait(std::move(states), options.return_exceptions ? ALL_COMPLETED : FIRST_EXCEPTION, -1, true);
  } catch (const CancelledError&) {
    for (auto& t : ts)
      if (!t.done()) t.cancel();
    throw;
  }
  if (!options.return_exceptions) rethrow_first_failure(ts);
  std::vector<Outcome<T>> out;
  out.reserve(ts.size());
  for (auto& t : ts) {
    if (!options.return_exceptions) (void)gather_value(t);  // throws the first error
    out.push_back(gather_outcome(t));
  }
  co_return out;
}
}  // namespace detail

/// Python's asyncio.gather of a fixed set of awaitables (Coro, Task, futures::Future, any
/// awaiter): runs them concurrently (each as a Task) and returns their results as a tuple in
/// argument order — or nothing if every one is void. The first exception propagates at once;
/// the others keep running. Cancelling the caller cancels every unfinished child.
template <class... A>
requires(sizeof...(A) >= 1) auto gather(A&&... aws) {
  if constexpr ((std::is_void_v<awaitable_result_t<A>> && ...)) {
    return detail::gather_void(ensure_task(std::forward<A>(aws))...);
  } else {
    return detail::gather_tuple(ensure_task(std::forward<A>(aws))...);
  }
}

/// gather over a vector of coroutines or tasks: a vector of results (void: std::monostate).
template <class T>
auto gather(std::vector<Coro<T>> coros) {
  std::vector<Task<T>> ts;
  ts.reserve(coros.size());
  for (auto& c : coros) ts.push_back(create_task(std::move(c)));
  if constexpr (std::is_void_v<T>) {
    return [](std::vector<Task<T>> tasks) -> Coro<void> {
      co_await detail::gather_vector(std::move(tasks));
    }(std::move(ts));
  } else {
    return detail::gather_vector(std::move(ts));
  }
}
template <class T>
auto gather(std::vector<Task<T>> tasks) {
  if constexpr (std::is_void_v<T>) {
    return
        [](std::vector<Task<T>> ts) -> Coro<void> { co_await detail::gather_vector(std::move(ts)); }(std::move(tasks));
  } else {
    return detail::gather_vector(std::move(tasks));
  }
}

/// gather with options: every result as an Outcome (value or exception). With
/// return_exceptions, errors never propagate; without, the first one does.
template <class T>
Coro<std::vector<Outcome<T>>> gather(std::vector<Coro<T>> coros, GatherOptions options) {
  std::vector<Task<T>> ts;
  ts.reserve(coros.size());
  for (auto& c : coros) ts.push_back(create_task(std::move(c)));
  return detail::gather_outcomes(std::move(ts), options);
}
template <class T>
Coro<std::vector<Outcome<T>>> gather(std::vector<Task<T>> tasks, GatherOptions options) {
  return detail::gather_outcomes(std::move(tasks), options);
}

}  // namespace concur::asyncio
