#pragma once
/// \file Cooperative cancellation: a CancelSource requests, CancelTokens observe.
///
/// Built on EventCore, so any party (thread, coroutine, greenlet) can wait for cancellation with
/// the same waiter machinery it uses for any other primitive.
#include <memory>

#include "concur/core/error.hpp"
#include "concur/core/waiter.hpp"

namespace concur {

class CancelToken;

/// Requests cancellation. Copies share one state. Thread-safe.
class CancelSource {
 public:
  CancelSource();
  /// Requests cancellation; returns false if it had already been requested.
  bool cancel() noexcept;
  [[nodiscard]] bool cancelled() const noexcept;
  [[nodiscard]] CancelToken token() const noexcept;

 private:
  friend class CancelToken;
  std::shared_ptr<core::EventCore> state_;
};

/// Observes a CancelSource. A default-constructed token is never cancelled. Thread-safe.
class CancelToken {
 public:
  CancelToken() = default;
  [[nodiscard]] bool cancelled() const noexcept { return state_ && state_->is_set(); }
  /// Throws CancelledError if cancellation was requested.
  void throw_if_cancelled() const {
    if (cancelled()) throw CancelledError();
  }
  /// Blocks the calling thread until cancellation is requested or the deadline passes.
  bool wait(core::Deadline deadline = std::nullopt) const noexcept;
  /// The underlying event, for other faces (asyncio, green) to wait on; null if never cancelled.
  [[nodiscard]] core::EventCore* event() const noexcept { return state_.get(); }

 private:
  friend class CancelSource;
  explicit CancelToken(std::shared_ptr<core::EventCore> s) : state_(std::move(s)) {}
  std::shared_ptr<core::EventCore> state_;
};

}  // namespace concur
