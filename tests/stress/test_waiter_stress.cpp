// Stress of the shared waiter cores (EventCore, SemaphoreCore) with ThreadWaiters.
// CONCUR_STRESS_ITERS sets the iteration count; every loop is bounded in count and time.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/core/waiter.hpp"

using namespace std::chrono_literals;
namespace core = concur::core;
using concur::test::Budget;
using concur::test::stress_iters;

namespace {

TEST(WaiterStress, SemaphoreCoreUnitsAreConserved) {
  // Threads take a unit (blocking, timed or try), hold it briefly, give it back. Units never
  // exceed the initial count inside the critical section, and all come back at the end.
  constexpr int kUnits = 3;
  constexpr int kThreads = 6;
  const auto iters = stress_iters();
  core::SemaphoreCore sem(kUnits);
  std::atomic<int> inside{0}, max_inside{0}, acquired{0}, timeouts{0};
  Budget budget;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
        bool got;
        switch ((i + t) % 3) {
          case 0:
            got = core::acquire_blocking(sem, std::nullopt);
            break;
          case 1:
            got = core::acquire_blocking(sem, core::deadline_after(std::chrono::microseconds(50)));
            break;
          default:
            got = sem.try_acquire();
            break;
        }
        if (!got) {
          ++timeouts;
          continue;
        }
        int now = ++inside;
        int m = max_inside.load();
        while (now > m && !max_inside.compare_exchange_weak(m, now)) {
        }
        ++acquired;
        --inside;
        sem.release(1);
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_LE(max_inside.load(), kUnits);
  EXPECT_GT(acquired.load(), 0);
  EXPECT_EQ(sem.value(), kUnits);
}

TEST(WaiterStress, SemaphoreCoreTimedWaitersRacingReleases) {
  // Many waiters with tiny deadlines race against releases: a unit granted to a waiter that
  // was timing out must be owned by it (disarm returns true), so no unit is lost or doubled.
  const auto iters = stress_iters() / 4 + 1;
  core::SemaphoreCore sem(0);
  std::atomic<std::int64_t> taken{0};
  std::atomic<std::int64_t> released{0};
  std::atomic<bool> stop{false};
  Budget budget;
  std::vector<std::thread> waiters;
  for (int t = 0; t < 4; ++t) {
    waiters.emplace_back([&] {
      while (!stop.load()) {
        if (core::acquire_blocking(sem, core::deadline_after(std::chrono::microseconds(20)))) ++taken;
      }
    });
  }
  std::thread releaser([&] {
    for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) {
      sem.release(1);
      ++released;
      if (i % 16 == 0) std::this_thread::yield();
    }
  });
  releaser.join();
  // Let waiters drain what is left, then stop them.
  concur::test::eventually([&] { return taken.load() == released.load(); }, 10s);
  stop = true;
  for (auto& w : waiters) w.join();
  EXPECT_EQ(taken.load() + sem.value(), released.load());
}

TEST(WaiterStress, EventCoreSetWakesEveryWaiterEachRound) {
  const auto rounds = stress_iters() / 20 + 1;
  constexpr int kWaiters = 4;
  Budget budget;
  std::int64_t done_rounds = 0;
  std::atomic<int> failures{0};
  for (std::int64_t r = 0; r < rounds && !budget.exhausted(); ++r) {
    core::EventCore ev;
    std::atomic<int> woke{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < kWaiters; ++i) {
      ts.emplace_back([&, i] {
        bool ok =
            (i % 2 == 0) ? core::wait_blocking(ev, std::nullopt) : core::wait_blocking(ev, core::deadline_after(30s));
        if (ok) ++woke;
      });
    }
    if (r % 2 == 0) std::this_thread::yield();
    ev.set();
    for (auto& t : ts) t.join();
    if (woke.load() != kWaiters) ++failures;
    ++done_rounds;
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(done_rounds, 0);
}

TEST(WaiterStress, EventCoreTimedWaitsRacingSetAndClear) {
  // Waiters with short deadlines race set()/clear(); no waiter may hang or see a torn list.
  const auto iters = stress_iters();
  core::EventCore ev;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> waits{0};
  Budget budget;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      while (!stop.load()) {
        (void)core::wait_blocking(ev, core::deadline_after(std::chrono::microseconds(30)));
        ++waits;
      }
    });
  }
  // Keep toggling until the count is reached and the waiters have actually waited a few times.
  for (std::int64_t i = 0; (i < iters || waits.load() < 8) && !budget.exhausted(); ++i) {
    ev.set();
    ev.clear();
  }
  stop = true;
  ev.set();
  for (auto& t : ts) t.join();
  EXPECT_TRUE(ev.is_set());
  EXPECT_GT(waits.load(), 0);
}

TEST(WaiterStress, ExactlyOneRacingSetWins) {
  const auto rounds = stress_iters() / 20 + 1;
  Budget budget;
  int bad = 0;
  for (std::int64_t r = 0; r < rounds && !budget.exhausted(); ++r) {
    core::EventCore ev;
    std::atomic<int> winners{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int i = 0; i < 3; ++i) {
      ts.emplace_back([&] {
        while (!go.load()) {
        }
        if (ev.set()) ++winners;
      });
    }
    go = true;
    for (auto& t : ts) t.join();
    if (winners.load() != 1) ++bad;
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace
