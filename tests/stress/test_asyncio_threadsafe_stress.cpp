// Stress: several threads call_soon_threadsafe into a running loop while tasks on that loop
// await futures completed by pool threads. Every callback runs exactly once, every await gets
// its value. Iterations from CONCUR_STRESS_ITERS, bounded in time.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"
#include "concur/futures.hpp"

namespace aio = concur::asyncio;
namespace cf = concur::futures;
using namespace std::chrono_literals;

namespace {

void run_stress(const std::string& backend) {
  const std::int64_t iters = concur::test::stress_iters(2000);
  concur::test::Budget budget(std::chrono::seconds(20));
  constexpr int kThreads = 4;
  cf::ThreadPoolExecutor pool(3);

  aio::EventLoop loop(aio::LoopOptions{.backend = backend});
  std::vector<std::atomic<std::int64_t>> posted(kThreads);
  std::vector<std::vector<int>> runs(kThreads);  // loop thread only
  for (auto& r : runs) r.assign(static_cast<std::size_t>(iters), 0);
  std::atomic<int> producers_done{0};
  std::int64_t awaited_sum = 0, awaited_expected = 0, awaited_count = 0;

  auto awaiter = [&](int id) -> aio::Coro<void> {
    for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
      int v = co_await pool.submit([id, i] { return static_cast<int>((id * 131 + i) % 1000); });
      awaited_sum += v;
      awaited_expected += (id * 131 + i) % 1000;
      ++awaited_count;
      if (i % 16 == 0) co_await aio::sleep(0s);
    }
  };

  auto amain = [&]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ts;
    for (int k = 0; k < 4; ++k) ts.push_back(aio::create_task(awaiter(k)));
    for (auto& t : ts) co_await t;
    // Then wait until every producer has finished and its callbacks have all run.
    while (producers_done.load() < kThreads) co_await aio::sleep(1ms);
    co_await aio::sleep(0s);
  };

  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        loop.call_soon_threadsafe([&runs, t, i] { ++runs[t][static_cast<std::size_t>(i)]; });
        posted[t].store(i + 1, std::memory_order_relaxed);
        if (i % 64 == 0) std::this_thread::yield();
      }
      // The last one, posted after all others: marks this producer done on the loop's thread.
      loop.call_soon_threadsafe([&producers_done] { producers_done.fetch_add(1); });
    });
  }
  loop.run_until_complete(amain());
  for (auto& p : producers) p.join();
  loop.close();

  EXPECT_EQ(awaited_sum, awaited_expected);
  EXPECT_GT(awaited_count, 0);
  for (int t = 0; t < kThreads; ++t) {
    const std::int64_t n = posted[t].load();
    EXPECT_GT(n, 0);
    for (std::int64_t i = 0; i < iters; ++i) {
      ASSERT_EQ(runs[t][static_cast<std::size_t>(i)], i < n ? 1 : 0) << "thread " << t << " callback " << i;
    }
  }
}

}  // namespace

TEST(AsyncioThreadsafeStress, EpollCallbacksRunExactlyOnce) { run_stress("epoll"); }
TEST(AsyncioThreadsafeStress, IoUringCallbacksRunExactlyOnce) { run_stress("io_uring"); }

TEST(AsyncioThreadsafeStress, StopFromAnotherThreadWhileFuturesComplete) {
  const std::int64_t iters = concur::test::stress_iters(2000) / 20 + 1;
  concur::test::Budget budget(std::chrono::seconds(20));
  cf::ThreadPoolExecutor pool(2);
  for (std::int64_t round = 0; round < iters && !budget.exhausted(); ++round) {
    aio::EventLoop loop;
    std::atomic<int> ran{0};
    auto body = [&]() -> aio::Coro<void> {
      for (int i = 0; i < 10; ++i) co_await pool.submit([] { return 0; });
    };
    aio::Task<void> t = loop.create_task(body());
    std::thread stopper([&] {
      for (int i = 0; i < 10; ++i) loop.call_soon_threadsafe([&] { ran.fetch_add(1); });
      loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    loop.run_forever();
    stopper.join();
    // Whatever is left runs now; the task finishes.
    loop.run_until_complete(t);
    EXPECT_EQ(ran.load(), 10);
    loop.close();
  }
}
