// asyncio.Lock: acquire/release/locked, the RAII guard, FIFO hand-off, misuse, and cancellation
// at every point of an acquire (before suspending, while waiting, after the hand-off).
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

TEST(AsyncioLock, AcquireReleaseLocked) {
  aio::Lock lock;
  std::vector<bool> seen;
  bool release_unlocked_threw = false;
  auto body = [&]() -> aio::Coro<void> {
    seen.push_back(lock.locked());
    bool r = co_await lock.acquire();
    seen.push_back(r && lock.locked());
    lock.release();
    seen.push_back(lock.locked());
    try {
      lock.release();
    } catch (const std::logic_error&) {
      release_unlocked_threw = true;
    }
  };
  aio::run(body());
  EXPECT_EQ(seen, (std::vector<bool>{false, true, false}));
  EXPECT_TRUE(release_unlocked_threw);
  EXPECT_FALSE(lock.locked());
}

TEST(AsyncioLock, ReleaseOfUnlockedLockIsLogicError) {
  aio::Lock lock;
  EXPECT_THROW(lock.release(), std::logic_error);
}

TEST(AsyncioLock, SecondAcquireWaitsUntilRelease) {
  aio::Lock lock;
  std::vector<std::string> log;
  auto other = [&]() -> aio::Coro<void> {
    log.push_back("other wants");
    co_await lock.acquire();
    log.push_back("other has");
    lock.release();
  };
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    auto t = aio::create_task(other());
    co_await settle();
    log.push_back("main releases");
    lock.release();
    co_await t;
  };
  aio::run(body());
  EXPECT_EQ(log, (std::vector<std::string>{"other wants", "main releases", "other has"}));
  EXPECT_FALSE(lock.locked());
}

TEST(AsyncioLock, WaitersAreServedFifo) {
  aio::Lock lock;
  std::vector<int> order;
  auto waiter = [&](int i) -> aio::Coro<void> {
    co_await lock.acquire();
    order.push_back(i);
    co_await aio::sleep(0s);  // hold it across a suspension
    lock.release();
  };
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    std::vector<aio::Task<void>> ts;
    for (int i = 0; i < 8; ++i) {
      ts.push_back(aio::create_task(waiter(i)));
      co_await aio::sleep(0s);  // each one queues before the next
    }
    lock.release();
    for (auto& t : ts) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_FALSE(lock.locked());
}

TEST(AsyncioLock, NoBargingPastAQueuedWaiter) {
  // A release hands the lock to the queued waiter; a task arriving before it runs must queue.
  aio::Lock lock;
  std::vector<std::string> order;
  auto waiter = [&](std::string name) -> aio::Coro<void> {
    co_await lock.acquire();
    order.push_back(name);
    lock.release();
  };
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    auto first = aio::create_task(waiter("first"));
    co_await settle();
    lock.release();  // handed to "first", which has not run yet
    EXPECT_TRUE(lock.locked());
    auto late = aio::create_task(waiter("late"));
    co_await first;
    co_await late;
  };
  aio::run(body());
  EXPECT_EQ(order, (std::vector<std::string>{"first", "late"}));
}

TEST(AsyncioLock, GuardReleasesAtScopeEnd) {
  aio::Lock lock;
  std::vector<bool> seen;
  auto body = [&]() -> aio::Coro<void> {
    {
      auto guard = co_await lock.lock_guard();
      seen.push_back(lock.locked());
      seen.push_back(guard.owns_lock());
    }
    seen.push_back(lock.locked());
    {
      auto guard = co_await lock.lock_guard();
      auto moved = std::move(guard);
      seen.push_back(guard.owns_lock());  // NOLINT(bugprone-use-after-move): moved-from is empty
      moved.release();
      seen.push_back(lock.locked());
      seen.push_back(moved.owns_lock());
    }
    seen.push_back(lock.locked());
  };
  aio::run(body());
  EXPECT_EQ(seen, (std::vector<bool>{true, true, false, false, false, false, false}));
}

TEST(AsyncioLock, GuardOverAlreadyReleasedLockReportsInsteadOfTerminating) {
  aio::Lock lock;
  bool ok = false;
  auto body = [&]() -> aio::Coro<void> {
    auto guard = co_await lock.lock_guard();
    lock.release();  // behind the guard's back; its destructor's release() fails
    ok = true;
  };
  concur::set_unraisable_hook([](const std::string&, const std::exception_ptr&) {});
  aio::run(body());
  concur::set_unraisable_hook(nullptr);
  EXPECT_TRUE(ok);
  EXPECT_FALSE(lock.locked());
}

TEST(AsyncioLock, AnyTaskMayRelease) {
  aio::Lock lock;
  bool released_by_other = false;
  auto other = [&]() -> aio::Coro<void> {
    lock.release();
    released_by_other = true;
    co_return;
  };
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    co_await aio::create_task(other());
  };
  aio::run(body());
  EXPECT_TRUE(released_by_other);
  EXPECT_FALSE(lock.locked());
}

