// Stress: ThreadPoolExecutor under many tiny tasks, nested submits, park/unpark cycles, and
// shutdown racing submitters. Every result is checked; every loop is bounded in count and time.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/futures.hpp"
#include "concur/threading.hpp"

namespace cf = concur::futures;
namespace th = concur::threading;
using namespace std::chrono_literals;
using concur::test::Budget;
using concur::test::stress_iters;

namespace {

struct NestedSum {
  cf::ThreadPoolExecutor* pool;
  /// Sum of [lo, hi) by binary splitting, each half a nested submit.
  std::int64_t operator()(std::int64_t lo, std::int64_t hi) const {
    if (hi - lo <= 4) {
      std::int64_t s = 0;
      for (auto i = lo; i < hi; ++i) s += i;
      return s;
    }
    auto mid = lo + (hi - lo) / 2;
    auto a = pool->submit(*this, lo, mid);
    auto b = pool->submit(*this, mid, hi);
    return a.result() + b.result();
  }
};

}  // namespace

TEST(ThreadPoolStress, TinyTasksFromSeveralSubmittersPlusNestedSubmits) {
  const auto per_thread = static_cast<int>(std::max<std::int64_t>(50, stress_iters(2000)));
  constexpr int submitters = 4;
  Budget budget(std::chrono::seconds(15));
  cf::ThreadPoolExecutor pool(4);
  std::vector<std::vector<cf::Future<std::int64_t>>> fs(submitters);
  std::vector<int> submitted(submitters, 0);
  std::vector<std::thread> ts;
  for (int t = 0; t < submitters; ++t) {
    ts.emplace_back([&, t] {
      auto& mine = fs[static_cast<std::size_t>(t)];
      mine.reserve(static_cast<std::size_t>(per_thread));
      for (int i = 0; i < per_thread; ++i) {
        if ((i & 63) == 0 && budget.exhausted()) break;
        if (i % 50 == 0) {
          // Occasionally a task that fans out nested work.
          mine.push_back(pool.submit(NestedSum{&pool}, std::int64_t{0}, std::int64_t{64}));
        } else {
          mine.push_back(pool.submit([t, i]() -> std::int64_t { return std::int64_t{t} * 1000000 + i; }));
        }
        submitted[static_cast<std::size_t>(t)] = i + 1;
      }
    });
  }
  for (auto& t : ts) t.join();
  std::size_t wrong = 0, total = 0;
  for (int t = 0; t < submitters; ++t) {
    for (int i = 0; i < submitted[static_cast<std::size_t>(t)]; ++i) {
      auto v = fs[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)].result(60s);
      std::int64_t expected = (i % 50 == 0) ? 64 * 63 / 2 : std::int64_t{t} * 1000000 + i;
      if (v != expected) ++wrong;
      ++total;
    }
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_GT(total, 0u);
}

