#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/threading/condition.hpp"
#include "concur/threading/thread.hpp"

using namespace std::chrono_literals;
namespace th = concur::threading;

namespace {

// Starts `n` threads that each wait once on `cv` (under its lock) and count their wake-ups.
struct Waiters {
  th::Condition& cv;
  std::atomic<int> waiting{0};
  std::atomic<int> woken{0};
  std::atomic<int> results_true{0};
  std::vector<th::Thread> threads;

  Waiters(th::Condition& c, int n, std::chrono::milliseconds timeout = 10s) : cv(c) {
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([this, timeout] {
        std::unique_lock g(cv);
        ++waiting;
        if (cv.wait(timeout)) ++results_true;
        ++woken;
      });
      threads.back().start();
    }
  }
  // All threads have registered as waiters: they incremented `waiting` under the lock, and
  // wait() releases it only after registering, so acquiring it proves they are parked.
  bool all_waiting(int n) {
    if (!concur::test::eventually([&] { return waiting.load() == n; })) return false;
    std::unique_lock g(cv);
    return true;
  }
  void join() {
    for (auto& t : threads) t.join();
  }
};

TEST(Condition, WaitWithoutLockThrows) {
  th::Condition cv;
  EXPECT_THROW(cv.wait(), std::logic_error);
  EXPECT_THROW(cv.wait(10ms), std::logic_error);
  EXPECT_THROW(cv.wait_until(concur::core::Clock::now()), std::logic_error);
  EXPECT_THROW(cv.wait_for([] { return false; }, 10ms), std::logic_error);
  EXPECT_THROW(cv.notify(), std::logic_error);
  EXPECT_THROW(cv.notify_all(), std::logic_error);
  EXPECT_THROW(cv.release(), std::logic_error);
}

TEST(Condition, WaitOnLockHeldByAnotherThreadThrows) {
  th::Condition cv;  // owns an RLock: ownership is per thread
  cv.acquire();
  std::atomic<int> threw{0};
  th::Thread t([&] {
    try {
      cv.notify();
    } catch (const std::logic_error&) {
      ++threw;
    }
    try {
      cv.wait(1ms);
    } catch (const std::logic_error&) {
      ++threw;
    }
  });
  t.start();
  t.join();
  cv.release();
  EXPECT_EQ(threw.load(), 2);
}

TEST(Condition, TimedWaitReturnsFalseOnTimeoutAndKeepsLock) {
  th::Condition cv;
  std::unique_lock g(cv);
  auto start = concur::core::Clock::now();
  EXPECT_FALSE(cv.wait(20ms));
  EXPECT_GE(concur::core::Clock::now() - start, 20ms);
  EXPECT_FALSE(cv.wait_until(concur::core::Clock::now() + 5ms));
  // Still holds the lock: notify is allowed.
  EXPECT_NO_THROW(cv.notify());
}

TEST(Condition, NotifyWakesAWaiterThatReturnsTrue) {
  th::Condition cv;
  Waiters w(cv, 1);
  ASSERT_TRUE(w.all_waiting(1));
  {
    std::unique_lock g(cv);
    cv.notify();
  }
  w.join();
  EXPECT_EQ(w.woken.load(), 1);
  EXPECT_EQ(w.results_true.load(), 1);
}

TEST(Condition, NotifyNWakesExactlyN) {
  th::Condition cv;
  Waiters w(cv, 4, 10s);
  ASSERT_TRUE(w.all_waiting(4));
  {
    std::unique_lock g(cv);
    cv.notify(2);
  }
  bool two = concur::test::eventually([&] { return w.woken.load() == 2; });
  std::this_thread::sleep_for(30ms);  // give a wrongly woken third waiter time to show up
  int after_two = w.woken.load();
  {
    std::unique_lock g(cv);
    cv.notify_all();
  }
  w.join();
  EXPECT_TRUE(two);
  EXPECT_EQ(after_two, 2);
  EXPECT_EQ(w.results_true.load(), 4);
}

TEST(Condition, NotifyAllWakesEveryone) {
  th::Condition cv;
  Waiters w(cv, 3);
  ASSERT_TRUE(w.all_waiting(3));
  {
    std::unique_lock g(cv);
    cv.notify_all();
  }
  w.join();
  EXPECT_EQ(w.results_true.load(), 3);
}

TEST(Condition, NotifyWithNoWaitersIsANoOp) {
  th::Condition cv;
  std::unique_lock g(cv);
  cv.notify();
  cv.notify(5);
  cv.notify_all();
  EXPECT_FALSE(cv.wait(10ms));  // an earlier notify is not remembered
}

