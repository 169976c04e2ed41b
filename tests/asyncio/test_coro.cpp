// asyncio.Coro<T>: values, void, exceptions, laziness, move semantics, and the trampoline
// (a million synchronous co_awaits, a 100,000-deep recursion) in every build type.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../support/helpers.hpp"
#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;

namespace {

aio::Coro<int> value(int v) { co_return v; }
aio::Coro<void> nothing(int& side) {
  ++side;
  co_return;
}
aio::Coro<int> thrower() {
  throw std::runtime_error("from coro");
  co_return 0;
}
aio::Coro<std::string> text() { co_return std::string(100, 'x'); }
aio::Coro<std::unique_ptr<int>> move_only(int v) { co_return std::make_unique<int>(v); }

aio::Coro<int> add(int a, int b) {
  int x = co_await value(a);
  int y = co_await value(b);
  co_return x + y;
}

aio::Coro<long> deep(int n) {
  if (n == 0) co_return 0;
  long below = co_await deep(n - 1);
  co_return below + 1;
}

aio::Coro<long> deep_throw(int n) {
  if (n == 0) throw std::runtime_error("bottom");
  co_return co_await deep_throw(n - 1) + 1;
}

aio::Coro<long> deep_sleep(int n) {
  if (n == 0) {
    co_await aio::sleep(0s);
    co_return 0;
  }
  co_return co_await deep_sleep(n - 1) + 1;
}

aio::Coro<void> deep_wait_forever(int n, int& reached) {
  if (n == 0) {
    ++reached;
    co_await aio::sleep(1h);
    co_return;
  }
  co_await deep_wait_forever(n - 1, reached);
}

struct Sentinel {
  bool* flag;
  ~Sentinel() { *flag = true; }
};

}  // namespace

TEST(Coro, ReturnsAValue) { EXPECT_EQ(aio::run(add(20, 22)), 42); }

TEST(Coro, VoidCoroutine) {
  int side = 0;
  aio::run(nothing(side));
  EXPECT_EQ(side, 1);
}

TEST(Coro, NonTrivialAndMoveOnlyResults) {
  EXPECT_EQ(aio::run(text()), std::string(100, 'x'));
  auto p = aio::run(move_only(5));
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 5);
}

TEST(Coro, ExceptionPropagatesThroughAwait) {
  auto outer = []() -> aio::Coro<std::string> {
    try {
      co_await thrower();
    } catch (const std::runtime_error& e) {
      co_return std::string("caught: ") + e.what();
    }
    co_return "no";
  };
  EXPECT_EQ(aio::run(outer()), "caught: from coro");
  EXPECT_THROW(aio::run(thrower()), std::runtime_error);
}

TEST(Coro, IsLazy) {
  bool started = false;
  auto body = [&]() -> aio::Coro<void> {
    started = true;
    co_return;
  };
  {
    aio::Coro<void> c = body();
    EXPECT_TRUE(c.valid());
    EXPECT_FALSE(c.done());
    EXPECT_FALSE(started);
  }  // destroyed without running
  EXPECT_FALSE(started);
  aio::run(body());
  EXPECT_TRUE(started);
}

TEST(Coro, DestroyingAnUnstartedCoroRunsParameterDestructors) {
  bool destroyed = false;
  auto body = [](std::shared_ptr<Sentinel>) -> aio::Coro<void> { co_return; };
  {
    auto s = std::make_shared<Sentinel>(Sentinel{&destroyed});
    aio::Coro<void> c = body(std::move(s));
  }
  EXPECT_TRUE(destroyed);
}

