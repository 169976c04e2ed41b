#pragma once
/// \file concurrent.futures.Executor: submit, map, shutdown.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "concur/core/detail/unique_function.hpp"
#include "concur/futures/future.hpp"

namespace concur::futures {

/// Keyword arguments of Executor::map.
struct MapOptions {
  /// Counted from the call to map(); a result not ready by then throws concur::TimeoutError.
  std::optional<std::chrono::nanoseconds> timeout;
  /// Items per task. 1 (Python's default) makes one task per item; larger values batch items
  /// into one task each, which is much cheaper for tiny functions. Results and exceptions are
  /// still delivered per item, in input order.
  std::size_t chunksize = 1;
};

template <class R>
class MapResult;

/// Interface of executors (Python's `concurrent.futures.Executor`).
///
/// Thread safety: submit/map/shutdown may be called from any thread, including from tasks
/// running on the executor.
class Executor {
 public:
  Executor() = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  virtual ~Executor() = default;

  /// Schedules `fn(args...)` (decay-copied) and returns a Future of its result.
  /// Throws std::logic_error after shutdown(), BrokenExecutor if the executor is broken.
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&&...>
  auto submit(F&& fn, Args&&... args) {
    using R = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&&...>;
    auto call = concur::detail::bind_call(std::forward<F>(fn), std::forward<Args>(args)...);
    auto* task = new detail::Task<R, decltype(call)>(std::move(call));
    task->init_refs(2);  // one for the returned Future, one for the queue
    try {
      schedule(task);
    } catch (...) {
      task->release_ref();
      task->release_ref();
      throw;
    }
    return detail::adopt_future<R>(task);
  }

  /// fn applied to every item (several ranges are zipped, stopping at the shortest), results
  /// yielded lazily in input order. Every task is submitted now. A task's exception is thrown
  /// when its item is reached. If iteration starts and the result is destroyed early, tasks
  /// not yet started are cancelled (as Python's generator does).
  template <class F, class... Rs>
    requires(sizeof...(Rs) >= 1 && (std::ranges::input_range<Rs> && ...))
  auto map(F&& fn, Rs&&... ranges) {
    return map_impl(MapOptions{}, std::forward<F>(fn), std::forward<Rs>(ranges)...);
  }
  template <class F, class R1>
    requires std::ranges::input_range<R1>
  auto map(F&& fn, R1&& r1, MapOptions options) {
    return map_impl(options, std::forward<F>(fn), std::forward<R1>(r1));
  }
  template <class F, class R1, class R2>
    requires(std::ranges::input_range<R1> && std::ranges::input_range<R2>)
  auto map(F&& fn, R1&& r1, R2&& r2, MapOptions options) {
    return map_impl(options, std::forward<F>(fn), std::forward<R1>(r1), std::forward<R2>(r2));
  }
  template <class F, class R1, class R2, class R3>
    requires(std::ranges::input_range<R1> && std::ranges::input_range<R2> && std::ranges::input_range<R3>)
  auto map(F&& fn, R1&& r1, R2&& r2, R3&& r3, MapOptions options) {
    return map_impl(options, std::forward<F>(fn), std::forward<R1>(r1), std::forward<R2>(r2), std::forward<R3>(r3));
  }

  /// Stops accepting work. With `wait`, blocks until every queued task has run (or been
  /// cancelled) and the workers have exited. With `cancel_futures`, cancels tasks not started.
  virtual void shutdown(bool wait = true, bool cancel_futures = false) = 0;

 protected:
  /// Takes one reference to `task` on success; throws (taking nothing) if it cannot accept it.
  virtual void schedule(detail::StateBase* task) = 0;

 private:
  template <class F, class... Rs>
  auto map_impl(MapOptions options, F&& fn, Rs&&... ranges);
};

/// What Executor::map returns: an input range of results in input order.
template <class R>
class MapResult {
 public:
  using value_type = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  /// One task's results when items are batched: a value per item, except where the item
  /// threw (kept aside, rarely present).
  struct Chunk {
    std::vector<std::optional<value_type>> values;
    std::vector<std::pair<std::size_t, std::exception_ptr>> errors;
  };

