// asyncio.EventLoop: call_soon/call_later/call_at/call_soon_threadsafe, time(), run_until_complete,
// run_forever/stop, close, get_running_loop, new_event_loop, asyncio::run — on both backends.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;

namespace {

class LoopTest : public ::testing::TestWithParam<std::string> {
 protected:
  aio::LoopOptions opts() const { return aio::LoopOptions{.backend = GetParam()}; }
};

aio::Coro<int> answer() { co_return 42; }
aio::Coro<void> nap(std::chrono::milliseconds d) { co_await aio::sleep(d); }
aio::Coro<int> fail_after(std::chrono::milliseconds d) {
  co_await aio::sleep(d);
  throw std::runtime_error("boom");
}

// Sets a flag in its destructor: shows that a destroyed coroutine frame ran its locals' destructors.
struct Sentinel {
  bool* flag;
  ~Sentinel() { *flag = true; }
};

}  // namespace

TEST_P(LoopTest, BackendNameIsOneOfTheTwo) {
  aio::EventLoop loop(opts());
  std::string name = loop.backend_name();
  EXPECT_TRUE(name == "epoll" || name == "io_uring") << name;
  if (GetParam() == "epoll") {
    EXPECT_EQ(name, "epoll");
  }
}

TEST(LoopBackend, UnknownBackendIsInvalidArgument) {
  EXPECT_THROW(aio::EventLoop(aio::LoopOptions{.backend = "kqueue"}), std::invalid_argument);
}

TEST_P(LoopTest, CallSoonRunsInFifoOrder) {
  aio::EventLoop loop(opts());
  std::vector<int> order;
  for (int i = 0; i < 1000; ++i) loop.call_soon([&order, i] { order.push_back(i); });
  loop.call_soon([&loop] { loop.stop(); });
  loop.run_forever();
  ASSERT_EQ(order.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(order[i], i);
}

TEST_P(LoopTest, CallSoonFromACallbackRunsNextIteration) {
  aio::EventLoop loop(opts());
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.call_soon([&] {
      order.push_back("c");
      loop.stop();
    });
  });
  loop.call_soon([&] { order.push_back("b"); });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_P(LoopTest, CancelledHandleIsSkipped) {
  aio::EventLoop loop(opts());
  int ran = 0;
  aio::Handle h = loop.call_soon([&] { ++ran; });
  EXPECT_FALSE(h.cancelled());
  h.cancel();
  EXPECT_TRUE(h.cancelled());
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(ran, 0);
}

TEST_P(LoopTest, ThrowingCallbackIsReportedAndLoopContinues) {
  concur::test::UnraisableRecorder rec;
  aio::EventLoop loop(opts());
  bool after = false;
  loop.call_soon([] { throw std::runtime_error("callback failed"); });
  loop.call_later(1ms, [] { throw std::runtime_error("timer failed"); });
  loop.call_later(5ms, [&] {
    after = true;
    loop.stop();
  });
  loop.run_forever();
  EXPECT_TRUE(after);
  auto e = rec.get();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].what, "callback failed");
  EXPECT_EQ(e[1].what, "timer failed");
}

TEST_P(LoopTest, CallLaterFiresInDeadlineOrder) {
  aio::EventLoop loop(opts());
  std::vector<int> order;
  double t0 = loop.time();
  double fired_at = 0;
  loop.call_later(30ms, [&] {
    order.push_back(30);
    fired_at = loop.time();
    loop.stop();
  });
  loop.call_later(10ms, [&] { order.push_back(10); });
  loop.call_later(20ms, [&] { order.push_back(20); });
  loop.call_later(10ms, [&] { order.push_back(11); });  // same deadline: scheduling order
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<int>{10, 11, 20, 30}));
  EXPECT_GE(fired_at - t0, 0.030 - 1e-4);
}

