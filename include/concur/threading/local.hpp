#pragma once
/// \file threading.local: one value per thread, made on first use.
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>

namespace concur::threading {

namespace detail {
std::uint64_t next_local_id() noexcept;
/// The calling thread's slot for `id` (null if none).
void* local_find(std::uint64_t id) noexcept;
void local_store(std::uint64_t id, std::shared_ptr<void> value);
void local_erase(std::uint64_t id) noexcept;
}  // namespace detail

/// Thread-local storage as an object (Python's `threading.local`): each thread that touches it
/// gets its own T, made on first use by the factory (default: T{}), destroyed when that thread
/// ends. Thread safety: all members; each thread only ever sees its own value.
template <class T>
class local {
 public:
  local() requires std::is_default_constructible_v<T> : factory_([] { return std::make_shared<T>(); }) {}
  /// `factory()` returns a T (or something convertible) for each new thread.
  template <class F>
    requires std::is_invocable_v<F&>
  explicit local(F factory)
      : factory_([f = std::move(factory)]() mutable { return std::make_shared<T>(f()); }) {}
  local(const local&) = delete;
  local& operator=(const local&) = delete;
  ~local() { detail::local_erase(id_); }

  /// This thread's value, made now if it has none.
  T& get() {
    if (void* p = detail::local_find(id_)) return *static_cast<T*>(p);
    std::shared_ptr<T> v = factory_();
    T& ref = *v;
    detail::local_store(id_, std::move(v));
    return ref;
  }
  T* operator->() { return &get(); }
  T& operator*() { return get(); }
  /// Whether this thread already has a value (Python's `hasattr(loc, 'x')`).
  [[nodiscard]] bool has_value() const noexcept { return detail::local_find(id_) != nullptr; }
  /// Drops this thread's value (Python's `del loc.x`).
  void reset() noexcept { detail::local_erase(id_); }

 private:
  std::uint64_t id_ = detail::next_local_id();
  std::function<std::shared_ptr<T>()> factory_;
};

}  // namespace concur::threading
