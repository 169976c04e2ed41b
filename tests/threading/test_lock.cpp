#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/threading/event.hpp"
#include "concur/threading/lock.hpp"
#include "concur/threading/thread.hpp"

using namespace std::chrono_literals;
namespace th = concur::threading;

namespace {

TEST(Lock, AcquireReleaseAndLocked) {
  th::Lock lock;
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, NonBlockingAcquire) {
  th::Lock lock;
  EXPECT_TRUE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(false));  // not reentrant: even the holder fails
  lock.release();
  EXPECT_TRUE(lock.try_lock());
  EXPECT_FALSE(lock.try_lock());
  lock.unlock();
}

TEST(Lock, TimedAcquireTimesOutThenSucceeds) {
  th::Lock lock;
  lock.acquire();
  auto start = concur::core::Clock::now();
  EXPECT_FALSE(lock.acquire(20ms));
  EXPECT_GE(concur::core::Clock::now() - start, 20ms);
  EXPECT_FALSE(lock.acquire_until(concur::core::Clock::now() + 5ms));
  EXPECT_FALSE(lock.try_lock_for(5ms));
  EXPECT_FALSE(lock.try_lock_until(std::chrono::system_clock::now() + 5ms));
  EXPECT_FALSE(lock.acquire(-1s));  // negative timeout: a non-blocking try
  lock.release();
  EXPECT_TRUE(lock.acquire(1s));
  lock.release();
  EXPECT_TRUE(lock.try_lock_for(1s));
  lock.release();
  EXPECT_TRUE(lock.try_lock_until(std::chrono::steady_clock::now() + 1s));
  lock.release();
}

TEST(Lock, ReleaseUnlockedThrows) {
  th::Lock lock;
  EXPECT_THROW(lock.release(), std::logic_error);
  lock.acquire();
  lock.release();
  EXPECT_THROW(lock.release(), std::logic_error);
  EXPECT_THROW(lock.unlock(), std::logic_error);
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, AnyThreadMayRelease) {
  th::Lock lock;
  lock.acquire();
  bool threw = false;
  th::Thread t([&] {
    try {
      lock.release();
    } catch (...) {
      threw = true;
    }
  });
  t.start();
  t.join();
  EXPECT_FALSE(threw);
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, BlockedAcquireResumesOnRelease) {
  th::Lock lock;
  lock.acquire();
  std::atomic<bool> got{false};
  th::Thread t([&] {
    got = lock.acquire(10s);
    if (got) lock.release();
  });
  t.start();
  std::this_thread::sleep_for(20ms);
  bool got_early = got.load();
  lock.release();
  t.join();
  EXPECT_FALSE(got_early);
  EXPECT_TRUE(got.load());
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, WaitersAreServedFifo) {
  th::Lock lock;
  lock.acquire();
  std::mutex m;
  std::vector<int> order;
  std::vector<th::Thread> ts;
  std::atomic<int> started{0};
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&, i] {
      ++started;
      lock.acquire();
      {
        std::lock_guard g(m);
        order.push_back(i);
      }
      lock.release();
    });
    ts.back().start();
    // Let thread i reach acquire() and queue before the next one starts.
    ASSERT_TRUE(concur::test::eventually([&] { return started.load() == i + 1; }));
    std::this_thread::sleep_for(30ms);
  }
  lock.release();
  for (auto& t : ts) t.join();
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST(Lock, StdLockableAdapters) {
  th::Lock lock;
  {
    std::scoped_lock g(lock);
    EXPECT_TRUE(lock.locked());
  }
  EXPECT_FALSE(lock.locked());
  {
    std::unique_lock g(lock, std::try_to_lock);
    EXPECT_TRUE(g.owns_lock());
  }
  {
    std::unique_lock g(lock, 100ms);  // TimedLockable
    EXPECT_TRUE(g.owns_lock());
    std::unique_lock g2(lock, std::defer_lock);
    EXPECT_FALSE(g2.try_lock_for(5ms));
  }
  th::Lock other;
  {
    std::scoped_lock g(lock, other);  // std::lock's deadlock avoidance uses try_lock
    EXPECT_TRUE(lock.locked());
    EXPECT_TRUE(other.locked());
  }
  EXPECT_FALSE(lock.locked());
  EXPECT_FALSE(other.locked());
}