TEST_P(LoopTest, CallLaterCancel) {
  aio::EventLoop loop(opts());
  int ran = 0;
  aio::TimerHandle h = loop.call_later(5ms, [&] { ++ran; });
  EXPECT_FALSE(h.cancelled());
  EXPECT_GT(h.when(), loop.time());
  h.cancel();
  EXPECT_TRUE(h.cancelled());
  h.cancel();  // twice is harmless
  loop.call_later(20ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(ran, 0);
}

TEST_P(LoopTest, CallLaterCancelFromAnotherTimer) {
  aio::EventLoop loop(opts());
  int ran = 0;
  aio::TimerHandle victim = loop.call_later(20ms, [&] { ++ran; });
  loop.call_later(5ms, [&] { victim.cancel(); });
  loop.call_later(40ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(ran, 0);
}

TEST_P(LoopTest, CallLaterZeroAndNegativeDelayRunSoon) {
  aio::EventLoop loop(opts());
  std::vector<int> order;
  loop.call_later(0ms, [&] { order.push_back(0); });
  loop.call_later(-5ms, [&] { order.push_back(-5); });
  loop.call_later(1ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<int>{-5, 0}));
}

TEST_P(LoopTest, CallAtUsesLoopTime) {
  aio::EventLoop loop(opts());
  double start = loop.time();
  double fired = 0;
  aio::TimerHandle h = loop.call_at(start + 0.025, [&] {
    fired = loop.time();
    loop.stop();
  });
  EXPECT_NEAR(h.when(), start + 0.025, 1e-6);
  loop.run_forever();
  EXPECT_GE(fired, start + 0.025 - 1e-4);
  EXPECT_LT(fired, start + 5.0);
}

TEST_P(LoopTest, TimeIsMonotonic) {
  aio::EventLoop loop(opts());
  double prev = loop.time();
  for (int i = 0; i < 100000; ++i) {
    double now = loop.time();
    ASSERT_GE(now, prev);
    prev = now;
  }
  std::int64_t a = loop.now_ns();
  std::this_thread::sleep_for(2ms);
  EXPECT_GE(loop.now_ns() - a, 2'000'000);
}

TEST_P(LoopTest, HundredThousandTimersScheduledCancelledFiredInOrder) {
  aio::EventLoop loop(opts());
  constexpr int kN = 100000;
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> us(0, 50000);
  struct Fired {
    std::int64_t when_ns;
    int id;
  };
  std::vector<Fired> fired;
  fired.reserve(kN);
  std::vector<aio::TimerHandle> handles;
  handles.reserve(kN);
  std::vector<std::int64_t> deadlines(kN);
  for (int i = 0; i < kN; ++i) {
    auto d = std::chrono::microseconds(us(rng));
    handles.push_back(loop.call_later(d, [&fired, &handles, i] {
      fired.push_back({static_cast<std::int64_t>(handles[i].when() * 1e9), i});
    }));
  }
  int cancelled = 0;
  for (int i = 0; i < kN; i += 3) {
    handles[i].cancel();
    ++cancelled;
  }
  loop.call_later(60ms, [&] { loop.stop(); });
  loop.run_forever();
  ASSERT_EQ(static_cast<int>(fired.size()), kN - cancelled);
  for (std::size_t k = 1; k < fired.size(); ++k) {
    ASSERT_LE(fired[k - 1].when_ns, fired[k].when_ns) << "at " << k;
    if (fired[k - 1].when_ns == fired[k].when_ns) {
      ASSERT_LT(fired[k - 1].id, fired[k].id);
    }
  }
  for (auto& f : fired) ASSERT_NE(f.id % 3, 0);
}

TEST_P(LoopTest, CallSoonThreadsafeWakesASleepingLoop) {
  aio::EventLoop loop(opts());
  std::atomic<bool> ran{false};
  std::thread other([&] {
    std::this_thread::sleep_for(30ms);
    loop.call_soon_threadsafe([&] {
      ran = true;
      loop.stop();
    });
  });
  auto t0 = std::chrono::steady_clock::now();
  loop.run_forever();  // nothing else to do: the loop blocks in the backend until woken
  auto took = std::chrono::steady_clock::now() - t0;
  other.join();
  EXPECT_TRUE(ran);
  EXPECT_LT(took, 5s);
}

TEST_P(LoopTest, CallSoonThreadsafeWakesALoopWaitingForAFarTimer) {
  aio::EventLoop loop(opts());
  loop.call_later(1h, [] {});
  std::thread other([&] {
    std::this_thread::sleep_for(20ms);
    loop.call_soon_threadsafe([&] { loop.stop(); });
  });
  auto t0 = std::chrono::steady_clock::now();
  loop.run_forever();
  other.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST_P(LoopTest, CallSoonThreadsafeFromManyThreadsRunsEachOnce) {
  aio::EventLoop loop(opts());
  constexpr int kThreads = 4, kPer = 5000;
  std::vector<int> counts(kThreads * kPer, 0);  // loop thread only
  int total = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        loop.call_soon_threadsafe([&, id = t * kPer + i] {
          ++counts[id];
          if (++total == kThreads * kPer) loop.stop();
        });
      }
    });
  }
  loop.run_forever();
  for (auto& t : ts) t.join();
  EXPECT_EQ(total, kThreads * kPer);
  for (int c : counts) ASSERT_EQ(c, 1);
}

