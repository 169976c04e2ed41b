#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/threading/barrier.hpp"
#include "concur/threading/thread.hpp"

using namespace std::chrono_literals;
namespace th = concur::threading;

namespace {

// Outcome of one wait() on a worker thread.
struct Outcome {
  std::mutex m;
  std::vector<std::size_t> indexes;
  int broken = 0;
  int other = 0;
  void run(const std::function<std::size_t()>& wait) {
    try {
      std::size_t i = wait();
      std::lock_guard g(m);
      indexes.push_back(i);
    } catch (const th::BrokenBarrierError&) {
      std::lock_guard g(m);
      ++broken;
    } catch (...) {
      std::lock_guard g(m);
      ++other;
    }
  }
};

TEST(Barrier, InvalidPartiesThrows) {
  EXPECT_THROW(th::Barrier(0), std::invalid_argument);
  th::Barrier b(3);
  EXPECT_EQ(b.parties(), 3u);
  EXPECT_FALSE(b.broken());
  EXPECT_EQ(b.n_waiting(), 0u);
}

TEST(Barrier, SinglePartyNeverBlocks) {
  th::Barrier b(1);
  EXPECT_EQ(b.wait(), 0u);
  EXPECT_EQ(b.wait(), 0u);
}

TEST(Barrier, IndexesAreDistinct) {
  th::Barrier b(3);
  Outcome out;
  std::vector<th::Thread> ts;
  for (int i = 0; i < 2; ++i) {
    ts.emplace_back([&] { out.run([&] { return b.wait(); }); });
    ts.back().start();
  }
  ASSERT_TRUE(concur::test::eventually([&] { return b.n_waiting() == 2; }));
  out.run([&] { return b.wait(); });
  for (auto& t : ts) t.join();
  std::sort(out.indexes.begin(), out.indexes.end());
  EXPECT_EQ(out.indexes, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(out.broken, 0);
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, ActionRunsOncePerCycleAndBarrierIsReusable) {
  std::atomic<int> actions{0};
  th::Barrier b(3, [&] { ++actions; });
  constexpr int kCycles = 5;
  std::mutex m;
  std::vector<std::size_t> all;
  std::atomic<int> actions_seen_wrong{0};
  std::vector<th::Thread> ts;
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&] {
      for (int c = 0; c < kCycles; ++c) {
        std::size_t idx = b.wait(10s);
        // The action ran before anyone was released from cycle c.
        if (actions.load() < c + 1) ++actions_seen_wrong;
        std::lock_guard g(m);
        all.push_back(idx);
      }
    });
    ts.back().start();
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(actions.load(), kCycles);
  EXPECT_EQ(actions_seen_wrong.load(), 0);
  ASSERT_EQ(all.size(), 3u * kCycles);
  EXPECT_EQ(std::count(all.begin(), all.end(), 0u), kCycles);
  EXPECT_EQ(std::count(all.begin(), all.end(), 1u), kCycles);
  EXPECT_EQ(std::count(all.begin(), all.end(), 2u), kCycles);
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, ActionViaOptions) {
  std::atomic<int> actions{0};
  th::Barrier b(2, th::BarrierOptions{.action = [&] { ++actions; }, .timeout = std::nullopt});
  th::Thread t([&] { b.wait(); });
  t.start();
  b.wait();
  t.join();
  EXPECT_EQ(actions.load(), 1);
}

TEST(Barrier, ThrowingActionBreaksBarrier) {
  th::Barrier b(2, [] { throw std::runtime_error("action failed"); });
  Outcome out;
  int action_error = 0;
  th::Thread t([&] { out.run([&] { return b.wait(10s); }); });
  t.start();
  ASSERT_TRUE(concur::test::eventually([&] { return b.n_waiting() == 1; }));
  try {
    b.wait(10s);  // the last arrival runs the action and gets its exception
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()) == "action failed") ++action_error;
  }
  t.join();
  EXPECT_EQ(action_error, 1);
  EXPECT_EQ(out.broken, 1);
  EXPECT_TRUE(b.broken());
  EXPECT_THROW(b.wait(), th::BrokenBarrierError);
}

