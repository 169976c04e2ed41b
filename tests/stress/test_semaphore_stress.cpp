// Stress of threading::Semaphore and BoundedSemaphore.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/threading/semaphore.hpp"
#include "concur/threading/thread.hpp"

namespace th = concur::threading;
using concur::test::Budget;
using concur::test::stress_iters;

namespace {

TEST(SemaphoreStress, NeverMoreHoldersThanUnits) {
  constexpr int kUnits = 2;
  th::Semaphore sem(kUnits);
  const auto iters = stress_iters();
  std::atomic<int> inside{0}, over{0};
  Budget budget;
  std::vector<th::Thread> ts;
  for (int t = 0; t < 6; ++t) {
    ts.emplace_back([&, t] {
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        bool got = (i + t) % 2 ? sem.acquire() : sem.acquire(std::chrono::microseconds(100));
        if (!got) continue;
        if (inside.fetch_add(1) >= kUnits) ++over;
        inside.fetch_sub(1);
        sem.release();
      }
    });
    ts.back().start();
  }
  for (auto& x : ts) x.join();
  EXPECT_EQ(over.load(), 0);
  EXPECT_EQ(sem.value(), kUnits);
}

TEST(SemaphoreStress, BatchReleasesReachEveryWaiter) {
  th::Semaphore sem(0);
  const auto iters = stress_iters();
  constexpr int kConsumers = 4;
  const std::int64_t per_consumer = iters / kConsumers + 1;
  std::atomic<std::int64_t> consumed{0};
  std::vector<th::Thread> ts;
  for (int t = 0; t < kConsumers; ++t) {
    ts.emplace_back([&] {
      for (std::int64_t i = 0; i < per_consumer; ++i) {
        if (!sem.acquire(std::chrono::seconds(30))) return;
        ++consumed;
      }
    });
    ts.back().start();
  }
  std::int64_t total = per_consumer * kConsumers;
  for (std::int64_t done = 0; done < total;) {
    std::int64_t n = std::min<std::int64_t>(3, total - done);
    sem.release(n);
    done += n;
  }
  for (auto& x : ts) x.join();
  EXPECT_EQ(consumed.load(), total);
  EXPECT_EQ(sem.value(), 0);
}

TEST(BoundedSemaphoreStress, ReleasesNeverExceedTheBound) {
  // Holders acquire and release; a rogue thread keeps releasing units it never acquired. Each
  // rogue release that is accepted steals the slot of a holder, whose own release is then
  // refused — so accepted rogue releases equal refused holder releases, the value never goes
  // above the bound, and it ends at the bound.
  constexpr int kUnits = 3;
  th::BoundedSemaphore sem(kUnits);
  const auto iters = stress_iters();
  std::atomic<std::int64_t> rogue_accepted{0}, holder_refused{0};
  std::atomic<int> value_over{0};
  std::atomic<bool> stop{false};
  Budget budget;
  std::vector<th::Thread> holders;
  for (int t = 0; t < 4; ++t) {
    holders.emplace_back([&] {
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        if (!sem.acquire(std::chrono::microseconds(100))) continue;
        if (sem.value() > kUnits) ++value_over;
        try {
          sem.release();
        } catch (const std::invalid_argument&) {
          ++holder_refused;
        }
      }
    });
    holders.back().start();
  }
  th::Thread rogue([&] {
    while (!stop.load()) {
      try {
        sem.release();
        ++rogue_accepted;
      } catch (const std::invalid_argument&) {
      }
      if (sem.value() > kUnits) ++value_over;
    }
  });
  rogue.start();
  for (auto& x : holders) x.join();
  stop = true;
  rogue.join();
  EXPECT_EQ(value_over.load(), 0);
  EXPECT_EQ(rogue_accepted.load(), holder_refused.load());
  EXPECT_EQ(sem.value(), kUnits);
}

}  // namespace
