#pragma once
// How a call travels to a worker process: the function as code identity (the module's GNU
// build-id and the offset of the code in it, so that a worker running the same binary finds it
// whatever address it was loaded at), a type-specific trampoline (same), and the serialised
// arguments.
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "concur/multiprocessing/serialize.hpp"

namespace concur::multiprocessing {

/// A worker runs another binary than the parent (its build-id differs), so a function cannot
/// be found there.
class CodeMismatchError : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// Where code lives: the build-id of the module (executable or shared library) holding it and
/// the offset from the module's load address.
struct CodeRef {
  std::string build_id;
  std::uint64_t offset = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(build_id, offset);
  }
};

/// The CodeRef of the code at `p`. std::invalid_argument when no loaded module holds it.
CodeRef code_ref(const void* p);
/// The address of `ref` in this process; CodeMismatchError when no loaded module has that
/// build-id.
const void* resolve(const CodeRef& ref);

/// Runs one call in a worker: `fn` is the user's function, `args` its serialised argument
/// tuple; returns the serialised result ("" for void). Throws what the function throws.
using Trampoline = std::string (*)(const void* fn, std::string_view args);

template <class R, class... A>
std::string trampoline(const void* fn, std::string_view args) {
  using Fn = R (*)(A...);
  auto f = reinterpret_cast<Fn>(const_cast<void*>(fn));
  auto tup = loads<std::tuple<std::decay_t<A>...>>(args);
  if constexpr (std::is_void_v<R>) {
    std::apply(f, std::move(tup));
    return {};
  } else {
    return dumps(std::apply(f, std::move(tup)));
  }
}

/// Runs `fn` over a serialised vector of argument tuples (a map chunk); returns the serialised
/// vector of results. The first exception ends the chunk, which then fails as a whole (as
/// Python's mapstar).
template <class R, class... A>
std::string batch_trampoline(const void* fn, std::string_view args) {
  using Fn = R (*)(A...);
  auto f = reinterpret_cast<Fn>(const_cast<void*>(fn));
  std::vector<R> out;
  if constexpr (sizeof...(A) == 1) {  // the chunk is a vector of the argument (see dumps_chunk)
    auto items = loads<std::vector<std::decay_t<A>...>>(args);
    out.reserve(items.size());
    for (auto& x : items) out.push_back(f(std::move(x)));
  } else {
    auto items = loads<std::vector<std::tuple<std::decay_t<A>...>>>(args);
    out.reserve(items.size());
    for (auto& t : items) out.push_back(std::apply(f, std::move(t)));
  }
  return dumps(out);
}

/// The bytes of a map chunk, items[begin, end), as batch_trampoline reads them: a vector of
/// the argument itself when the function takes one (a vector of numbers is one copy, where a
/// vector of one-element tuples is a write per element), else a vector of the argument tuples.
/// An item is the function's argument tuple (`Args`, as starmap has them) or, for a function
/// of one argument, the argument itself (as map has them).
template <class Args, class Items>
std::string dumps_chunk(const Items& items, std::size_t begin, std::size_t end) {
  if constexpr (std::tuple_size_v<Args> == 1) {
    std::vector<std::tuple_element_t<0, Args>> chunk;
    chunk.reserve(end - begin);
    for (std::size_t j = begin; j < end; ++j) {
      if constexpr (std::is_same_v<typename Items::value_type, Args>) {
        chunk.emplace_back(std::get<0>(items[j]));
      } else {
        chunk.emplace_back(items[j]);
      }
    }
    return dumps(chunk);
  } else {
    std::vector<Args> chunk(items.begin() + static_cast<std::ptrdiff_t>(begin),
                            items.begin() + static_cast<std::ptrdiff_t>(end));
    return dumps(chunk);
  }
}

/// A call ready to send.
struct PackedCall {
  CodeRef trampoline;
  CodeRef fn;
  std::string args;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(trampoline, fn, args);
  }
};

template <class F>
struct fn_traits;
template <class R, class... A>
struct fn_traits<R (*)(A...)> {
  using result = R;
  using args = std::tuple<std::decay_t<A>...>;
  static constexpr Trampoline trampoline = &detail::trampoline<R, A...>;
  static constexpr Trampoline batch() {
    static_assert(!std::is_void_v<R>,
                  "concur::multiprocessing: map/starmap/imap need a function that returns a value (use apply_async "
                  "for one returning void)");
    return &detail::batch_trampoline<R, A...>;
  }
};
template <class R, class... A>
struct fn_traits<R (*)(A...) noexcept> : fn_traits<R (*)(A...)> {};

/// The plain function pointer behind `f`: a function, a function pointer, a static member
/// function, or a captureless lambda (converted with unary +).
template <class F>
auto to_function_pointer(F f) {
  if constexpr (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>) {
    return f;
  } else {
    static_assert(
        requires { +f; } && std::is_pointer_v<decltype(+f)>,
        "concur::multiprocessing: only plain functions, static member functions and captureless lambdas "
        "can run in another process (a capture or a std::function cannot be sent: pass the data as "
        "arguments)");
    return +f;
  }
}

template <class F>
using fn_pointer_t = decltype(to_function_pointer(std::declval<F>()));
template <class F>
using result_t = typename fn_traits<fn_pointer_t<F>>::result;

/// Packs `f(args...)`; the arguments are converted to the function's parameter types first.
template <class F, class... A>
PackedCall pack(F f, A&&... args) {
  auto fp = to_function_pointer(f);
  using Traits = fn_traits<decltype(fp)>;
  static_assert(std::tuple_size_v<typename Traits::args> == sizeof...(A),
                "concur::multiprocessing: wrong number of arguments for the function");
  typename Traits::args tup(std::forward<A>(args)...);
  PackedCall c;
  c.trampoline = code_ref(reinterpret_cast<const void*>(Traits::trampoline));
  c.fn = code_ref(reinterpret_cast<const void*>(fp));
  c.args = dumps(tup);
  return c;
}

}  // namespace detail
}  // namespace concur::multiprocessing
