// multiprocessing.synchronize: Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and
// Barrier across real forked processes, including a holder killed while holding a lock.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "multiprocessing/fork_support.hpp"
#include "support/helpers.hpp"
#include <cereal/archives/binary.hpp>
#include <gtest/gtest.h>

#include "concur/multiprocessing/process.hpp"
#include "concur/multiprocessing/sharedctypes.hpp"
#include "concur/multiprocessing/synchronize.hpp"

namespace mp = concur::multiprocessing;
using namespace concur::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

using SynchronizeTest = ProcessTest;

/// Four children increment a counter under `lock`; `inside` catches two holders at once.
template <class L>
void check_mutual_exclusion(L& lock) {
  const std::int64_t iters = stress_iters(10000);
  mp::Array<long> data(6, /*lock=*/false);  // [0] counter, [1] overlaps, [2..5] per-child counts
  mp::Value<int> inside(0, /*lock=*/false);
  std::vector<pid_t> kids;
  for (int k = 0; k < 4; ++k) {
    kids.push_back(fork_child([&, k] {
      Budget budget(std::chrono::seconds(20));
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        bool got = (i % 3 == 1) ? lock.acquire(1s) : (i % 3 == 2 ? lock.try_lock() : (lock.lock(), true));
        if (!got) continue;
        if (std::atomic_ref<int>(inside.value()).exchange(1) != 0) data[1] += 1;
        data[0] += 1;
        data[static_cast<std::size_t>(k) + 2] += 1;
        std::atomic_ref<int>(inside.value()).store(0);
        lock.release();
      }
      return 0;
    }));
  }
  for (pid_t p : kids) EXPECT_EQ(wait_child(p, 60s), 0);
  EXPECT_EQ(data[1], 0) << "two processes held the lock at once";
  EXPECT_EQ(data[0], data[2] + data[3] + data[4] + data[5]);
  EXPECT_GT(data[0], 0);
}

TEST_F(SynchronizeTest, LockMutualExclusionAcrossProcesses) {
  mp::Lock lock;
  check_mutual_exclusion(lock);
}

TEST_F(SynchronizeTest, RLockMutualExclusionAcrossProcesses) {
  mp::RLock lock;
  check_mutual_exclusion(lock);
}

TEST_F(SynchronizeTest, LockIsStdLockableAndNotReentrant) {
  mp::Lock lock;
  {
    std::scoped_lock g(lock);
    EXPECT_TRUE(lock.is_owned());
    EXPECT_FALSE(lock.acquire(false));  // not re-entrant
    auto t0 = Clock::now();
    EXPECT_FALSE(lock.acquire(30ms));  // Python waits out the timeout
    EXPECT_GE(Clock::now() - t0, 30ms);
    EXPECT_THROW(lock.acquire(), std::logic_error);  // would wait forever
  }
  EXPECT_FALSE(lock.is_owned());
  EXPECT_THROW(lock.release(), std::logic_error);
  // Another thread may not release it (an owned, robust mutex).
  lock.acquire();
  bool threw = false;
  std::thread([&] {
    try {
      lock.release();
    } catch (const std::logic_error&) {
      threw = true;
    }
  }).join();
  EXPECT_TRUE(threw);
  lock.release();
}

TEST_F(SynchronizeTest, RLockReentersAndOtherProcessesWait) {
  mp::RLock rlock;
  ASSERT_TRUE(rlock.acquire());
  ASSERT_TRUE(rlock.acquire());
  auto probe = [&] {
    pid_t child = fork_child([&] {
      bool got = rlock.acquire(false);
      if (got) rlock.release();
      return got ? 1 : 0;
    });
    return wait_child(child);
  };
  EXPECT_EQ(probe(), 0);
  rlock.release();
  EXPECT_EQ(probe(), 0);  // still held once
  rlock.release();
  EXPECT_EQ(probe(), 1);
  EXPECT_THROW(rlock.release(), std::logic_error);
}

