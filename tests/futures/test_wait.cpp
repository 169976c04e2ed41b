// concurrent.futures.wait: ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, timeouts.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "concur/futures.hpp"
#include "concur/threading.hpp"

namespace cf = concur::futures;
namespace th = concur::threading;
using namespace std::chrono_literals;

namespace {

struct Promises {
  explicit Promises(int n) : ps(static_cast<std::size_t>(n)) {
    for (auto& p : ps) fs.push_back(p.get_future());
  }
  std::vector<cf::Promise<int>> ps;
  std::vector<cf::Future<int>> fs;
};

/// Runs `fn` on a helper thread after `delay`; joins on destruction.
class Later {
 public:
  template <class F>
  Later(std::chrono::milliseconds delay, F fn)
      : t_([delay, fn = std::move(fn)]() mutable {
          std::this_thread::sleep_for(delay);
          fn();
        }) {}
  ~Later() { t_.join(); }
  Later(const Later&) = delete;
  Later& operator=(const Later&) = delete;

 private:
  std::thread t_;
};

}  // namespace

TEST(Wait, AllCompletedWaitsForEveryFuture) {
  cf::ThreadPoolExecutor pool(3);
  std::vector<cf::Future<int>> fs;
  for (int i = 0; i < 6; ++i)
    fs.push_back(pool.submit([i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(2 * i));
      return i;
    }));
  auto [done, not_done] = cf::wait(fs);
  EXPECT_TRUE(not_done.empty());
  ASSERT_EQ(done.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(done[static_cast<std::size_t>(i)] == fs[static_cast<std::size_t>(i)]);  // input order
    EXPECT_TRUE(done[static_cast<std::size_t>(i)].done());
  }
}

TEST(Wait, AllCompletedIsTheDefault) {
  Promises p(2);
  Later l(20ms, [&] {
    p.ps[0].set_result(0);
    p.ps[1].set_result(1);
  });
  auto r = cf::wait(p.fs, {.timeout = 10s});
  EXPECT_EQ(r.done.size(), 2u);
  EXPECT_TRUE(r.not_done.empty());
}

TEST(Wait, AllCompletedCountsExceptionsAndCancellationsAsDone) {
  Promises p(3);
  p.ps[0].set_result(1);
  p.ps[1].set_exception(std::runtime_error("x"));
  p.fs[2].cancel();
  auto [done, not_done] = cf::wait(p.fs, {.timeout = 1s, .return_when = cf::ALL_COMPLETED});
  EXPECT_EQ(done.size(), 3u);
  EXPECT_TRUE(not_done.empty());
}

TEST(Wait, TimeoutReturnsPartialSetsWithoutThrowing) {
  Promises p(4);
  p.ps[1].set_result(1);
  p.ps[3].set_result(3);
  cf::DoneAndNotDone<int> r;
  EXPECT_NO_THROW(r = cf::wait(p.fs, {.timeout = 30ms}));
  ASSERT_EQ(r.done.size(), 2u);
  ASSERT_EQ(r.not_done.size(), 2u);
  EXPECT_TRUE(r.done[0] == p.fs[1]);
  EXPECT_TRUE(r.done[1] == p.fs[3]);
  EXPECT_TRUE(r.not_done[0] == p.fs[0]);
  EXPECT_TRUE(r.not_done[1] == p.fs[2]);
}

TEST(Wait, TimeoutWithNothingDone) {
  Promises p(2);
  for (auto when : {cf::FIRST_COMPLETED, cf::FIRST_EXCEPTION, cf::ALL_COMPLETED}) {
    auto r = cf::wait(p.fs, {.timeout = 20ms, .return_when = when});
    EXPECT_TRUE(r.done.empty());
    EXPECT_EQ(r.not_done.size(), 2u);
  }
}

TEST(Wait, ZeroTimeoutPolls) {
  Promises p(2);
  p.ps[0].set_result(0);
  auto r = cf::wait(p.fs, {.timeout = 0ms});
  EXPECT_EQ(r.done.size(), 1u);
  EXPECT_EQ(r.not_done.size(), 1u);
}

TEST(Wait, FirstCompletedReturnsAtTheFirstOne) {
  Promises p(3);
  Later l(20ms, [&] { p.ps[2].set_result(2); });
  auto [done, not_done] = cf::wait(p.fs, {.timeout = 10s, .return_when = cf::FIRST_COMPLETED});
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0] == p.fs[2]);
  EXPECT_EQ(not_done.size(), 2u);
}

TEST(Wait, FirstCompletedCountsCancellation) {
  Promises p(2);
  Later l(20ms, [&] { p.fs[0].cancel(); });
  auto [done, not_done] = cf::wait(p.fs, {.timeout = 10s, .return_when = cf::FIRST_COMPLETED});
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].cancelled());
}

