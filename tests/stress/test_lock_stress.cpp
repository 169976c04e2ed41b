// Stress of threading::Lock and RLock: mutual exclusion under blocking, timed and try acquires.
#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/threading/lock.hpp"
#include "concur/threading/thread.hpp"

using namespace std::chrono_literals;
namespace th = concur::threading;
using concur::test::Budget;
using concur::test::stress_iters;

namespace {

TEST(LockStress, MixedAcquireModesKeepMutualExclusion) {
  th::Lock lock;
  const auto iters = stress_iters();
  constexpr int kThreads = 6;
  std::int64_t counter = 0;  // guarded by lock; a data race here would show under TSan
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::atomic<std::int64_t> increments{0};
  Budget budget;
  std::vector<th::Thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        bool got;
        switch ((i + t) % 3) {
          case 0:
            got = lock.acquire();
            break;
          case 1:
            got = lock.acquire(std::chrono::microseconds(100));
            break;
          default:
            got = lock.acquire(false);
            break;
        }
        if (!got) continue;
        if (inside.fetch_add(1) != 0) ++overlaps;
        ++counter;
        inside.fetch_sub(1);
        lock.release();
        ++increments;
      }
    });
    ts.back().start();
  }
  for (auto& x : ts) x.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, increments.load());
  EXPECT_FALSE(lock.locked());
}

TEST(LockStress, HandOffBetweenThreads) {
  // A Lock used as a binary semaphore: one thread acquires, another releases.
  th::Lock full, empty;
  full.acquire();
  const auto iters = stress_iters();
  Budget budget;
  std::int64_t slot = 0;
  std::int64_t sum = 0;
  std::atomic<bool> producer_stopped{false};
  std::int64_t produced = 0;
  th::Thread consumer([&] {
    for (;;) {
      full.acquire();  // wait for an item
      if (slot < 0) return;
      sum += slot;
      empty.release();
    }
  });
  consumer.start();
  for (std::int64_t i = 1; i <= iters && !budget.exhausted(); ++i) {
    empty.acquire();
    slot = i;
    ++produced;
    full.release();
  }
  empty.acquire();
  slot = -1;
  full.release();
  consumer.join();
  producer_stopped = true;
  EXPECT_EQ(sum, produced * (produced + 1) / 2);
}

TEST(RLockStress, NestedAcquiresKeepMutualExclusion) {
  th::RLock r;
  const auto iters = stress_iters();
  std::int64_t counter = 0;
  std::atomic<std::int64_t> increments{0};
  std::atomic<int> bad_counts{0};
  Budget budget;
  std::vector<th::Thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        bool got = (i + t) % 2 ? r.acquire() : r.acquire(std::chrono::microseconds(200));
        if (!got) continue;
        r.acquire();
        if (r.recursion_count() != 2) ++bad_counts;
        ++counter;
        r.release();
        r.release();
        ++increments;
      }
    });
    ts.back().start();
  }
  for (auto& x : ts) x.join();
  EXPECT_EQ(counter, increments.load());
  EXPECT_EQ(bad_counts.load(), 0);
  EXPECT_FALSE(r.locked());
}

}  // namespace