TEST_F(SynchronizeTest, OnlyTheOwnerReleasesAnRLockOrALock) {
  // Python's RLock.release() by a non-owner raises (RuntimeError there; std::logic_error here,
  // as threading's); a held Lock is owned too (see MutexBase::release).
  mp::RLock rlock;
  mp::Lock lock;
  ASSERT_TRUE(rlock.acquire());
  ASSERT_TRUE(lock.acquire());
  int threw = 0;
  std::thread([&] {
    try {
      rlock.release();
    } catch (const std::logic_error&) {
      ++threw;
    }
    try {
      lock.release();
    } catch (const std::logic_error&) {
      ++threw;
    }
  }).join();
  EXPECT_EQ(threw, 2);
  pid_t child = fork_child([&] {
    int n = 0;
    try {
      rlock.release();
    } catch (const std::logic_error&) {
      ++n;
    }
    try {
      lock.release();
    } catch (const std::logic_error&) {
      ++n;
    }
    return n;
  });
  EXPECT_EQ(wait_child(child), 2);
  EXPECT_TRUE(rlock.is_owned());  // still held here, once
  rlock.release();
  lock.release();
  EXPECT_FALSE(rlock.is_owned());
}

template <class L>
void check_holder_killed(L& lock) {
  ReadyPipe ready;
  pid_t child = fork_child([&] {
    lock.acquire();
    ready.signal();
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(ready.wait());
  EXPECT_FALSE(lock.acquire(false));
  kill_child(child);
  auto t0 = Clock::now();
  ASSERT_TRUE(lock.acquire(5s)) << "the dead holder's lock was not handed on";
  EXPECT_LT(Clock::now() - t0, 5s);
  lock.release();
  ASSERT_TRUE(lock.acquire(false));  // consistent again
  lock.release();
}

TEST_F(SynchronizeTest, LockWhoseHolderWasKilledCanBeAcquired) {
  mp::Lock lock;
  check_holder_killed(lock);
}

TEST_F(SynchronizeTest, RLockWhoseHolderWasKilledCanBeAcquired) {
  mp::RLock lock;
  check_holder_killed(lock);
}

TEST_F(SynchronizeTest, ValueLockWhoseHolderWasKilledCanBeAcquired) {
  mp::Value<long> v(0);
  check_holder_killed(v.get_lock());
}

TEST_F(SynchronizeTest, TimedAcquiresReturnFalseInTime) {
  mp::Lock lock;
  ReadyPipe ready;
  pid_t child = fork_child([&] {
    lock.acquire();
    ready.signal();
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(ready.wait());
  auto t0 = Clock::now();
  EXPECT_FALSE(lock.acquire(100ms));
  auto waited = Clock::now() - t0;
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 10s);
  kill_child(child);

  mp::Semaphore sem(0);
  t0 = Clock::now();
  EXPECT_FALSE(sem.acquire(50ms));
  EXPECT_GE(Clock::now() - t0, 50ms);
  EXPECT_FALSE(sem.acquire(false));

  mp::Event ev;
  t0 = Clock::now();
  EXPECT_FALSE(ev.wait(50ms));
  EXPECT_GE(Clock::now() - t0, 50ms);

  mp::Condition cond;
  std::unique_lock g(cond);
  t0 = Clock::now();
  EXPECT_FALSE(cond.wait(50ms));
  EXPECT_GE(Clock::now() - t0, 50ms);
}

TEST_F(SynchronizeTest, SemaphoreBoundsConcurrency) {
  const std::int64_t iters = stress_iters(2000);
  mp::Semaphore sem(2);
  EXPECT_EQ(sem.get_value(), 2);
  mp::Array<int> data(3, /*lock=*/false);  // [0] inside now, [1] most inside at once, [2] rounds
  std::vector<pid_t> kids;
  for (int k = 0; k < 4; ++k) {
    kids.push_back(fork_child([&] {
      Budget budget(std::chrono::seconds(20));
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        if (!sem.acquire(5s)) return 1;
        int now = std::atomic_ref<int>(data[0]).fetch_add(1) + 1;
        std::atomic_ref<int> most(data[1]);
        int m = most.load();
        while (now > m && !most.compare_exchange_weak(m, now)) {
        }
        sched_yield();
        std::atomic_ref<int>(data[0]).fetch_sub(1);
        std::atomic_ref<int>(data[2]).fetch_add(1);
        sem.release();
      }
      return 0;
    }));
  }
  for (pid_t p : kids) EXPECT_EQ(wait_child(p, 60s), 0);
  EXPECT_LE(data[1], 2);
  EXPECT_GE(data[1], 1);
  EXPECT_GT(data[2], 0);
  EXPECT_EQ(sem.get_value(), 2);
}

TEST_F(SynchronizeTest, SemaphoreReleasedByAnotherProcessWakesAWaiter) {
  mp::Semaphore sem(0);
  pid_t child = fork_child([&] {
    std::this_thread::sleep_for(20ms);
    sem.release();
    return 0;
  });
  EXPECT_TRUE(sem.acquire(10s));
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_THROW(mp::Semaphore(-1), std::invalid_argument);
  EXPECT_THROW(sem.release(0), std::invalid_argument);
}

TEST_F(SynchronizeTest, BoundedSemaphoreRefusesOverRelease) {
  mp::BoundedSemaphore bsem(1);
  EXPECT_THROW(bsem.release(), std::invalid_argument);
  EXPECT_TRUE(bsem.acquire());
  bsem.release();
  auto again = mp::BoundedSemaphore::from_handle(bsem.handle());
  EXPECT_THROW(again.release(), std::invalid_argument);
  EXPECT_THROW(mp::Semaphore::from_handle(bsem.handle()), std::invalid_argument);
}

TEST_F(SynchronizeTest, EventAcrossProcesses) {
  mp::Event go, done;
  EXPECT_FALSE(go.is_set());
  std::vector<pid_t> kids;
  for (int k = 0; k < 3; ++k) {
    kids.push_back(fork_child([&] {
      if (!go.wait(10s)) return 1;
      done.set();
      return 0;
    }));
  }
  std::this_thread::sleep_for(10ms);
  go.set();
  EXPECT_TRUE(go.is_set());
  EXPECT_TRUE(done.wait(10s));
  for (pid_t p : kids) EXPECT_EQ(wait_child(p), 0);
  go.clear();
  EXPECT_FALSE(go.is_set());
  EXPECT_FALSE(go.wait(1ms));
  go.set();
  go.set();
  EXPECT_TRUE(go.wait());
}

TEST_F(SynchronizeTest, ConditionNotifyAcrossProcesses) {
  mp::Condition cond;
  mp::Value<int> ready(0, /*lock=*/false);
  mp::Value<int> waiting(0, /*lock=*/false);
  std::vector<pid_t> kids;
  for (int k = 0; k < 3; ++k) {
    kids.push_back(fork_child([&] {
      std::unique_lock g(cond);
      waiting.value() += 1;
      cond.notify_all();  // tell the parent
      bool ok = cond.wait_for([&] { return ready.value() == 1; }, 10s);
      return ok ? 0 : 1;
    }));
  }
  {
    std::unique_lock g(cond);
    ASSERT_TRUE(cond.wait_for([&] { return waiting.value() == 3; }, 10s));
    ready.value() = 1;
    cond.notify_all();
  }
  for (pid_t p : kids) EXPECT_EQ(wait_child(p), 0);
  EXPECT_THROW(cond.notify(), std::logic_error);  // lock not held
  EXPECT_THROW(cond.wait(), std::logic_error);
}

TEST_F(SynchronizeTest, ConditionNotifyOneWakesOneAndWorksWithALock) {
  mp::Lock lock;
  mp::Condition cond(lock);
  mp::Value<int> woken(0, /*lock=*/false);
  mp::Value<int> waiting(0, /*lock=*/false);
  std::vector<pid_t> kids;
  for (int k = 0; k < 2; ++k) {
    kids.push_back(fork_child([&] {
      std::unique_lock g(cond);
      waiting.value() += 1;  // under the lock: the parent sees it only once we wait
      if (!cond.wait(10s)) return 1;
      woken.value() += 1;
      return 0;
    }));
  }
  ASSERT_TRUE(eventually([&] {
    std::scoped_lock g(lock);
    return waiting.value() == 2;
  }));
  {
    std::scoped_lock g(lock);
    cond.notify(1);
  }
  EXPECT_TRUE(eventually([&] {
    std::scoped_lock g(lock);
    return woken.value() == 1;
  }));
  std::this_thread::sleep_for(20ms);
  {
    std::scoped_lock g(lock);
    EXPECT_EQ(woken.value(), 1);  // notify(1) woke one
    cond.notify(1);
  }
  for (pid_t p : kids) EXPECT_EQ(wait_child(p), 0);
  EXPECT_EQ(woken.value(), 2);
}

TEST_F(SynchronizeTest, BarrierOfThreeProcesses) {
  constexpr int kRounds = 20;
  mp::Barrier barrier(3);
  EXPECT_EQ(barrier.parties(), 3U);
  mp::Array<int> index(3 * kRounds, /*lock=*/false);
  std::vector<pid_t> kids;
  for (int k = 0; k < 3; ++k) {
    kids.push_back(fork_child([&, k] {
      for (int r = 0; r < kRounds; ++r)
        index[static_cast<std::size_t>(r * 3 + k)] = static_cast<int>(barrier.wait(10s));
      return 0;
    }));
  }
  for (pid_t p : kids) EXPECT_EQ(wait_child(p), 0);
  for (int r = 0; r < kRounds; ++r) {
    std::set<int> got{index[static_cast<std::size_t>(r * 3)], index[static_cast<std::size_t>(r * 3 + 1)],
                      index[static_cast<std::size_t>(r * 3 + 2)]};
    EXPECT_EQ(got, (std::set<int>{0, 1, 2})) << "round " << r;
  }
  EXPECT_FALSE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0U);
}

TEST_F(SynchronizeTest, BarrierTimeoutAbortAndReset) {
  mp::Barrier barrier(2);
  EXPECT_THROW(barrier.wait(20ms), mp::BrokenBarrierError);  // the timeout breaks it
  EXPECT_TRUE(barrier.broken());
  EXPECT_THROW(barrier.wait(), mp::BrokenBarrierError);
  barrier.reset();
  EXPECT_FALSE(barrier.broken());

  ReadyPipe ready;
  pid_t child = fork_child([&] {
    ready.signal();
    try {
      barrier.wait(10s);
    } catch (const mp::BrokenBarrierError&) {
      return 0;
    }
    return 1;
  });
  ASSERT_TRUE(ready.wait());
  EXPECT_TRUE(eventually([&] { return barrier.n_waiting() == 1; }));
  barrier.abort();
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_THROW(mp::Barrier(0), std::invalid_argument);

  mp::Barrier with_default(2, 20ms);
  EXPECT_THROW(with_default.wait(), mp::BrokenBarrierError);
}

TEST_F(SynchronizeTest, HandlesRoundTripInAChild) {
  mp::Lock lock;
  mp::RLock rlock;
  mp::Semaphore sem(0);
  mp::Event ev;
  mp::Condition cond;
  mp::Barrier barrier(2);
  std::stringstream ss;
  {
    cereal::BinaryOutputArchive out(ss);
    out(lock, rlock, sem, ev, cond, barrier);
  }
  pid_t child = fork_child([&] {
    auto l = mp::Lock::from_handle(lock.handle());
    auto s = mp::Semaphore::from_handle(sem.handle());
    auto e = mp::Event::from_handle(ev.handle());
    auto c = mp::Condition::from_handle(cond.handle());
    auto b = mp::Barrier::from_handle(barrier.handle());
    if (!l.acquire(1s)) return 1;
    l.release();
    mp::Lock l2;
    mp::RLock r2;
    mp::Semaphore s2;
    mp::Event e2;
    mp::Condition c2;
    mp::Barrier b2(1);
    cereal::BinaryInputArchive in(ss);
    in(l2, r2, s2, e2, c2, b2);
    if (l2.handle() != lock.handle() || r2.handle() != rlock.handle() || b2.handle() != barrier.handle()) return 2;
    {
      std::unique_lock g(c);
      c.notify_all();
    }
    s2.release();
    e.set();
    return b.wait(10s) <= 1 ? 0 : 3;
  });
  EXPECT_TRUE(sem.acquire(10s));
  EXPECT_TRUE(ev.wait(10s));
  EXPECT_LE(barrier.wait(10s), 1U);
  EXPECT_EQ(wait_child(child), 0);

  EXPECT_THROW(mp::Lock::from_handle(rlock.handle()), std::invalid_argument);
  EXPECT_THROW(mp::Event::from_handle(sem.handle()), std::invalid_argument);
  auto bad = ev.handle();
  bad.kind = mp::detail::kLockKind;
  EXPECT_THROW(mp::Lock::from_handle(bad), std::invalid_argument);
  bad.name = "concur_test_" + std::to_string(getpid()) + "_missing";
  EXPECT_THROW(mp::Lock::from_handle(bad), concur::FileNotFoundError);
}

// ---- Barrier(parties, action, timeout) ----

mp::Array<int>* g_trips = nullptr;  // [0] rounds tripped, [1] pid of the last tripper
void count_trip() {
  (*g_trips)[0] += 1;
  (*g_trips)[1] = static_cast<int>(::getpid());
}
void failing_action() { throw std::runtime_error("action failed"); }
void write_marker() {
  const std::string path = "/tmp/concur-barrier-action-" + std::to_string(::getppid());
  if (std::FILE* f = std::fopen(path.c_str(), "w")) {
    std::fprintf(f, "%d", static_cast<int>(::getpid()));
    std::fclose(f);
  }
}
void arrive_late(mp::SharedHandle h) {  // a Barrier has no default state to load into: its handle
  std::this_thread::sleep_for(100ms);
  (void)mp::Barrier::from_handle(h).wait(10s);
}

TEST_F(SynchronizeTest, BarrierActionRunsOncePerRoundBeforeAnyoneIsReleased) {
  constexpr int kRounds = 10;
  mp::Array<int> trips(2, /*lock=*/false);
  g_trips = &trips;
  mp::Barrier barrier(3, count_trip, 10s);
  std::vector<pid_t> kids;
  for (int k = 0; k < 3; ++k) {
    kids.push_back(fork_child([&] {
      for (int r = 0; r < kRounds; ++r) {
        (void)barrier.wait();
        if (trips[0] < r + 1) return 1;  // released before the action ran
      }
      return 0;
    }));
  }
  for (pid_t p : kids) EXPECT_EQ(wait_child(p), 0);
  EXPECT_EQ(trips[0], kRounds);
  EXPECT_NE(std::find(kids.begin(), kids.end(), static_cast<pid_t>(trips[1])), kids.end());  // in a party
  EXPECT_FALSE(barrier.broken());
  g_trips = nullptr;
}

TEST_F(SynchronizeTest, BarrierActionThatThrowsBreaksTheBarrier) {
  mp::Barrier barrier(2, [] { failing_action(); });
  std::atomic<int> broken{0}, failed{0};
  auto party = [&] {
    try {
      (void)barrier.wait(10s);
    } catch (const mp::BrokenBarrierError&) {
      ++broken;
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()) == "action failed") ++failed;
    }
  };
  std::thread t(party);
  party();
  t.join();
  EXPECT_EQ(failed.load(), 1);  // the last to arrive ran it and got its exception
  EXPECT_EQ(broken.load(), 1);
  EXPECT_TRUE(barrier.broken());
  EXPECT_THROW((void)barrier.wait(10s), mp::BrokenBarrierError);
}

TEST_F(SynchronizeTest, BarrierActionRunsInASpawnedProcessThatTripsIt) {
  // The action travels as code identity: a spawned process (its own load address) finds it.
  const std::string marker = "/tmp/concur-barrier-action-" + std::to_string(::getpid());
  std::remove(marker.c_str());
  mp::Barrier barrier(2, write_marker);
  mp::Process p(arrive_late, barrier.handle());
  p.start();
  EXPECT_LE(barrier.wait(10s), 1U);  // here first, so the late child trips it
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
  std::string got;
  if (std::FILE* f = std::fopen(marker.c_str(), "r")) {
    char buf[32] = {};
    got.assign(buf, std::fread(buf, 1, sizeof buf - 1, f));
    std::fclose(f);
  }
  EXPECT_EQ(got, std::to_string(*p.pid()));
  std::remove(marker.c_str());
}

}  // namespace
