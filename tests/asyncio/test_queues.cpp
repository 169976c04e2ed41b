// asyncio.Queue, LifoQueue, PriorityQueue: ordering, maxsize, the _nowait forms and their errors,
// task_done/join, FIFO service of waiting getters and putters, cancellation (no item lost, no
// slot lost, wake-ups passed on), and Python 3.13's shutdown(immediate).
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;
using concur::test::settle;

TEST(AsyncioQueue, ErrorsDeriveFromConcurError) {
  EXPECT_THROW(throw aio::QueueEmpty(), concur::Error);
  EXPECT_THROW(throw aio::QueueFull(), concur::Error);
  EXPECT_THROW(throw aio::QueueShutDown(), concur::Error);
}

TEST(AsyncioQueue, PutGetFifo) {
  aio::Queue<int> q;
  std::vector<int> got;
  auto body = [&]() -> aio::Coro<void> {
    for (int i = 0; i < 5; ++i) co_await q.put(i);
    while (!q.empty()) got.push_back(co_await q.get());
  };
  aio::run(body());
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(AsyncioQueue, SizeEmptyFullMaxsize) {
  aio::Queue<int> q(2);
  EXPECT_EQ(q.maxsize(), 2);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  q.put_nowait(1);
  EXPECT_EQ(q.qsize(), 1U);
  q.put_nowait(2);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), aio::QueueFull);
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_EQ(q.get_nowait(), 2);
  EXPECT_THROW(q.get_nowait(), aio::QueueEmpty);
  aio::Queue<int> unbounded(0), negative(-5);
  for (int i = 0; i < 1000; ++i) {
    unbounded.put_nowait(i);
    negative.put_nowait(i);
  }
  EXPECT_FALSE(unbounded.full());
  EXPECT_FALSE(negative.full());
}

TEST(AsyncioQueue, MoveOnlyItems) {
  aio::Queue<std::unique_ptr<int>> q(1);
  int v = 0;
  auto body = [&]() -> aio::Coro<void> {
    co_await q.put(std::make_unique<int>(41));
    auto p = co_await q.get();
    q.put_nowait(std::make_unique<int>(*p + 1));
    v = *q.get_nowait();
  };
  aio::run(body());
  EXPECT_EQ(v, 42);
}

TEST(AsyncioLifoQueue, NewestFirst) {
  aio::LifoQueue<int> q;
  std::vector<int> got;
  auto body = [&]() -> aio::Coro<void> {
    for (int i = 0; i < 4; ++i) co_await q.put(i);
    for (int i = 0; i < 4; ++i) got.push_back(co_await q.get());
  };
  aio::run(body());
  EXPECT_EQ(got, (std::vector<int>{3, 2, 1, 0}));
}

TEST(AsyncioPriorityQueue, LeastFirst) {
  aio::PriorityQueue<std::pair<int, std::string>> q;
  std::vector<std::string> got;
  auto body = [&]() -> aio::Coro<void> {
    co_await q.put({3, "low"});
    co_await q.put({1, "high"});
    q.put_nowait({2, "mid"});
    co_await q.put({0, "urgent"});
    while (!q.empty()) got.push_back((co_await q.get()).second);
  };
  aio::run(body());
  EXPECT_EQ(got, (std::vector<std::string>{"urgent", "high", "mid", "low"}));
}

TEST(AsyncioPriorityQueue, CustomCompare) {
  aio::PriorityQueue<int, std::greater<int>> q;  // greatest first
  for (int v : {5, 1, 9, 3}) q.put_nowait(v);
  std::vector<int> got;
  while (!q.empty()) got.push_back(q.get_nowait());
  EXPECT_EQ(got, (std::vector<int>{9, 5, 3, 1}));
}

TEST(AsyncioQueue, GetWaitsForPut) {
  aio::Queue<int> q;
  std::vector<std::string> log;
  auto getter = [&]() -> aio::Coro<void> {
    int v = co_await q.get();
    log.push_back("got " + std::to_string(v));
  };
  auto body = [&]() -> aio::Coro<void> {
    auto t = aio::create_task(getter());
    co_await settle();
    log.push_back("put");
    co_await q.put(7);
    co_await t;
  };
  aio::run(body());
  EXPECT_EQ(log, (std::vector<std::string>{"put", "got 7"}));
}

