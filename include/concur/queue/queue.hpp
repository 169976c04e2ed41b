#pragma once
/// \file queue.Queue, LifoQueue, PriorityQueue, SimpleQueue.
///
/// Thread safety: every member of every queue may be called from any thread. Blocked callers
/// are woken by the put/get/shutdown that lets them proceed; timed calls throw Empty/Full.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "concur/core/futex.hpp"
#include "concur/queue/errors.hpp"

namespace concur::queue {

namespace detail {

template <class T>
struct Fifo {
  std::deque<T> items;
  void push(T&& v) { items.push_back(std::move(v)); }
  T pop() {
    T v = std::move(items.front());
    items.pop_front();
    return v;
  }
  [[nodiscard]] std::size_t size() const noexcept { return items.size(); }
  void clear() { items.clear(); }
};

template <class T>
struct Lifo {
  std::vector<T> items;
  void push(T&& v) { items.push_back(std::move(v)); }
  T pop() {
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  [[nodiscard]] std::size_t size() const noexcept { return items.size(); }
  void clear() { items.clear(); }
};

template <class T, class Compare>
struct Heap {
  std::vector<T> items;
  // std heaps keep the largest on top; invert so the smallest (per Compare) comes out first.
  struct Inverted {
    Compare c;
    bool operator()(const T& a, const T& b) const { return c(b, a); }
  };
  void push(T&& v) {
    items.push_back(std::move(v));
    std::push_heap(items.begin(), items.end(), Inverted{});
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(), Inverted{});
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  [[nodiscard]] std::size_t size() const noexcept { return items.size(); }
  void clear() { items.clear(); }
};

}  // namespace detail

/// The common implementation of Queue, LifoQueue and PriorityQueue (Python's `queue.Queue`).
template <class T, class Store>
class BasicQueue {
 public:
  /// maxsize 0 means unbounded.
  explicit BasicQueue(std::size_t maxsize = 0) : maxsize_(maxsize) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  /// Puts an item, blocking while the queue is full. Throws ShutDown after shutdown().
  void put(T item) { put_impl(std::move(item), true, std::nullopt); }
  /// put(item, block=False) when `block` is false: throws Full at once if full.
  void put(T item, bool block) { put_impl(std::move(item), block, std::nullopt); }
  /// Blocks at most `timeout`, then throws Full.
  template <class Rep, class Period>
  void put(T item, std::chrono::duration<Rep, Period> timeout) {
    put_impl(std::move(item), true, core::deadline_after(timeout));
  }
  void put_nowait(T item) { put_impl(std::move(item), false, std::nullopt); }

  /// Removes and returns an item, blocking while empty. After shutdown(), throws ShutDown once
  /// the queue is empty (at once after shutdown(true)).
  T get() { return get_impl(true, std::nullopt); }
  T get(bool block) { return get_impl(block, std::nullopt); }
  /// Blocks at most `timeout`, then throws Empty.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return get_impl(true, core::deadline_after(timeout));
  }
  T get_nowait() { return get_impl(false, std::nullopt); }

  /// Marks one fetched item as processed. Throws std::invalid_argument if called more times
  /// than items were put.
  void task_done() {
    std::lock_guard g(m_);
    if (unfinished_ == 0) throw std::invalid_argument("task_done() called too many times");
    if (--unfinished_ == 0) all_done_.notify_all();
  }
  /// Blocks until every item put has been marked task_done().
  void join() {
    std::unique_lock g(m_);
    all_done_.wait(g, [&] { return unfinished_ == 0; });
  }

  [[nodiscard]] std::size_t qsize() const {
    std::lock_guard g(m_);
    return store_.size();
  }
  [[nodiscard]] bool empty() const { return qsize() == 0; }
  [[nodiscard]] bool full() const {
    std::lock_guard g(m_);
    return maxsize_ > 0 && store_.size() >= maxsize_;
  }
  [[nodiscard]] std::size_t maxsize() const noexcept { return maxsize_; }