TEST(Barrier, TimeoutBreaksBarrier) {
  th::Barrier b(3);
  Outcome out;
  th::Thread t([&] { out.run([&] { return b.wait(10s); }); });
  t.start();
  ASSERT_TRUE(concur::test::eventually([&] { return b.n_waiting() == 1; }));
  EXPECT_THROW(b.wait(20ms), th::BrokenBarrierError);
  t.join();
  EXPECT_EQ(out.broken, 1);  // the other waiter is released with the error too
  EXPECT_TRUE(b.broken());
  EXPECT_THROW(b.wait(10s), th::BrokenBarrierError);
}

TEST(Barrier, DefaultTimeoutFromOptions) {
  th::Barrier b(2, th::BarrierOptions{.action = {}, .timeout = 20ms});
  auto start = concur::core::Clock::now();
  EXPECT_THROW(b.wait(), th::BrokenBarrierError);
  EXPECT_GE(concur::core::Clock::now() - start, 20ms);
  EXPECT_TRUE(b.broken());
}

TEST(Barrier, AbortBreaksCurrentAndFutureWaits) {
  th::Barrier b(3);
  Outcome out;
  std::vector<th::Thread> ts;
  for (int i = 0; i < 2; ++i) {
    ts.emplace_back([&] { out.run([&] { return b.wait(10s); }); });
    ts.back().start();
  }
  ASSERT_TRUE(concur::test::eventually([&] { return b.n_waiting() == 2; }));
  b.abort();
  for (auto& t : ts) t.join();
  EXPECT_EQ(out.broken, 2);
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_THROW(b.wait(), th::BrokenBarrierError);
}

TEST(Barrier, ResetWakesWaitersWithBrokenBarrierErrorThenWorksAgain) {
  th::Barrier b(3);
  Outcome out;
  std::vector<th::Thread> ts;
  for (int i = 0; i < 2; ++i) {
    ts.emplace_back([&] { out.run([&] { return b.wait(10s); }); });
    ts.back().start();
  }
  ASSERT_TRUE(concur::test::eventually([&] { return b.n_waiting() == 2; }));
  b.reset();
  for (auto& t : ts) t.join();
  EXPECT_EQ(out.broken, 2);
  EXPECT_FALSE(b.broken());
  // A fresh cycle works.
  Outcome out2;
  std::vector<th::Thread> ts2;
  for (int i = 0; i < 3; ++i) {
    ts2.emplace_back([&] { out2.run([&] { return b.wait(10s); }); });
    ts2.back().start();
  }
  for (auto& t : ts2) t.join();
  EXPECT_EQ(out2.indexes.size(), 3u);
  EXPECT_EQ(out2.broken, 0);
}

TEST(Barrier, ResetRepairsABrokenBarrier) {
  th::Barrier b(2);
  b.abort();
  EXPECT_TRUE(b.broken());
  b.reset();
  EXPECT_FALSE(b.broken());
  std::atomic<std::size_t> idx{99};
  th::Thread t([&] { idx = b.wait(10s); });
  t.start();
  std::size_t mine = b.wait(10s);
  t.join();
  EXPECT_EQ(mine + idx.load(), 1u);
}

TEST(Barrier, NWaitingCountsParkedThreads) {
  th::Barrier b(4);
  EXPECT_EQ(b.n_waiting(), 0u);
  Outcome out;
  std::vector<th::Thread> ts;
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&] { out.run([&] { return b.wait(10s); }); });
    ts.back().start();
    ASSERT_TRUE(concur::test::eventually([&] { return b.n_waiting() == static_cast<std::size_t>(i + 1); }));
  }
  b.wait(10s);
  for (auto& t : ts) t.join();
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_EQ(out.indexes.size(), 3u);
}

}  // namespace