TEST(AsyncioQueue, WaitingGettersAreServedFifo) {
  aio::Queue<int> q;
  std::vector<std::pair<int, int>> got;  // (getter, item)
  auto getter = [&](int id) -> aio::Coro<void> { got.emplace_back(id, co_await q.get()); };
  auto body = [&]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ts;
    for (int i = 0; i < 5; ++i) {
      ts.push_back(aio::create_task(getter(i)));
      co_await aio::sleep(0s);
    }
    for (int i = 0; i < 5; ++i) q.put_nowait(100 + i);
    for (auto& t : ts) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(got, (std::vector<std::pair<int, int>>{{0, 100}, {1, 101}, {2, 102}, {3, 103}, {4, 104}}));
}

TEST(AsyncioQueue, PutWaitsWhileFullAndPuttersAreServedFifo) {
  aio::Queue<int> q(1);
  std::vector<int> got;
  auto putter = [&](int v) -> aio::Coro<void> { co_await q.put(v); };
  std::size_t size_while_blocked = 0;
  auto body = [&]() -> aio::Coro<void> {
    q.put_nowait(0);
    std::vector<aio::Task<void>> ts;
    for (int i = 1; i <= 4; ++i) {
      ts.push_back(aio::create_task(putter(i)));
      co_await aio::sleep(0s);
    }
    size_while_blocked = q.qsize();
    for (int i = 0; i < 5; ++i) got.push_back(co_await q.get());
    for (auto& t : ts) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(size_while_blocked, 1U);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(AsyncioQueue, TaskDoneAndJoin) {
  aio::Queue<int> q;
  std::vector<std::string> log;
  bool too_many = false;
  auto worker = [&]() -> aio::Coro<void> {
    for (int i = 0; i < 3; ++i) {
      int v = co_await q.get();
      co_await aio::sleep(1ms);
      log.push_back("done " + std::to_string(v));
      q.task_done();
    }
  };
  auto body = [&]() -> aio::Coro<void> {
    co_await q.join();  // nothing unfinished: returns at once
    for (int i = 0; i < 3; ++i) q.put_nowait(i);
    auto w = aio::create_task(worker());
    co_await q.join();
    log.push_back("joined");
    co_await w;
    try {
      q.task_done();
    } catch (const std::invalid_argument&) {
      too_many = true;
    }
  };
  aio::run(body());
  EXPECT_EQ(log, (std::vector<std::string>{"done 0", "done 1", "done 2", "joined"}));
  EXPECT_TRUE(too_many);
  EXPECT_EQ(q.unfinished_tasks(), 0U);
}

TEST(AsyncioQueue, TaskDoneTooManyIsInvalidArgument) {
  aio::Queue<int> q;
  EXPECT_THROW(q.task_done(), std::invalid_argument);
  q.put_nowait(1);
  (void)q.get_nowait();
  q.task_done();
  EXPECT_THROW(q.task_done(), std::invalid_argument);
}

TEST(AsyncioQueue, CancelWaitingGetLosesNothing) {
  aio::Queue<int> q;
  bool cancelled = false;
  int other_got = -1;
  auto getter = [&](int* out) -> aio::Coro<void> {
    int v = co_await q.get();
    if (out) *out = v;
  };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(getter(nullptr));
    auto b = aio::create_task(getter(&other_got));
    co_await settle();
    a.cancel();
    co_await settle();
    cancelled = a.cancelled();
    q.put_nowait(5);
    co_await b;
  };
  aio::run(body());
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(other_got, 5);
  EXPECT_TRUE(q.empty());
}

TEST(AsyncioQueue, CancelGetterAfterItsWakeUpPassesTheItemOn) {
  aio::Queue<int> q;
  bool a_cancelled = false;
  int b_got = -1;
  auto getter = [&](int* out) -> aio::Coro<void> {
    int v = co_await q.get();
    if (out) *out = v;
  };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(getter(nullptr));
    auto b = aio::create_task(getter(&b_got));
    co_await settle();
    q.put_nowait(9);  // wakes a
    a.cancel();       // too late to detach: a must hand the wake-up to b
    co_await b;
    co_await settle();
    a_cancelled = a.cancelled();
  };
  aio::run(body());
  EXPECT_TRUE(a_cancelled);
  EXPECT_EQ(b_got, 9);
  EXPECT_TRUE(q.empty());
}