TEST(Coro, MoveSemantics) {
  aio::Coro<int> a = value(1);
  EXPECT_TRUE(a.valid());
  aio::Coro<int> b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_TRUE(b.valid());
  aio::Coro<int> c = value(2);
  c = std::move(b);  // the old frame of c is destroyed
  EXPECT_TRUE(c.valid());
  EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
  aio::Coro<int> empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_FALSE(empty.done());
  c = std::move(c);  // self-move keeps it
  EXPECT_TRUE(c.valid());
  EXPECT_EQ(aio::run(std::move(c)), 1);
  std::vector<aio::Coro<int>> v;
  for (int i = 0; i < 100; ++i) v.push_back(value(i));  // reallocation moves them
  auto sum = [](std::vector<aio::Coro<int>> cs) -> aio::Coro<int> {
    int s = 0;
    for (auto& one : cs) s += co_await std::move(one);
    co_return s;
  };
  EXPECT_EQ(aio::run(sum(std::move(v))), 4950);
}

TEST(Coro, AwaitCoroHeldInAVariable) {
  // Python's `c = f(); await c`. (std::move: GCC 12 copies an lvalue awaiter returned by
  // await_transform by reference, and Coro is move-only.)
  auto outer = []() -> aio::Coro<int> {
    aio::Coro<int> c = value(9);
    int v = co_await std::move(c);
    EXPECT_FALSE(c.valid());  // moved into the await
    co_return v;
  };
  EXPECT_EQ(aio::run(outer()), 9);
}

TEST(Coro, MillionSynchronousAwaitsInALoop) {
  auto outer = []() -> aio::Coro<long> {
    long s = 0;
    for (int i = 0; i < 1'000'000; ++i) s += co_await value(1);
    co_return s;
  };
  EXPECT_EQ(aio::run(outer()), 1'000'000);
}

TEST(Coro, MillionSynchronousVoidAwaitsInALoop) {
  auto outer = []() -> aio::Coro<int> {
    int side = 0;
    for (int i = 0; i < 1'000'000; ++i) co_await nothing(side);
    co_return side;
  };
  EXPECT_EQ(aio::run(outer()), 1'000'000);
}

