// asyncio.sleep: ordering, sleep(0) as a yield, resolution, cancellation.
#include <string>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using concur::CancelledError;
using namespace std::chrono_literals;

namespace {
class SleepTest : public concur::test::BackendTest {};
}  // namespace

TEST_P(SleepTest, WakesInDeadlineOrder) {
  std::vector<int> order;
  run_main([&]() -> aio::Coro<void> {
    auto sleeper = [&](int ms) -> aio::Coro<void> {
      co_await aio::sleep(std::chrono::milliseconds(ms));
      order.push_back(ms);
    };
    // 30 ms apart: each deadline is taken when its task first steps, and a loaded machine
    // (sanitizers, a parallel build) can pause the loop for several ms between two steps.
    std::vector<aio::Task<void>> ts;
    for (int ms : {180, 60, 120, 30, 150, 90}) ts.push_back(aio::create_task(sleeper(ms)));
    for (auto& t : ts) co_await t;
  });
  EXPECT_EQ(order, (std::vector<int>{30, 60, 90, 120, 150, 180}));
}

TEST_P(SleepTest, SleepsAtLeastTheDelay) {
  run_main([]() -> aio::Coro<void> {
    auto& loop = aio::get_running_loop();
    for (auto d : {1ms, 3ms, 20ms}) {
      double t0 = loop.time();
      co_await aio::sleep(d);
      double took = loop.time() - t0;
      EXPECT_GE(took, std::chrono::duration<double>(d).count() - 1e-4);
      EXPECT_LT(took, 2.0);
    }
    double t0 = loop.time();
    co_await aio::sleep(200us);  // sub-millisecond
    EXPECT_GE(loop.time() - t0, 200e-6 - 1e-5);
  });
}

TEST_P(SleepTest, ZeroYieldsToOtherTasks) {
  std::string trace;
  run_main([&]() -> aio::Coro<void> {
    auto worker = [&](char c) -> aio::Coro<void> {
      for (int i = 0; i < 3; ++i) {
        trace += c;
        co_await aio::sleep(0s);
      }
    };
    aio::Task<void> a = aio::create_task(worker('a'));
    aio::Task<void> b = aio::create_task(worker('b'));
    co_await a;
    co_await b;
  });
  EXPECT_EQ(trace, "ababab");
}

TEST_P(SleepTest, NegativeDelayIsAYield) {
  run_main([]() -> aio::Coro<void> {
    co_await aio::sleep(-5ms);
    co_await aio::sleep(std::chrono::nanoseconds(0));
  });
}

TEST_P(SleepTest, CancelEndsTheSleepAtOnce) {
  run_main([]() -> aio::Coro<void> {
    auto& loop = aio::get_running_loop();
    aio::Task<void> t = aio::create_task([]() -> aio::Coro<void> { co_await aio::sleep(1h); }());
    co_await aio::sleep(1ms);
    double t0 = loop.time();
    t.cancel();
    EXPECT_THROW(co_await t, CancelledError);
    EXPECT_LT(loop.time() - t0, 1.0);
  });
}

TEST_P(SleepTest, CancelOneSleeperOthersUnaffected) {
  std::vector<int> order;
  run_main([&]() -> aio::Coro<void> {
    auto sleeper = [&](int ms) -> aio::Coro<void> {
      co_await aio::sleep(std::chrono::milliseconds(ms));
      order.push_back(ms);
    };
    aio::Task<void> a = aio::create_task(sleeper(5));
    aio::Task<void> b = aio::create_task(sleeper(300));  // far enough that a stalled loop still cancels it first
    aio::Task<void> c = aio::create_task(sleeper(320));
    co_await aio::sleep(1ms);
    b.cancel();
    co_await a;
    EXPECT_THROW(co_await b, CancelledError);
    co_await c;
  });
  EXPECT_EQ(order, (std::vector<int>{5, 320}));
}

TEST_P(SleepTest, CancelSleepZero) {
  run_main([]() -> aio::Coro<void> {
    auto spinner = []() -> aio::Coro<void> {
      for (;;) co_await aio::sleep(0s);
    };
    aio::Task<void> t = aio::create_task(spinner());
    for (int i = 0; i < 10; ++i) co_await aio::sleep(0s);
    t.cancel();
    EXPECT_THROW(co_await t, CancelledError);
  });
}

TEST_P(SleepTest, ManyConcurrentSleepers) {
  int woke = 0;
  run_main([&]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ts;
    for (int i = 0; i < 20000; ++i) {
      ts.push_back(aio::create_task([](int& w, int k) -> aio::Coro<void> {
        co_await aio::sleep(std::chrono::microseconds(k % 5000));
        ++w;
      }(woke, i)));
    }
    for (auto& t : ts) co_await t;
  });
  EXPECT_EQ(woke, 20000);
}

TEST(Sleep, OutsideATaskIsLogicError) {
  auto s = aio::sleep(1ms);
  EXPECT_THROW(s.await_suspend(std::noop_coroutine()), std::logic_error);
}

INSTANTIATE_TEST_SUITE_P(Backends, SleepTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
