// Stress: the Chase–Lev WorkDeque (one owner, several thieves) and the InjectionQueue (many
// producers, take-all consumers), tested directly: every item is taken exactly once.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "../../src/futures/work_deque.hpp"
#include "support/helpers.hpp"
#include <gtest/gtest.h>

namespace fd = concur::futures::detail;
using concur::test::Budget;
using concur::test::stress_iters;

namespace {

/// A pool of distinct StateBase objects whose addresses serve as items.
struct Items {
  explicit Items(std::size_t n) : items(new fd::StateBase[n]), taken(new std::atomic<int>[n]), size(n) {
    for (std::size_t i = 0; i < n; ++i) taken[i].store(0, std::memory_order_relaxed);
  }
  fd::StateBase* at(std::size_t i) const { return &items[i]; }
  void mark(fd::StateBase* p) const {
    taken[static_cast<std::size_t>(p - items.get())].fetch_add(1, std::memory_order_relaxed);
  }
  /// Returns {count taken zero times, count taken more than once}.
  std::pair<std::size_t, std::size_t> check(std::size_t upto) const {
    std::size_t missing = 0, dup = 0;
    for (std::size_t i = 0; i < upto; ++i) {
      int c = taken[i].load(std::memory_order_relaxed);
      if (c == 0) ++missing;
      if (c > 1) ++dup;
    }
    return {missing, dup};
  }
  std::unique_ptr<fd::StateBase[]> items;
  std::unique_ptr<std::atomic<int>[]> taken;
  std::size_t size;
};

}  // namespace

TEST(WorkDequeStress, OwnerPushTakeAlone) {
  fd::WorkDeque dq(2);  // tiny: forces growth
  Items items(1000);
  for (std::size_t i = 0; i < items.size; ++i) dq.push(items.at(i));
  EXPECT_EQ(dq.size(), 1000);
  // LIFO for the owner.
  for (std::size_t i = items.size; i-- > 0;) {
    auto* p = dq.take();
    ASSERT_EQ(p, items.at(i));
  }
  EXPECT_EQ(dq.take(), nullptr);
  EXPECT_EQ(dq.steal(), nullptr);
  EXPECT_EQ(dq.size(), 0);
}

TEST(WorkDequeStress, StealIsFifo) {
  fd::WorkDeque dq(4);
  Items items(100);
  for (std::size_t i = 0; i < items.size; ++i) dq.push(items.at(i));
  for (std::size_t i = 0; i < items.size; ++i) ASSERT_EQ(dq.steal(), items.at(i));
  EXPECT_EQ(dq.steal(), nullptr);
  EXPECT_EQ(dq.take(), nullptr);
}

TEST(WorkDequeStress, OneOwnerSeveralThievesEveryItemOnce) {
  const auto rounds = static_cast<int>(std::max<std::int64_t>(1, stress_iters(2000) / 200));
  const std::size_t per_round = 20000;
  Budget budget(std::chrono::seconds(15));
  int rounds_done = 0;
  for (int r = 0; r < rounds && !budget.exhausted(); ++r, ++rounds_done) {
    fd::WorkDeque dq(8);  // small: growth under contention
    Items items(per_round);
    std::atomic<bool> done{false};
    std::atomic<std::size_t> stolen{0};
    constexpr int thieves = 3;
    std::vector<std::thread> ts;
    for (int t = 0; t < thieves; ++t) {
      ts.emplace_back([&] {
        while (!done.load(std::memory_order_acquire) || dq.size() > 0) {
          if (auto* p = dq.steal()) {
            items.mark(p);
            stolen.fetch_add(1, std::memory_order_relaxed);
          }
        }
      });
    }
    // Owner: pushes in bursts, takes some back, interleaved.
    std::size_t owner_taken = 0;
    std::size_t next = 0;
    std::uint64_t rng = 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(r);
    while (next < per_round) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      std::size_t burst = 1 + rng % 64;
      for (std::size_t k = 0; k < burst && next < per_round; ++k) dq.push(items.at(next++));
      std::size_t takes = rng % 48;
      for (std::size_t k = 0; k < takes; ++k) {
        if (auto* p = dq.take()) {
          items.mark(p);
          ++owner_taken;
        }
      }
    }
    while (auto* p = dq.take()) {
      items.mark(p);
      ++owner_taken;
    }
    done.store(true, std::memory_order_release);
    for (auto& t : ts) t.join();
    auto [missing, dup] = items.check(per_round);
    EXPECT_EQ(missing, 0u) << "round " << r;
    EXPECT_EQ(dup, 0u) << "round " << r;
    EXPECT_EQ(owner_taken + stolen.load(), per_round) << "round " << r;
    if (missing || dup) break;
  }
  EXPECT_GE(rounds_done, 1);
}

