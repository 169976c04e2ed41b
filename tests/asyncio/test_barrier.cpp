// asyncio.Barrier: indices, cycles, n_waiting/parties/broken, abort, reset, cancellation (a
// cancelled waiter leaves without breaking the barrier), and misuse.
#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;
using concur::test::settle;

TEST(AsyncioBarrier, ZeroPartiesIsInvalidArgument) { EXPECT_THROW(aio::Barrier(0), std::invalid_argument); }

TEST(AsyncioBarrier, SinglePartyNeverWaits) {
  aio::Barrier bar(1);
  std::vector<std::size_t> idx;
  auto body = [&]() -> aio::Coro<void> {
    idx.push_back(co_await bar.wait());
    idx.push_back(co_await bar.wait());
  };
  aio::run(body());
  EXPECT_EQ(idx, (std::vector<std::size_t>{0, 0}));
}

TEST(AsyncioBarrier, AllPartiesPassWithDistinctIndices) {
  aio::Barrier bar(3);
  std::vector<std::size_t> idx;
  std::vector<std::size_t> waiting;
  auto party = [&]() -> aio::Coro<void> { idx.push_back(co_await bar.wait()); };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(party());
    co_await settle();
    waiting.push_back(bar.n_waiting());
    auto b = aio::create_task(party());
    co_await settle();
    waiting.push_back(bar.n_waiting());
    auto c = aio::create_task(party());
    co_await a;
    co_await b;
    co_await c;
    waiting.push_back(bar.n_waiting());
  };
  aio::run(body());
  std::sort(idx.begin(), idx.end());
  EXPECT_EQ(idx, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(waiting, (std::vector<std::size_t>{1, 2, 0}));
  EXPECT_EQ(bar.parties(), 3U);
  EXPECT_FALSE(bar.broken());
}

TEST(AsyncioBarrier, IsCyclic) {
  aio::Barrier bar(4);
  int passes = 0;
  std::vector<int> phase_of(4, 0);
  bool in_step = true;
  auto party = [&](int i) -> aio::Coro<void> {
    for (int round = 0; round < 5; ++round) {
      phase_of[static_cast<std::size_t>(i)] = round;
      co_await bar.wait();
      // Nobody may pass round r before everyone reached round r.
      for (int p : phase_of) in_step = in_step && p >= round;
      ++passes;
    }
  };
  auto body = [&]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ts;
    for (int i = 0; i < 4; ++i) ts.push_back(aio::create_task(party(i)));
    for (auto& t : ts) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(passes, 20);
  EXPECT_TRUE(in_step);
}

TEST(AsyncioBarrier, AbortBreaksWaitersAndLaterCalls) {
  aio::Barrier bar(3);
  int broken_errors = 0;
  bool later_threw = false;
  auto party = [&]() -> aio::Coro<void> {
    try {
      co_await bar.wait();
    } catch (const aio::BrokenBarrierError&) {
      ++broken_errors;
    }
  };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(party());
    auto b = aio::create_task(party());
    co_await settle();
    co_await bar.abort();  // Python: `await barrier.abort()`
    co_await a;
    co_await b;
    try {
      co_await bar.wait();
    } catch (const aio::BrokenBarrierError&) {
      later_threw = true;
    }
  };
  aio::run(body());
  EXPECT_EQ(broken_errors, 2);
  EXPECT_TRUE(later_threw);
  EXPECT_TRUE(bar.broken());
  EXPECT_EQ(bar.n_waiting(), 0U);
}

TEST(AsyncioBarrier, ResetBreaksCurrentWaitersThenWorksAgain) {
  aio::Barrier bar(2);
  int broken_errors = 0;
  std::vector<std::size_t> idx;
  auto party = [&]() -> aio::Coro<void> {
    try {
      idx.push_back(co_await bar.wait());
    } catch (const aio::BrokenBarrierError&) {
      ++broken_errors;
    }
  };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(party());
    co_await settle();
    bar.reset();  // plain call works too
    co_await a;
    auto b = aio::create_task(party());
    auto c = aio::create_task(party());
    co_await b;
    co_await c;
  };
  aio::run(body());
  EXPECT_EQ(broken_errors, 1);
  std::sort(idx.begin(), idx.end());
  EXPECT_EQ(idx, (std::vector<std::size_t>{0, 1}));
  EXPECT_FALSE(bar.broken());
}

TEST(AsyncioBarrier, ResetRepairsAnAbortedBarrier) {
  aio::Barrier bar(2);
  std::vector<std::size_t> idx;
  auto party = [&]() -> aio::Coro<void> { idx.push_back(co_await bar.wait()); };
  auto body = [&]() -> aio::Coro<void> {
    bar.abort();
    co_await bar.reset();
    auto a = aio::create_task(party());
    auto b = aio::create_task(party());
    co_await a;
    co_await b;
  };
  aio::run(body());
  EXPECT_FALSE(bar.broken());
  EXPECT_EQ(idx.size(), 2U);
}

TEST(AsyncioBarrier, CancelledWaiterLeavesWithoutBreakingIt) {
  aio::Barrier bar(2);
  std::vector<std::size_t> waiting;
  bool cancelled = false;
  std::vector<std::size_t> idx;
  auto party = [&]() -> aio::Coro<void> { idx.push_back(co_await bar.wait()); };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(party());
    co_await settle();
    waiting.push_back(bar.n_waiting());
    a.cancel();
    co_await settle();
    cancelled = a.cancelled();
    waiting.push_back(bar.n_waiting());
    auto b = aio::create_task(party());
    auto c = aio::create_task(party());
    co_await b;
    co_await c;
  };
  aio::run(body());
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(waiting, (std::vector<std::size_t>{1, 0}));
  EXPECT_FALSE(bar.broken());
  std::sort(idx.begin(), idx.end());
  EXPECT_EQ(idx, (std::vector<std::size_t>{0, 1}));
}

TEST(AsyncioBarrier, LateArrivalsWaitForTheNextCycle) {
  // A task arriving while the last cycle still drains (its waiters have not run yet) joins the
  // next cycle instead of slipping through the current one.
  aio::Barrier bar(2);
  std::vector<int> log;
  auto party = [&](int id) -> aio::Coro<void> {
    co_await bar.wait();
    log.push_back(id);
  };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(party(1));
    co_await settle();
    auto b = aio::create_task(party(2));
    co_await aio::sleep(0s);              // b completes the cycle; a is woken but has not run
    auto c = aio::create_task(party(3));  // arrives while draining
    co_await a;
    co_await b;
    co_await settle();
    bool c_done = c.done();
    log.push_back(c_done ? -1 : 0);
    auto d = aio::create_task(party(4));
    co_await c;
    co_await d;
  };
  aio::run(body());
  ASSERT_EQ(log.size(), 5U);
  EXPECT_EQ(log[2], 0);  // c still waiting after the first cycle
}