TEST(ThreadPoolStress, NestedSubmitsWithOneWorker) {
  const auto rounds = static_cast<int>(std::max<std::int64_t>(2, stress_iters(2000) / 200));
  Budget budget(std::chrono::seconds(15));
  cf::ThreadPoolExecutor pool(1);
  int wrong = 0, done = 0;
  for (int r = 0; r < rounds && !budget.exhausted(); ++r, ++done) {
    std::int64_t n = 200 + r;
    if (pool.submit(NestedSum{&pool}, std::int64_t{0}, n).result(60s) != n * (n - 1) / 2) ++wrong;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(done, 0);
}

TEST(ThreadPoolStress, ParkAndUnparkBurstsSeparatedByIdleGaps) {
  const auto bursts = static_cast<int>(std::max<std::int64_t>(5, stress_iters(2000) / 40));
  Budget budget(std::chrono::seconds(15));
  cf::ThreadPoolExecutor pool(4);
  int wrong = 0, done = 0;
  for (int b = 0; b < bursts && !budget.exhausted(); ++b, ++done) {
    // Idle gap: long enough that spinning workers give up and park (varied to hit the edges).
    std::this_thread::sleep_for(std::chrono::microseconds(200 + (b % 7) * 300));
    const int n = 1 + (b % 5) * 16;
    std::vector<cf::Future<int>> fs;
    fs.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) fs.push_back(pool.submit([i, b] { return i * 7 + b; }));
    for (int i = 0; i < n; ++i)
      if (fs[static_cast<std::size_t>(i)].result(60s) != i * 7 + b) ++wrong;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(done, 0);
}

TEST(ThreadPoolStress, BlockingBurstsUseEveryWorker) {
  // Each burst: as many blocking tasks as workers meeting at a barrier; all must run at once.
  const auto bursts = static_cast<int>(std::max<std::int64_t>(5, stress_iters(2000) / 20));
  Budget budget(std::chrono::seconds(15));
  constexpr int n = 4;
  cf::ThreadPoolExecutor pool(n);
  int broken = 0, done = 0;
  for (int b = 0; b < bursts && !budget.exhausted(); ++b, ++done) {
    if (b % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100 * (b % 10)));
    th::Barrier barrier(n);
    std::vector<cf::Future<bool>> fs;
    for (int i = 0; i < n; ++i)
      fs.push_back(pool.submit([&barrier] {
        try {
          barrier.wait(5s);
          return true;
        } catch (const th::BrokenBarrierError&) {
          return false;
        }
      }));
    for (auto& f : fs)
      if (!f.result(60s)) ++broken;
    if (broken) break;
  }
  EXPECT_EQ(broken, 0);
  EXPECT_GT(done, 0);
}

TEST(ThreadPoolStress, ShutdownRacingSubmitters) {
  // Every submit either throws logic_error (after shutdown) or its future completes.
  const auto rounds = static_cast<int>(std::max<std::int64_t>(5, stress_iters(2000) / 100));
  Budget budget(std::chrono::seconds(15));
  int lost = 0, wrong = 0, done = 0;
  for (int r = 0; r < rounds && !budget.exhausted(); ++r, ++done) {
    std::vector<std::vector<cf::Future<int>>> fs(3);
    {
      cf::ThreadPoolExecutor pool(2);
      std::atomic<bool> go{false};
      std::vector<std::thread> ts;
      for (int t = 0; t < 3; ++t) {
        ts.emplace_back([&, t] {
          while (!go.load()) std::this_thread::yield();
          for (int i = 0; i < 200; ++i) {
            try {
              fs[static_cast<std::size_t>(t)].push_back(pool.submit([i] { return i; }));
            } catch (const std::logic_error&) {
              break;
            }
          }
        });
      }
      go = true;
      std::this_thread::sleep_for(std::chrono::microseconds(50 * (r % 10)));
      pool.shutdown(r % 2 == 0, /*cancel_futures=*/r % 3 == 0);
      for (auto& t : ts) t.join();
    }
    for (auto& v : fs) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].done()) {
          ++lost;  // the destructor waited: everything accepted is finished or cancelled
          continue;
        }
        if (v[i].cancelled()) continue;
        if (v[i].result() != static_cast<int>(i)) ++wrong;
      }
    }
  }
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(done, 0);
}

TEST(ThreadPoolStress, CreateAndDestroyPoolsRepeatedly) {
  const auto rounds = static_cast<int>(std::max<std::int64_t>(10, stress_iters(2000) / 20));
  Budget budget(std::chrono::seconds(15));
  int wrong = 0, done = 0;
  for (int r = 0; r < rounds && !budget.exhausted(); ++r, ++done) {
    cf::ThreadPoolExecutor pool(1 + r % 4);
    auto f = pool.submit([r] { return r; });
    if (r % 2 == 0 && f.result(60s) != r) ++wrong;
    // odd rounds: destroyed with the task perhaps still queued; the destructor waits.
    if (r % 2 == 1) {
      pool.shutdown(true);
      if (!f.done() || f.result() != r) ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(done, 0);
}
