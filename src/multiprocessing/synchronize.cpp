#include "concur/multiprocessing/synchronize.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <stdexcept>
#include <thread>

#include "shared_sync.hpp"

#include "concur/multiprocessing/sharedctypes.hpp"

namespace concur::multiprocessing {

namespace {

using detail::futex_wait_shared;
using detail::futex_wake_shared;
using detail::init_robust;
using detail::passed;

// ---- identity of the calling thread, cached (gettid/getpid are system calls) ----

thread_local int t_tid = 0;
thread_local int t_pid = 0;
// fork() gives the child's only thread a new tid and pid: forget the cached ones.
[[maybe_unused]] const int g_atfork = ::pthread_atfork(nullptr, nullptr, [] {
  t_tid = 0;
  t_pid = 0;
});

int my_tid() {
  if (t_tid == 0) t_tid = static_cast<int>(::gettid());
  return t_tid;
}
int my_pid() {
  if (t_pid == 0) t_pid = static_cast<int>(::getpid());
  return t_pid;
}

/// Locks a state's internal mutex. A holder that died inside one of the short critical sections
/// below left at worst one counter off by one; carry on.
void ilock(pthread_mutex_t* m) {
  int r = ::pthread_mutex_lock(m);
  if (r == EOWNERDEAD) {
    ::pthread_mutex_consistent(m);
    r = 0;
  }
  if (r != 0) throw_os_error(r, "lock the internal mutex of a process-shared object");
}
void iunlock(pthread_mutex_t* m) noexcept { ::pthread_mutex_unlock(m); }

class Guard {
 public:
  explicit Guard(pthread_mutex_t* m) : m_(m) { ilock(m_); }
  ~Guard() { iunlock(m_); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  /// With the mutex held: sleeps until `seq` moves or `d` passes, then re-locks. Returns false,
  /// without sleeping, once the deadline has passed; callers re-check their condition either way.
  bool wait(std::atomic<std::uint32_t>& seq, const core::Deadline& d) {
    if (passed(d)) return false;
    std::uint32_t s = seq.load(std::memory_order_acquire);
    iunlock(m_);
    futex_wait_shared(seq, s, d);
    ilock(m_);
    return true;
  }

 private:
  pthread_mutex_t* m_;
};

/// Bumps `seq` (under the internal mutex) and wakes every sleeper on it.
void notify_all_locked(std::atomic<std::uint32_t>& seq) {
  seq.fetch_add(1, std::memory_order_release);
  futex_wake_shared(seq);
}

// ---- shared states; the kind tag comes first in each ----

struct MutexState {
  std::uint32_t kind;
  std::uint32_t recursive;
  pthread_mutex_t m;                    // robust, process-shared, error-checking: the lock itself
  std::atomic<std::int32_t> owner_pid;  // (owner_pid, owner_tid) of the holder, 0 when free;
  std::atomic<std::int32_t> owner_tid;  // written only by the holder, stale after a holder's death
  std::uint32_t count;                  // recursion depth, touched only by the holder
};

struct SemaphoreState {
  std::uint32_t kind;
  std::uint32_t sleepers;  // guarded by m
  pthread_mutex_t m;
  std::int64_t value;              // guarded by m
  std::int64_t max;                // -1: unbounded
  std::atomic<std::uint32_t> seq;  // bumped on release, futex word
};

struct EventState {
  std::uint32_t kind;
  // (generation << 1) | is_set; set() bumps the generation, so a waiter can tell that a set()
  // happened even when a clear() followed at once. Futex word.
  std::atomic<std::uint32_t> word;
};

struct ConditionState {
  std::uint32_t kind;
  std::uint32_t lock_kind;
  pthread_mutex_t m;
  std::uint64_t waiters;  // waiting and not yet notified; guarded by m
  std::uint64_t permits;  // notifications not yet taken by a waiter; guarded by m
  std::atomic<std::uint32_t> seq;
  std::uint32_t reserved;
  std::uint64_t lock_offset;
  char lock_name[256];  // segment of the bound lock (may be this condition's own)
};

struct BarrierState {
  std::uint32_t kind;
  std::int32_t state;  // 0 filling, 1 draining, -1 resetting, -2 broken (Python's values); guarded by m
  pthread_mutex_t m;
  std::uint64_t parties;
  std::uint64_t count;      // guarded by m
  std::int64_t timeout_ns;  // default timeout of wait(), -1: none
  std::atomic<std::uint32_t> seq;
  std::uint32_t action_id_size;  // the action's CodeRef (build-id, offset); size 0: no action
  char action_build_id[120];
  std::uint64_t action_offset;
};

constexpr std::size_t round8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

}  // namespace

namespace detail {

std::size_t mutex_state_size() noexcept { return sizeof(MutexState); }

void init_mutex_state(void* p, bool recursive) {
  auto* st = new (p) MutexState{};
  st->kind = recursive ? kRLockKind : kLockKind;
  st->recursive = recursive ? 1 : 0;
  init_robust(&st->m, PTHREAD_MUTEX_ERRORCHECK);
}

// ---- SharedObject ----

SharedObject::SharedObject(std::uint32_t kind, std::size_t state_size, void (*init)(void*, const void*),
                           const void* arg)
    : segment_(Segment::create(round8(state_size))), offset_(0), kind_(kind) {
  state_ = segment_->data();
  init(state_, arg);
}

SharedObject::SharedObject(AttachedAt at, std::uint32_t kind, std::size_t state_size)
    : segment_(std::move(at.segment)), offset_(at.offset), kind_(kind) {
  state_ = segment_->at({segment_->name(), offset_, kind_}, state_size);
}

SharedObject::SharedObject(const SharedHandle& h, std::uint32_t expected_kind, std::size_t state_size)
    : kind_(expected_kind) {
  if (h.kind != expected_kind) throw std::invalid_argument("handle {'" + h.name + "'} is not of the expected type");
  segment_ = Segment::attach(h.name);
  offset_ = h.offset;
  state_ = segment_->at(h, state_size);
}

// ---- Lock / RLock ----

bool MutexBase::acquire(bool blocking) { return acquire_impl(blocking, std::nullopt); }

bool MutexBase::acquire_until(core::Clock::time_point deadline) { return acquire_impl(true, deadline); }

bool MutexBase::acquire_impl(bool blocking, core::Deadline deadline) {
  auto* st = static_cast<MutexState*>(state_);
  const int tid = my_tid();
  const int pid = my_pid();
  if (st->owner_tid.load(std::memory_order_relaxed) == tid && st->owner_pid.load(std::memory_order_relaxed) == pid) {
    if (st->recursive) {
      ++st->count;
      return true;
    }
    // A Lock is not re-entrant: Python would wait out the timeout, or forever.
    if (!blocking) return false;
    if (deadline && *deadline != core::Clock::time_point::max()) {
      std::this_thread::sleep_until(*deadline);
      return false;
    }
    throw std::logic_error(
        "multiprocessing.Lock.acquire(): this thread already holds the lock and would wait forever; use an RLock "
        "to re-enter");
  }
  int r;
  if (!blocking) {
    r = ::pthread_mutex_trylock(&st->m);
  } else if (!deadline || *deadline == core::Clock::time_point::max()) {
    r = ::pthread_mutex_lock(&st->m);
  } else {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch()).count();
    if (ns < 0) ns = 0;
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    r = ::pthread_mutex_clocklock(&st->m, CLOCK_MONOTONIC, &ts);
  }
  if (r == EOWNERDEAD) {  // the holder died: the lock is ours, the data it guards may be inconsistent
    ::pthread_mutex_consistent(&st->m);
    r = 0;
  }
  if (r == EBUSY || r == ETIMEDOUT) return false;
  if (r != 0) throw_os_error(r, "acquire a process-shared lock");
  st->count = 1;
  st->owner_pid.store(pid, std::memory_order_relaxed);
  st->owner_tid.store(tid, std::memory_order_relaxed);
  return true;
}

bool MutexBase::is_owned() const noexcept {
  auto* st = static_cast<MutexState*>(state_);
  return st->owner_tid.load(std::memory_order_relaxed) == my_tid() &&
         st->owner_pid.load(std::memory_order_relaxed) == my_pid();
}

void MutexBase::release() {
  auto* st = static_cast<MutexState*>(state_);
  if (!is_owned())
    throw std::logic_error(st->recursive ? "cannot release un-acquired lock: this thread does not hold the RLock"
                                         : "cannot release a multiprocessing.Lock this thread does not hold (it is "
                                           "owned by its acquirer; use a Semaphore(1) to signal between processes)");
  if (st->count > 1) {
    --st->count;
    return;
  }
  st->count = 0;
  st->owner_tid.store(0, std::memory_order_relaxed);
  st->owner_pid.store(0, std::memory_order_relaxed);
  int r = ::pthread_mutex_unlock(&st->m);
  if (r != 0) throw_os_error(r, "release a process-shared lock");
}

std::uint32_t MutexBase::release_save() {
  auto* st = static_cast<MutexState*>(state_);
  if (!is_owned()) throw std::logic_error("cannot wait on un-acquired lock");
  std::uint32_t saved = st->count;
  st->count = 1;
  release();
  return saved;
}

void MutexBase::acquire_restore(std::uint32_t saved) {
  acquire_impl(true, std::nullopt);
  static_cast<MutexState*>(state_)->count = saved;
}

}  // namespace detail

namespace {
void init_lock(void* p, const void* recursive) { detail::init_mutex_state(p, *static_cast<const bool*>(recursive)); }
constexpr bool kFalse = false;
constexpr bool kTrue = true;
}  // namespace

Lock::Lock() : MutexBase(detail::kLockKind, sizeof(MutexState), init_lock, &kFalse) {}
Lock::Lock(detail::AttachedAt at) : MutexBase(std::move(at), detail::kLockKind, sizeof(MutexState)) {}
Lock::Lock(const SharedHandle& h) : MutexBase(h, detail::kLockKind, sizeof(MutexState)) {}

RLock::RLock() : MutexBase(detail::kRLockKind, sizeof(MutexState), init_lock, &kTrue) {}
RLock::RLock(detail::AttachedAt at) : MutexBase(std::move(at), detail::kRLockKind, sizeof(MutexState)) {}
RLock::RLock(const SharedHandle& h) : MutexBase(h, detail::kRLockKind, sizeof(MutexState)) {}

// ---- Semaphore ----

namespace {
struct SemInit {
  int value;
  bool bounded;
};
void init_semaphore(void* p, const void* arg) {
  const auto* a = static_cast<const SemInit*>(arg);
  auto* st = new (p) SemaphoreState{};
  st->kind = a->bounded ? detail::kBoundedKind : detail::kSemaphoreKind;
  st->value = a->value;
  st->max = a->bounded ? a->value : -1;
  init_robust(&st->m, PTHREAD_MUTEX_NORMAL);
}
int checked_value(int v) {
  if (v < 0) throw std::invalid_argument("semaphore initial value must be >= 0");
  return v;
}
}  // namespace

Semaphore::Semaphore(int value) : Semaphore(value, false) {}
Semaphore::Semaphore(int value, bool bounded)
    : SharedObject(bounded ? detail::kBoundedKind : detail::kSemaphoreKind, sizeof(SemaphoreState), init_semaphore,
                   std::addressof(static_cast<const SemInit&>(SemInit{checked_value(value), bounded}))) {}
Semaphore::Semaphore(const SharedHandle& h, std::uint32_t kind) : SharedObject(h, kind, sizeof(SemaphoreState)) {}

bool Semaphore::acquire(bool blocking) { return acquire_impl(blocking, std::nullopt); }

bool Semaphore::acquire_impl(bool blocking, core::Deadline deadline) {
  auto* st = static_cast<SemaphoreState*>(state_);
  Guard g(&st->m);
  while (st->value == 0) {
    if (!blocking) return false;
    ++st->sleepers;
    bool slept = g.wait(st->seq, deadline);
    --st->sleepers;
    if (!slept) return false;
  }
  --st->value;
  return true;
}

void Semaphore::release(int n) {
  if (n < 1) throw std::invalid_argument("n must be one or more");
  auto* st = static_cast<SemaphoreState*>(state_);
  Guard g(&st->m);
  if (st->max >= 0 && st->value + n > st->max) throw std::invalid_argument("BoundedSemaphore released too many times");
  st->value += n;
  if (st->sleepers > 0) notify_all_locked(st->seq);
}

int Semaphore::get_value() const {
  auto* st = static_cast<SemaphoreState*>(state_);
  Guard g(&st->m);
  return static_cast<int>(st->value);
}

BoundedSemaphore::BoundedSemaphore(int value) : Semaphore(value, true) {}
BoundedSemaphore::BoundedSemaphore(const SharedHandle& h) : Semaphore(h, detail::kBoundedKind) {}

// ---- Event ----

namespace {
void init_event(void* p, const void*) {
  auto* st = new (p) EventState{};
  st->kind = detail::kEventKind;
}
}  // namespace

Event::Event() : SharedObject(detail::kEventKind, sizeof(EventState), init_event, nullptr) {}
Event::Event(const SharedHandle& h) : SharedObject(h, detail::kEventKind, sizeof(EventState)) {}

void Event::set() {
  auto* st = static_cast<EventState*>(state_);
  std::uint32_t w = st->word.load(std::memory_order_relaxed);
  do {
    if (w & 1U) return;
  } while (!st->word.compare_exchange_weak(w, (((w >> 1) + 1) << 1) | 1U, std::memory_order_acq_rel));
  futex_wake_shared(st->word);
}

void Event::clear() { static_cast<EventState*>(state_)->word.fetch_and(~1U, std::memory_order_acq_rel); }

bool Event::is_set() const noexcept {
  return (static_cast<EventState*>(state_)->word.load(std::memory_order_acquire) & 1U) != 0;
}

bool Event::wait() { return wait_impl(std::nullopt); }

bool Event::wait_impl(core::Deadline deadline) {
  auto* st = static_cast<EventState*>(state_);
  std::uint32_t w = st->word.load(std::memory_order_acquire);
  if (w & 1U) return true;
  for (;;) {
    if (passed(deadline)) return is_set();
    futex_wait_shared(st->word, w, deadline);
    std::uint32_t now = st->word.load(std::memory_order_acquire);
    if ((now >> 1) != (w >> 1) || (now & 1U)) return true;  // a set() happened
  }
}

// ---- Condition ----

namespace {
void init_condition(void* p, const void* arg) {
  auto* st = new (p) ConditionState{};
  st->kind = detail::kConditionKind;
  init_robust(&st->m, PTHREAD_MUTEX_NORMAL);
  const auto* lock = static_cast<const SharedHandle*>(arg);
  if (lock) {
    if (lock->name.size() >= sizeof st->lock_name) throw std::invalid_argument("lock segment name too long");
    std::memcpy(st->lock_name, lock->name.data(), lock->name.size());
    st->lock_offset = lock->offset;
    st->lock_kind = lock->kind;
  }
}
// Condition's own segment: its state, then (for the default lock) an RLock state.
constexpr std::size_t kCondLockOffset = round8(sizeof(ConditionState));
void init_condition_with_rlock(void* p, const void*) {
  detail::init_mutex_state(static_cast<std::byte*>(p) + kCondLockOffset, true);
  init_condition(p, nullptr);
  auto* st = static_cast<ConditionState*>(p);
  st->lock_offset = kCondLockOffset;
  st->lock_kind = detail::kRLockKind;
  // lock_name stays empty: "this segment"
}
}  // namespace

Condition::Condition()
    : SharedObject(detail::kConditionKind, kCondLockOffset + detail::mutex_state_size(), init_condition_with_rlock,
                   nullptr) {
  lock_ = std::make_shared<RLock>(detail::AttachedAt{segment_, offset_ + kCondLockOffset});
}

Condition::Condition(const Lock& lock)
    : SharedObject(detail::kConditionKind, sizeof(ConditionState), init_condition,
                   std::addressof(static_cast<const SharedHandle&>(lock.handle()))),
      lock_(std::make_shared<Lock>(lock)) {}

Condition::Condition(const RLock& lock)
    : SharedObject(detail::kConditionKind, sizeof(ConditionState), init_condition,
                   std::addressof(static_cast<const SharedHandle&>(lock.handle()))),
      lock_(std::make_shared<RLock>(lock)) {}

Condition::Condition(const SharedHandle& h) : SharedObject(h, detail::kConditionKind, sizeof(ConditionState)) {
  auto* st = static_cast<ConditionState*>(state_);
  std::string lock_name(st->lock_name, strnlen(st->lock_name, sizeof st->lock_name));
  detail::AttachedAt at{lock_name.empty() ? segment_ : detail::Segment::attach(lock_name), st->lock_offset};
  if (st->lock_kind == detail::kRLockKind)
    lock_ = std::make_shared<RLock>(std::move(at));
  else
    lock_ = std::make_shared<Lock>(std::move(at));
}

bool Condition::wait() { return wait_impl(std::nullopt); }

bool Condition::wait_impl(core::Deadline deadline) {
  auto* st = static_cast<ConditionState*>(state_);
  if (!lock_->is_owned()) throw std::logic_error("cannot wait on un-acquired lock");
  std::uint32_t s;
  {
    Guard g(&st->m);
    ++st->waiters;
    s = st->seq.load(std::memory_order_acquire);
  }
  std::uint32_t saved = lock_->release_save();
  bool notified = false;
  try {
    for (;;) {
      if (!passed(deadline)) futex_wait_shared(st->seq, s, deadline);
      Guard g(&st->m);
      if (st->permits > 0) {
        --st->permits;
        notified = true;
        break;
      }
      if (passed(deadline)) {
        --st->waiters;
        break;
      }
      s = st->seq.load(std::memory_order_acquire);
    }
  } catch (...) {
    lock_->acquire_restore(saved);
    throw;
  }
  lock_->acquire_restore(saved);
  return notified;
}

void Condition::notify(int n) {
  if (!lock_->is_owned()) throw std::logic_error("cannot notify on un-acquired lock");
  if (n < 1) return;
  auto* st = static_cast<ConditionState*>(state_);
  Guard g(&st->m);
  std::uint64_t k = std::min<std::uint64_t>(static_cast<std::uint64_t>(n), st->waiters);
  if (k == 0) return;
  st->waiters -= k;
  st->permits += k;
  notify_all_locked(st->seq);
}

void Condition::notify_all() { notify(INT_MAX); }

// ---- Barrier ----

namespace {
struct BarrierInit {
  std::size_t parties;
  std::int64_t timeout_ns;
  const detail::CodeRef* action;
};
void init_barrier(void* p, const void* arg) {
  const auto* a = static_cast<const BarrierInit*>(arg);
  auto* st = new (p) BarrierState{};
  st->kind = detail::kBarrierKind;
  st->parties = a->parties;
  st->timeout_ns = a->timeout_ns;
  if (a->action != nullptr) {
    st->action_id_size = static_cast<std::uint32_t>(a->action->build_id.size());
    std::memcpy(st->action_build_id, a->action->build_id.data(), a->action->build_id.size());
    st->action_offset = a->action->offset;
  }
  init_robust(&st->m, PTHREAD_MUTEX_NORMAL);
}
BarrierInit barrier_init(std::size_t parties, std::optional<std::chrono::nanoseconds> timeout,
                         const detail::CodeRef* action) {
  if (parties < 1) throw std::invalid_argument("Barrier: parties must be >= 1");
  if (action != nullptr &&
      (action->build_id.empty() || action->build_id.size() > sizeof(BarrierState::action_build_id))) {
    throw std::invalid_argument("Barrier: the action's module has no usable build-id");
  }
  return BarrierInit{parties, timeout ? std::max<std::int64_t>(0, timeout->count()) : -1, action};
}
/// Runs the barrier's action, if any (in whichever process trips the barrier).
void run_action(const BarrierState& st) {
  if (st.action_id_size == 0) return;
  detail::CodeRef ref{std::string(st.action_build_id, st.action_id_size), st.action_offset};
  reinterpret_cast<void (*)()>(const_cast<void*>(detail::resolve(ref)))();
}
}  // namespace

Barrier::Barrier(std::size_t parties, std::optional<std::chrono::nanoseconds> timeout)
    : SharedObject(detail::kBarrierKind, sizeof(BarrierState), init_barrier,
                   std::addressof(static_cast<const BarrierInit&>(barrier_init(parties, timeout, nullptr)))) {}
Barrier::Barrier(std::size_t parties, const detail::CodeRef& action, std::optional<std::chrono::nanoseconds> timeout)
    : SharedObject(detail::kBarrierKind, sizeof(BarrierState), init_barrier,
                   std::addressof(static_cast<const BarrierInit&>(barrier_init(parties, timeout, &action)))) {}
Barrier::Barrier(const SharedHandle& h) : SharedObject(h, detail::kBarrierKind, sizeof(BarrierState)) {}

std::size_t Barrier::wait() {
  auto* st = static_cast<BarrierState*>(state_);
  if (st->timeout_ns >= 0) return wait_impl(core::deadline_after(std::chrono::nanoseconds(st->timeout_ns)));
  return wait_impl(std::nullopt);
}

std::size_t Barrier::wait_impl(core::Deadline deadline) {
  auto* st = static_cast<BarrierState*>(state_);
  Guard g(&st->m);
  auto break_locked = [&] {
    st->state = -2;
    notify_all_locked(st->seq);
  };
  auto exit_locked = [&] {
    if (st->count == 0 && (st->state == -1 || st->state == 1)) {
      st->state = 0;
      notify_all_locked(st->seq);
    }
  };
  // _enter: wait for a draining or resetting round to finish
  while (st->state == -1 || st->state == 1) {
    if (!g.wait(st->seq, deadline)) {
      break_locked();
      throw BrokenBarrierError();
    }
  }
  if (st->state < 0) throw BrokenBarrierError();
  std::size_t index = st->count++;
  bool broken = false;
  if (index + 1 == st->parties) {
    try {
      run_action(*st);  // the last to arrive runs it, before anyone is released (as Python)
    } catch (...) {
      break_locked();
      --st->count;
      exit_locked();
      throw;
    }
    st->state = 1;  // draining
    notify_all_locked(st->seq);
  } else {
    while (st->state == 0) {
      if (!g.wait(st->seq, deadline)) {
        break_locked();
        break;
      }
    }
    broken = st->state < 0;
  }
  --st->count;
  exit_locked();
  if (broken) throw BrokenBarrierError();
  return index;
}

void Barrier::reset() {
  auto* st = static_cast<BarrierState*>(state_);
  Guard g(&st->m);
  if (st->count > 0) {
    if (st->state == 0 || st->state == -2) st->state = -1;
  } else {
    st->state = 0;
  }
  notify_all_locked(st->seq);
}

void Barrier::abort() {
  auto* st = static_cast<BarrierState*>(state_);
  Guard g(&st->m);
  st->state = -2;
  notify_all_locked(st->seq);
}

std::size_t Barrier::parties() const { return static_cast<std::size_t>(static_cast<BarrierState*>(state_)->parties); }

std::size_t Barrier::n_waiting() const {
  auto* st = static_cast<BarrierState*>(state_);
  Guard g(&st->m);
  return st->state == 0 ? static_cast<std::size_t>(st->count) : 0;
}

bool Barrier::broken() const {
  auto* st = static_cast<BarrierState*>(state_);
  Guard g(&st->m);
  return st->state == -2;
}

// ---- Value / Array storage ----

namespace detail {

namespace {
struct CtypeHeader {
  std::uint32_t kind;
  std::uint32_t elem_size;
  std::uint64_t type_tag;
  std::uint64_t count;
  std::uint64_t lock_offset;  // 0: no lock
  std::uint64_t data_offset;
};
constexpr std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }
}  // namespace

CtypeBlock create_ctype(std::uint32_t kind, std::size_t elem_size, std::size_t elem_align, std::uint64_t count,
                        std::uint64_t type_tag, bool lock) {
  std::size_t lock_offset = lock ? align_up(sizeof(CtypeHeader), 64) : 0;
  std::size_t end = lock ? lock_offset + mutex_state_size() : sizeof(CtypeHeader);
  std::size_t data_offset = align_up(end, std::max<std::size_t>(elem_align, 64));
  std::size_t total = data_offset + elem_size * count;
  auto seg = Segment::create(total == 0 ? 1 : total);
  auto* h = new (seg->data())
      CtypeHeader{kind, static_cast<std::uint32_t>(elem_size), type_tag, count, lock_offset, data_offset};
  if (lock) init_mutex_state(seg->data() + lock_offset, true);
  CtypeBlock b{seg, seg->data() + h->data_offset, count, {}};
  if (lock) b.lock = std::make_shared<RLock>(AttachedAt{seg, lock_offset});
  return b;
}

CtypeBlock attach_ctype(const SharedHandle& h, std::uint32_t kind, std::size_t elem_size, std::uint64_t type_tag) {
  if (h.kind != kind) throw std::invalid_argument("handle {'" + h.name + "'} is not of the expected type");
  auto seg = Segment::attach(h.name);
  auto* hdr = static_cast<CtypeHeader*>(seg->at(h, sizeof(CtypeHeader)));
  if (hdr->elem_size != elem_size || hdr->type_tag != type_tag)
    throw std::invalid_argument("handle {'" + h.name + "'} holds a Value/Array of another element type");
  if (hdr->data_offset + hdr->elem_size * hdr->count > seg->size())
    throw std::invalid_argument("handle {'" + h.name + "'}: corrupt Value/Array header");
  CtypeBlock b{seg, seg->data() + hdr->data_offset, hdr->count, {}};
  if (hdr->lock_offset != 0) b.lock = std::make_shared<RLock>(AttachedAt{seg, hdr->lock_offset});
  return b;
}

}  // namespace detail

}  // namespace concur::multiprocessing
