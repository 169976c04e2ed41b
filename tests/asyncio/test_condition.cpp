// asyncio.Condition: the lock (own or given), wait/notify/notify_all/wait_for, misuse
// (std::logic_error), FIFO wake-up order, and cancellation: the lock is always re-acquired, and a
// notification that reached a cancelled waiter goes to the next one.
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;
using concur::test::settle;

TEST(AsyncioCondition, OwnLockAcquireReleaseLocked) {
  aio::Condition cond;
  std::vector<bool> seen;
  auto body = [&]() -> aio::Coro<void> {
    seen.push_back(cond.locked());
    co_await cond.acquire();
    seen.push_back(cond.locked());
    cond.release();
    seen.push_back(cond.locked());
    {
      auto g = co_await cond.lock_guard();
      seen.push_back(cond.locked());
    }
    seen.push_back(cond.locked());
  };
  aio::run(body());
  EXPECT_EQ(seen, (std::vector<bool>{false, true, false, true, false}));
  EXPECT_THROW(cond.release(), std::logic_error);
}

TEST(AsyncioCondition, SharesAGivenLock) {
  aio::Lock lock;
  aio::Condition cond(lock);
  bool a = false, b = false;
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    a = cond.locked();
    cond.release();
    b = lock.locked();
  };
  aio::run(body());
  EXPECT_TRUE(a);
  EXPECT_FALSE(b);
}

TEST(AsyncioCondition, WaitAndNotifyWithoutTheLockAreLogicErrors) {
  aio::Condition cond;
  bool wait_threw = false;
  auto body = [&]() -> aio::Coro<void> {
    try {
      co_await cond.wait();
    } catch (const std::logic_error&) {
      wait_threw = true;
    }
  };
  aio::run(body());
  EXPECT_TRUE(wait_threw);
  EXPECT_THROW(cond.notify(), std::logic_error);
  EXPECT_THROW(cond.notify_all(), std::logic_error);
}

TEST(AsyncioCondition, WaitForWithoutTheLockIsLogicErrorUnlessAlreadyTrue) {
  aio::Condition cond;
  bool threw = false, ready = false;
  auto body = [&]() -> aio::Coro<void> {
    ready = co_await cond.wait_for([] { return true; });  // never waits: no lock needed (Python too)
    try {
      co_await cond.wait_for([] { return false; });
    } catch (const std::logic_error&) {
      threw = true;
    }
  };
  aio::run(body());
  EXPECT_TRUE(ready);
  EXPECT_TRUE(threw);
}

TEST(AsyncioCondition, NotifyWakesOneInFifoOrderAndWaitReacquires) {
  aio::Condition cond;
  std::vector<int> woke;
  bool all_held_lock = true;
  auto waiter = [&](int i) -> aio::Coro<void> {
    co_await cond.acquire();
    bool r = co_await cond.wait();
    if (!r || !cond.locked()) all_held_lock = false;
    woke.push_back(i);
    cond.release();
  };
  std::vector<std::size_t> progress;
  auto body = [&]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ts;
    for (int i = 0; i < 4; ++i) ts.push_back(aio::create_task(waiter(i)));
    co_await settle();
    for (int k = 0; k < 2; ++k) {
      co_await cond.acquire();
      cond.notify();
      cond.release();
      co_await settle();
      progress.push_back(woke.size());
    }
    co_await cond.acquire();
    cond.notify(2);
    cond.release();
    for (auto& t : ts) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(woke, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(progress, (std::vector<std::size_t>{1, 2}));
  EXPECT_TRUE(all_held_lock);
  EXPECT_FALSE(cond.locked());
}

TEST(AsyncioCondition, NotifiedWaiterRunsOnlyAfterTheNotifierReleases) {
  aio::Condition cond;
  std::vector<std::string> log;
  auto waiter = [&]() -> aio::Coro<void> {
    co_await cond.acquire();
    co_await cond.wait();
    log.push_back("waiter resumed");
    cond.release();
  };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(waiter());
    co_await settle();
    co_await cond.acquire();
    cond.notify();
    co_await settle();  // still holding the lock
    log.push_back("notifier releases");
    cond.release();
    co_await t;
  };
  aio::run(body());
  EXPECT_EQ(log, (std::vector<std::string>{"notifier releases", "waiter resumed"}));
}

TEST(AsyncioCondition, NotifyAllWakesEveryone) {
  aio::Condition cond;
  int woke = 0;
  auto waiter = [&]() -> aio::Coro<void> {
    auto g = co_await cond.lock_guard();
    co_await cond.wait();
    ++woke;
  };
  auto body = [&]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ts;
    for (int i = 0; i < 6; ++i) ts.push_back(aio::create_task(waiter()));
    co_await settle();
    {
      auto g = co_await cond.lock_guard();
      cond.notify_all();
    }
    for (auto& t : ts) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(woke, 6);
}

