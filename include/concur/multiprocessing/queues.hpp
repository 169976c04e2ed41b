#pragma once
/// \file multiprocessing.queues: Queue<T>, SimpleQueue<T> and JoinableQueue<T> shared between
/// processes (Python's `multiprocessing.Queue`, `SimpleQueue`, `JoinableQueue`).
///
///     mp::Queue<std::string> q;                  // Queue(maxsize = 0, capacity_bytes = 1 MiB)
///     mp::Process p(consumer, q); p.start();     // void consumer(mp::Queue<std::string> q)
///     q.put("job"); q.put("job", 1s); q.put_nowait("job");
///     std::string job = q.get(1s);               // get(), get(false), get_nowait()
///
/// Where the items live: each queue owns one shared-memory segment ("concur_<pid>_<hex>") holding
/// a header (head, tail, item count, unfinished tasks, maxsize) and a byte ring of
/// `capacity_bytes`. put() serialises the item (serialize.hpp: anything Connection::send takes)
/// and copies it into the ring, length-prefixed; get() copies it out and deserialises it. A child
/// forked afterwards shares the queue through the inherited mapping; any other process attaches
/// with `from_handle(q.handle())`, and cereal serialises a queue as its handle, so a queue can be
/// an argument of a Process or a Pool task (it must be created before, and outlive, that use).
/// Copies of a queue in one process are the same queue. Lifetime of the segment's name: as for
/// the synchronisation objects (synchronize.hpp): the creating process unlinks it when its last
/// copy goes or at its normal exit (processes already attached keep working);
/// shared_memory::cleanup_leftovers() after a crash.
///
/// Bounds: `maxsize` counts items as Python's (<= 0: no limit); independently, the items waiting
/// in the ring cannot take more than `capacity_bytes` (each takes its serialised size plus 8
/// bytes). One item whose serialised size plus 8 exceeds `capacity_bytes` can never fit: put()
/// throws std::invalid_argument at once, naming both sizes (make the queue with a larger
/// capacity).
///
/// - A bounded Queue/JoinableQueue (maxsize > 0) behaves as Python's: put() waits for room (on
///   either account); put_nowait(), put(item, false) and a timed put() throw Full. Nothing is
///   buffered: put() has written the item into shared memory when it returns.
/// - An unbounded Queue/JoinableQueue (maxsize <= 0) never blocks in put(), as Python's (which
///   has a feeder thread): when the ring is full, the item waits in this process and a feeder
///   thread (one per queue per process, started when first needed, gone once its backlog is
///   written) copies the backlog into the ring as consumers make room, in order; later put()s of
///   this process go behind the backlog, so each thread's items stay in order. While a backlog
///   waits, qsize() counts only the items in the ring, and an item is in the queue (JoinableQueue:
///   counted as unfinished) from put(). As in Python, a process does not end before its
///   backlogs are written: normal exit, and a Process's target returning, wait for them —
///   someone must get() them — unless cancel_join_thread() was called for that queue (its
///   backlog is then lost at exit). join_thread() waits for this process's backlog of the queue.
///   A child forked while a backlog waits has none (the parent writes its own).
/// - SimpleQueue (as Python's, which writes straight to its pipe): put() waits for room in the
///   ring.
///
/// Timeouts: put(item, timeout) and get(timeout) wait at most `timeout` (steady clock,
/// CLOCK_MONOTONIC) for room / for an item, then throw Full / Empty (concur::queue's, as Python's
/// multiprocessing raises queue.Full and queue.Empty). Nothing cancels a blocked call other than
/// its timeout: use a timeout or a sentinel item to stop consumers. None of these calls may be
/// made from a signal handler.
///
/// Process and thread safety: every member may be used at once by any threads of any processes
/// attached to the queue. The state is guarded by a robust, process-shared mutex held only while
/// one item is copied in or out; waiting is a futex sleep that holds nothing. A process killed
/// (SIGKILL, crash) while blocked in get() or put() leaves no trace. A process killed while
/// copying an item in loses that item only (it was never visible); one killed while copying an
/// item out leaves the item in the queue for the others. The next process to take the mutex
/// rebuilds the item count from the ring. A JoinableQueue's unfinished-task count may be one off
/// if a process dies in the few instructions between updating it and publishing its item, and an
/// item taken by a process that dies before task_done() is never done (as in Python): join()
/// then waits for ever; use join(timeout).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "concur/core/futex.hpp"
#include "concur/multiprocessing/detail/shared_serializable.hpp"
#include "concur/multiprocessing/serialize.hpp"
#include "concur/multiprocessing/shared_memory.hpp"
#include "concur/multiprocessing/sharedctypes.hpp"
#include "concur/queue/errors.hpp"