TEST(Lock, MutualExclusion) {
  th::Lock lock;
  long counter = 0;
  std::vector<th::Thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      for (int k = 0; k < 2000; ++k) {
        std::scoped_lock g(lock);
        ++counter;
      }
    });
    ts.back().start();
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 8000);
}

TEST(RLock, Reentrancy) {
  th::RLock r;
  EXPECT_FALSE(r.locked());
  EXPECT_EQ(r.recursion_count(), 0u);
  EXPECT_TRUE(r.acquire());
  EXPECT_TRUE(r.acquire());
  EXPECT_TRUE(r.acquire(false));
  EXPECT_TRUE(r.acquire(10ms));
  EXPECT_EQ(r.recursion_count(), 4u);
  EXPECT_TRUE(r.locked());
  r.release();
  r.release();
  r.release();
  EXPECT_TRUE(r.locked());
  EXPECT_EQ(r.recursion_count(), 1u);
  r.release();
  EXPECT_FALSE(r.locked());
  EXPECT_EQ(r.recursion_count(), 0u);
}

TEST(RLock, ReleaseByNonOwnerThrows) {
  th::RLock r;
  EXPECT_THROW(r.release(), std::logic_error);  // nobody owns it
  r.acquire();
  std::atomic<int> threw{0};
  std::atomic<int> count_seen{-1};
  std::atomic<int> try_got{-1};
  th::Thread t([&] {
    try {
      r.release();
    } catch (const std::logic_error&) {
      ++threw;
    }
    count_seen = static_cast<int>(r.recursion_count());
    try_got = r.acquire(false) ? 1 : 0;
  });
  t.start();
  t.join();
  EXPECT_EQ(threw.load(), 1);
  EXPECT_EQ(count_seen.load(), 0);  // another thread holds it
  EXPECT_EQ(try_got.load(), 0);
  EXPECT_TRUE(r.locked());
  r.release();
  EXPECT_THROW(r.unlock(), std::logic_error);
}

TEST(RLock, OtherThreadTimesOutThenGetsItAfterFullRelease) {
  th::RLock r;
  r.acquire();
  r.acquire();
  std::atomic<int> first{-1}, second{-1};
  std::atomic<bool> phase2{false};
  th::Thread t([&] {
    first = r.acquire(20ms) ? 1 : 0;
    while (!phase2.load()) std::this_thread::yield();
    second = r.acquire(10s) ? 1 : 0;
    if (second == 1) r.release();
  });
  t.start();
  ASSERT_TRUE(concur::test::eventually([&] { return first.load() != -1; }));
  r.release();  // still held once
  phase2 = true;
  std::this_thread::sleep_for(20ms);
  bool early = second.load() == 1;
  r.release();
  t.join();
  EXPECT_EQ(first.load(), 0);
  EXPECT_FALSE(early);
  EXPECT_EQ(second.load(), 1);
  EXPECT_FALSE(r.locked());
}

TEST(RLock, StdLockableAdapters) {
  th::RLock r;
  {
    std::scoped_lock g(r);
    std::unique_lock g2(r);  // reentrant
    EXPECT_EQ(r.recursion_count(), 2u);
  }
  EXPECT_FALSE(r.locked());
  {
    std::unique_lock g(r, 100ms);
    EXPECT_TRUE(g.owns_lock());
    EXPECT_TRUE(r.try_lock_for(1ms));
    EXPECT_TRUE(r.try_lock_until(std::chrono::system_clock::now()));
    r.unlock();
    r.unlock();
  }
  EXPECT_FALSE(r.locked());
  EXPECT_TRUE(r.acquire_until(concur::core::Clock::now() + 1ms));
  r.release();
}

TEST(RLock, MutualExclusionWithNesting) {
  th::RLock r;
  long counter = 0;
  std::vector<th::Thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      for (int k = 0; k < 1000; ++k) {
        std::scoped_lock g(r);
        std::scoped_lock g2(r);
        ++counter;
      }
    });
    ts.back().start();
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 4000);
  EXPECT_FALSE(r.locked());
}

}  // namespace