TEST_P(LoopTest, CallSoonThreadsafeBeforeRunIsKept) {
  aio::EventLoop loop(opts());
  int ran = 0;
  std::thread([&] {
    loop.call_soon_threadsafe([&] {
      ++ran;
      loop.stop();
    });
  }).join();
  loop.run_forever();
  EXPECT_EQ(ran, 1);
}

TEST_P(LoopTest, RunUntilCompleteReturnsResult) {
  aio::EventLoop loop(opts());
  EXPECT_EQ(loop.run_until_complete(answer()), 42);
  EXPECT_FALSE(loop.is_running());
  // Again on the same loop, and with a Task.
  aio::Task<int> t = loop.create_task(answer(), "t");
  EXPECT_EQ(loop.run_until_complete(t), 42);
  EXPECT_TRUE(t.done());
}

TEST_P(LoopTest, RunUntilCompleteRethrows) {
  aio::EventLoop loop(opts());
  EXPECT_THROW(loop.run_until_complete(fail_after(1ms)), std::runtime_error);
  EXPECT_FALSE(loop.is_running());
  EXPECT_EQ(loop.run_until_complete(answer()), 42);  // still usable
}

TEST_P(LoopTest, RunUntilCompleteStoppedEarlyIsLogicError) {
  aio::EventLoop loop(opts());
  auto long_one = []() -> aio::Coro<int> {
    co_await aio::sleep(1h);
    co_return 1;
  };
  loop.call_later(5ms, [&] { loop.stop(); });
  EXPECT_THROW(loop.run_until_complete(long_one()), std::logic_error);
  loop.cancel_all_tasks();
}

TEST_P(LoopTest, RunForeverAndStopFromATask) {
  aio::EventLoop loop(opts());
  int steps = 0;
  auto body = [&]() -> aio::Coro<void> {
    for (int i = 0; i < 3; ++i) {
      co_await aio::sleep(1ms);
      ++steps;
    }
    aio::get_running_loop().stop();
  };
  aio::Task<void> t = loop.create_task(body());
  EXPECT_FALSE(loop.is_running());
  loop.run_forever();
  EXPECT_EQ(steps, 3);
  EXPECT_FALSE(loop.is_running());
  // stop() makes run_forever return after the current iteration, and the loop can run again.
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
}

TEST_P(LoopTest, IsRunningAndGetRunningLoopInside) {
  aio::EventLoop loop(opts());
  bool running = false;
  aio::EventLoop* seen = nullptr;
  loop.call_soon([&] {
    running = loop.is_running();
    seen = &aio::get_running_loop();
    loop.stop();
  });
  loop.run_forever();
  EXPECT_TRUE(running);
  EXPECT_EQ(seen, &loop);
  EXPECT_EQ(aio::running_loop(), nullptr);
}

TEST(Loop, GetRunningLoopOutsideIsLogicError) {
  EXPECT_THROW(aio::get_running_loop(), std::logic_error);
  EXPECT_EQ(aio::running_loop(), nullptr);
}

TEST(Loop, CreateTaskOutsideALoopIsLogicError) { EXPECT_THROW(aio::create_task(answer()), std::logic_error); }

TEST_P(LoopTest, CloseWhileRunningIsLogicError) {
  aio::EventLoop loop(opts());
  bool threw = false;
  loop.call_soon([&] {
    try {
      loop.close();
    } catch (const std::logic_error&) {
      threw = true;
    }
    loop.stop();
  });
  loop.run_forever();
  EXPECT_TRUE(threw);
  EXPECT_FALSE(loop.is_closed());
  loop.close();
  EXPECT_TRUE(loop.is_closed());
  loop.close();  // idempotent
}

TEST_P(LoopTest, ClosedLoopRefusesWork) {
  aio::EventLoop loop(opts());
  loop.close();
  EXPECT_THROW(loop.call_soon([] {}), std::logic_error);
  EXPECT_THROW(loop.call_later(1ms, [] {}), std::logic_error);
  EXPECT_THROW(loop.call_soon_threadsafe([] {}), std::logic_error);
  EXPECT_THROW(loop.run_forever(), std::logic_error);
}

TEST_P(LoopTest, RunningTwoLoopsOnOneThreadIsLogicError) {
  aio::EventLoop outer(opts());
  aio::EventLoop inner(opts());
  bool threw_inner = false, threw_self = false;
  outer.call_soon([&] {
    try {
      inner.run_forever();
    } catch (const std::logic_error&) {
      threw_inner = true;
    }
    try {
      outer.run_forever();
    } catch (const std::logic_error&) {
      threw_self = true;
    }
    outer.stop();
  });
  outer.run_forever();
  EXPECT_TRUE(threw_inner);
  EXPECT_TRUE(threw_self);
  EXPECT_EQ(aio::running_loop(), nullptr);
}