namespace concur::multiprocessing {

/// Python's multiprocessing raises queue.Empty and queue.Full: they are concur::queue's.
using Empty = queue::Empty;
using Full = queue::Full;

/// The ring's default size in bytes (the sum of the serialised items a queue holds at once).
inline constexpr std::size_t kDefaultQueueCapacity = std::size_t{1} << 20;

namespace detail {

inline constexpr std::uint32_t kQueueKind = 0x55455551U;          // "QUEU"
inline constexpr std::uint32_t kSimpleQueueKind = 0x45555153U;    // "SQUE"
inline constexpr std::uint32_t kJoinableQueueKind = 0x4555514aU;  // "JQUE"

/// The untyped queue: serialised items in a shared ring. Copies share the same queue and the
/// same closed flag.
class QueueCore {
 public:
  /// A new queue in its own segment. std::invalid_argument if capacity < 16.
  QueueCore(std::uint32_t kind, std::uint64_t type_tag, long maxsize, std::size_t capacity);
  /// Attaches to the queue at `h`: FileNotFoundError if its segment is gone,
  /// std::invalid_argument if it is not a queue of that kind and element type.
  QueueCore(const SharedHandle& h, std::uint32_t kind, std::uint64_t type_tag);

  [[nodiscard]] SharedHandle handle() const;
  [[nodiscard]] std::uint32_t kind() const noexcept { return kind_; }
  /// Appends `bytes` as one item (see the file comment for errors and the feeder).
  void put(std::string_view bytes, bool block, core::Deadline deadline);
  /// Waits until this process's backlog of this queue is written into the ring.
  void join_thread();
  /// This process's backlog of this queue is not waited for at exit.
  void cancel_join_thread();
  /// Items put in this process that wait for room in the ring (the feeder's backlog).
  [[nodiscard]] std::size_t backlog() const;
  /// Removes the oldest item and returns its bytes; Empty when none came in time.
  std::string get(bool block, core::Deadline deadline);
  [[nodiscard]] std::size_t qsize() const;
  [[nodiscard]] bool empty() const;
  [[nodiscard]] bool full() const;
  [[nodiscard]] long maxsize() const noexcept;
  [[nodiscard]] std::size_t capacity() const noexcept;
  void task_done();
  bool join(core::Deadline deadline);
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept;

 private:
  void check_open(const char* what) const;
  /// Writes one item into the ring, waiting for room if `block` (until `deadline`); false
  /// when there was none. `count_task`: a JoinableQueue's unfinished count grows by one.
  bool put_ring(std::string_view bytes, bool block, core::Deadline deadline, bool count_task);
  std::shared_ptr<Segment> segment_;
  std::uint32_t kind_ = 0;
  void* state_ = nullptr;
  std::byte* ring_ = nullptr;
  std::shared_ptr<std::atomic<bool>> closed_;
};

/// Waits until every backlog of this process is written (at exit: see Queue; a no-op when
/// there is none). Cancelled queues are not waited for.
void flush_feeders() noexcept;

}  // namespace detail

/// A FIFO queue shared between processes (Python's `multiprocessing.Queue`). T: anything
/// serialisable (serialize.hpp) and default-constructible. See the file comment for bounds,
/// timeouts, crashes and thread safety.
template <class T>
class Queue : public detail::SharedSerializable<Queue<T>> {
 public:
  /// maxsize <= 0: no limit on the number of items. capacity_bytes: the ring's size.
  explicit Queue(int maxsize = 0, std::size_t capacity_bytes = kDefaultQueueCapacity)
      : Queue(detail::kQueueKind, maxsize, capacity_bytes) {}

  /// Puts `item`: bounded, waiting for room; unbounded, never waiting (the feeder: see the file
  /// comment). std::invalid_argument if it can never fit, or after close().
  void put(const T& item) { core_.put(dumps(item), true, std::nullopt); }
  /// put(item, block=False) when `block` is false: Full at once if a bounded queue has no room.
  void put(const T& item, bool block) { core_.put(dumps(item), block, std::nullopt); }
  /// Bounded: waits at most `timeout` for room, then throws Full.
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    core_.put(dumps(item), true, core::deadline_after(timeout));
  }
  void put_nowait(const T& item) { put(item, false); }