TEST(AsyncioLock, CancelWaitingAcquireLeavesLockUntouched) {
  aio::Lock lock;
  bool got = false, cancelled = false, locked_after = false, third_got = false;
  auto waiter = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    got = true;
  };
  auto third = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    third_got = true;
    lock.release();
  };
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    auto t = aio::create_task(waiter());
    auto t3 = aio::create_task(third());
    co_await settle();
    t.cancel();
    co_await settle();
    cancelled = t.cancelled();
    locked_after = lock.locked();
    lock.release();  // goes to the third task, not to the cancelled one
    co_await t3;
  };
  aio::run(body());
  EXPECT_FALSE(got);
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(locked_after);
  EXPECT_TRUE(third_got);
  EXPECT_FALSE(lock.locked());
}

TEST(AsyncioLock, CancelRightAfterHandOffPassesTheLockOn) {
  aio::Lock lock;
  bool first_got = false, first_cancelled = false, second_got = false;
  auto first = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    first_got = true;
    lock.release();
  };
  auto second = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    second_got = true;
    lock.release();
  };
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    auto t1 = aio::create_task(first());
    auto t2 = aio::create_task(second());
    co_await settle();
    lock.release();  // handed to t1, which is scheduled but has not run
    t1.cancel();     // too late to detach: t1 must give the lock to t2
    co_await settle();
    first_cancelled = t1.cancelled();
    co_await t2;
  };
  aio::run(body());
  EXPECT_FALSE(first_got);
  EXPECT_TRUE(first_cancelled);
  EXPECT_TRUE(second_got);
  EXPECT_FALSE(lock.locked());
}

TEST(AsyncioLock, CancelAfterHandOffWithNoOtherWaiterFreesTheLock) {
  aio::Lock lock;
  bool cancelled = false;
  auto waiter = [&]() -> aio::Coro<void> { co_await lock.acquire(); };
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    auto t = aio::create_task(waiter());
    co_await settle();
    lock.release();
    t.cancel();
    co_await settle();
    cancelled = t.cancelled();
  };
  aio::run(body());
  EXPECT_TRUE(cancelled);
  EXPECT_FALSE(lock.locked());
}

TEST(AsyncioLock, PendingCancellationIsDeliveredAtABlockingAcquire) {
  aio::Lock lock;
  bool reached = false, caught = false, held_after = true;
  aio::Task<void> self;
  auto waiter = [&]() -> aio::Coro<void> {
    self.cancel();  // a request against the running task: delivered at its next suspension
    reached = true;
    try {
      co_await lock.acquire();
    } catch (const concur::CancelledError&) {
      caught = true;
    }
  };
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    self = aio::create_task(waiter());
    co_await settle();
    lock.release();
    held_after = lock.locked();
  };
  aio::run(body());
  EXPECT_TRUE(reached);
  EXPECT_TRUE(caught);
  EXPECT_FALSE(held_after);
}

TEST(AsyncioLock, UncontendedAcquireDoesNotSuspend) {
  // As in Python, a free lock is taken without a suspension point (no cancellation check).
  aio::Lock lock;
  bool got = false;
  aio::Task<void> self;
  auto task = [&]() -> aio::Coro<void> {
    self.cancel();
    co_await lock.acquire();
    got = true;
    lock.release();
    co_await aio::sleep(0s);  // the pending cancellation lands here
  };
  auto body = [&]() -> aio::Coro<void> {
    self = aio::create_task(task());
    co_await settle();
  };
  aio::run(body());
  EXPECT_TRUE(got);
  EXPECT_TRUE(self.cancelled());
  EXPECT_FALSE(lock.locked());
}

TEST(AsyncioLock, AwaitingOutsideATaskIsLogicError) {
  aio::Lock lock;
  auto body = [&]() -> aio::Coro<void> {
    co_await lock.acquire();
    co_await lock.acquire();  // would suspend: needs a task
  };
  aio::Coro<void> c = body();
  aio::detail::drive(c.handle());  // driven by hand, not by a loop's task
  ASSERT_TRUE(c.done());
  EXPECT_THROW(c.handle().promise().take(), std::logic_error);
  EXPECT_TRUE(lock.locked());
}

TEST(AsyncioLock, LoopClosingWithAGrantedWaiterGivesTheUnitBack) {
  // The frame of a task that was handed the lock but never resumed is destroyed when its loop
  // closes: the awaiter gives the lock back instead of leaking it.
  aio::Lock lock;
  {
    aio::EventLoop loop;
    auto waiter = [&]() -> aio::Coro<void> { co_await lock.acquire(); };
    auto body = [&]() -> aio::Coro<void> {
      co_await lock.acquire();
      aio::create_task(waiter());
      co_await settle();
      lock.release();  // granted to the waiter; the loop stops before it runs
    };
    loop.run_until_complete(body());
    EXPECT_TRUE(lock.locked());
    loop.close();
  }
  EXPECT_FALSE(lock.locked());
}
