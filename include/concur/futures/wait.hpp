#pragma once
/// \file concurrent.futures.wait and as_completed.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "concur/futures/future.hpp"

namespace concur::futures {

/// When wait() returns (Python's constants).
enum ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };

struct WaitOptions {
  std::optional<std::chrono::nanoseconds> timeout;  ///< unset: wait as long as needed
  ReturnWhen return_when = ALL_COMPLETED;
};

/// What wait() returns: `auto [done, not_done] = wait(fs)`; each keeps input order.
template <class T>
struct DoneAndNotDone {
  std::vector<Future<T>> done;
  std::vector<Future<T>> not_done;
};

namespace detail {
/// Blocks until the condition holds for `states` or the deadline passes.
void wait_states(StateBase* const* states, std::size_t n, ReturnWhen when, core::Deadline deadline);

/// Delivers states in completion order (the engine of as_completed).
class CompletionQueue {
 public:
  CompletionQueue(StateBase* const* states, std::size_t n);
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;
  ~CompletionQueue();
  /// Index (into the input) of the next completed state; TimeoutError past the deadline.
  std::size_t next(core::Deadline deadline);
  [[nodiscard]] std::size_t remaining() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
}  // namespace detail

/// Waits for the futures (Python's `concurrent.futures.wait`); a future listed twice counts
/// once. On timeout returns what is done
/// so far (no exception). FIRST_EXCEPTION returns at the first future that raised, or when all
/// are done. Blocks the calling thread (on a pool worker: helps the pool meanwhile).
namespace detail {
/// The futures once each, first occurrence kept, order kept (Python takes a set).
template <class T>
std::vector<Future<T>> unique_futures(std::vector<Future<T>> fs) {
  std::vector<StateBase*> sorted;
  sorted.reserve(fs.size());
  for (auto& f : fs) sorted.push_back(f.state());
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()) return fs;  // the usual case
  std::unordered_set<StateBase*> seen;
  std::vector<Future<T>> out;
  for (auto& f : fs)
    if (seen.insert(f.state()).second) out.push_back(std::move(f));
  return out;
}
}  // namespace detail

template <class T>
DoneAndNotDone<T> wait(const std::vector<Future<T>>& input, WaitOptions options = {}) {
  std::vector<Future<T>> fs = detail::unique_futures(input);
  std::vector<detail::StateBase*> states;
  states.reserve(fs.size());
  for (auto& f : fs) states.push_back(f.state());
  core::Deadline deadline;
  if (options.timeout) deadline = core::deadline_after(*options.timeout);
  detail::wait_states(states.data(), states.size(), options.return_when, deadline);
  DoneAndNotDone<T> out;
  for (auto& f : fs) (f.done() ? out.done : out.not_done).push_back(f);
  return out;
}

/// Yields the futures as they complete (Python's `concurrent.futures.as_completed`): already
/// done ones first. With a timeout (counted from the call), advancing past the deadline while
/// futures are pending throws concur::TimeoutError.
template <class T>
class AsCompleted {
 public:
  explicit AsCompleted(std::vector<Future<T>> fs, core::Deadline deadline = std::nullopt)
      : fs_(detail::unique_futures(std::move(fs))), deadline_(deadline) {
    std::vector<detail::StateBase*> states;
    states.reserve(fs_.size());
    for (auto& f : fs_) states.push_back(f.state());
    q_ = std::make_unique<detail::CompletionQueue>(states.data(), states.size());
  }

  class iterator {
   public:
    using value_type = Future<T>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    const Future<T>& operator*() const { return owner_->fs_[index_]; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.at_end_; }

   private:
    friend class AsCompleted;
    explicit iterator(AsCompleted* o) : owner_(o) { advance(); }
    void advance() {
      if (owner_->q_->remaining() == 0) {
        at_end_ = true;
        return;
      }
      index_ = owner_->q_->next(owner_->deadline_);
    }
    AsCompleted* owner_ = nullptr;
    std::size_t index_ = 0;
    bool at_end_ = false;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  std::vector<Future<T>> fs_;
  core::Deadline deadline_;
  std::unique_ptr<detail::CompletionQueue> q_;
};

template <class T>
AsCompleted<T> as_completed(std::vector<Future<T>> fs) {
  return AsCompleted<T>(std::move(fs));
}
template <class T, class Rep, class Period>
AsCompleted<T> as_completed(std::vector<Future<T>> fs, std::chrono::duration<Rep, Period> timeout) {
  return AsCompleted<T>(std::move(fs), core::deadline_after(timeout));
}

}  // namespace concur::futures
