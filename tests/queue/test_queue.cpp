#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/queue.hpp"
#include "concur/threading/thread.hpp"

using namespace std::chrono_literals;
namespace q = concur::queue;
namespace th = concur::threading;

namespace {

TEST(Queue, ErrorsAreConcurErrors) {
  EXPECT_THROW(throw q::Empty(), concur::Error);
  EXPECT_THROW(throw q::Full(), concur::Error);
  EXPECT_THROW(throw q::ShutDown(), concur::Error);
  EXPECT_STREQ(q::Empty().what(), "queue is empty");
}

TEST(Queue, FifoOrder) {
  q::Queue<int> fifo;
  for (int i = 0; i < 5; ++i) fifo.put(i);
  std::vector<int> out;
  for (int i = 0; i < 5; ++i) out.push_back(fifo.get());
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Queue, LifoOrder) {
  q::LifoQueue<int> lifo;
  for (int i = 0; i < 5; ++i) lifo.put(i);
  std::vector<int> out;
  for (int i = 0; i < 5; ++i) out.push_back(lifo.get());
  EXPECT_EQ(out, (std::vector<int>{4, 3, 2, 1, 0}));
}

TEST(Queue, PriorityOrderSmallestFirst) {
  q::PriorityQueue<int> prio;
  for (int v : {5, 1, 4, 1, 3, 9, 2}) prio.put(v);
  std::vector<int> out;
  while (!prio.empty()) out.push_back(prio.get());
  EXPECT_EQ(out, (std::vector<int>{1, 1, 2, 3, 4, 5, 9}));
}

TEST(Queue, PriorityWithTuplesAndCustomCompare) {
  q::PriorityQueue<std::pair<int, std::string>> jobs;
  jobs.put({2, "b"});
  jobs.put({1, "a"});
  jobs.put({3, "c"});
  EXPECT_EQ(jobs.get().second, "a");
  EXPECT_EQ(jobs.get().second, "b");
  q::PriorityQueue<int, std::greater<int>> maxq;
  for (int v : {3, 7, 1}) maxq.put(v);
  EXPECT_EQ(maxq.get(), 7);
  EXPECT_EQ(maxq.get(), 3);
}

TEST(Queue, MoveOnlyItems) {
  q::Queue<std::unique_ptr<int>> mq;
  mq.put(std::make_unique<int>(3));
  auto p = mq.get();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 3);
  q::PriorityQueue<std::unique_ptr<int>, std::less<>> dummy;  // compiles
  (void)dummy;
}

TEST(Queue, SizesAndMaxsize) {
  q::Queue<int> bounded(2);
  EXPECT_EQ(bounded.maxsize(), 2u);
  EXPECT_TRUE(bounded.empty());
  EXPECT_FALSE(bounded.full());
  EXPECT_EQ(bounded.qsize(), 0u);
  bounded.put(1);
  EXPECT_FALSE(bounded.empty());
  EXPECT_FALSE(bounded.full());
  bounded.put(2);
  EXPECT_TRUE(bounded.full());
  EXPECT_EQ(bounded.qsize(), 2u);
  q::Queue<int> unbounded;
  EXPECT_EQ(unbounded.maxsize(), 0u);
  for (int i = 0; i < 1000; ++i) unbounded.put_nowait(i);
  EXPECT_FALSE(unbounded.full());
  EXPECT_EQ(unbounded.qsize(), 1000u);
}

TEST(Queue, NowaitAndNonBlockingThrow) {
  q::Queue<int> bq(1);
  EXPECT_THROW(bq.get_nowait(), q::Empty);
  EXPECT_THROW(bq.get(false), q::Empty);
  bq.put_nowait(1);
  EXPECT_THROW(bq.put_nowait(2), q::Full);
  EXPECT_THROW(bq.put(2, false), q::Full);
  EXPECT_EQ(bq.qsize(), 1u);
  EXPECT_EQ(bq.get(false), 1);
  bq.put(5, true);
  EXPECT_EQ(bq.get_nowait(), 5);
}

TEST(Queue, TimedGetAndPutThrowAfterTimeout) {
  q::Queue<int> bq(1);
  auto start = concur::core::Clock::now();
  EXPECT_THROW(bq.get(20ms), q::Empty);
  EXPECT_GE(concur::core::Clock::now() - start, 20ms);
  bq.put(1, 1s);
  start = concur::core::Clock::now();
  EXPECT_THROW(bq.put(2, 20ms), q::Full);
  EXPECT_GE(concur::core::Clock::now() - start, 20ms);
  EXPECT_EQ(bq.get(1s), 1);
}

TEST(Queue, BlockingGetWakesOnPut) {
  q::Queue<int> qq;
  std::atomic<int> got{-1};
  th::Thread t([&] { got = qq.get(); });
  t.start();
  std::this_thread::sleep_for(20ms);
  int early = got.load();
  qq.put(42);
  t.join();
  EXPECT_EQ(early, -1);
  EXPECT_EQ(got.load(), 42);
}