TEST(AsyncioQueue, CancelGetterAfterWakeUpWithNoOtherGetterKeepsTheItem) {
  aio::Queue<int> q;
  auto getter = [&]() -> aio::Coro<void> { (void)co_await q.get(); };
  auto body = [&]() -> aio::Coro<void> {
    auto a = aio::create_task(getter());
    co_await settle();
    q.put_nowait(3);
    a.cancel();
    co_await settle();
  };
  aio::run(body());
  ASSERT_EQ(q.qsize(), 1U);
  EXPECT_EQ(q.get_nowait(), 3);
}

TEST(AsyncioQueue, CancelWaitingPutAddsNothing) {
  aio::Queue<int> q(1);
  bool cancelled = false;
  auto putter = [&](int v) -> aio::Coro<void> { co_await q.put(v); };
  std::vector<int> got;
  auto body = [&]() -> aio::Coro<void> {
    q.put_nowait(1);
    auto a = aio::create_task(putter(2));
    auto b = aio::create_task(putter(3));
    co_await settle();
    a.cancel();
    co_await settle();
    cancelled = a.cancelled();
    got.push_back(co_await q.get());
    co_await b;
    got.push_back(co_await q.get());
  };
  aio::run(body());
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(got, (std::vector<int>{1, 3}));
  EXPECT_TRUE(q.empty());
}

TEST(AsyncioQueue, CancelPutterAfterItsWakeUpPassesTheSlotOn) {
  aio::Queue<int> q(1);
  bool a_cancelled = false;
  std::vector<int> got;
  auto putter = [&](int v) -> aio::Coro<void> { co_await q.put(v); };
  auto body = [&]() -> aio::Coro<void> {
    q.put_nowait(1);
    auto a = aio::create_task(putter(2));
    auto b = aio::create_task(putter(3));
    co_await settle();
    got.push_back(q.get_nowait());  // frees the slot, wakes a
    a.cancel();                     // a passes the slot to b
    co_await b;
    co_await settle();
    a_cancelled = a.cancelled();
    got.push_back(q.get_nowait());
  };
  aio::run(body());
  EXPECT_TRUE(a_cancelled);
  EXPECT_EQ(got, (std::vector<int>{1, 3}));
  EXPECT_TRUE(q.empty());
}

TEST(AsyncioQueue, CancelledJoinOnlyEndsTheWait) {
  aio::Queue<int> q;
  bool cancelled = false;
  auto joiner = [&]() -> aio::Coro<void> { co_await q.join(); };
  auto body = [&]() -> aio::Coro<void> {
    q.put_nowait(1);
    auto j = aio::create_task(joiner());
    co_await settle();
    j.cancel();
    co_await settle();
    cancelled = j.cancelled();
  };
  aio::run(body());
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(q.unfinished_tasks(), 1U);
  EXPECT_EQ(q.qsize(), 1U);
}

TEST(AsyncioQueue, ShutdownRejectsPutsAndDrainsGets) {
  aio::Queue<int> q;
  std::vector<int> got;
  bool put_threw = false, put_nowait_threw = false, get_threw = false, get_nowait_threw = false;
  auto body = [&]() -> aio::Coro<void> {
    q.put_nowait(1);
    q.put_nowait(2);
    q.shutdown();
    try {
      co_await q.put(3);
    } catch (const aio::QueueShutDown&) {
      put_threw = true;
    }
    try {
      q.put_nowait(3);
    } catch (const aio::QueueShutDown&) {
      put_nowait_threw = true;
    }
    got.push_back(co_await q.get());
    got.push_back(q.get_nowait());
    try {
      (void)co_await q.get();
    } catch (const aio::QueueShutDown&) {
      get_threw = true;
    }
    try {
      (void)q.get_nowait();
    } catch (const aio::QueueShutDown&) {
      get_nowait_threw = true;
    }
  };
  aio::run(body());
  EXPECT_TRUE(put_threw);
  EXPECT_TRUE(put_nowait_threw);
  EXPECT_TRUE(get_threw);
  EXPECT_TRUE(get_nowait_threw);
  EXPECT_EQ(got, (std::vector<int>{1, 2}));
  EXPECT_TRUE(q.is_shutdown());
}

