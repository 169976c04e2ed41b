#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/threading/event.hpp"
#include "concur/threading/thread.hpp"

using namespace std::chrono_literals;
namespace th = concur::threading;

namespace {

TEST(Event, SetClearIsSet) {
  th::Event ev;
  EXPECT_FALSE(ev.is_set());
  ev.set();
  EXPECT_TRUE(ev.is_set());
  ev.set();  // idempotent
  EXPECT_TRUE(ev.is_set());
  ev.clear();
  EXPECT_FALSE(ev.is_set());
  ev.clear();
  EXPECT_FALSE(ev.is_set());
}

TEST(Event, WaitOnSetEventReturnsAtOnce) {
  th::Event ev;
  ev.set();
  EXPECT_TRUE(ev.wait());
  EXPECT_TRUE(ev.wait(0ms));
  EXPECT_TRUE(ev.wait(10s));
}

TEST(Event, WaitTimesOutReturningFalse) {
  th::Event ev;
  auto start = concur::core::Clock::now();
  EXPECT_FALSE(ev.wait(20ms));
  EXPECT_GE(concur::core::Clock::now() - start, 20ms);
  EXPECT_FALSE(ev.wait(0ms));
  EXPECT_FALSE(ev.wait(-1s));
}

TEST(Event, SetWakesEveryWaiter) {
  th::Event ev;
  std::atomic<int> woke{0};
  std::vector<th::Thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      if (ev.wait(10s)) ++woke;
    });
    ts.back().start();
  }
  std::this_thread::sleep_for(20ms);
  int early = woke.load();
  ev.set();
  for (auto& t : ts) t.join();
  EXPECT_EQ(early, 0);
  EXPECT_EQ(woke.load(), 4);
}

TEST(Event, UntimedWaitWakesOnSet) {
  th::Event ev;
  std::atomic<bool> r{false};
  th::Thread t([&] { r = ev.wait(); });
  t.start();
  std::this_thread::sleep_for(10ms);
  ev.set();
  t.join();
  EXPECT_TRUE(r.load());
}

TEST(Event, ClearAfterSetDoesNotUnwakeWaiters) {
  th::Event ev;
  std::atomic<int> waiting{0};
  std::atomic<int> result{-1};
  th::Thread t([&] {
    ++waiting;
    result = ev.wait(10s) ? 1 : 0;
  });
  t.start();
  ASSERT_TRUE(concur::test::eventually([&] { return waiting.load() == 1; }));
  std::this_thread::sleep_for(50ms);  // let it park
  ev.set();
  ev.clear();
  t.join();
  EXPECT_EQ(result.load(), 1);
  EXPECT_FALSE(ev.is_set());
}

TEST(Event, CoreIsTheSharedEventCore) {
  th::Event ev;
  ev.core().set();
  EXPECT_TRUE(ev.is_set());
  ev.clear();
  EXPECT_FALSE(ev.core().is_set());
}

}  // namespace