  /// Removes and returns the oldest item, waiting for one.
  T get() { return loads<T>(core_.get(true, std::nullopt)); }
  /// get(block=False) when `block` is false: Empty at once if there is none.
  T get(bool block) { return loads<T>(core_.get(block, std::nullopt)); }
  /// Waits at most `timeout` for an item, then throws Empty.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return loads<T>(core_.get(true, core::deadline_after(timeout)));
  }
  T get_nowait() { return get(false); }

  /// The number of items in the queue now (exact when read; others may change it at once).
  [[nodiscard]] std::size_t qsize() const { return core_.qsize(); }
  [[nodiscard]] bool empty() const { return core_.empty(); }
  /// True when maxsize > 0 items are queued (the byte capacity is not counted).
  [[nodiscard]] bool full() const { return core_.full(); }
  [[nodiscard]] long maxsize() const noexcept { return core_.maxsize(); }
  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return core_.capacity(); }

  /// This process (this object and its copies here) will use the queue no more: put() and get()
  /// throw std::invalid_argument afterwards, as Python's raise ValueError. Other processes, and
  /// the items already put, are unaffected (a backlog is still written). Idempotent.
  void close() noexcept { core_.close(); }
  /// Waits until the items this process put are all in shared memory (the feeder's backlog is
  /// written; at once when there is none). Blocks while no one gets items, as Python's.
  void join_thread() { core_.join_thread(); }
  /// At exit, this process will not wait for its backlog of this queue (lost if unwritten).
  void cancel_join_thread() { core_.cancel_join_thread(); }

  [[nodiscard]] SharedHandle handle() const { return core_.handle(); }

 protected:
  friend class detail::SharedSerializable<Queue>;
  explicit Queue(const SharedHandle& h) : Queue(h, detail::kQueueKind) {}
  Queue(std::uint32_t kind, int maxsize, std::size_t capacity_bytes)
      : core_(kind, detail::type_tag<T>(), maxsize, capacity_bytes) {}
  Queue(const SharedHandle& h, std::uint32_t kind) : core_(h, kind, detail::type_tag<T>()) {}

  detail::QueueCore core_;
};

/// A Queue whose items are counted until processed (Python's `multiprocessing.JoinableQueue`):
/// every put() adds an unfinished task, task_done() finishes one, join() waits until none is
/// left.
template <class T>
class JoinableQueue : public Queue<T>, public detail::SharedSerializable<JoinableQueue<T>> {
  using Mixin = detail::SharedSerializable<JoinableQueue<T>>;

 public:
  explicit JoinableQueue(int maxsize = 0, std::size_t capacity_bytes = kDefaultQueueCapacity)
      : Queue<T>(detail::kJoinableQueueKind, maxsize, capacity_bytes) {}
  using Mixin::from_handle;
  using Mixin::load;
  using Mixin::save;

  /// Marks one item got earlier as processed. std::invalid_argument if called more times than
  /// items were put (Python's ValueError).
  void task_done() { this->core_.task_done(); }
  /// Blocks until every item put has been marked task_done().
  void join() { this->core_.join(std::nullopt); }
  /// Waits at most `timeout`; returns whether every item was done (an addition to Python's).
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return this->core_.join(core::deadline_after(timeout));
  }

 private:
  friend Mixin;
  explicit JoinableQueue(const SharedHandle& h) : Queue<T>(h, detail::kJoinableQueueKind) {}
};

/// The plain unbounded queue (Python's `multiprocessing.SimpleQueue`): put, get, empty, close.
/// put() still waits when the ring's `capacity_bytes` are full (as Python's waits on its pipe).
template <class T>
class SimpleQueue : public detail::SharedSerializable<SimpleQueue<T>> {
 public:
  explicit SimpleQueue(std::size_t capacity_bytes = kDefaultQueueCapacity)
      : core_(detail::kSimpleQueueKind, detail::type_tag<T>(), 0, capacity_bytes) {}

  void put(const T& item) { core_.put(dumps(item), true, std::nullopt); }
  T get() { return loads<T>(core_.get(true, std::nullopt)); }
  [[nodiscard]] bool empty() const { return core_.empty(); }
  /// As Queue::close(): put() and get() in this process throw std::invalid_argument afterwards.
  void close() noexcept { core_.close(); }

  [[nodiscard]] SharedHandle handle() const { return core_.handle(); }

 private:
  friend class detail::SharedSerializable<SimpleQueue>;
  explicit SimpleQueue(const SharedHandle& h) : core_(h, detail::kSimpleQueueKind, detail::type_tag<T>()) {}
  detail::QueueCore core_;
};

}  // namespace concur::multiprocessing