TEST(AsyncioQueue, ShutdownWakesWaitingGettersAndPutters) {
  aio::Queue<int> empty_q;
  aio::Queue<int> full_q(1);
  int getter_errors = 0, putter_errors = 0;
  auto getter = [&]() -> aio::Coro<void> {
    try {
      (void)co_await empty_q.get();
    } catch (const aio::QueueShutDown&) {
      ++getter_errors;
    }
  };
  auto putter = [&]() -> aio::Coro<void> {
    try {
      co_await full_q.put(2);
    } catch (const aio::QueueShutDown&) {
      ++putter_errors;
    }
  };
  auto body = [&]() -> aio::Coro<void> {
    full_q.put_nowait(1);
    std::vector<aio::Task<void>> ts;
    for (int i = 0; i < 3; ++i) ts.push_back(aio::create_task(getter()));
    for (int i = 0; i < 3; ++i) ts.push_back(aio::create_task(putter()));
    co_await settle();
    empty_q.shutdown();
    full_q.shutdown();
    for (auto& t : ts) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(getter_errors, 3);
  EXPECT_EQ(putter_errors, 3);
  EXPECT_EQ(full_q.qsize(), 1U);  // still drainable
  EXPECT_EQ(full_q.get_nowait(), 1);
}

TEST(AsyncioQueue, ImmediateShutdownDropsItemsAndReleasesJoin) {
  aio::Queue<int> q;
  bool joined = false, get_threw = false;
  auto joiner = [&]() -> aio::Coro<void> {
    co_await q.join();
    joined = true;
  };
  auto body = [&]() -> aio::Coro<void> {
    for (int i = 0; i < 3; ++i) q.put_nowait(i);
    auto j = aio::create_task(joiner());
    co_await settle();
    q.shutdown(/*immediate=*/true);
    co_await j;
    try {
      (void)co_await q.get();
    } catch (const aio::QueueShutDown&) {
      get_threw = true;
    }
  };
  aio::run(body());
  EXPECT_TRUE(joined);
  EXPECT_TRUE(get_threw);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.unfinished_tasks(), 0U);
}

TEST(AsyncioQueue, ImmediateShutdownKeepsCountOfItemsAlreadyTaken) {
  aio::Queue<int> q;
  q.put_nowait(1);
  q.put_nowait(2);
  (void)q.get_nowait();  // taken, not yet task_done
  q.shutdown(true);      // drops 2
  EXPECT_EQ(q.unfinished_tasks(), 1U);
  q.task_done();
  EXPECT_EQ(q.unfinished_tasks(), 0U);
}

TEST(AsyncioQueue, ProducersAndConsumersAccountForEveryItem) {
  aio::Queue<int> q(3);
  long long sum = 0;
  int count = 0;
  auto producer = [&](int base) -> aio::Coro<void> {
    for (int i = 0; i < 100; ++i) co_await q.put(base + i);
  };
  auto consumer = [&]() -> aio::Coro<void> {
    for (;;) {
      int v = co_await q.get();
      if (v < 0) co_return;
      sum += v;
      ++count;
      q.task_done();
    }
  };
  auto body = [&]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ps, cs;
    for (int p = 0; p < 4; ++p) ps.push_back(aio::create_task(producer(p * 1000)));
    for (int c = 0; c < 3; ++c) cs.push_back(aio::create_task(consumer()));
    for (auto& t : ps) co_await t;
    co_await q.join();
    for (int c = 0; c < 3; ++c) co_await q.put(-1);
    for (auto& t : cs) co_await t;
  };
  aio::run(body());
  EXPECT_EQ(count, 400);
  long long expect = 0;
  for (int p = 0; p < 4; ++p)
    for (int i = 0; i < 100; ++i) expect += p * 1000 + i;
  EXPECT_EQ(sum, expect);
}
