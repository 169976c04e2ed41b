#pragma once
/// \file threading.Thread and the thread registry (current_thread, main_thread, enumerate).
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "concur/core/detail/unique_function.hpp"
#include "concur/core/futex.hpp"

namespace concur::threading {

namespace detail {
struct ThreadState;
}

/// Keyword arguments of Thread (Python's `name=`, `daemon=`).
struct ThreadOptions {
  std::string name;             ///< empty: "Thread-N"
  std::optional<bool> daemon;   ///< unset: inherit from the creating thread (the main thread is not a daemon)
};

/// A thread of control, Python's `threading.Thread`.
///
/// A Thread is a handle: copies refer to the same thread (as Python references do), and
/// `current_thread()` returns a handle to the calling thread. Destroying a handle of a running
/// thread never terminates or detaches anything observable: the thread keeps running. Non-daemon
/// threads are joined at normal program exit (after main returns), daemon threads are not.
/// An exception escaping the target is reported through `excepthook` and ends only that thread.
///
/// Thread safety: every member may be called from any thread.
class Thread {
 public:
  /// An empty handle (`valid()` is false).
  Thread() = default;

  /// Thread(target=f, args=(args...)): `f` and the arguments are decay-copied, as by std::thread.
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&&...>
  explicit Thread(F&& f, Args&&... args)
      : Thread(ThreadOptions{}, std::forward<F>(f), std::forward<Args>(args)...) {}

  /// Thread(name=..., daemon=..., target=f, args=(args...)).
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&&...>
  Thread(ThreadOptions options, F&& f, Args&&... args)
      : Thread(std::move(options), concur::detail::unique_function(
                                       [call = concur::detail::bind_call(std::forward<F>(f),
                                                                         std::forward<Args>(args)...)]() mutable {
                                         (void)call();
                                       })) {}

  Thread(ThreadOptions options, concur::detail::unique_function target);

  /// Starts the thread; returns once it runs. Throws std::logic_error if already started.
  void start();
  /// Waits until the thread ends. Throws std::logic_error before start() or on the current thread.
  void join();
  /// Waits at most `timeout`; returns true if the thread has ended (then `is_alive()` is false).
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(core::deadline_after(timeout));
  }
  bool join_until(core::Clock::time_point deadline);

  /// True from the return of start() until the target returns.
  [[nodiscard]] bool is_alive() const noexcept;
  [[nodiscard]] std::string name() const;
  void set_name(std::string name);
  [[nodiscard]] bool daemon() const noexcept;
  /// Throws std::logic_error once started.
  void set_daemon(bool daemon);
  /// pthread identity (Python's `ident`); 0 before start.
  [[nodiscard]] std::uint64_t ident() const noexcept;
  /// The kernel thread id (Python's `native_id`); 0 before start.
  [[nodiscard]] std::uint64_t native_id() const noexcept;
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

  friend bool operator==(const Thread& a, const Thread& b) noexcept { return a.state_ == b.state_; }

 private:
  friend Thread current_thread();
  friend Thread main_thread();
  friend std::vector<Thread> enumerate();
  explicit Thread(std::shared_ptr<detail::ThreadState> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::ThreadState> state_;
};

/// The calling thread's handle; threads not started by concur get a "Dummy-N" handle (the main
/// thread is "MainThread").
Thread current_thread();
/// The main thread's handle.
Thread main_thread();
/// Every alive thread, the main thread and foreign threads seen so far included.
std::vector<Thread> enumerate();
/// enumerate().size().
std::size_t active_count();
/// pthread identity of the calling thread.
std::uint64_t get_ident() noexcept;
/// Kernel thread id of the calling thread.
std::uint64_t get_native_id() noexcept;

/// What `excepthook` receives when a thread's target throws.
struct ExceptHookArgs {
  std::exception_ptr exc_value;
  Thread thread;
};
/// Called on the failing thread when its target throws (Python's `threading.excepthook`).
/// Default: prints "Exception in thread NAME: ..." to stderr. Pass nullptr for the default.
void set_excepthook(std::function<void(const ExceptHookArgs&)> hook);

}  // namespace concur::threading
