#pragma once
/// \file multiprocessing.synchronize: Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition
/// and Barrier shared between processes.
///
/// Where they live: each object owns a small shared-memory segment ("concur_<pid>_<hex>" in
/// /dev/shm) holding its state, made when it is constructed. A child forked afterwards shares it
/// through the inherited MAP_SHARED mapping; any other process (a spawned child, an unrelated
/// program) attaches with `from_handle(obj.handle())`, and cereal serialises an object as its
/// handle, so it can be passed as an argument to a worker process. Copies of an object in one
/// process refer to the same shared state (like Python references). The creating process unlinks
/// the segment's name when its last copy goes (or at its normal exit); processes already attached
/// keep working, later from_handle() calls get FileNotFoundError. After a crash of the creator,
/// shared_memory::cleanup_leftovers() removes the name.
///
/// Internally every state is guarded by a robust, process-shared pthread mutex held for a few
/// instructions; sleeping is a futex wait on a word of the shared state (non-private futexes, so
/// they work across processes; timeouts on CLOCK_MONOTONIC, i.e. std::chrono::steady_clock).
///
/// What survives a process's death (SIGKILL, crash) — see each class: a Lock or RLock held by a
/// dead thread is handed to the next acquirer; a Semaphore unit held by a dead process is lost
/// (as in Python); a dead waiter never blocks the others, except in a Barrier, which breaks only
/// when someone's timeout passes (so give a Barrier a timeout when parties may die).
///
/// Cancellation: none of these calls is a cancellation point; a signal handler must not call them.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>

#include "concur/core/futex.hpp"
#include "concur/multiprocessing/detail/shared_serializable.hpp"
#include "concur/multiprocessing/detail/task.hpp"
#include "concur/multiprocessing/shared_memory.hpp"
#include "concur/threading/barrier.hpp"

namespace concur::multiprocessing {

/// Python's multiprocessing.BrokenBarrierError is threading's.
using BrokenBarrierError = threading::BrokenBarrierError;

namespace detail {

/// Tags stored as the first four bytes of each shared state (checked by from_handle()).
inline constexpr std::uint32_t kLockKind = 0x4b434f4cU;       // "LOCK"
inline constexpr std::uint32_t kRLockKind = 0x4b434c52U;      // "RLCK"
inline constexpr std::uint32_t kSemaphoreKind = 0x414d4553U;  // "SEMA"
inline constexpr std::uint32_t kBoundedKind = 0x4d455342U;    // "BSEM"
inline constexpr std::uint32_t kEventKind = 0x544e5645U;      // "EVNT"
inline constexpr std::uint32_t kConditionKind = 0x444e4f43U;  // "COND"
inline constexpr std::uint32_t kBarrierKind = 0x52524142U;    // "BARR"

/// A position in a segment: what an object attached to existing state is built from.
struct AttachedAt {
  std::shared_ptr<Segment> segment;
  std::uint64_t offset = 0;
};

/// The bytes a Lock/RLock state takes (Value and Array embed one in their own segment).
std::size_t mutex_state_size() noexcept;
/// Initialises a Lock (recursive == false) or RLock state at `p` (zeroed, 8-byte aligned).
void init_mutex_state(void* p, bool recursive);

/// What every shared object holds: its segment (kept mapped while any copy lives in this
/// process), its offset there, its kind, and a pointer to its state.
class SharedObject {
 public:
  /// Where this object lives, for from_handle() in another process.
  [[nodiscard]] SharedHandle handle() const { return {segment_->name(), offset_, kind_}; }

 protected:
  SharedObject(std::uint32_t kind, std::size_t state_size, void (*init)(void* state, const void* arg), const void* arg);
  SharedObject(AttachedAt at, std::uint32_t kind, std::size_t state_size);
  SharedObject(const SharedHandle& h, std::uint32_t expected_kind, std::size_t state_size);

  std::shared_ptr<Segment> segment_;
  std::uint64_t offset_ = 0;
  std::uint32_t kind_ = 0;
  void* state_ = nullptr;
};

/// The common body of Lock and RLock: a robust, process-shared, error-checking pthread mutex plus
/// the owner (pid, tid) and a recursion count.
class MutexBase : public SharedObject {
 public:
  /// Blocks until acquired; with `blocking == false` returns at once whether it got the lock.
  /// If the holder died (process killed, thread exited) while holding it, the lock passes to this
  /// caller (pthread_mutex_consistent): the data it protects may be half-updated.
  /// Throws std::logic_error when a thread blocks on a Lock it already holds (it would wait
  /// forever; RLock re-enters instead), OSError on an unexpected pthread error.
  bool acquire(bool blocking = true);
  /// Waits at most `timeout`; returns whether the lock was acquired.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(core::deadline_after(timeout));
  }
  bool acquire_until(core::Clock::time_point deadline);
  /// Releases (one level of an RLock). Throws std::logic_error if the calling thread does not
  /// hold it — unlike Python's multiprocessing.Lock, which any process may release: an owned,
  /// robust mutex is what lets the lock survive its holder's death. Use a Semaphore(1) to signal.
  void release();

  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    return acquire(d);
  }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> t) {
    return acquire(t - Clock::now());
  }

  /// Whether the calling thread holds it.
  [[nodiscard]] bool is_owned() const noexcept;

  // For Condition: release every level, and take them back.
  std::uint32_t release_save();
  void acquire_restore(std::uint32_t saved);

 protected:
  using SharedObject::SharedObject;
  bool acquire_impl(bool blocking, core::Deadline deadline);
};

}  // namespace detail