TEST(Condition, WaitersAreWokenFifo) {
  th::Condition cv;
  std::mutex m;
  std::vector<int> order;
  std::atomic<int> waiting{0};
  std::vector<th::Thread> ts;
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&, i] {
      std::unique_lock g(cv);
      ++waiting;
      bool r = cv.wait();  // untimed: always true
      std::lock_guard lg(m);
      order.push_back(r ? i : -1);
    });
    ts.back().start();
    ASSERT_TRUE(concur::test::eventually([&] { return waiting.load() == i + 1; }));
    { std::unique_lock g(cv); }  // thread i is registered
  }
  for (int i = 0; i < 3; ++i) {
    {
      std::unique_lock g(cv);
      cv.notify();
    }
    ASSERT_TRUE(concur::test::eventually([&] {
      std::lock_guard lg(m);
      return order.size() == static_cast<std::size_t>(i + 1);
    }));
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST(Condition, WaitForPredicate) {
  th::Condition cv;
  bool ready = false;  // guarded by cv
  th::Thread producer([&] {
    std::this_thread::sleep_for(10ms);
    std::unique_lock g(cv);
    ready = true;
    cv.notify_all();
  });
  producer.start();
  bool r;
  {
    std::unique_lock g(cv);
    r = cv.wait_for([&] { return ready; }, 10s);
  }
  producer.join();
  EXPECT_TRUE(r);
  std::unique_lock g(cv);
  EXPECT_TRUE(cv.wait_for([&] { return ready; }));  // already true: no wait
}

TEST(Condition, WaitForPredicateTimesOutWithLastValue) {
  th::Condition cv;
  std::unique_lock g(cv);
  int calls = 0;
  auto start = concur::core::Clock::now();
  int r = cv.wait_for([&] { return ++calls > 1000000 ? 1 : 0; }, 20ms);
  EXPECT_EQ(r, 0);
  EXPECT_GE(calls, 1);
  EXPECT_GE(concur::core::Clock::now() - start, 20ms);
}

TEST(Condition, WaitForUntimedReturnsPredicateValue) {
  th::Condition cv;
  int value = 0;  // guarded by cv
  th::Thread t([&] {
    for (int i = 1; i <= 3; ++i) {
      std::this_thread::sleep_for(2ms);
      std::unique_lock g(cv);
      value = i;
      cv.notify();
    }
  });
  t.start();
  int got;
  {
    std::unique_lock g(cv);
    got = cv.wait_for([&] { return value >= 3 ? value : 0; });
  }
  t.join();
  EXPECT_EQ(got, 3);
}

TEST(Condition, DefaultRLockWaitReleasesEveryLevel) {
  th::Condition cv;
  cv.acquire();
  cv.acquire();  // reentrant: the default lock is an RLock
  std::atomic<int> other_got{-1};
  th::Thread t([&] {
    other_got = cv.acquire(5s) ? 1 : 0;
    if (other_got == 1) {
      cv.notify();
      cv.release();
    }
  });
  t.start();
  bool woke = cv.wait(10s);  // releases both levels so `t` can get in and notify
  t.join();
  EXPECT_TRUE(woke);
  EXPECT_EQ(other_got.load(), 1);
  cv.release();
  cv.release();  // both levels restored
  EXPECT_THROW(cv.release(), std::logic_error);
}

TEST(Condition, WithExternalLock) {
  th::Lock lock;
  th::Condition cv(lock);
  EXPECT_THROW(cv.wait(1ms), std::logic_error);  // lock not held
  EXPECT_THROW(cv.notify(), std::logic_error);
  {
    std::unique_lock g(cv);
    EXPECT_TRUE(lock.locked());
    EXPECT_FALSE(cv.try_lock());  // a Lock is not reentrant
  }
  EXPECT_FALSE(lock.locked());
  bool ready = false;
  th::Thread t([&] {
    std::scoped_lock g(lock);  // lock the Lock itself, notify through the Condition
    ready = true;
    cv.notify_all();
  });
  bool r;
  {
    std::unique_lock g(cv);
    t.start();
    r = cv.wait_for([&] { return ready; }, 10s);
    EXPECT_TRUE(lock.locked());
  }
  t.join();
  EXPECT_TRUE(r);
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(cv.acquire(10ms));
  EXPECT_FALSE(cv.acquire_until(concur::core::Clock::now() + 1ms));
  cv.release();
  EXPECT_THROW(cv.release(), std::logic_error);
}

TEST(Condition, WithExternalRLock) {
  th::RLock rlock;
  th::Condition cv(rlock);
  rlock.acquire();
  rlock.acquire();
  std::atomic<bool> done{false};
  th::Thread t([&] {
    std::scoped_lock g(cv);
    done = true;
    cv.notify();
  });
  t.start();
  bool r = cv.wait_for([&] { return done.load(); }, 10s);
  EXPECT_EQ(rlock.recursion_count(), 2u);  // restored after wait
  rlock.release();
  rlock.release();
  t.join();
  EXPECT_TRUE(r);
  EXPECT_FALSE(rlock.locked());
  EXPECT_TRUE(cv.try_lock());
  EXPECT_TRUE(cv.try_lock());  // reentrant through the Condition too
  cv.unlock();
  cv.unlock();
  EXPECT_FALSE(rlock.locked());
}

TEST(Condition, StdLockGuards) {
  th::Condition cv;
  {
    std::scoped_lock g(cv);
    EXPECT_NO_THROW(cv.notify());
  }
  EXPECT_THROW(cv.notify(), std::logic_error);
  {
    std::unique_lock g(cv, std::try_to_lock);
    EXPECT_TRUE(g.owns_lock());
  }
  EXPECT_TRUE(cv.acquire(10ms));
  cv.release();
}

TEST(Condition, TimedOutWaiterDoesNotSwallowANotify) {
  // A waiter whose wait timed out must not consume a later notify meant for another waiter.
  th::Condition cv;
  {
    std::unique_lock g(cv);
    EXPECT_FALSE(cv.wait(5ms));
  }
  Waiters w(cv, 1);
  ASSERT_TRUE(w.all_waiting(1));
  {
    std::unique_lock g(cv);
    cv.notify();
  }
  w.join();
  EXPECT_EQ(w.results_true.load(), 1);
}

}  // namespace
