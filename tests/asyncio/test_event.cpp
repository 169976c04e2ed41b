// asyncio.Event: wait/set/clear/is_set, waking every waiter, cancellation (waiting, and after
// set() already woke the waiter), and set() from other threads (call_soon_threadsafe and
// directly).
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;
using concur::test::settle;

TEST(AsyncioEvent, SetClearIsSet) {
  aio::Event ev;
  EXPECT_FALSE(ev.is_set());
  ev.set();
  EXPECT_TRUE(ev.is_set());
  ev.set();  // idempotent
  EXPECT_TRUE(ev.is_set());
  ev.clear();
  EXPECT_FALSE(ev.is_set());
}

TEST(AsyncioEvent, WaitOnSetEventReturnsTrueAtOnce) {
  aio::Event ev;
  ev.set();
  bool r = false;
  auto body = [&]() -> aio::Coro<void> { r = co_await ev.wait(); };
  aio::run(body());
  EXPECT_TRUE(r);
}

TEST(AsyncioEvent, SetWakesEveryWaiter) {
  aio::Event ev;
  std::vector<int> woke;
  int before_set = 0;
  auto waiter = [&](int i) -> aio::Coro<void> {
    bool r = co_await ev.wait();
    if (r) woke.push_back(i);
  };
  auto body = [&]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ts;
    for (int i = 0; i < 5; ++i) ts.push_back(aio::create_task(waiter(i)));
    co_await settle();
    before_set = static_cast<int>(woke.size());
    ev.set();
    for (auto& t : ts) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(before_set, 0);
  EXPECT_EQ(woke, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(AsyncioEvent, ClearAfterSetStillReleasesWokenWaiters) {
  aio::Event ev;
  bool r = false;
  auto waiter = [&]() -> aio::Coro<void> { r = co_await ev.wait(); };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(waiter());
    co_await settle();
    ev.set();
    ev.clear();  // before the waiter runs
    co_await t;
  };
  aio::run(body());
  EXPECT_TRUE(r);
  EXPECT_FALSE(ev.is_set());
}

TEST(AsyncioEvent, WaitAfterClearBlocksAgain) {
  aio::Event ev;
  std::vector<int> log;
  auto waiter = [&]() -> aio::Coro<void> {
    co_await ev.wait();
    log.push_back(1);
    ev.clear();
    co_await ev.wait();
    log.push_back(2);
  };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(waiter());
    co_await settle();
    ev.set();
    co_await settle();
    log.push_back(0);
    ev.set();
    co_await t;
  };
  aio::run(body());
  EXPECT_EQ(log, (std::vector<int>{1, 0, 2}));
}

TEST(AsyncioEvent, CancelWaitingWaiterOthersStillWake) {
  aio::Event ev;
  int woke = 0;
  bool cancelled = false;
  auto waiter = [&]() -> aio::Coro<void> {
    co_await ev.wait();
    ++woke;
  };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(waiter());
    auto b = aio::create_task(waiter());
    auto c = aio::create_task(waiter());
    co_await settle();
    b.cancel();
    co_await settle();
    cancelled = b.cancelled();
    ev.set();
    co_await a;
    co_await c;
  };
  aio::run(body());
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(woke, 2);
}

TEST(AsyncioEvent, CancelAfterSetWokeTheWaiterStillCancels) {
  // Python: Task.cancel() after the waiter's future completed still throws CancelledError at
  // the await (the request is not lost).
  aio::Event ev;
  bool returned = false, cancelled = false;
  auto waiter = [&]() -> aio::Coro<void> {
    co_await ev.wait();
    returned = true;
  };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(waiter());
    co_await settle();
    ev.set();
    t.cancel();
    co_await settle();
    cancelled = t.cancelled();
  };
  aio::run(body());
  EXPECT_FALSE(returned);
  EXPECT_TRUE(cancelled);
}

TEST(AsyncioEvent, CancelledWaiterCanCatchAndWaitAgain) {
  aio::Event ev;
  int caught = 0;
  bool finished = false;
  aio::Task<void> t;
  auto waiter = [&]() -> aio::Coro<void> {
    try {
      co_await ev.wait();
    } catch (const concur::CancelledError&) {
      ++caught;
      t.uncancel();
    }
    co_await ev.wait();
    finished = true;
  };
  auto body = [&]() -> aio::Coro<void> {
    t = aio::create_task(waiter());
    co_await settle();
    t.cancel();
    co_await settle();
    ev.set();
    co_await t;
  };
  aio::run(body());
  EXPECT_EQ(caught, 1);
  EXPECT_TRUE(finished);
}

TEST(AsyncioEvent, SetFromAnotherThreadViaCallSoonThreadsafe) {
  aio::Event ev;
  bool r = false;
  std::thread setter;
  auto body = [&]() -> aio::Coro<void> {
    aio::EventLoop& loop = aio::get_running_loop();
    setter = std::thread([&loop, &ev] {
      std::this_thread::sleep_for(10ms);
      loop.call_soon_threadsafe([&ev] { ev.set(); });
    });
    r = co_await ev.wait();
  };
  aio::run(body());
  setter.join();
  EXPECT_TRUE(r);
}

TEST(AsyncioEvent, SetDirectlyFromAnotherThread) {
  // Beyond Python: set() is thread-safe; the waiters resume on their loop.
  for (int round = 0; round < 50; ++round) {
    aio::Event ev;
    int woke = 0;
    std::thread setter;
    auto waiter = [&]() -> aio::Coro<void> {
      co_await ev.wait();
      ++woke;
    };
    auto body = [&]() -> aio::Coro<void> {
      std::vector<aio::Task<void>> ts;
      for (int i = 0; i < 4; ++i) ts.push_back(aio::create_task(waiter()));
      setter = std::thread([&ev] { ev.set(); });
      for (auto& t : ts) co_await t;
    };
    aio::run(body());
    setter.join();
    EXPECT_EQ(woke, 4);
  }
}

TEST(AsyncioEvent, CancelRacingASetFromAnotherThreadNeverHangs) {
  // Either outcome is fine (woken, or cancelled); the task must finish and nothing may leak.
  int finished = 0;
  for (int round = 0; round < 200; ++round) {
    aio::Event ev;
    std::thread setter;
    auto waiter = [&]() -> aio::Coro<void> { co_await ev.wait(); };
    auto body = [&]() -> aio::Coro<void> {
      auto t = aio::create_task(waiter());
      co_await aio::sleep(0s);
      setter = std::thread([&ev] { ev.set(); });
      t.cancel();
      try {
        co_await t;
      } catch (const concur::CancelledError&) {
      }
      ++finished;
    };
    aio::run(body());
    setter.join();
  }
  EXPECT_EQ(finished, 200);
}

TEST(AsyncioEvent, WaitOutsideATaskIsLogicError) {
  aio::Event ev;
  auto body = [&]() -> aio::Coro<void> { co_await ev.wait(); };
  aio::Coro<void> c = body();
  aio::detail::drive(c.handle());
  ASSERT_TRUE(c.done());
  EXPECT_THROW(c.handle().promise().take(), std::logic_error);
}
