// `co_await` on a concurrent futures::Future inside a coroutine: the loop keeps running, the
// value or exception arrives on the loop's thread, cancellation ends the await at once.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"
#include "concur/futures.hpp"
#include "concur/threading.hpp"

namespace aio = concur::asyncio;
namespace cf = concur::futures;
using concur::CancelledError;
using namespace std::chrono_literals;

namespace {
class FutureAwaitTest : public concur::test::BackendTest {};

int slow_square(int x) {
  std::this_thread::sleep_for(50ms);
  return x * x;
}
}  // namespace

TEST_P(FutureAwaitTest, ValueWithoutBlockingTheLoop) {
  cf::ThreadPoolExecutor pool(2);
  int ticks = 0;
  int v = run_main([&]() -> aio::Coro<int> {
    auto ticker = [&]() -> aio::Coro<void> {
      for (;;) {
        co_await aio::sleep(1ms);
        ++ticks;
      }
    };
    aio::Task<void> t = aio::create_task(ticker());
    auto loop_thread = std::this_thread::get_id();
    int r = co_await pool.submit(slow_square, 7);
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);  // resumed on the loop's thread
    EXPECT_GT(ticks, 5);                                 // other tasks progressed while the future was pending
    t.cancel();
    co_return r;
  });
  EXPECT_EQ(v, 49);
}

TEST_P(FutureAwaitTest, AlreadyDoneFuture) {
  cf::ThreadPoolExecutor pool(1);
  auto f = pool.submit([] { return 3; });
  f.result();
  EXPECT_EQ(run_main([&]() -> aio::Coro<int> { co_return co_await f; }), 3);
  // Awaited twice (an lvalue future keeps its value).
  EXPECT_EQ(run_main([&]() -> aio::Coro<int> { co_return co_await f + co_await f; }), 6);
}

TEST_P(FutureAwaitTest, VoidFutureAndPromise) {
  cf::Promise<void> p;
  cf::Future<void> f = p.get_future();
  std::thread setter([&] {
    std::this_thread::sleep_for(10ms);
    p.set_result();
  });
  run_main([&]() -> aio::Coro<void> { co_await f; });
  setter.join();
}

TEST_P(FutureAwaitTest, ExceptionPropagates) {
  cf::ThreadPoolExecutor pool(1);
  bool caught = run_main([&]() -> aio::Coro<bool> {
    try {
      co_await pool.submit([]() -> int {
        std::this_thread::sleep_for(5ms);
        throw std::out_of_range("worker failed");
      });
    } catch (const std::out_of_range& e) {
      co_return std::string(e.what()) == "worker failed";
    }
    co_return false;
  });
  EXPECT_TRUE(caught);
}

TEST_P(FutureAwaitTest, CancelWhileAwaitingThrowsAtOnce) {
  cf::ThreadPoolExecutor pool(1);
  std::atomic<bool> release{false};
  std::atomic<bool> started{false};
  auto blocker = pool.submit([&] {
    started = true;
    while (!release) std::this_thread::sleep_for(1ms);
    return 1;
  });
  run_main([&]() -> aio::Coro<void> {
    auto& loop = aio::get_running_loop();
    aio::Task<int> t = aio::create_task([](cf::Future<int> f) -> aio::Coro<int> { co_return co_await f; }(blocker));
    // The future must be running (not cancellable) before the cancel: wait for it, bounded.
    for (int i = 0; i < 5000 && !started; ++i) co_await aio::sleep(1ms);
    co_await aio::sleep(5ms);
    double t0 = loop.time();
    t.cancel();
    EXPECT_THROW(co_await t, CancelledError);
    EXPECT_LT(loop.time() - t0, 1.0);  // did not wait for the running future
    EXPECT_TRUE(t.cancelled());
  });
  release = true;
  EXPECT_EQ(blocker.result(), 1);  // it was running: cancel() could not stop it
}

TEST_P(FutureAwaitTest, CancelAwaitOfAPendingFutureCancelsIt) {
  cf::ThreadPoolExecutor pool(1);
  std::atomic<bool> release{false};
  auto busy = pool.submit([&] {
    while (!release) std::this_thread::sleep_for(1ms);
  });
  auto queued = pool.submit([] { return 2; });  // waits behind `busy`
  run_main([&]() -> aio::Coro<void> {
    aio::Task<int> t = aio::create_task([](cf::Future<int> f) -> aio::Coro<int> { co_return co_await f; }(queued));
    co_await aio::sleep(2ms);
    t.cancel();
    EXPECT_THROW(co_await t, CancelledError);
  });
  EXPECT_TRUE(queued.cancelled());  // wrap_future semantics: the concurrent future is cancelled too
  release = true;
  busy.result();
}

TEST_P(FutureAwaitTest, CancelWhileTheFutureCompletes) {
  // Races the completion from a pool thread against cancel() on the loop: either way the task
  // ends (value or CancelledError), and nothing hangs or runs twice.
  cf::ThreadPoolExecutor pool(2);
  int cancelled = 0, completed = 0;
  run_main([&]() -> aio::Coro<void> {
    for (int i = 0; i < 300; ++i) {
      aio::Task<int> t = aio::create_task(
          [](cf::Future<int> f) -> aio::Coro<int> { co_return co_await f; }(pool.submit([i] { return i; })));
      co_await aio::sleep(0s);
      t.cancel();
      try {
        int v = co_await t;
        EXPECT_EQ(v, i);
        ++completed;
      } catch (const CancelledError&) {
        ++cancelled;
      }
    }
  });
  EXPECT_EQ(cancelled + completed, 300);
}

TEST_P(FutureAwaitTest, ManyTasksAwaitManyFutures) {
  cf::ThreadPoolExecutor pool(4);
  long sum = run_main([&]() -> aio::Coro<long> {
    std::vector<aio::Task<int>> ts;
    for (int i = 0; i < 2000; ++i) {
      ts.push_back(aio::create_task(
          [](cf::Future<int> f) -> aio::Coro<int> { co_return co_await f; }(pool.submit([i] { return i; }))));
    }
    long s = 0;
    for (auto& t : ts) s += co_await t;
    co_return s;
  });
  EXPECT_EQ(sum, 2000L * 1999 / 2);
}

TEST_P(FutureAwaitTest, FutureOfCancelledWorkThrowsCancelledError) {
  cf::ThreadPoolExecutor pool(1);
  std::atomic<bool> release{false};
  auto busy = pool.submit([&] {
    while (!release) std::this_thread::sleep_for(1ms);
  });
  auto queued = pool.submit([] { return 2; });
  EXPECT_TRUE(queued.cancel());
  bool threw = run_main([&]() -> aio::Coro<bool> {
    try {
      co_await queued;
    } catch (const CancelledError&) {
      co_return true;
    }
    co_return false;
  });
  EXPECT_TRUE(threw);
  release = true;
  busy.result();
}

INSTANTIATE_TEST_SUITE_P(Backends, FutureAwaitTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