TEST(AsyncioCondition, NotifyWithNoWaitersIsANoOp) {
  aio::Condition cond;
  bool ok = false;
  auto body = [&]() -> aio::Coro<void> {
    co_await cond.acquire();
    cond.notify(5);
    cond.notify_all();
    cond.release();
    ok = true;
  };
  aio::run(body());
  EXPECT_TRUE(ok);
}

TEST(AsyncioCondition, WaitForProducerConsumer) {
  aio::Condition cond;
  std::vector<int> items;
  std::vector<int> consumed;
  auto consumer = [&]() -> aio::Coro<void> {
    for (int n = 0; n < 10; ++n) {
      auto g = co_await cond.lock_guard();
      bool ok = co_await cond.wait_for([&] { return !items.empty(); });
      if (ok) {
        consumed.push_back(items.front());
        items.erase(items.begin());
      }
    }
  };
  auto body = [&]() -> aio::Coro<void> {
    auto c = aio::create_task(consumer());
    for (int i = 0; i < 10; ++i) {
      co_await aio::sleep(0s);
      auto g = co_await cond.lock_guard();
      items.push_back(i);
      cond.notify();
    }
    co_await c;
  };
  aio::run(body());
  EXPECT_EQ(consumed, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(AsyncioCondition, WaitForReturnsThePredicatesValue) {
  aio::Condition cond;
  int value = 0, got = 0;
  auto waiter = [&]() -> aio::Coro<void> {
    auto g = co_await cond.lock_guard();
    got = co_await cond.wait_for([&] { return value; });
  };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(waiter());
    co_await settle();
    {
      auto g = co_await cond.lock_guard();
      value = 7;
      cond.notify_all();
    }
    co_await t;
  };
  aio::run(body());
  EXPECT_EQ(got, 7);
}

TEST(AsyncioCondition, CancelledWaiterReacquiresTheLockBeforeTheError) {
  aio::Condition cond;
  bool held_when_cancelled = false, cancelled = false;
  auto waiter = [&]() -> aio::Coro<void> {
    co_await cond.acquire();
    try {
      co_await cond.wait();
    } catch (const concur::CancelledError&) {
      held_when_cancelled = cond.locked();
      cond.release();
      throw;
    }
  };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(waiter());
    co_await settle();
    co_await cond.acquire();  // the waiter must wait for the lock even though it is cancelled
    t.cancel();
    co_await settle();
    bool done_while_held = t.done();
    cond.release();
    co_await settle();
    cancelled = t.cancelled() && !done_while_held;
  };
  aio::run(body());
  EXPECT_TRUE(held_when_cancelled);
  EXPECT_TRUE(cancelled);
  EXPECT_FALSE(cond.locked());
}

TEST(AsyncioCondition, NotificationOfACancelledWaiterGoesToTheNext) {
  aio::Condition cond;
  std::vector<int> woke;
  bool first_cancelled = false;
  auto waiter = [&](int i) -> aio::Coro<void> {
    auto g = co_await cond.lock_guard();
    co_await cond.wait();
    woke.push_back(i);
  };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(waiter(0));
    auto b = aio::create_task(waiter(1));
    co_await settle();
    {
      auto g = co_await cond.lock_guard();
      cond.notify(1);  // reaches a
      a.cancel();      // a was already notified: it passes the notification to b
    }
    co_await b;
    co_await settle();
    first_cancelled = a.cancelled();
  };
  aio::run(body());
  EXPECT_TRUE(first_cancelled);
  EXPECT_EQ(woke, (std::vector<int>{1}));
  EXPECT_FALSE(cond.locked());
}

TEST(AsyncioCondition, CancelledWhileReacquiringStillEndsHoldingTheLock) {
  aio::Condition cond;
  bool held = false, got_cancelled = false;
  aio::Task<void> t;
  auto waiter = [&]() -> aio::Coro<void> {
    co_await cond.acquire();
    try {
      co_await cond.wait();
    } catch (const concur::CancelledError&) {
      got_cancelled = true;
      held = cond.locked();
    }
    cond.release();
  };
  auto body = [&]() -> aio::Coro<void> {
    t = aio::create_task(waiter());
    co_await settle();
    co_await cond.acquire();
    cond.notify();
    co_await settle();  // t is notified and now waits for the lock
    t.cancel();
    co_await settle();
    t.cancel();  // twice: both absorbed by the re-acquire loop, one CancelledError results
    co_await settle();
    cond.release();
    co_await t;
  };
  aio::run(body());
  EXPECT_TRUE(got_cancelled);
  EXPECT_TRUE(held);
  EXPECT_FALSE(cond.locked());
}
