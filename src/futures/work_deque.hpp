#pragma once
// A Chase–Lev work-stealing deque of task pointers (Chase & Lev 2005; memory orders after
// Lê, Pop, Cohen & Zappa Nardelli 2013). The owner pushes and takes at the bottom; any thread
// steals at the top. Grown arrays are retired, not freed, until the deque dies, so a thief
// holding an old array reads valid memory.
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "concur/futures/detail/state.hpp"

namespace concur::futures::detail {

class WorkDeque {
 public:
  using Item = StateBase*;

  explicit WorkDeque(std::int64_t capacity = 256) {
    auto a = std::make_unique<Array>(capacity);
    array_.store(a.get(), std::memory_order_relaxed);
    arrays_.push_back(std::move(a));
  }
  WorkDeque(const WorkDeque&) = delete;
  WorkDeque& operator=(const WorkDeque&) = delete;

  /// Owner only.
  void push(Item x) {
    std::int64_t b = bottom_.load(std::memory_order_relaxed);
    std::int64_t t = top_.load(std::memory_order_acquire);
    Array* a = array_.load(std::memory_order_relaxed);
    if (b - t > a->mask) a = grow(a, t, b);
    a->put(b, x);
    // release: a thief that sees the new bottom sees the item and everything written to it.
    bottom_.store(b + 1, std::memory_order_release);
  }

  /// Owner only: the most recently pushed item, or null.
  Item take() noexcept {
    std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Array* a = array_.load(std::memory_order_relaxed);
    // seq_cst store + seq_cst load of top: the owner's claim on the bottom item and a thief's
    // read of bottom are totally ordered, so the last item is contended through the CAS only.
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    Item x = a->get(b);
    if (t == b) {
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) x = nullptr;
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return x;
  }

  /// Any thread: the oldest item, or null if empty or lost a race (retry if `size() > 0`).
  Item steal() noexcept {
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    // acquire: the array's slots were filled before the owner published it.
    Array* a = array_.load(std::memory_order_acquire);
    Item x = a->get(t);
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) return nullptr;
    return x;
  }

  /// Approximate size (any thread).
  [[nodiscard]] std::int64_t size() const noexcept {
    std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    return b > t ? b - t : 0;
  }

 private:
  struct Array {
    explicit Array(std::int64_t cap) : mask(cap - 1), slots(new std::atomic<Item>[static_cast<std::size_t>(cap)]) {}
    std::int64_t mask;
    std::unique_ptr<std::atomic<Item>[]> slots;
    // relaxed: publication is by bottom_ (release) / array_ (release).
    void put(std::int64_t i, Item x) noexcept { slots[static_cast<std::size_t>(i & mask)].store(x, std::memory_order_relaxed); }
    Item get(std::int64_t i) const noexcept { return slots[static_cast<std::size_t>(i & mask)].load(std::memory_order_relaxed); }
  };

  Array* grow(Array* old, std::int64_t t, std::int64_t b) {
    auto a = std::make_unique<Array>((old->mask + 1) * 2);
    for (std::int64_t i = t; i < b; ++i) a->put(i, old->get(i));
    Array* raw = a.get();
    arrays_.push_back(std::move(a));  // the old array stays alive for thieves still reading it
    array_.store(raw, std::memory_order_release);
    return raw;
  }

  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  alignas(64) std::atomic<Array*> array_{nullptr};
  std::vector<std::unique_ptr<Array>> arrays_;  // owner only
};

/// The injection queue for submitters outside the pool: a lock-free LIFO stack that consumers
/// take whole (so there is no ABA) and reverse into FIFO order.
class InjectionQueue {
 public:
  void push(StateBase* x) noexcept {
    StateBase* h = head_.load(std::memory_order_relaxed);
    do {
      x->next_task = h;
      // seq_cst: pairs with the sleeper's registration (see Pool::notify).
    } while (!head_.compare_exchange_weak(h, x, std::memory_order_seq_cst, std::memory_order_relaxed));
  }
  /// Everything queued, oldest first (linked through next_task), or null.
  StateBase* take_all() noexcept {
    if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    StateBase* h = head_.exchange(nullptr, std::memory_order_acquire);
    StateBase* fifo = nullptr;
    while (h) {
      StateBase* n = h->next_task;
      h->next_task = fifo;
      fifo = h;
      h = n;
    }
    return fifo;
  }
  /// Everything queued, newest first (linked through next_task), or null.
  StateBase* take_all_lifo() noexcept {
    if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    return head_.exchange(nullptr, std::memory_order_acquire);
  }
  [[nodiscard]] bool empty() const noexcept { return head_.load(std::memory_order_seq_cst) == nullptr; }

 private:
  alignas(64) std::atomic<StateBase*> head_{nullptr};
};

}  // namespace concur::futures::detail
