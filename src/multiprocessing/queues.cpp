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
#include <cstring>
#include <new>
#include <stdexcept>

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

void QueueCore::put(std::string_view bytes, bool block, core::Deadline deadline) {
  check_open("put");
  auto* st = static_cast<QueueState*>(state_);
  const std::uint64_t need = kPrefix + bytes.size();
  if (need > st->capacity)
    throw std::invalid_argument("multiprocessing " + std::string(kind_name(kind_)) + ".put(): the item takes " +
                                std::to_string(need) + " bytes serialised (with its 8-byte length), more than the " +
                                "queue's capacity_bytes of " + std::to_string(st->capacity) +
                                ": make the queue with a larger capacity_bytes");
  Locked g(st, ring_);
  for (;;) {
    bool room = (st->maxsize <= 0 || st->count < static_cast<std::uint64_t>(st->maxsize)) &&
                st->capacity - (st->tail - st->head) >= need;
    if (room) break;
    if (!block || !g.wait(st->not_full, st->put_sleepers, deadline)) throw Full();
  }
  const std::uint64_t len = bytes.size();
  ring_write(st, ring_, st->tail, &len, kPrefix);
  ring_write(st, ring_, st->tail + kPrefix, bytes.data(), bytes.size());
  if (kind_ == kJoinableQueueKind) ++st->unfinished;
  st->tail += need;  // publishes the item
  ++st->count;
  if (st->get_sleepers > 0) notify_all(st->not_empty);
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