/// A process-shared lock (Python's `multiprocessing.Lock`). Not re-entrant. std Lockable and
/// TimedLockable: `std::scoped_lock g(lock);`.
/// Process and thread safety: all members. Survives its holder's death: the next acquire()
/// succeeds (see MutexBase::acquire). Released by the thread that acquired it.
class Lock : public detail::MutexBase, public detail::SharedSerializable<Lock> {
 public:
  /// Creates a new, unlocked lock in its own segment.
  Lock();
  explicit Lock(detail::AttachedAt at);

 private:
  friend class detail::SharedSerializable<Lock>;
  explicit Lock(const SharedHandle& h);
};

/// A process-shared re-entrant lock (Python's `multiprocessing.RLock`): the owning thread may
/// acquire it again and must release it as many times. std Lockable and TimedLockable.
/// Process and thread safety: all members. Survives its holder's death as Lock does (the new
/// owner starts with a count of one).
class RLock : public detail::MutexBase, public detail::SharedSerializable<RLock> {
 public:
  RLock();
  /// Attaches to the RLock state at `at` (how Value and Array hand out get_lock()).
  explicit RLock(detail::AttachedAt at);

 private:
  friend class detail::SharedSerializable<RLock>;
  explicit RLock(const SharedHandle& h);
};

/// A process-shared counting semaphore (Python's `multiprocessing.Semaphore`).
/// Process and thread safety: all members; any thread of any process may release.
/// A unit acquired by a process that dies is never given back (as in Python): the count stays
/// one lower. Waiters that die while waiting leave no trace.
class Semaphore : public detail::SharedObject, public detail::SharedSerializable<Semaphore> {
 public:
  /// Throws std::invalid_argument if value < 0.
  explicit Semaphore(int value = 1);

  /// Takes a unit, waiting for one; with `blocking == false` returns at once whether it got one.
  bool acquire(bool blocking = true);
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_impl(true, core::deadline_after(timeout));
  }
  /// Gives back `n` units and wakes waiters. BoundedSemaphore: std::invalid_argument if that
  /// would exceed the initial value. n < 1: std::invalid_argument.
  void release(int n = 1);
  /// The current count (Python's `get_value()`).
  [[nodiscard]] int get_value() const;

  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }

 protected:
  Semaphore(int value, bool bounded);
  Semaphore(const SharedHandle& h, std::uint32_t kind);
  bool acquire_impl(bool blocking, core::Deadline deadline);

 private:
  friend class detail::SharedSerializable<Semaphore>;
  explicit Semaphore(const SharedHandle& h) : Semaphore(h, detail::kSemaphoreKind) {}
};

/// A Semaphore that refuses release() above its initial value (Python's `BoundedSemaphore`).
class BoundedSemaphore : public Semaphore, public detail::SharedSerializable<BoundedSemaphore> {
 public:
  using detail::SharedSerializable<BoundedSemaphore>::from_handle;
  using detail::SharedSerializable<BoundedSemaphore>::load;
  using detail::SharedSerializable<BoundedSemaphore>::save;
  explicit BoundedSemaphore(int value = 1);

 private:
  friend class detail::SharedSerializable<BoundedSemaphore>;
  explicit BoundedSemaphore(const SharedHandle& h);
};

/// A process-shared event flag (Python's `multiprocessing.Event`).
/// Process and thread safety: all members. Lock-free (an atomic word and a futex): nothing to
/// recover when a process dies.
class Event : public detail::SharedObject, public detail::SharedSerializable<Event> {
 public:
  Event();

  /// Sets the flag and wakes every waiter.
  void set();
  /// Clears the flag.
  void clear();
  [[nodiscard]] bool is_set() const noexcept;
  /// Waits until the flag is set; returns true. A set() during the wait wakes it even if a
  /// clear() follows at once (as Python's).
  bool wait();
  /// Waits at most `timeout`; returns whether the flag was set (false on timeout).
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_impl(core::deadline_after(timeout));
  }

 private:
  friend class detail::SharedSerializable<Event>;
  explicit Event(const SharedHandle& h);
  bool wait_impl(core::Deadline deadline);
};

