// mp::Queue / SimpleQueue / JoinableQueue (queues.hpp): length-prefixed serialised items in a
// byte ring in one shared-memory segment, guarded by a robust process-shared mutex, with
// non-private futexes to sleep on.
#include "concur/multiprocessing/queues.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>

#include "shared_sync.hpp"

namespace concur::multiprocessing::detail {

namespace {

/// The shared state at the start of the segment; the ring follows at `ring_offset`.
///
/// head and tail are byte positions that only grow (the ring index is position % capacity), so
/// the bytes in use are tail - head. An item is published by one store, `tail += 8 + n`, after
/// its bytes are in place, and taken by one store, `head += 8 + n`, after they are copied out:
/// a process that dies inside put() or get() leaves either the old or the new state, plus
/// counters that repair() rebuilds from the ring.
struct QueueState {
  std::uint32_t kind;
  std::uint32_t reserved;
  std::uint64_t type_tag;
  std::int64_t maxsize;  // <= 0: no limit on items
  std::uint64_t capacity;
  std::uint64_t ring_offset;
  pthread_mutex_t m;  // robust, process-shared; guards everything below but the futex words
  std::uint64_t head;
  std::uint64_t tail;
  std::uint64_t count;
  std::uint64_t unfinished;  // JoinableQueue: items put and not yet task_done()
  // Processes/threads asleep (or about to sleep) on each word. A waiter killed while asleep
  // leaves its count behind: it only costs later notifiers a futex wake.
  std::uint32_t get_sleepers;
  std::uint32_t put_sleepers;
  std::uint32_t join_sleepers;
  std::atomic<std::uint32_t> not_empty;  // futex words, bumped under m
  std::atomic<std::uint32_t> not_full;
  std::atomic<std::uint32_t> all_done;
};

constexpr std::size_t kPrefix = sizeof(std::uint64_t);
constexpr std::size_t align64(std::size_t n) { return (n + 63) & ~std::size_t{63}; }

/// Bumps `word` (under m) and wakes every sleeper on it. Waking all rather than one: a waiter
/// that a single wake-up reached could be killed before taking the item, stranding the others.
void notify_all(std::atomic<std::uint32_t>& word) {
  word.fetch_add(1, std::memory_order_release);
  futex_wake_shared(word);
}

void ring_write(const QueueState* st, std::byte* ring, std::uint64_t pos, const void* src, std::size_t n) {
  const std::size_t cap = st->capacity;
  const std::size_t off = static_cast<std::size_t>(pos % cap);
  const std::size_t first = std::min(n, cap - off);
  std::memcpy(ring + off, src, first);
  if (n > first) std::memcpy(ring, static_cast<const std::byte*>(src) + first, n - first);
}

void ring_read(const QueueState* st, const std::byte* ring, std::uint64_t pos, void* dst, std::size_t n) {
  const std::size_t cap = st->capacity;
  const std::size_t off = static_cast<std::size_t>(pos % cap);
  const std::size_t first = std::min(n, cap - off);
  std::memcpy(dst, ring + off, first);
  if (n > first) std::memcpy(static_cast<std::byte*>(dst) + first, ring, n - first);
}

/// After a holder died with the mutex: keep the published items that are whole, drop anything
/// after the first malformed one, and recount.
void repair(QueueState* st, const std::byte* ring) {
  if (st->tail < st->head || st->tail - st->head > st->capacity) {
    st->tail = st->head;
    st->count = 0;
    return;
  }
  std::uint64_t pos = st->head;
  std::uint64_t n = 0;
  while (st->tail - pos >= kPrefix) {
    std::uint64_t len = 0;
    ring_read(st, ring, pos, &len, kPrefix);
    if (len > st->tail - pos - kPrefix) break;
    pos += kPrefix + len;
    ++n;
  }
  st->tail = pos;
  st->count = n;
}

/// Holds a queue's mutex; repairs the state when the previous holder died holding it.
class Locked {
 public:
  Locked(QueueState* st, std::byte* ring) : st_(st), ring_(ring) { lock(); }
  ~Locked() { ::pthread_mutex_unlock(&st_->m); }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