TEST_P(LoopTest, ClosingWithPendingTasksDestroysThem) {
  auto loop = aio::new_event_loop(opts());
  bool destroyed = false, body_after_sleep = false, waiter_destroyed = false;
  auto sleeper = [&]() -> aio::Coro<void> {
    Sentinel s{&destroyed};
    co_await aio::sleep(1h);
    body_after_sleep = true;
  };
  aio::Task<void> pending = loop->create_task(sleeper(), "sleeper");
  auto waiter = [&](aio::Task<void> t) -> aio::Coro<void> {
    Sentinel s{&waiter_destroyed};
    co_await t;
  };
  aio::Task<void> w = loop->create_task(waiter(pending), "waiter");
  int ran = 0;
  loop->call_later(1h, [&] { ++ran; });
  loop->run_until_complete(nap(5ms));
  EXPECT_EQ(loop->pending_task_count(), 2u);
  std::string dump;
  loop->call_soon([&] {
    dump = loop->dump_tasks();
    loop->stop();
  });
  loop->run_forever();
  EXPECT_NE(dump.find("sleeper"), std::string::npos) << dump;
  EXPECT_NE(dump.find("waiter"), std::string::npos) << dump;
  EXPECT_FALSE(destroyed);
  loop->close();
  EXPECT_TRUE(destroyed);
  EXPECT_TRUE(waiter_destroyed);
  EXPECT_FALSE(body_after_sleep);
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(loop->pending_task_count(), 0u);
  EXPECT_TRUE(pending.done());
  EXPECT_TRUE(pending.cancelled());
  loop.reset();  // the handles outlive the loop: fine
  EXPECT_TRUE(w.done());
}

TEST_P(LoopTest, DestroyingAnUnclosedLoopClosesIt) {
  bool destroyed = false;
  {
    aio::EventLoop loop(opts());
    auto sleeper = [&]() -> aio::Coro<void> {
      Sentinel s{&destroyed};
      co_await aio::sleep(1h);
    };
    loop.create_task(sleeper());  // handle dropped at once: the loop still owns the task
    loop.run_until_complete(nap(2ms));
    EXPECT_FALSE(destroyed);
  }
  EXPECT_TRUE(destroyed);
}

TEST_P(LoopTest, AsyncioRunReturnsAndCancelsLeftovers) {
  bool cancelled_seen = false;
  auto leftover = [&]() -> aio::Coro<void> {
    try {
      co_await aio::sleep(1h);
    } catch (const concur::CancelledError&) {
      cancelled_seen = true;
      throw;
    }
  };
  auto amain = [&]() -> aio::Coro<int> {
    aio::create_task(leftover(), "leftover");
    co_await aio::sleep(1ms);
    co_return 7;
  };
  EXPECT_EQ(aio::run(amain(), opts()), 7);
  EXPECT_TRUE(cancelled_seen);  // asyncio.run cancels the remaining tasks, which see CancelledError
  EXPECT_EQ(aio::running_loop(), nullptr);
}

TEST_P(LoopTest, AsyncioRunRethrows) {
  EXPECT_THROW(aio::run(fail_after(1ms), opts()), std::runtime_error);
  EXPECT_EQ(aio::running_loop(), nullptr);
}

TEST_P(LoopTest, NestedAsyncioRunIsLogicError) {
  auto amain = [&]() -> aio::Coro<bool> {
    try {
      aio::run(answer());
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(aio::run(amain(), opts()));
}

TEST_P(LoopTest, RunUntilCompleteInsideARunningLoopIsLogicError) {
  auto amain = [&]() -> aio::Coro<bool> {
    try {
      aio::get_running_loop().run_until_complete(answer());
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(aio::run(amain(), opts()));
}

TEST_P(LoopTest, DebugModeReportsSlowCallbacks) {
  aio::LoopOptions o = opts();
  o.debug = true;
  o.slow_callback_duration = 1ms;
  aio::EventLoop loop(o);
  EXPECT_TRUE(loop.debug());
  ::testing::internal::CaptureStderr();
  loop.call_soon([] { std::this_thread::sleep_for(5ms); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("took"), std::string::npos) << err;
}

TEST_P(LoopTest, LoopsOnSeveralThreadsAreIndependent) {
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&, i] {
      auto work = [](int v) -> aio::Coro<int> {
        co_await aio::sleep(2ms);
        co_return v * 2;
      };
      if (aio::run(work(i), aio::LoopOptions{.backend = GetParam()}) == i * 2) ++ok;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 4);
}

INSTANTIATE_TEST_SUITE_P(Backends, LoopTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
