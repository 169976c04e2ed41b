// Stress: many tasks contending on an asyncio Lock, Semaphore, Condition and Queue while a
// canceller cancels random tasks at random points. Every unit and item must be accounted for:
// the lock is never held twice and ends free, the semaphore never exceeds its units and ends
// full, every item put is got exactly once or still in the queue. Also Event.set() racing from
// other threads against cancellations.
// CONCUR_STRESS_ITERS sets the round count; every loop is bounded in count and time.
#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;

namespace {

struct Shared {
  aio::Lock lock;
  aio::Semaphore sem{3};
  aio::Queue<int> q{4};
  int lock_holders = 0;
  int sem_holders = 0;
  bool violation = false;
  std::int64_t next_item = 0;
  std::multiset<int> put_ok;  // items whose put() returned
  std::multiset<int> got;     // items a get() returned
  std::mt19937 rng{12345};
  int cancels_caught = 0;
};

aio::Coro<void> lock_user(Shared& s, int ops) {
  for (int i = 0; i < ops; ++i) {
    try {
      auto g = co_await s.lock.lock_guard();
      if (++s.lock_holders != 1) s.violation = true;
      try {
        if (s.rng() % 2) co_await aio::sleep(0s);  // cancellable while holding: the guard releases
      } catch (...) {
        --s.lock_holders;
        throw;
      }
      --s.lock_holders;
    } catch (const concur::CancelledError&) {
      ++s.cancels_caught;
      aio::detail::current_task_base()->uncancel();
    }
  }
}

aio::Coro<void> sem_user(Shared& s, int ops) {
  for (int i = 0; i < ops; ++i) {
    try {
      co_await s.sem.acquire();
      ++s.sem_holders;
      if (s.sem_holders > 3) s.violation = true;
      try {
        if (s.rng() % 2) co_await aio::sleep(0s);
      } catch (...) {
        --s.sem_holders;
        s.sem.release();
        throw;
      }
      --s.sem_holders;
      s.sem.release();
    } catch (const concur::CancelledError&) {
      ++s.cancels_caught;
      aio::detail::current_task_base()->uncancel();
    }
  }
}

aio::Coro<void> producer(Shared& s, int ops) {
  for (int i = 0; i < ops; ++i) {
    int item = static_cast<int>(s.next_item++);
    try {
      co_await s.q.put(item);
      s.put_ok.insert(item);
    } catch (const concur::CancelledError&) {
      ++s.cancels_caught;
      aio::detail::current_task_base()->uncancel();
    }
  }
}

aio::Coro<void> consumer(Shared& s, int ops) {
  for (int i = 0; i < ops; ++i) {
    try {
      int v = co_await s.q.get();
      s.got.insert(v);
    } catch (const concur::CancelledError&) {
      ++s.cancels_caught;
      aio::detail::current_task_base()->uncancel();
    }
  }
}

}  // namespace

