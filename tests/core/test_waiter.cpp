#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/core/waiter.hpp"

using namespace std::chrono_literals;
namespace core = concur::core;

namespace {

// A waiter that only counts its wake-ups (stands in for a coroutine or greenlet party).
struct CountingWaiter final : core::Waiter {
  std::atomic<int> wakes{0};
  void wake() noexcept override { wakes.fetch_add(1); }
};

TEST(ThreadWaiter, WakeBeforeParkReturnsAtOnce) {
  core::ThreadWaiter w;
  EXPECT_FALSE(w.woken());
  w.wake();
  EXPECT_TRUE(w.woken());
  EXPECT_TRUE(w.park());
  EXPECT_TRUE(w.park(core::deadline_after(0ms)));
  w.reset();
  EXPECT_FALSE(w.woken());
}

TEST(ThreadWaiter, ParkTimesOut) {
  core::ThreadWaiter w;
  auto start = core::Clock::now();
  EXPECT_FALSE(w.park(core::deadline_after(20ms)));
  EXPECT_GE(core::Clock::now() - start, 20ms);
  EXPECT_FALSE(w.woken());
}

TEST(ThreadWaiter, WakeFromAnotherThreadResumesParkedThread) {
  core::ThreadWaiter w;
  int payload = 0;
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    payload = 7;  // published by wake()'s release store
    w.wake();
  });
  bool r = w.park(core::deadline_after(10s));
  t.join();
  EXPECT_TRUE(r);
  EXPECT_EQ(payload, 7);
}

TEST(WaitList, FifoPushPopRemove) {
  core::WaitList l;
  CountingWaiter w;
  core::WaitNode a{.waiter = &w}, b{.waiter = &w}, c{.waiter = &w};
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.front(), nullptr);
  EXPECT_EQ(l.pop_front(), nullptr);
  l.push_back(a);
  l.push_back(b);
  l.push_back(c);
  EXPECT_TRUE(a.linked && b.linked && c.linked);
  EXPECT_EQ(l.front(), &a);
  EXPECT_TRUE(l.remove(b));  // middle
  EXPECT_FALSE(b.linked);
  EXPECT_FALSE(l.remove(b));  // not linked any more
  EXPECT_EQ(l.pop_front(), &a);
  EXPECT_FALSE(a.linked);
  EXPECT_TRUE(l.remove(c));  // last
  EXPECT_TRUE(l.empty());
  l.push_back(b);  // reusable after unlinking
  EXPECT_EQ(l.front(), &b);
  EXPECT_EQ(l.pop_front(), &b);
  EXPECT_TRUE(l.empty());
}

TEST(WaitList, WakeAllWakesEveryNodeOnce) {
  core::WaitList l;
  CountingWaiter w1, w2, w3;
  core::WaitNode a{.waiter = &w1}, b{.waiter = &w2}, c{.waiter = &w3};
  l.push_back(a);
  l.push_back(b);
  l.push_back(c);
  EXPECT_EQ(l.wake_all(), 3u);
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(w1.wakes + w2.wakes + w3.wakes, 3);
  EXPECT_EQ(w1.wakes, 1);
  EXPECT_FALSE(a.linked || b.linked || c.linked);
  EXPECT_EQ(l.wake_all(), 0u);
}

TEST(SpinLock, MutualExclusionAndTryLock) {
  core::SpinLock s;
  EXPECT_TRUE(s.try_lock());
  EXPECT_FALSE(s.try_lock());
  s.unlock();
  long counter = 0;
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      for (int k = 0; k < 5000; ++k) {
        std::lock_guard g(s);
        ++counter;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 20000);
}

TEST(EventCore, ArmDisarmSetClear) {
  core::EventCore ev;
  CountingWaiter w;
  core::WaitNode n{.waiter = &w};
  EXPECT_FALSE(ev.is_set());
  EXPECT_TRUE(ev.arm(n));
  EXPECT_TRUE(n.linked);
  ev.disarm(n);  // timeout/cancel path
  EXPECT_FALSE(n.linked);
  ev.set();
  EXPECT_EQ(w.wakes, 0);  // disarmed waiters are not woken
  EXPECT_TRUE(ev.is_set());
  EXPECT_FALSE(ev.arm(n));  // already set: registers nothing
  EXPECT_FALSE(n.linked);
  ev.clear();
  EXPECT_FALSE(ev.is_set());
  EXPECT_TRUE(ev.arm(n));
  EXPECT_TRUE(ev.set());
  EXPECT_EQ(w.wakes, 1);
  EXPECT_FALSE(n.linked);
  ev.disarm(n);            // disarm after wake is harmless
  EXPECT_FALSE(ev.set());  // a second set reports it was set and wakes nobody
  EXPECT_EQ(w.wakes, 1);
}

TEST(EventCore, SetWakesEveryArmedWaiter) {
  core::EventCore ev;
  CountingWaiter w[3];
  core::WaitNode n[3] = {{.waiter = &w[0]}, {.waiter = &w[1]}, {.waiter = &w[2]}};
  for (auto& x : n) EXPECT_TRUE(ev.arm(x));
  ev.set();
  for (auto& x : w) EXPECT_EQ(x.wakes, 1);
}

