#pragma once
// A move-only std::function<void()> (std::move_only_function is C++23).
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace concur::detail {

class unique_function {
 public:
  unique_function() = default;
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, unique_function> && std::is_invocable_v<std::decay_t<F>&>)
  unique_function(F&& f)  // NOLINT(google-explicit-constructor): behaves like std::function
      : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}
  unique_function(unique_function&&) noexcept = default;
  unique_function& operator=(unique_function&&) noexcept = default;
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  void operator()() { impl_->call(); }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual void call() = 0;
  };
  template <class F>
  struct Impl final : Base {
    explicit Impl(F&& f) : fn(std::move(f)) {}
    explicit Impl(const F& f) : fn(f) {}
    void call() override { fn(); }
    F fn;
  };
  std::unique_ptr<Base> impl_;
};

/// Binds a callable and decay-copied arguments into a nullary callable (like std::thread does).
template <class F, class... Args>
auto bind_call(F&& f, Args&&... args) {
  return [fn = std::decay_t<F>(std::forward<F>(f)),
          tup = std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)]() mutable -> decltype(auto) {
    return std::apply([&](auto&... a) -> decltype(auto) { return std::invoke(fn, std::move(a)...); }, tup);
  };
}

}  // namespace concur::detail