  /// Sleeps (mutex released) until `word` moves or `d` passes, then re-locks. Returns false,
  /// without sleeping, once the deadline has passed; the caller re-checks its condition.
  bool wait(std::atomic<std::uint32_t>& word, std::uint32_t& sleepers, const core::Deadline& d) {
    if (passed(d)) return false;
    std::uint32_t s = word.load(std::memory_order_acquire);
    ++sleepers;
    ::pthread_mutex_unlock(&st_->m);
    futex_wait_shared(word, s, d);
    lock();
    if (sleepers > 0) --sleepers;
    return true;
  }

 private:
  void lock() {
    int r = ::pthread_mutex_lock(&st_->m);
    if (r == EOWNERDEAD) {
      repair(st_, ring_);
      ::pthread_mutex_consistent(&st_->m);
      r = 0;
    }
    if (r != 0) throw_os_error(r, "lock a multiprocessing queue");
  }
  QueueState* st_;
  std::byte* ring_;
};

const char* kind_name(std::uint32_t kind) {
  switch (kind) {
    case kSimpleQueueKind:
      return "SimpleQueue";
    case kJoinableQueueKind:
      return "JoinableQueue";
    default:
      return "Queue";
  }
}

}  // namespace

QueueCore::QueueCore(std::uint32_t kind, std::uint64_t type_tag, long maxsize, std::size_t capacity)
    : kind_(kind), closed_(std::make_shared<std::atomic<bool>>(false)) {
  if (capacity < 2 * kPrefix)
    throw std::invalid_argument("multiprocessing " + std::string(kind_name(kind)) +
                                ": capacity_bytes must be at least 16");
  const std::size_t ring_offset = align64(sizeof(QueueState));
  segment_ = Segment::create(ring_offset + capacity);
  auto* st = new (segment_->data()) QueueState{};
  st->kind = kind;
  st->type_tag = type_tag;
  st->maxsize = maxsize;
  st->capacity = capacity;
  st->ring_offset = ring_offset;
  init_robust(&st->m);
  state_ = st;
  ring_ = segment_->data() + ring_offset;
}

QueueCore::QueueCore(const SharedHandle& h, std::uint32_t kind, std::uint64_t type_tag)
    : kind_(kind), closed_(std::make_shared<std::atomic<bool>>(false)) {
  if (h.kind != kind)
    throw std::invalid_argument("handle {'" + h.name + "'} is not a multiprocessing " + kind_name(kind));
  segment_ = Segment::attach(h.name);
  auto* st = static_cast<QueueState*>(segment_->at(h, sizeof(QueueState)));
  if (st->type_tag != type_tag)
    throw std::invalid_argument("handle {'" + h.name + "'} holds a " + kind_name(kind) + " of another element type");
  if (h.offset != 0 || st->ring_offset < sizeof(QueueState) || st->capacity < 2 * kPrefix ||
      st->ring_offset + st->capacity > segment_->size())
    throw std::invalid_argument("handle {'" + h.name + "'}: corrupt queue header");
  state_ = st;
  ring_ = segment_->data() + st->ring_offset;
}

SharedHandle QueueCore::handle() const { return {segment_->name(), 0, kind_}; }

void QueueCore::check_open(const char* what) const {
  if (closed_->load(std::memory_order_acquire))
    throw std::invalid_argument(std::string(kind_name(kind_)) + "." + what + "(): the queue is closed in this process");
}

// ---- the feeder: an unbounded Queue's put() never blocks ----
//
// When the ring has no room, an unbounded Queue/JoinableQueue keeps the item in this process
// and a feeder thread (one per queue per process, started when first needed, ended when its
// backlog is written) copies the backlog into the ring as consumers make room, in order. Once a
// queue has a backlog here, later put()s of this process join it, so each thread's items stay
// in order. The feeders are found by the queue's segment name, so every copy of a queue in a
// process shares one.

namespace {

struct Feeder {
  std::mutex m;
  std::condition_variable drained;  // the thread finished: items are written
  std::deque<std::string> items;    // not yet in the ring, oldest first
  bool running = false;             // a feeder thread serves `items` (never with items empty after)
  bool cancelled = false;           // cancel_join_thread(): exit without waiting for `items`
  // The queue, while a thread runs (set by put(), reset by the thread under m before it ends,
  // so that the segment is not held once the backlog is written).
  std::optional<QueueCore> core;
};

struct Feeders {
  std::mutex m;
  std::map<std::string, std::shared_ptr<Feeder>> by_name;
};
std::atomic<int> g_backlogs{0};  // feeders with items: put() takes the slow path while nonzero

// Never destroyed (exit handlers use it). Made on first use: a worker process runs before
// main(), in a constructor, so this file's static initialisers may never run there. A forked
// child starts with none: the parent's backlogs are the parent's to write, and its feeder
// threads do not exist in the child.
Feeders*& feeders() {
  static Feeders* fs = [] {
    ::pthread_atfork(nullptr, nullptr, [] {
      feeders() = new Feeders();  // the old one may be locked by a thread that is not here
      g_backlogs.store(0);
    });
    return new Feeders();
  }();
  return fs;
}

std::shared_ptr<Feeder> feeder_of(const std::string& name) {
  Feeders* fs = feeders();
  std::lock_guard g(fs->m);
  auto& f = fs->by_name[name];
  if (!f) f = std::make_shared<Feeder>();
  return f;
}

std::shared_ptr<Feeder> find_feeder(const std::string& name) {
  Feeders* fs = feeders();
  std::lock_guard g(fs->m);
  auto it = fs->by_name.find(name);
  return it == fs->by_name.end() ? nullptr : it->second;
}

/// Waits until `f` has no backlog (or was cancelled).
void wait_drained(Feeder& f) {
  std::unique_lock lk(f.m);
  f.drained.wait(lk, [&] { return !f.running || f.cancelled; });
}

}  // namespace

void flush_feeders() noexcept {
  std::vector<std::shared_ptr<Feeder>> all;
  {
    Feeders* fs = feeders();
    std::lock_guard g(fs->m);
    for (auto& [name, f] : fs->by_name) all.push_back(f);
  }
  for (auto& f : all) wait_drained(*f);
}

bool QueueCore::put_ring(std::string_view bytes, bool block, core::Deadline deadline, bool count_task) {
  auto* st = static_cast<QueueState*>(state_);
  const std::uint64_t need = kPrefix + bytes.size();
  Locked g(st, ring_);
  for (;;) {
    bool room = (st->maxsize <= 0 || st->count < static_cast<std::uint64_t>(st->maxsize)) &&
                st->capacity - (st->tail - st->head) >= need;
    if (room) break;
    if (!block || !g.wait(st->not_full, st->put_sleepers, deadline)) return false;
  }
  const std::uint64_t len = bytes.size();
  ring_write(st, ring_, st->tail, &len, kPrefix);
  ring_write(st, ring_, st->tail + kPrefix, bytes.data(), bytes.size());
  if (kind_ == kJoinableQueueKind && count_task) ++st->unfinished;
  st->tail += need;  // publishes the item
  ++st->count;
  if (st->get_sleepers > 0) notify_all(st->not_empty);
  return true;
}

void QueueCore::put(std::string_view bytes, bool block, core::Deadline deadline) {
  check_open("put");
  auto* st = static_cast<QueueState*>(state_);
  const std::uint64_t need = kPrefix + bytes.size();
  if (need > st->capacity)
    throw std::invalid_argument("multiprocessing " + std::string(kind_name(kind_)) + ".put(): the item takes " +
                                std::to_string(need) + " bytes serialised (with its 8-byte length), more than the " +
                                "queue's capacity_bytes of " + std::to_string(st->capacity) +
                                ": make the queue with a larger capacity_bytes");
  const bool feeds = kind_ != kSimpleQueueKind && st->maxsize <= 0;
  if (!feeds) {
    if (!put_ring(bytes, block, deadline, true)) throw Full();
    return;
  }
  // Unbounded: straight into the ring when nothing of this process waits before it and there
  // is room; else behind the backlog.
  if (g_backlogs.load(std::memory_order_acquire) == 0 && put_ring(bytes, false, std::nullopt, true)) return;
  std::shared_ptr<Feeder> f = feeder_of(segment_->name());
  std::unique_lock lk(f->m);
  if (f->items.empty() && put_ring(bytes, false, std::nullopt, true)) return;
  if (kind_ == kJoinableQueueKind) {  // counted now, as Python's put() does
    Locked g(st, ring_);
    ++st->unfinished;
  }
  if (f->items.empty()) g_backlogs.fetch_add(1, std::memory_order_acq_rel);
  f->items.emplace_back(bytes);
  if (f->running) return;
  static std::once_flag once;
  std::call_once(once, [] { std::atexit([] { flush_feeders(); }); });
  f->core.emplace(*this);  // keeps the segment mapped; the closed flag does not stop the feeder
  f->running = true;
  try {
    std::thread([f] {
      for (;;) {
        std::string item;
        {
          std::lock_guard g(f->m);
          item = f->items.front();  // stays queued until written (never empty while running)
        }
        bool lost = false;
        try {
          (void)f->core->put_ring(item, true, std::nullopt, false);  // `core` is ours while running
        } catch (...) {
          lost = true;  // the queue is unusable (a system error): the backlog cannot be written
        }
        std::lock_guard g(f->m);
        if (lost) {
          f->items.clear();
        } else {
          f->items.pop_front();
        }
        if (f->items.empty()) {
          g_backlogs.fetch_sub(1, std::memory_order_acq_rel);
          f->core.reset();
          f->running = false;
          f->drained.notify_all();
          return;
        }
      }
    }).detach();
  } catch (...) {
    f->core.reset();
    f->running = false;
    throw;
  }
}

void QueueCore::join_thread() {
  if (std::shared_ptr<Feeder> f = find_feeder(segment_->name())) wait_drained(*f);
}

void QueueCore::cancel_join_thread() {
  std::shared_ptr<Feeder> f = feeder_of(segment_->name());
  std::lock_guard g(f->m);
  f->cancelled = true;
  f->drained.notify_all();
}

std::size_t QueueCore::backlog() const {
  std::shared_ptr<Feeder> f = find_feeder(segment_->name());
  if (!f) return 0;
  std::lock_guard g(f->m);
  return f->items.size();
}

std::string QueueCore::get(bool block, core::Deadline deadline) {
  check_open("get");
  auto* st = static_cast<QueueState*>(state_);
  Locked g(st, ring_);
  for (;;) {
    while (st->tail == st->head) {
      if (!block || !g.wait(st->not_empty, st->get_sleepers, deadline)) throw Empty();
    }
    std::uint64_t len = 0;
    ring_read(st, ring_, st->head, &len, kPrefix);
    if (st->tail - st->head < kPrefix || len > st->tail - st->head - kPrefix) {  // cannot happen; be safe
      repair(st, ring_);
      continue;
    }
    std::string out(static_cast<std::size_t>(len), '\0');
    ring_read(st, ring_, st->head + kPrefix, out.data(), out.size());
    st->head += kPrefix + len;  // takes the item
    if (st->count > 0) --st->count;
    if (st->put_sleepers > 0) notify_all(st->not_full);
    return out;
  }
}

std::size_t QueueCore::qsize() const {
  auto* st = static_cast<QueueState*>(state_);
  Locked g(st, ring_);
  return static_cast<std::size_t>(st->count);
}

bool QueueCore::empty() const { return qsize() == 0; }

bool QueueCore::full() const {
  auto* st = static_cast<QueueState*>(state_);
  Locked g(st, ring_);
  return st->maxsize > 0 && st->count >= static_cast<std::uint64_t>(st->maxsize);
}

long QueueCore::maxsize() const noexcept {
  auto m = static_cast<const QueueState*>(state_)->maxsize;
  return m > 0 ? static_cast<long>(m) : 0;
}

std::size_t QueueCore::capacity() const noexcept {
  return static_cast<std::size_t>(static_cast<const QueueState*>(state_)->capacity);
}

void QueueCore::task_done() {
  auto* st = static_cast<QueueState*>(state_);
  Locked g(st, ring_);
  if (st->unfinished == 0) throw std::invalid_argument("task_done() called too many times");
  if (--st->unfinished == 0 && st->join_sleepers > 0) notify_all(st->all_done);
}

bool QueueCore::join(core::Deadline deadline) {
  auto* st = static_cast<QueueState*>(state_);
  Locked g(st, ring_);
  while (st->unfinished > 0) {
    if (!g.wait(st->all_done, st->join_sleepers, deadline)) return false;
  }
  return true;
}

void QueueCore::close() noexcept { closed_->store(true, std::memory_order_release); }

bool QueueCore::closed() const noexcept { return closed_->load(std::memory_order_acquire); }

}  // namespace concur::multiprocessing::detail