TEST(EventCore, WaitBlockingWithThreadWaiter) {
  core::EventCore ev;
  EXPECT_FALSE(core::wait_blocking(ev, core::deadline_after(20ms)));
  std::atomic<bool> r{false};
  std::thread t([&] { r = core::wait_blocking(ev, std::nullopt); });
  std::this_thread::sleep_for(10ms);
  ev.set();
  t.join();
  EXPECT_TRUE(r.load());
  EXPECT_TRUE(core::wait_blocking(ev, core::deadline_after(0ms)));  // already set
}

TEST(SemaphoreCore, TryAcquireCounts) {
  core::SemaphoreCore s(2);
  EXPECT_EQ(s.value(), 2);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  EXPECT_EQ(s.value(), 0);
  s.release(3);
  EXPECT_EQ(s.value(), 3);
  core::SemaphoreCore zero;
  EXPECT_EQ(zero.value(), 0);
  EXPECT_FALSE(zero.try_acquire());
}

TEST(SemaphoreCore, ReleaseGrantsQueuedWaitersFifo) {
  core::SemaphoreCore s(0);
  CountingWaiter w1, w2;
  core::WaitNode a{.waiter = &w1}, b{.waiter = &w2};
  EXPECT_FALSE(s.acquire_or_arm(a));
  EXPECT_FALSE(s.acquire_or_arm(b));
  s.release(1);
  EXPECT_TRUE(a.granted);
  EXPECT_FALSE(b.granted);
  EXPECT_EQ(w1.wakes, 1);
  EXPECT_EQ(w2.wakes, 0);
  EXPECT_EQ(s.value(), 0);        // handed off, not counted as free
  EXPECT_FALSE(s.try_acquire());  // no barging past the queued waiter
  s.release(2);                   // one to b, one left free
  EXPECT_TRUE(b.granted);
  EXPECT_EQ(w2.wakes, 1);
  EXPECT_EQ(s.value(), 1);
}

TEST(SemaphoreCore, AcquireOrArmTakesFreeUnitAtOnce) {
  core::SemaphoreCore s(1);
  CountingWaiter w;
  core::WaitNode n{.waiter = &w};
  EXPECT_TRUE(s.acquire_or_arm(n));
  EXPECT_FALSE(n.linked);
  EXPECT_EQ(s.value(), 0);
}

TEST(SemaphoreCore, DisarmBeforeGrantOwnsNothing) {
  core::SemaphoreCore s(0);
  CountingWaiter w;
  core::WaitNode n{.waiter = &w};
  EXPECT_FALSE(s.acquire_or_arm(n));
  EXPECT_FALSE(s.disarm(n));  // timed out: was still queued
  s.release(1);
  EXPECT_EQ(w.wakes, 0);
  EXPECT_EQ(s.value(), 1);  // the unit stayed free
}

TEST(SemaphoreCore, DisarmAfterGrantOwnsTheUnit) {
  core::SemaphoreCore s(0);
  CountingWaiter w;
  core::WaitNode n{.waiter = &w};
  EXPECT_FALSE(s.acquire_or_arm(n));
  s.release(1);  // granted while the waiter was timing out
  EXPECT_TRUE(s.disarm(n));
  EXPECT_EQ(s.value(), 0);
  s.release(1);  // the caller gives the unit back
  EXPECT_EQ(s.value(), 1);
}

TEST(SemaphoreCore, ReleaseBoundedRefusesOverRelease) {
  core::SemaphoreCore s(1);
  EXPECT_FALSE(s.release_bounded(1, 1));
  EXPECT_EQ(s.value(), 1);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.release_bounded(1, 1));
  EXPECT_EQ(s.value(), 1);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.release_bounded(2, 1));  // would go to 2
  EXPECT_EQ(s.value(), 0);
}

TEST(SemaphoreCore, ReleaseBoundedHandsOffToWaiter) {
  core::SemaphoreCore s(0);
  CountingWaiter w;
  core::WaitNode n{.waiter = &w};
  EXPECT_FALSE(s.acquire_or_arm(n));
  EXPECT_TRUE(s.release_bounded(1, 1));
  EXPECT_TRUE(n.granted);
  EXPECT_EQ(w.wakes, 1);
  EXPECT_EQ(s.value(), 0);
}

TEST(SemaphoreCore, ReleaseBoundedWithWaitersStillRefusesOverRelease) {
  // Python: BoundedSemaphore.release(n) raises if value + n > initial, waiters or not.
  core::SemaphoreCore s(0);
  CountingWaiter w;
  core::WaitNode n{.waiter = &w};
  EXPECT_FALSE(s.acquire_or_arm(n));
  EXPECT_FALSE(s.release_bounded(2, 1));
  EXPECT_FALSE(n.granted);
  EXPECT_EQ(s.value(), 0);
  EXPECT_FALSE(s.disarm(n));
}

TEST(SemaphoreCore, AcquireBlockingTimesOutThenSucceeds) {
  core::SemaphoreCore s(0);
  EXPECT_FALSE(core::acquire_blocking(s, core::deadline_after(20ms)));
  EXPECT_EQ(s.value(), 0);
  std::atomic<bool> r{false};
  std::thread t([&] { r = core::acquire_blocking(s, core::deadline_after(10s)); });
  std::this_thread::sleep_for(10ms);
  s.release(1);
  t.join();
  EXPECT_TRUE(r.load());
  EXPECT_EQ(s.value(), 0);
  s.release(1);
  EXPECT_TRUE(core::acquire_blocking(s, std::nullopt));
}

}  // namespace