/// A process-shared condition variable (Python's `multiprocessing.Condition`), bound to a Lock or
/// an RLock (a new RLock by default). std Lockable through its lock:
///
///     { std::unique_lock g(cond); cond.wait_for([&] { return ready.value(); }, 1s); }
///
/// Process and thread safety: all members; wait and notify need the lock held by the caller
/// (std::logic_error otherwise). Which waiter a notify() wakes is unspecified, and a wait() may
/// wake spuriously (rarely: a futex wake-up that a newer waiter takes); wait in a loop, or use
/// wait_for(pred). A waiter that dies may absorb one later notify().
class Condition : public detail::SharedObject, public detail::SharedSerializable<Condition> {
 public:
  Condition();
  explicit Condition(const Lock& lock);
  explicit Condition(const RLock& lock);
  // from_handle() attaches to the condition and to its lock, whose location its state records.

  bool acquire(bool blocking = true) { return lock_->acquire(blocking); }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return lock_->acquire(timeout);
  }
  void release() { lock_->release(); }
  void lock() { lock_->acquire(); }
  bool try_lock() { return lock_->acquire(false); }
  void unlock() { lock_->release(); }

  /// Releases the lock (every level of an RLock), waits for notify(), re-acquires it. Returns
  /// true when notified, false when `timeout` passed.
  bool wait();
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_impl(core::deadline_after(timeout));
  }
  /// Waits until `pred()` is true (checked under the lock); returns pred's last value.
  template <class Pred>
  bool wait_for(Pred pred) {
    while (!pred()) wait();
    return true;
  }
  template <class Pred, class Rep, class Period>
  bool wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout) {
    auto deadline = core::deadline_after(timeout);
    bool ok = pred();
    while (!ok) {
      if (!wait_impl(deadline)) return pred();
      ok = pred();
    }
    return ok;
  }
  /// Wakes up to `n` of the processes/threads waiting now.
  void notify(int n = 1);
  void notify_all();

 private:
  friend class detail::SharedSerializable<Condition>;
  explicit Condition(const SharedHandle& h);
  void bind_lock(const SharedHandle& lock_handle);
  bool wait_impl(core::Deadline deadline);
  std::shared_ptr<detail::MutexBase> lock_;
};

/// A process-shared cyclic barrier (Python's `multiprocessing.Barrier(parties, action, timeout)`).
/// Process and thread safety: all members. A party that dies while others wait leaves them
/// waiting until their timeout passes, which breaks the barrier: give it a timeout.
class Barrier : public detail::SharedObject, public detail::SharedSerializable<Barrier> {
 public:
  /// Throws std::invalid_argument if parties < 1. `timeout`: the default of wait().
  explicit Barrier(std::size_t parties, std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  /// With an `action`: a plain function or captureless lambda taking nothing, run once per
  /// round, when the barrier trips, by the last party to arrive (in whichever process that is,
  /// as Python's), before any party is released. It travels as code identity (task.hpp), so
  /// every process that may trip the barrier must run this same executable. It runs with the
  /// barrier's internal lock held: it must not call this barrier's members. If it throws, the
  /// barrier breaks (the others get BrokenBarrierError) and its caller gets the exception.
  template <class F>
  requires std::is_convertible_v<F, void (*)()> Barrier(std::size_t parties, F action,
                                                        std::optional<std::chrono::nanoseconds> timeout = std::nullopt)
      : Barrier(parties, detail::code_ref(reinterpret_cast<const void*>(static_cast<void (*)()>(action))), timeout) {}

  /// Waits until `parties` callers have called wait(); returns a distinct index in [0, parties)
  /// (arrival order). Throws BrokenBarrierError if the barrier is or becomes broken, or the
  /// timeout passes (which breaks it).
  std::size_t wait();
  template <class Rep, class Period>
  std::size_t wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_impl(core::deadline_after(timeout));
  }
  /// Returns the barrier to its empty state; current waiters get BrokenBarrierError.
  void reset();
  /// Breaks the barrier: current and later wait() calls throw BrokenBarrierError until reset().
  void abort();
  [[nodiscard]] std::size_t parties() const;
  [[nodiscard]] std::size_t n_waiting() const;
  [[nodiscard]] bool broken() const;

 private:
  friend class detail::SharedSerializable<Barrier>;
  explicit Barrier(const SharedHandle& h);
  Barrier(std::size_t parties, const detail::CodeRef& action, std::optional<std::chrono::nanoseconds> timeout);
  std::size_t wait_impl(core::Deadline deadline);
};

}  // namespace concur::multiprocessing