TEST(Wait, FirstCompletedWithAnAlreadyDoneFuture) {
  Promises p(3);
  p.ps[1].set_result(1);
  auto [done, not_done] = cf::wait(p.fs, {.return_when = cf::FIRST_COMPLETED});  // no timeout: must not block
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0] == p.fs[1]);
  EXPECT_EQ(not_done.size(), 2u);
}

TEST(Wait, FirstExceptionReturnsAtTheFirstException) {
  Promises p(3);
  p.ps[0].set_result(0);
  Later l(20ms, [&] { p.ps[1].set_exception(std::runtime_error("fail")); });
  auto [done, not_done] = cf::wait(p.fs, {.timeout = 10s, .return_when = cf::FIRST_EXCEPTION});
  ASSERT_EQ(done.size(), 2u);
  EXPECT_TRUE(done[1] == p.fs[1]);
  EXPECT_NE(done[1].exception(), nullptr);
  ASSERT_EQ(not_done.size(), 1u);
  EXPECT_TRUE(not_done[0] == p.fs[2]);
}

TEST(Wait, FirstExceptionAlreadyFailed) {
  Promises p(2);
  p.ps[0].set_exception(std::runtime_error("early"));
  auto [done, not_done] = cf::wait(p.fs, {.return_when = cf::FIRST_EXCEPTION});  // must not block
  EXPECT_EQ(done.size(), 1u);
  EXPECT_EQ(not_done.size(), 1u);
}

TEST(Wait, FirstExceptionWaitsForAllIfNoneRaise) {
  Promises p(3);
  Later l(10ms, [&] {
    p.ps[0].set_result(0);
    std::this_thread::sleep_for(10ms);
    p.ps[1].set_result(1);
    std::this_thread::sleep_for(10ms);
    p.ps[2].set_result(2);
  });
  auto [done, not_done] = cf::wait(p.fs, {.timeout = 10s, .return_when = cf::FIRST_EXCEPTION});
  EXPECT_EQ(done.size(), 3u);
  EXPECT_TRUE(not_done.empty());
}

TEST(Wait, FirstExceptionIgnoresCancellation) {
  // A cancelled future did not raise: FIRST_EXCEPTION keeps waiting (Python's semantics).
  Promises p(2);
  p.fs[0].cancel();
  auto r = cf::wait(p.fs, {.timeout = 30ms, .return_when = cf::FIRST_EXCEPTION});
  EXPECT_EQ(r.done.size(), 1u);
  EXPECT_EQ(r.not_done.size(), 1u);
}

TEST(Wait, FirstExceptionOnPool) {
  cf::ThreadPoolExecutor pool(2);
  th::Event gate;
  auto slow = pool.submit([&gate] {
    gate.wait(10s);
    return 0;
  });
  auto bad = pool.submit([]() -> int { throw std::runtime_error("bad"); });
  std::vector<cf::Future<int>> fs{slow, bad};
  auto [done, not_done] = cf::wait(fs, {.timeout = 10s, .return_when = cf::FIRST_EXCEPTION});
  gate.set();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0] == bad);
  ASSERT_EQ(not_done.size(), 1u);
  EXPECT_TRUE(not_done[0] == slow);
}

TEST(Wait, AlreadyDoneFuturesReturnAtOnce) {
  Promises p(3);
  for (int i = 0; i < 3; ++i) p.ps[static_cast<std::size_t>(i)].set_result(i);
  for (auto when : {cf::FIRST_COMPLETED, cf::FIRST_EXCEPTION, cf::ALL_COMPLETED}) {
    auto r = cf::wait(p.fs, {.return_when = when});
    EXPECT_EQ(r.done.size(), 3u);
    EXPECT_TRUE(r.not_done.empty());
  }
}

TEST(Wait, EmptyInput) {
  std::vector<cf::Future<int>> none;
  for (auto when : {cf::FIRST_COMPLETED, cf::FIRST_EXCEPTION, cf::ALL_COMPLETED}) {
    auto r = cf::wait(none, {.return_when = when});
    EXPECT_TRUE(r.done.empty());
    EXPECT_TRUE(r.not_done.empty());
  }
}

TEST(Wait, VoidFutures) {
  cf::ThreadPoolExecutor pool(2);
  std::vector<cf::Future<void>> fs;
  for (int i = 0; i < 4; ++i) fs.push_back(pool.submit([] {}));
  auto [done, not_done] = cf::wait(fs, {.timeout = 10s});
  EXPECT_EQ(done.size(), 4u);
  EXPECT_TRUE(not_done.empty());
}

TEST(Wait, WaitIsRepeatable) {
  // Listeners from a previous (timed-out) wait must not linger and fire into a dead frame.
  Promises p(2);
  for (int i = 0; i < 3; ++i) (void)cf::wait(p.fs, {.timeout = 5ms});
  p.ps[0].set_result(0);
  p.ps[1].set_result(1);
  auto r = cf::wait(p.fs);
  EXPECT_EQ(r.done.size(), 2u);
}