  MapResult(std::vector<Future<R>> singles, core::Deadline deadline)
      : singles_(std::move(singles)), size_(singles_.size()), deadline_(deadline) {}
  MapResult(std::vector<Future<Chunk>> chunks, std::size_t chunksize, std::size_t size, core::Deadline deadline)
      : chunks_(std::move(chunks)), chunksize_(chunksize), size_(size), deadline_(deadline) {}
  MapResult(MapResult&&) noexcept = default;
  MapResult& operator=(MapResult&&) noexcept = default;
  ~MapResult() {
    if (started_) cancel_rest();
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  class iterator {
   public:
    using value_type = MapResult::value_type;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    value_type operator*() const { return owner_->fetch(index_); }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    void operator++(int) { ++index_; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.index_ >= it.owner_->size();
    }

   private:
    friend class MapResult;
    iterator(MapResult* o, std::size_t i) : owner_(o), index_(i) {}
    MapResult* owner_ = nullptr;
    std::size_t index_ = 0;
  };

  iterator begin() {
    started_ = true;
    return iterator(this, next_);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  /// Every result, in order (throws the first exception met).
  std::vector<value_type> to_vector() {
    std::vector<value_type> out;
    out.reserve(size_);
    for (auto&& v : *this) out.push_back(std::move(v));
    return out;
  }

 private:
  value_type fetch(std::size_t i) {
    next_ = i + 1;
    try {
      if (!chunks_.empty()) {
        const std::size_t c = i / chunksize_;
        if (c != cur_chunk_index_ || cur_chunk_ == nullptr) {
          auto& f = chunks_[c];
          f.state()->wait_or_throw(deadline_);
          if (auto e = f.state()->exception_ptr()) std::rethrow_exception(e);
          cur_chunk_ = &detail::state_of(f)->value();
          cur_chunk_index_ = c;
        }
        const std::size_t j = i - c * chunksize_;
        auto& slot = cur_chunk_->values[j];
        if (!slot) {
          for (auto& [k, e] : cur_chunk_->errors)
            if (k == j) std::rethrow_exception(e);
        }
        return std::move(*slot);
      }
      auto& f = singles_[i];
      f.state()->wait_or_throw(deadline_);
      if (auto e = f.state()->exception_ptr()) std::rethrow_exception(e);
      if constexpr (std::is_void_v<R>) {
        return std::monostate{};
      } else {
        return std::move(detail::state_of(f)->value());
      }
    } catch (const TimeoutError&) {
      cancel_rest();
      throw;
    }
  }
  void cancel_rest() noexcept {
    for (std::size_t j = next_; j < singles_.size(); ++j) singles_[j].cancel();
    for (std::size_t j = chunksize_ ? (next_ + chunksize_ - 1) / chunksize_ : 0; j < chunks_.size(); ++j)
      chunks_[j].cancel();
  }

  std::vector<Future<R>> singles_;
  std::vector<Future<Chunk>> chunks_;
  std::size_t chunksize_ = 1;
  std::size_t size_ = 0;
  std::size_t next_ = 0;
  core::Deadline deadline_;
  bool started_ = false;
  Chunk* cur_chunk_ = nullptr;
  std::size_t cur_chunk_index_ = 0;
};

template <class F, class... Rs>
auto Executor::map_impl(MapOptions options, F&& fn, Rs&&... ranges) {
  using R = std::invoke_result_t<std::decay_t<F>&, std::ranges::range_reference_t<Rs>...>;
  using Result = MapResult<R>;
  using value_type = typename Result::value_type;
  core::Deadline deadline;
  if (options.timeout) deadline = core::deadline_after(*options.timeout);
  auto its = std::make_tuple(std::ranges::begin(ranges)...);
  auto ends = std::make_tuple(std::ranges::end(ranges)...);
  auto any_at_end = [&] {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return ((std::get<I>(its) == std::get<I>(ends)) || ...);
    }(std::index_sequence_for<Rs...>{});
  };
  auto advance = [&] {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (++std::get<I>(its), ...); }(std::index_sequence_for<Rs...>{});
  };
  std::decay_t<F> f(std::forward<F>(fn));
  if (options.chunksize <= 1) {
    std::vector<Future<R>> fs;
    if constexpr ((std::ranges::sized_range<Rs> && ...)) fs.reserve(std::min({std::ranges::size(ranges)...}));
    for (; !any_at_end(); advance()) {
      fs.push_back(std::apply([&](auto&... it) { return submit(f, *it...); }, its));
    }
    return Result(std::move(fs), deadline);
  }
  using Args = std::tuple<std::decay_t<std::ranges::range_reference_t<Rs>>...>;
  using Chunk = typename Result::Chunk;
  std::vector<Future<Chunk>> chunks;
  std::size_t total = 0;
  while (!any_at_end()) {
    std::vector<Args> batch;
    batch.reserve(options.chunksize);
    for (; batch.size() < options.chunksize && !any_at_end(); advance()) {
      batch.push_back(std::apply([](auto&... it) { return Args(*it...); }, its));
    }
    total += batch.size();
    chunks.push_back(submit(
        [f](std::vector<Args> items) mutable {
          Chunk out;
          out.values.resize(items.size());
          for (std::size_t k = 0; k < items.size(); ++k) {
            try {
              if constexpr (std::is_void_v<R>) {
                std::apply(f, std::move(items[k]));
                out.values[k].emplace();
              } else {
                out.values[k].emplace(std::apply(f, std::move(items[k])));
              }
            } catch (...) {
              out.errors.emplace_back(k, std::current_exception());
            }
          }
          return out;
        },
        std::move(batch)));
  }
  (void)sizeof(value_type);
  return Result(std::move(chunks), options.chunksize, total, deadline);
}

}  // namespace concur::futures
