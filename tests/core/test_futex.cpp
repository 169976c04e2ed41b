#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "concur/core/futex.hpp"

using namespace std::chrono_literals;
namespace core = concur::core;

namespace {

TEST(Futex, DeadlineAfterClampsNegativeAndHuge) {
  auto before = core::Clock::now();
  auto d0 = core::deadline_after(-5s);
  EXPECT_GE(d0, before);
  EXPECT_LE(d0, core::Clock::now());
  auto dz = core::deadline_after(0ms);
  EXPECT_LE(dz, core::Clock::now());
  auto d1 = core::deadline_after(1h);
  EXPECT_GT(d1, core::Clock::now() + 59min);
  auto dmax = core::deadline_after(std::chrono::hours::max());
  EXPECT_EQ(dmax, core::Clock::time_point::max());
}

TEST(Futex, WaitReturnsAtOnceWhenValueDiffers) {
  std::atomic<uint32_t> w{1};
  EXPECT_TRUE(core::futex_wait(w, 0, core::deadline_after(10s)));
}

TEST(Futex, WaitTimesOut) {
  std::atomic<uint32_t> w{0};
  auto start = core::Clock::now();
  EXPECT_FALSE(core::futex_wait(w, 0, core::deadline_after(20ms)));
  EXPECT_GE(core::Clock::now() - start, 20ms);
  EXPECT_FALSE(core::futex_wait(w, 0, core::Clock::now() - 1s));  // already passed
}

TEST(Futex, WakeReleasesWaiter) {
  std::atomic<uint32_t> w{0};
  std::atomic<bool> done{false};
  std::thread t([&] {
    while (w.load() == 0) core::futex_wait(w, 0, core::deadline_after(10s));
    done = true;
  });
  std::this_thread::sleep_for(10ms);
  w.store(1);
  core::futex_wake(w, 1);
  t.join();
  EXPECT_TRUE(done.load());
}

}  // namespace