TEST(WorkDequeStress, LastItemRaceBetweenOwnerAndThieves) {
  // The owner pushes one item and immediately takes it while thieves hammer steal(): the single
  // remaining item is contended through the CAS; exactly one side gets it.
  const auto n = static_cast<std::size_t>(std::max<std::int64_t>(1000, stress_iters(2000) * 10));
  Budget budget(std::chrono::seconds(15));
  fd::WorkDeque dq(2);
  Items items(n);
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t) {
    ts.emplace_back([&] {
      while (!done.load(std::memory_order_acquire)) {
        if (auto* p = dq.steal()) items.mark(p);
      }
      while (auto* p = dq.steal()) items.mark(p);
    });
  }
  std::size_t pushed = 0;
  for (; pushed < n && !budget.exhausted(); ++pushed) {
    dq.push(items.at(pushed));
    if (auto* p = dq.take()) items.mark(p);
  }
  done.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  while (auto* p = dq.take()) items.mark(p);
  auto [missing, dup] = items.check(pushed);
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(dup, 0u);
  EXPECT_GT(pushed, 0u);
}

TEST(InjectionQueueStress, ManyProducersTakeAllConsumersEveryItemOnceInFifoPerProducer) {
  const int producers = 4;
  const auto per_producer = static_cast<std::size_t>(std::max<std::int64_t>(100, stress_iters(2000) * 2));
  Budget budget(std::chrono::seconds(15));
  Items items(per_producer * producers);
  fd::InjectionQueue q;
  std::atomic<int> producing{producers};
  std::atomic<bool> fifo_ok{true};
  // Items of producer p are p*per_producer + k; per producer they must come out in order.
  auto consume = [&](std::vector<std::size_t>& last_seen) {
    fd::StateBase* batch = q.take_all();
    while (batch) {
      fd::StateBase* next = batch->next_task;
      batch->next_task = nullptr;
      auto idx = static_cast<std::size_t>(batch - items.items.get());
      std::size_t p = idx / per_producer;
      std::size_t k = idx % per_producer;
      if (last_seen[p] != static_cast<std::size_t>(-1) && k <= last_seen[p]) fifo_ok.store(false);
      last_seen[p] = k;
      items.mark(batch);
      batch = next;
    }
  };
  std::vector<std::thread> ts;
  std::vector<std::size_t> produced(producers, 0);
  for (int p = 0; p < producers; ++p) {
    ts.emplace_back([&, p] {
      for (std::size_t k = 0; k < per_producer; ++k) {
        if ((k & 255) == 0 && budget.exhausted()) break;
        q.push(items.at(static_cast<std::size_t>(p) * per_producer + k));
        produced[static_cast<std::size_t>(p)] = k + 1;
      }
      producing.fetch_sub(1);
    });
  }
  // One consumer thread (take_all consumers are serial per batch; FIFO holds per consumer).
  std::vector<std::size_t> last_seen(producers, static_cast<std::size_t>(-1));
  while (producing.load() > 0) consume(last_seen);
  for (auto& t : ts) t.join();
  consume(last_seen);
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(fifo_ok.load());
  std::size_t missing = 0, dup = 0;
  for (int p = 0; p < producers; ++p) {
    auto [m, d] = [&] {
      std::size_t mm = 0, dd = 0;
      for (std::size_t k = 0; k < produced[static_cast<std::size_t>(p)]; ++k) {
        int c = items.taken[static_cast<std::size_t>(p) * per_producer + k].load();
        if (c == 0) ++mm;
        if (c > 1) ++dd;
      }
      return std::pair{mm, dd};
    }();
    missing += m;
    dup += d;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(dup, 0u);
}

TEST(InjectionQueueStress, SeveralConsumersShareTheItems) {
  const auto n = static_cast<std::size_t>(std::max<std::int64_t>(100, stress_iters(2000) * 5));
  Items items(n);
  fd::InjectionQueue q;
  std::atomic<bool> done{false};
  std::vector<std::thread> consumers;
  for (int c = 0; c < 3; ++c) {
    consumers.emplace_back([&] {
      for (;;) {
        bool finished = done.load(std::memory_order_acquire);
        for (auto* b = q.take_all(); b;) {
          auto* next = b->next_task;
          b->next_task = nullptr;
          items.mark(b);
          b = next;
        }
        if (finished) break;
      }
    });
  }
  std::thread producer([&] {
    for (std::size_t i = 0; i < n; ++i) q.push(items.at(i));
    done.store(true, std::memory_order_release);
  });
  producer.join();
  for (auto& c : consumers) c.join();
  auto [missing, dup] = items.check(n);
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(dup, 0u);
}
