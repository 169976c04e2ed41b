#pragma once
/// \file concurrent.futures.Executor: submit, map, shutdown.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <memory>
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
  /// (Beyond Python: a ThreadPoolExecutor still accepts work from its own running tasks after
  /// shutdown(), so a fork-join computation in flight finishes instead of failing midway.)
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
/// Iterate it once; each element is moved out as it is reached.
template <class R>
class MapResult {
 public:
  using value_type = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

  /// Results of batched (chunksize > 1) maps: one uninitialised slot per item, constructed by
  /// the chunk task that computes it. Shared by the tasks and the MapResult, so a chunk still
  /// running when the MapResult dies writes into live memory.
  class Buffer {
   public:
    Buffer(std::size_t n, std::size_t chunksize)
        : n_(n), chunksize_(chunksize), chunks_((n + chunksize - 1) / chunksize),
          slots_(std::allocator<value_type>().allocate(n == 0 ? 1 : n)),
          complete_(new std::atomic<bool>[chunks_ == 0 ? 1 : chunks_]), errors_(chunks_) {
      for (std::size_t c = 0; c < chunks_; ++c) complete_[c].store(false, std::memory_order_relaxed);
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() {
      if constexpr (!std::is_trivially_destructible_v<value_type>) {
        for (std::size_t c = 0; c < chunks_; ++c) {
          if (!complete_[c].load(std::memory_order_acquire)) continue;
          for (std::size_t i = c * chunksize_; i < std::min(n_, (c + 1) * chunksize_); ++i)
            if (!error_at(c, i - c * chunksize_)) std::destroy_at(slots_ + i);
        }
      }
      std::allocator<value_type>().deallocate(slots_, n_ == 0 ? 1 : n_);
    }
    /// Runs on the chunk's task: computes items [c*chunksize, ...) into their slots.
    template <class F, class Args>
    void fill(std::size_t c, F& f, std::vector<Args>& items) {
      value_type* base = slots_ + c * chunksize_;
      for (std::size_t k = 0; k < items.size(); ++k) {
        try {
          if constexpr (std::is_void_v<R>) {
            std::apply(f, std::move(items[k]));
            std::construct_at(base + k);
          } else {
            std::construct_at(base + k, std::apply(f, std::move(items[k])));
          }
        } catch (...) {
          errors_[c].emplace_back(k, std::current_exception());
        }
      }
      // release: the reader (after waiting on the chunk's future) and ~Buffer see the slots.
      complete_[c].store(true, std::memory_order_release);
    }
    [[nodiscard]] const std::exception_ptr* error_at(std::size_t c, std::size_t k) const noexcept {
      for (const auto& [j, e] : errors_[c])
        if (j == k) return &e;
      return nullptr;
    }
    value_type& slot(std::size_t i) noexcept { return slots_[i]; }
    [[nodiscard]] std::size_t chunksize() const noexcept { return chunksize_; }

   private:
    std::size_t n_, chunksize_, chunks_;
    value_type* slots_;
    std::unique_ptr<std::atomic<bool>[]> complete_;
    std::vector<std::vector<std::pair<std::size_t, std::exception_ptr>>> errors_;  // [c]: written by chunk c's task
  };

  MapResult(std::vector<Future<R>> singles, core::Deadline deadline)
      : singles_(std::move(singles)), size_(singles_.size()), deadline_(deadline) {}
  MapResult(std::vector<Future<void>> chunks, std::shared_ptr<Buffer> buffer, std::size_t size, core::Deadline deadline)
      : chunks_(std::move(chunks)), buffer_(std::move(buffer)), size_(size), deadline_(deadline) {}
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
      if (buffer_) {
        const std::size_t cs = buffer_->chunksize();
        const std::size_t c = i / cs;
        if (c != ready_chunk_) {
          auto& f = chunks_[c];
          f.state()->wait_or_throw(deadline_);
          if (auto e = f.state()->exception_ptr()) std::rethrow_exception(e);
          ready_chunk_ = c;
        }
        if (const std::exception_ptr* e = buffer_->error_at(c, i - c * cs)) std::rethrow_exception(*e);
        return std::move(buffer_->slot(i));
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
    if (buffer_) {
      const std::size_t cs = buffer_->chunksize();
      for (std::size_t j = (next_ + cs - 1) / cs; j < chunks_.size(); ++j) chunks_[j].cancel();
    }
  }

  std::vector<Future<R>> singles_;
  std::vector<Future<void>> chunks_;
  std::shared_ptr<Buffer> buffer_;
  std::size_t size_ = 0;
  std::size_t next_ = 0;
  std::size_t ready_chunk_ = static_cast<std::size_t>(-1);
  core::Deadline deadline_;
  bool started_ = false;
};

template <class F, class... Rs>
auto Executor::map_impl(MapOptions options, F&& fn, Rs&&... ranges) {
  using R = std::invoke_result_t<std::decay_t<F>&, std::ranges::range_reference_t<Rs>...>;
  using Result = MapResult<R>;
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
  // Batched: the inputs are copied first (the caller's ranges may die before the tasks run),
  // so the number of items is known before the result buffer is made.
  using Args = std::tuple<std::decay_t<std::ranges::range_reference_t<Rs>>...>;
  std::vector<std::vector<Args>> batches;
  std::size_t total = 0;
  while (!any_at_end()) {
    std::vector<Args> batch;
    batch.reserve(options.chunksize);
    for (; batch.size() < options.chunksize && !any_at_end(); advance()) {
      batch.push_back(std::apply([](auto&... it) { return Args(*it...); }, its));
    }
    total += batch.size();
    batches.push_back(std::move(batch));
  }
  auto buffer = std::make_shared<typename Result::Buffer>(total, options.chunksize);
  std::vector<Future<void>> chunks;
  chunks.reserve(batches.size());
  for (std::size_t c = 0; c < batches.size(); ++c) {
    chunks.push_back(submit([f, buffer, c](std::vector<Args> items) mutable { buffer->fill(c, f, items); },
                            std::move(batches[c])));
  }
  return Result(std::move(chunks), std::move(buffer), total, deadline);
}

}  // namespace concur::futures