TEST(Queue, TimedGetSucceedsWhenItemArrives) {
  q::Queue<int> qq;
  std::atomic<int> got{-1};
  th::Thread t([&] { got = qq.get(10s); });
  t.start();
  std::this_thread::sleep_for(10ms);
  qq.put(7);
  t.join();
  EXPECT_EQ(got.load(), 7);
}

TEST(Queue, BlockingPutWakesOnGet) {
  q::Queue<int> bq(1);
  bq.put(1);
  std::atomic<bool> put_done{false};
  th::Thread t([&] {
    bq.put(2);
    put_done = true;
  });
  t.start();
  std::this_thread::sleep_for(20ms);
  bool early = put_done.load();
  EXPECT_EQ(bq.get(), 1);
  t.join();
  EXPECT_FALSE(early);
  EXPECT_TRUE(put_done.load());
  EXPECT_EQ(bq.get(), 2);
}

TEST(Queue, TimedPutSucceedsWhenRoomAppears) {
  q::Queue<int> bq(1);
  bq.put(1);
  std::atomic<int> ok{-1};
  th::Thread t([&] {
    try {
      bq.put(2, 10s);
      ok = 1;
    } catch (const q::Full&) {
      ok = 0;
    }
  });
  t.start();
  std::this_thread::sleep_for(10ms);
  bq.get();
  t.join();
  EXPECT_EQ(ok.load(), 1);
}

TEST(Queue, TaskDoneTooManyTimesThrows) {
  q::Queue<int> qq;
  EXPECT_THROW(qq.task_done(), std::invalid_argument);
  qq.put(1);
  qq.get();
  qq.task_done();
  EXPECT_THROW(qq.task_done(), std::invalid_argument);
}

TEST(Queue, JoinReturnsAtOnceWithNoUnfinishedTasks) {
  q::Queue<int> qq;
  qq.join();
  qq.put(1);
  qq.get();
  qq.task_done();
  qq.join();
  SUCCEED();
}

TEST(Queue, JoinWaitsForEveryTaskDone) {
  q::Queue<int> qq;
  for (int i = 0; i < 3; ++i) qq.put(i);
  std::atomic<bool> joined{false};
  th::Thread joiner([&] {
    qq.join();
    joined = true;
  });
  joiner.start();
  std::vector<bool> joined_early;
  for (int i = 0; i < 3; ++i) {
    qq.get();
    std::this_thread::sleep_for(10ms);
    joined_early.push_back(joined.load());
    qq.task_done();
  }
  joiner.join();
  EXPECT_EQ(joined_early, (std::vector<bool>{false, false, false}));
  EXPECT_TRUE(joined.load());
}

TEST(Queue, WorkerPatternFromThePythonDocs) {
  q::Queue<int> work;
  std::atomic<int> sum{0};
  std::vector<th::Thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back(th::ThreadOptions{.daemon = true}, [&] {
      for (;;) {
        int item;
        try {
          item = work.get();
        } catch (const q::ShutDown&) {
          return;
        }
        sum += item;
        work.task_done();
      }
    });
    workers.back().start();
  }
  for (int i = 1; i <= 100; ++i) work.put(i);
  work.join();
  int after_join = sum.load();
  work.shutdown();
  for (auto& w : workers) w.join();
  EXPECT_EQ(after_join, 5050);
}

TEST(Queue, ShutdownPutThrowsGetDrainsThenThrows) {
  q::Queue<int> qq;
  qq.put(1);
  qq.put(2);
  EXPECT_FALSE(qq.is_shutdown());
  qq.shutdown();
  EXPECT_TRUE(qq.is_shutdown());
  EXPECT_THROW(qq.put(3), q::ShutDown);
  EXPECT_THROW(qq.put_nowait(3), q::ShutDown);
  EXPECT_THROW(qq.put(3, 1s), q::ShutDown);
  EXPECT_EQ(qq.get(), 1);
  EXPECT_EQ(qq.get_nowait(), 2);
  EXPECT_THROW(qq.get(), q::ShutDown);
  EXPECT_THROW(qq.get_nowait(), q::ShutDown);
  EXPECT_THROW(qq.get(10ms), q::ShutDown);
  qq.shutdown();  // idempotent
  EXPECT_TRUE(qq.is_shutdown());
}

TEST(Queue, ShutdownWakesBlockedGetters) {
  q::Queue<int> qq;
  std::atomic<int> shut{0};
  std::vector<th::Thread> ts;
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&] {
      try {
        (void)qq.get();
      } catch (const q::ShutDown&) {
        ++shut;
      }
    });
    ts.back().start();
  }
  std::this_thread::sleep_for(20ms);
  qq.shutdown();
  for (auto& t : ts) t.join();
  EXPECT_EQ(shut.load(), 3);
}

