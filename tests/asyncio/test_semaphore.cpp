// asyncio.Semaphore and BoundedSemaphore: values, locked(), FIFO hand-off, guards, misuse, and
// cancellation (waiting: no unit taken; after the hand-off: the unit goes to the next waiter).
#include <chrono>
#include <stdexcept>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;
using concur::test::settle;

TEST(AsyncioSemaphore, NegativeInitialValueIsInvalidArgument) {
  EXPECT_THROW(aio::Semaphore(-1), std::invalid_argument);
  EXPECT_THROW(aio::BoundedSemaphore(-1), std::invalid_argument);
}

TEST(AsyncioSemaphore, DefaultValueIsOne) {
  aio::Semaphore sem;
  EXPECT_EQ(sem.value(), 1);
  EXPECT_FALSE(sem.locked());
  aio::Semaphore zero(0);
  EXPECT_TRUE(zero.locked());
}

TEST(AsyncioSemaphore, AcquireCountsDownReleaseCountsUp) {
  aio::Semaphore sem(3);
  std::vector<std::int64_t> values;
  bool locked_at_zero = false;
  auto body = [&]() -> aio::Coro<void> {
    for (int i = 0; i < 3; ++i) {
      co_await sem.acquire();
      values.push_back(sem.value());
    }
    locked_at_zero = sem.locked();
    for (int i = 0; i < 3; ++i) sem.release();
    values.push_back(sem.value());
    sem.release();  // unbounded: may exceed the initial value
    values.push_back(sem.value());
  };
  aio::run(body());
  EXPECT_EQ(values, (std::vector<std::int64_t>{2, 1, 0, 3, 4}));
  EXPECT_TRUE(locked_at_zero);
}

TEST(AsyncioSemaphore, AtMostNHoldersAndFifoOrder) {
  aio::Semaphore sem(2);
  int holders = 0, max_holders = 0;
  std::vector<int> order;
  auto worker = [&](int i) -> aio::Coro<void> {
    auto g = co_await sem.lock_guard();
    order.push_back(i);
    ++holders;
    max_holders = std::max(max_holders, holders);
    co_await aio::sleep(1ms);
    --holders;
  };
  auto body = [&]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ts;
    for (int i = 0; i < 10; ++i) ts.push_back(aio::create_task(worker(i)));
    for (auto& t : ts) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(max_holders, 2);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(sem.value(), 2);
}

TEST(AsyncioSemaphore, ReleaseWakesAWaiterOfAZeroSemaphore) {
  aio::Semaphore sem(0);
  bool got = false;
  auto waiter = [&]() -> aio::Coro<void> {
    co_await sem.acquire();
    got = true;
  };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(waiter());
    co_await settle();
    EXPECT_FALSE(got);
    sem.release();
    EXPECT_EQ(sem.value(), 0);  // handed straight to the waiter
    co_await t;
  };
  aio::run(body());
  EXPECT_TRUE(got);
  EXPECT_EQ(sem.value(), 0);
}

TEST(AsyncioSemaphore, CancelWaitingAcquireTakesNoUnit) {
  aio::Semaphore sem(0);
  bool cancelled = false;
  auto waiter = [&]() -> aio::Coro<void> { co_await sem.acquire(); };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(waiter());
    co_await settle();
    t.cancel();
    co_await settle();
    cancelled = t.cancelled();
    sem.release();
  };
  aio::run(body());
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(sem.value(), 1);
}

TEST(AsyncioSemaphore, CancelAfterHandOffPassesTheUnitOn) {
  aio::Semaphore sem(0);
  bool a_cancelled = false, b_got = false;
  auto waiter = [&](bool* got) -> aio::Coro<void> {
    co_await sem.acquire();
    if (got) *got = true;
  };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(waiter(nullptr));
    auto b = aio::create_task(waiter(&b_got));
    co_await settle();
    sem.release();  // to a
    a.cancel();     // too late: a gives it to b
    co_await b;
    co_await settle();
    a_cancelled = a.cancelled();
  };
  aio::run(body());
  EXPECT_TRUE(a_cancelled);
  EXPECT_TRUE(b_got);
  EXPECT_EQ(sem.value(), 0);  // b holds it
}

TEST(AsyncioSemaphore, CancelAfterHandOffWithNoOtherWaiterReturnsTheUnit) {
  aio::Semaphore sem(0);
  auto waiter = [&]() -> aio::Coro<void> { co_await sem.acquire(); };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(waiter());
    co_await settle();
    sem.release();
    t.cancel();
    co_await settle();
  };
  aio::run(body());
  EXPECT_EQ(sem.value(), 1);
}

TEST(AsyncioBoundedSemaphore, OverReleaseIsInvalidArgument) {
  aio::BoundedSemaphore sem(2);
  std::vector<std::int64_t> values;
  bool threw = false;
  auto body = [&]() -> aio::Coro<void> {
    co_await sem.acquire();
    sem.release();
    values.push_back(sem.value());
    try {
      sem.release();
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    values.push_back(sem.value());
  };
  aio::run(body());
  EXPECT_TRUE(threw);
  EXPECT_EQ(values, (std::vector<std::int64_t>{2, 2}));
  EXPECT_THROW(sem.release(), std::invalid_argument);
}

TEST(AsyncioBoundedSemaphore, ReleaseToAWaiterIsNotAnOverRelease) {
  aio::BoundedSemaphore sem(1);
  bool got = false;
  auto waiter = [&]() -> aio::Coro<void> {
    auto g = co_await sem.lock_guard();
    got = true;
  };
  auto body = [&]() -> aio::Coro<void> {
    co_await sem.acquire();
    auto t = aio::create_task(waiter());
    co_await settle();
    sem.release();
    co_await t;
  };
  aio::run(body());
  EXPECT_TRUE(got);
  EXPECT_EQ(sem.value(), 1);
  EXPECT_THROW(sem.release(), std::invalid_argument);
}

TEST(AsyncioBoundedSemaphore, IsASemaphore) {
  aio::BoundedSemaphore bsem(3);
  aio::Semaphore& sem = bsem;
  EXPECT_EQ(sem.value(), 3);
  EXPECT_THROW(sem.release(), std::invalid_argument);  // the bound holds through the base too
}