TEST(AsyncioLocksStress, RandomCancellationsLoseNothing) {
  const auto rounds = concur::test::stress_iters(40);
  concur::test::Budget budget(std::chrono::seconds(20));
  int total_cancels = 0;
  for (std::int64_t round = 0; round < rounds && !budget.exhausted(); ++round) {
    Shared s;
    s.rng.seed(static_cast<unsigned>(round) * 7919U + 1U);
    auto body = [&]() -> aio::Coro<void> {
      std::vector<aio::Task<void>> ts;
      for (int i = 0; i < 6; ++i) ts.push_back(aio::create_task(lock_user(s, 30)));
      for (int i = 0; i < 6; ++i) ts.push_back(aio::create_task(sem_user(s, 30)));
      for (int i = 0; i < 5; ++i) ts.push_back(aio::create_task(producer(s, 30)));
      for (int i = 0; i < 5; ++i) ts.push_back(aio::create_task(consumer(s, 30)));
      // Cancel random tasks at random moments while they run.
      for (int k = 0; k < 300; ++k) {
        co_await aio::sleep(0s);
        auto& t = ts[s.rng() % ts.size()];
        if (!t.done() && s.rng() % 3 == 0) t.cancel();
      }
      // Consumers may be starved by cancelled puts: drain with get_nowait-free accounting by
      // feeding sentinels until every consumer finished.
      for (int guard = 0; guard < 100000; ++guard) {
        bool all_done = true;
        for (auto& t : ts) all_done = all_done && t.done();
        if (all_done) break;
        if (s.q.empty()) {
          // Wake starving consumers with fresh items (accounted as puts).
          int item = static_cast<int>(s.next_item++);
          if (!s.q.full()) {
            s.q.put_nowait(item);
            s.put_ok.insert(item);
          }
        }
        if (s.q.full()) {
          // Let starving producers through.
          s.got.insert(s.q.get_nowait());
        }
        co_await aio::sleep(0s);
      }
      for (auto& t : ts) {
        try {
          co_await t;
        } catch (const concur::CancelledError&) {
        }
      }
    };
    aio::run(body());
    EXPECT_FALSE(s.violation) << "round " << round;
    EXPECT_FALSE(s.lock.locked()) << "round " << round;
    EXPECT_EQ(s.sem.value(), 3) << "round " << round;
    EXPECT_EQ(s.lock_holders, 0);
    EXPECT_EQ(s.sem_holders, 0);
    // Every item whose put() returned was got exactly once or is still queued.
    std::multiset<int> accounted = s.got;
    while (!s.q.empty()) accounted.insert(s.q.get_nowait());
    EXPECT_EQ(accounted, s.put_ok) << "round " << round;
    total_cancels += s.cancels_caught;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(total_cancels, 0);
}

TEST(AsyncioLocksStress, ConditionNotificationsSurviveCancellations) {
  // Waiters wait for a counter to pass their target; notifications keep coming; random waiters
  // get cancelled. Every non-cancelled waiter must finish, and the lock must end free.
  const auto rounds = concur::test::stress_iters(40);
  concur::test::Budget budget(std::chrono::seconds(15));
  for (std::int64_t round = 0; round < rounds && !budget.exhausted(); ++round) {
    aio::Condition cond;
    int counter = 0;
    int finished = 0, cancelled = 0;
    std::mt19937 rng(static_cast<unsigned>(round) + 99U);
    auto waiter = [&](int target) -> aio::Coro<void> {
      auto g = co_await cond.lock_guard();
      co_await cond.wait_for([&] { return counter >= target; });
      ++finished;
    };
    auto body = [&]() -> aio::Coro<void> {
      std::vector<aio::Task<void>> ts;
      for (int i = 0; i < 20; ++i) ts.push_back(aio::create_task(waiter(static_cast<int>(rng() % 50))));
      for (int k = 0; k < 60; ++k) {
        {
          auto g = co_await cond.lock_guard();
          ++counter;
          cond.notify(1 + rng() % 3);
        }
        auto& t = ts[rng() % ts.size()];
        if (!t.done() && rng() % 4 == 0) t.cancel();
        co_await aio::sleep(0s);
      }
      {
        auto g = co_await cond.lock_guard();
        cond.notify_all();
      }
      for (auto& t : ts) {
        try {
          co_await t;
        } catch (const concur::CancelledError&) {
          ++cancelled;
        }
      }
    };
    aio::run(body());
    EXPECT_EQ(finished + cancelled, 20) << "round " << round;
    EXPECT_FALSE(cond.locked()) << "round " << round;
    if (::testing::Test::HasFailure()) break;
  }
}

TEST(AsyncioLocksStress, EventSetFromThreadsRacesCancellation) {
  const auto rounds = concur::test::stress_iters(200);
  concur::test::Budget budget(std::chrono::seconds(15));
  int completed = 0, run_rounds = 0;
  for (std::int64_t round = 0; round < rounds && !budget.exhausted(); ++round) {
    aio::Event ev;
    std::thread setter;
    int woke = 0, cancelled = 0;
    auto waiter = [&]() -> aio::Coro<void> {
      co_await ev.wait();
      ++woke;
    };
    auto body = [&]() -> aio::Coro<void> {
      std::vector<aio::Task<void>> ts;
      for (int i = 0; i < 8; ++i) ts.push_back(aio::create_task(waiter()));
      co_await aio::sleep(0s);
      setter = std::thread([&ev] { ev.set(); });
      for (std::size_t i = 0; i < ts.size(); i += 2) ts[i].cancel();
      for (auto& t : ts) {
        try {
          co_await t;
        } catch (const concur::CancelledError&) {
          ++cancelled;
        }
      }
    };
    aio::run(body());
    setter.join();
    ++run_rounds;
    if (woke + cancelled == 8) ++completed;
  }
  EXPECT_EQ(completed, run_rounds);
}