TEST(Coro, HundredThousandDeepRecursion) { EXPECT_EQ(aio::run(deep(100'000)), 100'000); }

TEST(Coro, HundredThousandDeepRecursionTwiceInOneTask) {
  auto outer = []() -> aio::Coro<long> {
    long a = co_await deep(100'000);
    long b = co_await deep(100'000);
    co_return a + b;
  };
  EXPECT_EQ(aio::run(outer()), 200'000);
}

TEST(Coro, DeepRecursionThatSuspendsAtTheBottom) { EXPECT_EQ(aio::run(deep_sleep(100'000)), 100'000); }

TEST(Coro, ExceptionThroughTenThousandFrames) { EXPECT_THROW(aio::run(deep_throw(10'000)), std::runtime_error); }

TEST(Coro, CancellingADeeplySuspendedChainUnwindsIt) {
  int reached = 0;
  auto amain = [&]() -> aio::Coro<bool> {
    aio::Task<void> t = aio::create_task(deep_wait_forever(100'000, reached));
    while (reached == 0) co_await aio::sleep(0s);
    t.cancel();
    try {
      co_await t;
    } catch (const concur::CancelledError&) {
      co_return t.cancelled();
    }
    co_return false;
  };
  EXPECT_TRUE(aio::run(amain()));
  EXPECT_EQ(reached, 1);
}

TEST(Coro, ManySmallCoroutinesReuseFrames) {
  // Exercises the frame pool: allocation and release in a steady state.
  auto outer = []() -> aio::Coro<long> {
    long s = 0;
    for (int round = 0; round < 100; ++round) {
      std::vector<aio::Coro<int>> cs;
      for (int i = 0; i < 1000; ++i) cs.push_back(value(i));
      for (auto& c : cs) s += co_await std::move(c);
    }
    co_return s;
  };
  EXPECT_EQ(aio::run(outer()), 100L * 499500);
}

TEST(Coro, FramesFreedOnAnotherThreadThanAllocated) {
  // A Coro created on one thread and destroyed (unstarted) on another must not corrupt either pool.
  std::vector<aio::Coro<int>> cs;
  for (int i = 0; i < 1000; ++i) cs.push_back(value(i));
  std::thread([&] { cs.clear(); }).join();
  EXPECT_EQ(aio::run(add(1, 2)), 3);
}

TEST(Coro, FramesOfExitedThreadsAreReusedIntact) {
  // Threads allocate frames (large and small classes), hand some to other threads, and exit:
  // their free blocks go to the shared depot. Later threads draw on it; every frame must keep
  // its own contents (no block handed out twice).
  auto big = [](int v) -> aio::Coro<std::string> {
    std::array<char, 600> pad{};
    pad[0] = static_cast<char>(v);
    co_return std::string(1, pad[0]) + std::to_string(v);
  };
  const auto rounds = concur::test::stress_iters(20);
  for (std::int64_t round = 0; round < rounds; ++round) {
    std::vector<aio::Coro<int>> handed;
    std::thread producer([&] {
      std::vector<aio::Coro<int>> mine;
      for (int i = 0; i < 3000; ++i) (i % 2 ? handed : mine).push_back(value(i));
      // `mine` is freed here, on the producer, which then exits.
    });
    producer.join();
    std::vector<std::thread> ts;
    std::vector<long> sums(2, 0);
    for (int t = 0; t < 2; ++t) {
      ts.emplace_back([&, t] {
        auto body = [&]() -> aio::Coro<long> {
          std::vector<aio::Coro<int>> cs;
          std::vector<aio::Coro<std::string>> bs;
          for (int i = 0; i < 2000; ++i) cs.push_back(value(i));
          for (int i = 0; i < 50; ++i) bs.push_back(big(i));
          long s = 0;
          for (auto& c : cs) s += co_await std::move(c);
          for (int i = 0; i < 50; ++i) {
            std::string r = co_await std::move(bs[static_cast<std::size_t>(i)]);
            if (r != std::string(1, static_cast<char>(i)) + std::to_string(i)) s = -1'000'000'000;
          }
          co_return s;
        };
        sums[static_cast<std::size_t>(t)] = aio::run(body());
      });
    }
    for (auto& th : ts) th.join();
    for (long s : sums) ASSERT_EQ(s, 1999L * 2000 / 2);
    long h = 0;
    auto drain = [&]() -> aio::Coro<void> {
      for (auto& c : handed) h += co_await std::move(c);
    };
    aio::run(drain());
    ASSERT_EQ(h, 1500L * 1500);  // the odd numbers below 3000
  }
}

namespace {
std::atomic<int> g_deep_alive{0};
struct DeepLocal {
  DeepLocal() { g_deep_alive.fetch_add(1); }
  DeepLocal(const DeepLocal&) = delete;
  DeepLocal& operator=(const DeepLocal&) = delete;
  ~DeepLocal() { g_deep_alive.fetch_sub(1); }
};
aio::Coro<int> deep_suspended(int d) {
  DeepLocal local;
  if (d == 0) {
    co_await aio::sleep(10s);
    co_return 0;
  }
  co_return 1 + co_await deep_suspended(d - 1);
}
aio::Coro<int> deep_suspended_named(int d) {
  DeepLocal local;
  if (d == 0) {
    co_await aio::sleep(10s);
    co_return 0;
  }
  aio::Coro<int> child = deep_suspended_named(d - 1);
  co_return 1 + co_await child;
}
}  // namespace

// Regression: closing a loop whose task is suspended 100,000 coroutines deep destroyed the
// frames recursively (one stack level per coroutine) and could overflow the stack.
TEST(Coro, CloseDestroysADeepSuspendedChainLeafFirst) {
  for (bool named : {false, true}) {
    g_deep_alive = 0;
    aio::EventLoop loop;
    auto t = loop.create_task(named ? deep_suspended_named(100000) : deep_suspended(100000));
    loop.call_later(20ms, [&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(g_deep_alive.load(), 100001);
    loop.close();
    EXPECT_EQ(g_deep_alive.load(), 0) << "named=" << named;
    EXPECT_TRUE(t.cancelled());
  }
}
