#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "concur/core/cancellation.hpp"

using namespace std::chrono_literals;

namespace {

TEST(Cancellation, SourceAndTokensShareState) {
  concur::CancelSource src;
  concur::CancelToken tok = src.token();
  concur::CancelSource copy = src;
  EXPECT_FALSE(src.cancelled());
  EXPECT_FALSE(tok.cancelled());
  EXPECT_NO_THROW(tok.throw_if_cancelled());
  EXPECT_NE(tok.event(), nullptr);
  EXPECT_TRUE(copy.cancel());
  EXPECT_FALSE(src.cancel());  // already requested
  EXPECT_TRUE(src.cancelled());
  EXPECT_TRUE(tok.cancelled());
  EXPECT_TRUE(tok.event()->is_set());
  EXPECT_THROW(tok.throw_if_cancelled(), concur::CancelledError);
  EXPECT_TRUE(tok.wait());
  EXPECT_TRUE(tok.wait(concur::core::deadline_after(0ms)));
}

TEST(Cancellation, DefaultTokenIsNeverCancelled) {
  concur::CancelToken tok;
  EXPECT_FALSE(tok.cancelled());
  EXPECT_EQ(tok.event(), nullptr);
  EXPECT_NO_THROW(tok.throw_if_cancelled());
  auto start = concur::core::Clock::now();
  EXPECT_FALSE(tok.wait(concur::core::deadline_after(20ms)));
  EXPECT_GE(concur::core::Clock::now() - start, 20ms);
}

TEST(Cancellation, WaitTimesOutWhenNotCancelled) {
  concur::CancelSource src;
  EXPECT_FALSE(src.token().wait(concur::core::deadline_after(20ms)));
}

TEST(Cancellation, WaitWakesOnCancelFromAnotherThread) {
  concur::CancelSource src;
  auto tok = src.token();
  std::atomic<bool> result{false};
  std::thread t([&] { result = tok.wait(concur::core::deadline_after(10s)); });
  std::this_thread::sleep_for(10ms);
  src.cancel();
  t.join();
  EXPECT_TRUE(result.load());
}

TEST(Cancellation, ExactlyOneConcurrentCancelWins) {
  for (int round = 0; round < 50; ++round) {
    concur::CancelSource src;
    std::atomic<int> winners{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i) {
      ts.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        if (src.cancel()) ++winners;
      });
    }
    go = true;
    for (auto& t : ts) t.join();
    EXPECT_EQ(winners.load(), 1) << "round " << round;
  }
}

}  // namespace
