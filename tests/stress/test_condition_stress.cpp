// Stress of threading::Condition: producer/consumer with notify, notify(n) and timed waits.
#include <atomic>
#include <chrono>
#include <deque>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/threading/condition.hpp"
#include "concur/threading/thread.hpp"

using namespace std::chrono_literals;
namespace th = concur::threading;
using concur::test::Budget;
using concur::test::stress_iters;

namespace {

template <class MakeCondition>
void producer_consumer(MakeCondition make) {
  auto holder = make();
  th::Condition& cv = *holder.cv;
  const auto iters = stress_iters();
  constexpr int kProducers = 2, kConsumers = 3;
  std::deque<std::int64_t> items;   // guarded by cv
  std::int64_t produced_sum = 0;    // guarded by cv
  std::int64_t consumed_sum = 0;    // guarded by cv
  std::int64_t consumed = 0;        // guarded by cv
  int producers_left = kProducers;  // guarded by cv
  Budget budget;
  std::vector<th::Thread> ts;
  for (int p = 0; p < kProducers; ++p) {
    ts.emplace_back([&, p] {
      for (std::int64_t i = 1; i <= iters && !budget.exhausted(); ++i) {
        std::unique_lock g(cv);
        items.push_back(i);
        produced_sum += i;
        if ((i + p) % 2)
          cv.notify();
        else
          cv.notify(2);
      }
      std::unique_lock g(cv);
      --producers_left;
      cv.notify_all();
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    ts.emplace_back([&, c] {
      std::unique_lock g(cv);
      for (;;) {
        if (c % 2 == 0) {
          cv.wait_for([&] { return !items.empty() || producers_left == 0; });
        } else {
          // Timed waits that may time out: loop until there is something to do.
          while (items.empty() && producers_left > 0) cv.wait(std::chrono::microseconds(200));
        }
        if (items.empty()) return;  // producers done and drained
        consumed_sum += items.front();
        items.pop_front();
        ++consumed;
      }
    });
  }
  for (auto& t : ts) t.start();
  for (auto& t : ts) t.join();
  EXPECT_TRUE(items.empty());
  EXPECT_EQ(consumed_sum, produced_sum);
  EXPECT_GT(consumed, 0);
}

struct OwnLock {
  std::unique_ptr<th::Condition> cv = std::make_unique<th::Condition>();
};
struct PlainLock {
  std::unique_ptr<th::Lock> lock = std::make_unique<th::Lock>();
  std::unique_ptr<th::Condition> cv = std::make_unique<th::Condition>(*lock);
};

TEST(ConditionStress, ProducerConsumerDefaultRLock) {
  producer_consumer([] { return OwnLock{}; });
}

TEST(ConditionStress, ProducerConsumerExternalLock) {
  producer_consumer([] { return PlainLock{}; });
}

TEST(ConditionStress, NotifyAllReleasesEveryWaiterEachRound) {
  const auto rounds = stress_iters() / 20 + 1;
  constexpr int kWaiters = 4;
  th::Condition cv;
  std::int64_t generation = 0;  // guarded by cv
  int arrived = 0;              // guarded by cv
  Budget budget;
  std::atomic<int> stuck{0};
  std::vector<th::Thread> ts;
  std::atomic<std::int64_t> last_round{0};
  for (int w = 0; w < kWaiters; ++w) {
    ts.emplace_back([&] {
      std::unique_lock g(cv);
      std::int64_t seen = 0;
      for (;;) {
        ++arrived;
        cv.notify_all();  // tell the driver
        if (!cv.wait_for([&] { return generation != seen; }, 30s)) {
          ++stuck;
          return;
        }
        seen = generation;
        if (seen < 0) return;
      }
    });
    ts.back().start();
  }
  std::int64_t r = 0;
  for (; r < rounds && !budget.exhausted(); ++r) {
    std::unique_lock g(cv);
    if (!cv.wait_for([&] { return arrived == kWaiters; }, 30s)) {
      ++stuck;
      break;
    }
    arrived = 0;
    ++generation;
    cv.notify_all();
  }
  {
    std::unique_lock g(cv);
    cv.wait_for([&] { return arrived == kWaiters; }, 30s);
    generation = -1;
    cv.notify_all();
  }
  for (auto& t : ts) t.join();
  last_round = r;
  EXPECT_EQ(stuck.load(), 0);
  EXPECT_GT(last_round.load(), 0);
}

}  // namespace
