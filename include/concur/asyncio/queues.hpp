#pragma once
/// \file asyncio.Queue, PriorityQueue and LifoQueue.
///
/// Python's asyncio queues: loop-thread only (not thread-safe, like Python's; from another
/// thread use loop.call_soon_threadsafe, or concur::queue for threads). Waiting getters and
/// putters are tasks parked in `core::WaitList`s and woken through `detail::TaskWaiter`s, in
/// FIFO order. As in Python, a woken task re-checks the queue when it runs (a task that finds an
/// item or a free slot meanwhile goes ahead without waiting, and the woken one then waits again
/// at the back); items never leave the queue before a getter returns with them.
/// A queue must outlive the tasks waiting on it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "concur/asyncio/coro.hpp"
#include "concur/asyncio/locks.hpp"
#include "concur/core/error.hpp"
#include "concur/core/waiter.hpp"
#include "concur/queue/queue.hpp"

namespace concur::asyncio {

/// get_nowait() on an empty queue (Python's `asyncio.QueueEmpty`).
class QueueEmpty : public Error {
 public:
  QueueEmpty() : Error("the queue is empty") {}
  using Error::Error;
};

/// put_nowait() on a full queue (Python's `asyncio.QueueFull`).
class QueueFull : public Error {
 public:
  QueueFull() : Error("the queue is full") {}
  using Error::Error;
};

/// put on a shut-down queue, or get on a shut-down queue that is empty (Python 3.13's
/// `asyncio.QueueShutDown`).
class QueueShutDown : public Error {
 public:
  QueueShutDown() : Error("the queue is shut down") {}
  using Error::Error;
};

namespace detail {

// The item stores are the threading queue's (queue::detail::Fifo/Lifo/Heap): one definition
// of FIFO, LIFO and smallest-first order for both faces.

/// The queue logic shared by Queue, LifoQueue and PriorityQueue (Python's `asyncio.Queue`
/// with its `_put`/`_get` hooks).
template <class T, class Storage>
class BasicQueue {
 public:
  using value_type = T;

  /// `maxsize` <= 0: unbounded.
  explicit BasicQueue(std::int64_t maxsize = 0) : maxsize_(maxsize) { finished_.set(); }
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;
  ~BasicQueue() {
    detach_all(getters_);
    detach_all(putters_);
  }

  /// `co_await q.put(x)`: adds `x`, suspending while the queue is full. Throws QueueShutDown if
  /// the queue is or becomes shut down. Does not suspend when there is room.
  /// Cancel safety: a cancelled put() has not added its item (it is dropped with the coroutine);
  /// a free slot it was woken for is offered to the next waiting putter.
  Coro<void> put(T item) {
    while (full()) {
      if (shutdown_) throw QueueShutDown();
      bool notified = false;
      try {
        co_await ListAwaiter(putters_, &notified);
      } catch (...) {
        if (notified && !full()) notify_first(putters_);
        throw;
      }
    }
    put_nowait(std::move(item));
  }

  /// `T v = co_await q.get()`: removes and returns the next item, suspending while the queue is
  /// empty. Throws QueueShutDown if the queue is shut down and empty. Does not suspend when an
  /// item is there.
  /// Cancel safety: cancelling get() loses no item — an item leaves the queue only when a getter
  /// returns it; a wake-up meant for a cancelled getter is passed to the next waiting getter.
  Coro<T> get() {
    while (empty()) {
      if (shutdown_) throw QueueShutDown();
      bool notified = false;
      try {
        co_await ListAwaiter(getters_, &notified);
      } catch (...) {
        if (notified && !empty()) notify_first(getters_);
        throw;
      }
    }
    co_return take();
  }

  /// Adds `item` without waiting: QueueFull if full, QueueShutDown if shut down.
  void put_nowait(T item) {
    if (shutdown_) throw QueueShutDown();
    if (full()) throw QueueFull();
    storage_.push(std::move(item));
    ++unfinished_;
    finished_.clear();
    notify_first(getters_);
  }

  /// Removes and returns an item without waiting: QueueEmpty if empty (QueueShutDown if also
  /// shut down).
  T get_nowait() {
    if (empty()) {
      if (shutdown_) throw QueueShutDown();
      throw QueueEmpty();
    }
    return take();
  }

  /// Marks one item fetched earlier as processed. std::invalid_argument if called more times
  /// than items were put.
  void task_done() {
    if (unfinished_ == 0)
      throw std::invalid_argument("asyncio Queue.task_done() called too many times (more than items put)");
    if (--unfinished_ == 0) finished_.set();
  }

  /// `co_await q.join()`: suspends until every item put has been marked task_done().
  /// Cancel safety: cancelling join() only ends the wait; nothing is lost.
  Coro<void> join() {
    if (unfinished_ > 0) co_await finished_.wait();
  }

  /// Python 3.13's shutdown(): later put()/put_nowait() throw QueueShutDown, and so do get()s
  /// once the queue is empty; every waiting putter and getter wakes (and throws unless an item
  /// is there for it). `immediate`: the items left are dropped (each counted as task_done), so
  /// get() throws at once and join() returns.
  void shutdown(bool immediate = false) {
    shutdown_ = true;
    if (immediate) {
      while (storage_.size() > 0) {
        (void)storage_.pop();
        if (unfinished_ > 0) --unfinished_;
      }
      if (unfinished_ == 0) finished_.set();
    }
    notify_all(getters_);
    notify_all(putters_);
  }

  [[nodiscard]] std::size_t qsize() const noexcept { return storage_.size(); }
  [[nodiscard]] bool empty() const noexcept { return storage_.size() == 0; }
  /// True if maxsize > 0 and qsize() >= maxsize.
  [[nodiscard]] bool full() const noexcept {
    return maxsize_ > 0 && storage_.size() >= static_cast<std::size_t>(maxsize_);
  }
  [[nodiscard]] std::int64_t maxsize() const noexcept { return maxsize_; }
  [[nodiscard]] bool is_shutdown() const noexcept { return shutdown_; }
  /// Items put but not yet marked task_done().
  [[nodiscard]] std::size_t unfinished_tasks() const noexcept { return unfinished_; }

 private:
  T take() {
    T v = storage_.pop();
    notify_first(putters_);
    return v;
  }

  std::int64_t maxsize_;
  Storage storage_;
  std::size_t unfinished_ = 0;
  bool shutdown_ = false;
  Event finished_;
  core::WaitList getters_;
  core::WaitList putters_;
};

}  // namespace detail

/// A FIFO queue for tasks (Python's `asyncio.Queue`). Loop thread only.
template <class T>
class Queue : public detail::BasicQueue<T, concur::queue::detail::Fifo<T>> {
 public:
  using detail::BasicQueue<T, concur::queue::detail::Fifo<T>>::BasicQueue;
};

/// A LIFO queue for tasks (Python's `asyncio.LifoQueue`): get() returns the newest item.
template <class T>
class LifoQueue : public detail::BasicQueue<T, concur::queue::detail::Lifo<T>> {
 public:
  using detail::BasicQueue<T, concur::queue::detail::Lifo<T>>::BasicQueue;
};

/// A priority queue for tasks (Python's `asyncio.PriorityQueue`): get() returns the least item
/// by `Compare` (default `<`, e.g. `std::pair<int, Job>` by priority first). Items that compare
/// equal come out in no particular order, as with Python's heapq.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, concur::queue::detail::Heap<T, Compare>> {
 public:
  using detail::BasicQueue<T, concur::queue::detail::Heap<T, Compare>>::BasicQueue;
};

}  // namespace concur::asyncio