  /// Shuts the queue down: put() throws ShutDown from now on, blocked putters too; get() drains
  /// what is left and then throws ShutDown. With `immediate`, what is left is dropped (and counted
  /// as done for join()), and get() throws at once.
  void shutdown(bool immediate = false) {
    std::lock_guard g(m_);
    shutdown_ = true;
    if (immediate) {
      immediate_ = true;
      std::size_t dropped = store_.size();
      store_.clear();
      unfinished_ = unfinished_ > dropped ? unfinished_ - dropped : 0;
      if (unfinished_ == 0) all_done_.notify_all();
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  [[nodiscard]] bool is_shutdown() const {
    std::lock_guard g(m_);
    return shutdown_;
  }

 private:
  void put_impl(T&& item, bool block, core::Deadline deadline) {
    std::unique_lock g(m_);
    if (shutdown_) throw ShutDown();
    if (maxsize_ > 0) {
      auto has_room = [&] { return shutdown_ || store_.size() < maxsize_; };
      if (!has_room()) {
        if (!block) throw Full();
        if (deadline) {
          if (!not_full_.wait_until(g, *deadline, has_room)) throw Full();
        } else {
          not_full_.wait(g, has_room);
        }
        if (shutdown_) throw ShutDown();
      }
    }
    store_.push(std::move(item));
    ++unfinished_;
    not_empty_.notify_one();
  }

  T get_impl(bool block, core::Deadline deadline) {
    std::unique_lock g(m_);
    auto ready = [&] { return store_.size() > 0 || shutdown_; };
    if (immediate_) throw ShutDown();
    if (!ready()) {
      if (!block) throw Empty();
      if (deadline) {
        if (!not_empty_.wait_until(g, *deadline, ready)) throw Empty();
      } else {
        not_empty_.wait(g, ready);
      }
    }
    if (store_.size() == 0) throw ShutDown();  // shut down and drained
    T v = store_.pop();
    if (maxsize_ > 0) not_full_.notify_one();
    return v;
  }

  mutable std::mutex m_;  // guards everything below
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::condition_variable all_done_;
  Store store_;
  std::size_t maxsize_;
  std::size_t unfinished_ = 0;
  bool shutdown_ = false;
  bool immediate_ = false;
};

/// FIFO queue (Python's `queue.Queue`).
template <class T>
class Queue : public BasicQueue<T, detail::Fifo<T>> {
  using BasicQueue<T, detail::Fifo<T>>::BasicQueue;
};
/// LIFO queue (Python's `queue.LifoQueue`).
template <class T>
class LifoQueue : public BasicQueue<T, detail::Lifo<T>> {
  using BasicQueue<T, detail::Lifo<T>>::BasicQueue;
};
/// Smallest item first, per `Compare` (Python's `queue.PriorityQueue`).
template <class T, class Compare = std::less<T>>
class PriorityQueue : public BasicQueue<T, detail::Heap<T, Compare>> {
  using BasicQueue<T, detail::Heap<T, Compare>>::BasicQueue;
};

/// Unbounded FIFO queue without task tracking (Python's `queue.SimpleQueue`).
template <class T>
class SimpleQueue {
 public:
  void put(T item) {
    {
      std::lock_guard g(m_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  void put_nowait(T item) { put(std::move(item)); }
  T get() {
    std::unique_lock g(m_);
    cv_.wait(g, [&] { return !items_.empty(); });
    return pop_locked();
  }
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock g(m_);
    if (!cv_.wait_until(g, core::deadline_after(timeout), [&] { return !items_.empty(); })) throw Empty();
    return pop_locked();
  }
  T get_nowait() {
    std::lock_guard g(m_);
    if (items_.empty()) throw Empty();
    return pop_locked();
  }
  [[nodiscard]] std::size_t qsize() const {
    std::lock_guard g(m_);
    return items_.size();
  }
  [[nodiscard]] bool empty() const { return qsize() == 0; }

 private:
  T pop_locked() {
    T v = std::move(items_.front());
    items_.pop_front();
    return v;
  }
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<T> items_;
};

}  // namespace concur::queue
