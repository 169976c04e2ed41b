#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/threading/timer.hpp"

using namespace std::chrono_literals;
namespace th = concur::threading;

namespace {

TEST(Timer, FiresAfterInterval) {
  std::atomic<int> fired{0};
  auto start = concur::core::Clock::now();
  std::atomic<std::int64_t> fired_after_ns{0};
  th::Timer t(20ms, [&] {
    fired_after_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(concur::core::Clock::now() - start).count();
    ++fired;
  });
  t.start();
  EXPECT_TRUE(t.is_alive());
  t.join();
  EXPECT_FALSE(t.is_alive());
  EXPECT_EQ(fired.load(), 1);
  EXPECT_GE(fired_after_ns.load(), std::chrono::nanoseconds(20ms).count());
}

TEST(Timer, PassesArguments) {
  std::string out;
  th::Timer t(
      1ms, [](std::string* o, std::string a, int n) { *o = a + std::to_string(n); }, &out, std::string("x"), 5);
  t.start();
  t.join();
  EXPECT_EQ(out, "x5");
}

TEST(Timer, CancelPreventsFiring) {
  std::atomic<int> fired{0};
  th::Timer t(10s, [&] { ++fired; });
  t.start();
  std::this_thread::sleep_for(5ms);
  t.cancel();
  EXPECT_TRUE(t.join(10s));  // ends promptly, long before the interval
  EXPECT_EQ(fired.load(), 0);
}

TEST(Timer, CancelBeforeStart) {
  std::atomic<int> fired{0};
  th::Timer t(1ms, [&] { ++fired; });
  t.cancel();
  t.start();
  t.join();
  EXPECT_EQ(fired.load(), 0);
}

TEST(Timer, CancelAfterFiringIsHarmless) {
  std::atomic<int> fired{0};
  th::Timer t(1ms, [&] { ++fired; });
  t.start();
  t.join();
  t.cancel();
  EXPECT_EQ(fired.load(), 1);
}

TEST(Timer, TimedJoinAndThreadHandle) {
  th::Timer t(10s, [] {});
  EXPECT_FALSE(t.thread().is_alive());
  EXPECT_THROW(t.join(), std::logic_error);  // not started
  t.start();
  EXPECT_FALSE(t.join(20ms));
  EXPECT_TRUE(t.thread().is_alive());
  EXPECT_EQ(t.thread().name().rfind("Thread-", 0), 0u);
  EXPECT_THROW(t.start(), std::logic_error);  // a Timer is a Thread: starts once
  t.cancel();
  t.join();
}

TEST(Timer, DestroyingTheTimerDoesNotCancelIt) {
  auto fired = std::make_shared<th::Event>();
  th::Thread handle;
  {
    th::Timer t(10ms, [fired] { fired->set(); });
    t.start();
    handle = t.thread();
  }
  EXPECT_TRUE(fired->wait(10s));
  EXPECT_TRUE(handle.join(10s));
}

TEST(Timer, ThrowingFunctionGoesToExcepthook) {
  std::atomic<int> hooked{0};
  th::set_excepthook([&](const th::ExceptHookArgs& a) {
    if (a.exc_value) ++hooked;
  });
  th::Timer t(1ms, [] { throw std::runtime_error("timer fn"); });
  t.start();
  t.join();
  th::set_excepthook(nullptr);
  EXPECT_EQ(hooked.load(), 1);
}

}  // namespace