TEST(Queue, ShutdownWakesBlockedPutters) {
  q::Queue<int> bq(1);
  bq.put(0);
  std::atomic<int> shut{0};
  std::vector<th::Thread> ts;
  for (int i = 0; i < 2; ++i) {
    ts.emplace_back([&] {
      try {
        bq.put(1, 10s);
      } catch (const q::ShutDown&) {
        ++shut;
      }
    });
    ts.back().start();
  }
  std::this_thread::sleep_for(20ms);
  bq.shutdown();
  for (auto& t : ts) t.join();
  EXPECT_EQ(shut.load(), 2);
  EXPECT_EQ(bq.get(), 0);  // what was in it still drains
  EXPECT_THROW(bq.get(), q::ShutDown);
}

TEST(Queue, ShutdownImmediateDropsItemsAndUnblocksJoin) {
  q::Queue<int> qq;
  for (int i = 0; i < 5; ++i) qq.put(i);
  EXPECT_EQ(qq.get(), 0);  // fetched but never task_done()
  std::atomic<bool> joined{false};
  th::Thread joiner([&] {
    qq.join();
    joined = true;
  });
  joiner.start();
  std::this_thread::sleep_for(10ms);
  bool early = joined.load();
  qq.shutdown(true);
  EXPECT_EQ(qq.qsize(), 0u);
  EXPECT_THROW(qq.get(), q::ShutDown);
  EXPECT_THROW(qq.put(1), q::ShutDown);
  // The one fetched item is still unfinished: join waits for its task_done.
  std::this_thread::sleep_for(10ms);
  bool after_shutdown = joined.load();
  qq.task_done();
  joiner.join();
  EXPECT_FALSE(early);
  EXPECT_FALSE(after_shutdown);
  EXPECT_TRUE(joined.load());
  EXPECT_THROW(qq.task_done(), std::invalid_argument);
}

TEST(Queue, ShutdownImmediateWithNothingFetchedReleasesJoinAtOnce) {
  q::Queue<int> qq;
  for (int i = 0; i < 3; ++i) qq.put(i);
  std::atomic<bool> joined{false};
  th::Thread joiner([&] {
    qq.join();
    joined = true;
  });
  joiner.start();
  std::this_thread::sleep_for(10ms);
  bool early = joined.load();
  qq.shutdown(true);
  joiner.join();
  EXPECT_FALSE(early);
  EXPECT_TRUE(joined.load());
}

TEST(Queue, ShutdownImmediateWakesBlockedGetter) {
  q::Queue<int> qq;
  std::atomic<int> shut{0};
  th::Thread t([&] {
    try {
      (void)qq.get(10s);
    } catch (const q::ShutDown&) {
      ++shut;
    }
  });
  t.start();
  std::this_thread::sleep_for(20ms);
  qq.shutdown(true);
  t.join();
  EXPECT_EQ(shut.load(), 1);
}

TEST(Queue, LifoAndPriorityShareTheInterface) {
  q::LifoQueue<int> lifo(1);
  lifo.put(1);
  EXPECT_THROW(lifo.put_nowait(2), q::Full);
  EXPECT_TRUE(lifo.full());
  lifo.shutdown();
  EXPECT_EQ(lifo.get(), 1);
  EXPECT_THROW(lifo.get(), q::ShutDown);
  q::PriorityQueue<int> prio(2);
  prio.put(3);
  prio.put(1);
  EXPECT_THROW(prio.put(2, 10ms), q::Full);
  EXPECT_EQ(prio.get(), 1);
  prio.task_done();
  EXPECT_EQ(prio.get(), 3);
  prio.task_done();
  prio.join();
  EXPECT_THROW(prio.task_done(), std::invalid_argument);
}

TEST(SimpleQueue, FifoAndNowait) {
  q::SimpleQueue<int> sq;
  EXPECT_TRUE(sq.empty());
  EXPECT_THROW(sq.get_nowait(), q::Empty);
  sq.put(1);
  sq.put_nowait(2);
  EXPECT_EQ(sq.qsize(), 2u);
  EXPECT_FALSE(sq.empty());
  EXPECT_EQ(sq.get(), 1);
  EXPECT_EQ(sq.get_nowait(), 2);
  EXPECT_TRUE(sq.empty());
}

TEST(SimpleQueue, TimedGet) {
  q::SimpleQueue<std::string> sq;
  auto start = concur::core::Clock::now();
  EXPECT_THROW(sq.get(20ms), q::Empty);
  EXPECT_GE(concur::core::Clock::now() - start, 20ms);
  sq.put("x");
  EXPECT_EQ(sq.get(1s), "x");
}

TEST(SimpleQueue, BlockingGetWakesOnPut) {
  q::SimpleQueue<int> sq;
  std::atomic<int> got{-1};
  th::Thread t([&] { got = sq.get(); });
  t.start();
  std::this_thread::sleep_for(20ms);
  int early = got.load();
  sq.put(9);
  t.join();
  EXPECT_EQ(early, -1);
  EXPECT_EQ(got.load(), 9);
}

TEST(SimpleQueue, MoveOnly) {
  q::SimpleQueue<std::unique_ptr<int>> sq;
  sq.put(std::make_unique<int>(4));
  EXPECT_EQ(*sq.get(), 4);
}

}  // namespace
