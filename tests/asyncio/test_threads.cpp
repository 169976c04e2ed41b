// asyncio.to_thread (runs elsewhere, the loop keeps running, errors propagate, a cancel before
// the call starts means it never runs, a cancel while it runs drops the result),
// loop.run_in_executor with a futures::ThreadPoolExecutor, run_coroutine_threadsafe from
// another thread (result, error, cancelling the returned future cancels the task), and
// `co_await pool.submit(...)`.
// Cross-thread waits are bounded (30 s) and synchronised with events, never with timing.
// (GCC 12: a lambda temporary passed by reference inside a co_await expression is destroyed
// twice; every callable here is a named local first.)
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "aio_support.hpp"
#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"
#include "concur/futures.hpp"
#include "concur/threading.hpp"

namespace aio = concur::asyncio;
namespace cf = concur::futures;
namespace th = concur::threading;
using concur::CancelledError;
using namespace std::chrono_literals;

namespace {

class ThreadsTest : public concur::test::BackendTest {};

/// An error type of its own: a test proves the error crossed threads by catching this type,
/// without reading the exception object on the loop thread. (Reading what() there races, for
/// ThreadSanitizer, with the worker freeing the exception when it drops its last reference:
/// libstdc++ counts exception references in code TSan does not see.)
struct ThreadFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Occupies every worker of the default executor (to_thread's pool) until release().
class SaturatedDefaultPool {
 public:
  SaturatedDefaultPool() {
    auto& pool = aio::detail::default_executor();
    const int n = pool.max_workers();
    for (int i = 0; i < n; ++i)
      blockers_.push_back(pool.submit([started = started_, release = release_] {
        started->fetch_add(1);
        return release->wait(30s);
      }));
    ok_ = concur::test::eventually([&] { return started_->load() == n; }, 30s);
  }
  SaturatedDefaultPool(const SaturatedDefaultPool&) = delete;
  SaturatedDefaultPool& operator=(const SaturatedDefaultPool&) = delete;
  ~SaturatedDefaultPool() { release(); }
  [[nodiscard]] bool all_busy() const { return ok_; }
  /// Lets the blockers finish and waits for them; true if every one was released by us.
  bool release() {
    release_->set();
    bool all = true;
    for (auto& b : blockers_) all = b.result(30s) && all;
    blockers_.clear();
    return all;
  }

 private:
  std::shared_ptr<std::atomic<int>> started_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<th::Event> release_ = std::make_shared<th::Event>();
  std::vector<cf::Future<bool>> blockers_;
  bool ok_ = false;
};

}  // namespace

// ----------------------------------------------------------------------------- to_thread

TEST_P(ThreadsTest, ToThreadRunsOnAnotherThreadAndResumesOnTheLoop) {
  run_main([]() -> aio::Coro<void> {
    const auto loop_thread = std::this_thread::get_id();
    auto work = [](int a, int b) { return std::make_pair(a * b, std::this_thread::get_id()); };
    auto [v, worker] = co_await aio::to_thread(work, 6, 7);
    EXPECT_EQ(v, 42);
    EXPECT_NE(worker, loop_thread);
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
  });
}

TEST_P(ThreadsTest, ToThreadMoveOnlyArgumentAndVoid) {
  run_main([]() -> aio::Coro<void> {
    auto plus_one = [](std::unique_ptr<int> p) { return *p + 1; };
    auto arg = std::make_unique<int>(41);
    int v = co_await aio::to_thread(plus_one, std::move(arg));
    EXPECT_EQ(v, 42);
    auto flag = std::make_shared<std::atomic<bool>>(false);
    auto set_flag = [flag] { flag->store(true); };
    co_await aio::to_thread(set_flag);
    EXPECT_TRUE(flag->load());
  });
}

namespace {
aio::Coro<void> tick_then_open(std::shared_ptr<int> ticks, std::shared_ptr<th::Event> go) {
  for (int i = 0; i < 3; ++i) {
    co_await aio::sleep(0s);
    ++*ticks;
  }
  go->set();
}
}  // namespace

TEST_P(ThreadsTest, ToThreadTheLoopKeepsRunningMeanwhile) {
  run_main([]() -> aio::Coro<void> {
    // The call can only finish after a loop task has run three iterations and opened `go`:
    // the loop was not blocked while the call ran.
    auto go = std::make_shared<th::Event>();
    auto ticks = std::make_shared<int>(0);
    aio::Task<void> ticker = aio::create_task(tick_then_open(ticks, go));
    auto wait_go = [go] { return go->wait(30s); };
    bool opened = co_await aio::to_thread(wait_go);
    EXPECT_TRUE(opened);
    EXPECT_EQ(*ticks, 3);
    co_await ticker;
  });
}

TEST_P(ThreadsTest, ToThreadExceptionPropagates) {
  run_main([]() -> aio::Coro<void> {
    auto thrower = []() -> int { throw ThreadFailure("from the thread"); };
    EXPECT_THROW(co_await aio::to_thread(thrower), ThreadFailure);
    auto void_thrower = [] { throw ThreadFailure("void"); };
    EXPECT_THROW(co_await aio::to_thread(void_thrower), ThreadFailure);
  });
}

namespace {
aio::Coro<void> await_to_thread(std::shared_ptr<std::atomic<bool>> ran) {
  auto mark = [ran] { ran->store(true); };
  co_await aio::to_thread(mark);
}
/// Gives a call that was queued behind the blockers every chance to run (it must not).
aio::Coro<void> drain_default_pool() {
  const int n = aio::detail::default_executor().max_workers();
  for (int round = 0; round < 3; ++round) {
    std::vector<aio::Coro<int>> cs;
    for (int i = 0; i < n; ++i) {
      auto id = [i] { return i; };
      cs.push_back(aio::to_thread(id));
    }
    co_await aio::gather(std::move(cs));
  }
  co_await aio::sleep(10ms);
}
}  // namespace

TEST_P(ThreadsTest, ToThreadCancelledWhileQueuedNeverRuns) {
  run_main([]() -> aio::Coro<void> {
    SaturatedDefaultPool busy;
    EXPECT_TRUE(busy.all_busy());
    auto ran = std::make_shared<std::atomic<bool>>(false);
    aio::Task<void> t = aio::create_task(await_to_thread(ran));
    co_await concur::test::settle();  // t waits on the queued call
    EXPECT_FALSE(t.done());
    EXPECT_TRUE(t.cancel());
    EXPECT_THROW(co_await t, CancelledError);  // at once, while the pool is still busy
    EXPECT_TRUE(t.cancelled());
    EXPECT_TRUE(busy.release());
    co_await drain_default_pool();
    EXPECT_FALSE(ran->load());
  });
}

TEST_P(ThreadsTest, ToThreadCancelledBeforeItsFirstStepNeverRuns) {
  // Python's to_thread is a coroutine: a task cancelled before it first runs never submits.
  run_main([]() -> aio::Coro<void> {
    SaturatedDefaultPool busy;
    EXPECT_TRUE(busy.all_busy());
    auto ran = std::make_shared<std::atomic<bool>>(false);
    aio::Task<void> t = aio::create_task(aio::to_thread([ran] { ran->store(true); }));
    EXPECT_TRUE(t.cancel());
    EXPECT_THROW(co_await t, CancelledError);
    EXPECT_TRUE(busy.release());
    co_await drain_default_pool();
    EXPECT_FALSE(ran->load());
  });
}

TEST_P(ThreadsTest, ToThreadCancelledWhileRunningDropsTheResult) {
  run_main([]() -> aio::Coro<void> {
    auto started = std::make_shared<th::Event>();
    auto release = std::make_shared<th::Event>();
    auto finished = std::make_shared<std::atomic<bool>>(false);
    auto body = [](std::shared_ptr<th::Event> s, std::shared_ptr<th::Event> r,
                   std::shared_ptr<std::atomic<bool>> f) -> aio::Coro<int> {
      auto call = [s, r, f] {
        s->set();
        bool ok = r->wait(30s);
        f->store(true);
        return ok ? 1 : 0;
      };
      co_return co_await aio::to_thread(call);
    };
    aio::Task<int> t = aio::create_task(body(started, release, finished));
    // Wait (without blocking the loop) until the call is running on its thread.
    auto wait_started = [started] { return started->wait(30s); };
    EXPECT_TRUE(co_await aio::to_thread(wait_started));
    EXPECT_TRUE(t.cancel());
    EXPECT_THROW(co_await t, CancelledError);  // does not wait for the running call
    EXPECT_FALSE(finished->load());
    release->set();
    auto wait_finished = [finished] { return concur::test::eventually([&] { return finished->load(); }, 30s); };
    EXPECT_TRUE(co_await aio::to_thread(wait_finished));
  });
}

// ----------------------------------------------------------------------- run_in_executor

TEST_P(ThreadsTest, RunInExecutor) {
  cf::ThreadPoolExecutor pool(cf::ThreadPoolOptions{.max_workers = 2, .thread_name_prefix = "rie"});
  run_main([&pool]() -> aio::Coro<void> {
    auto& loop = aio::get_running_loop();
    const auto loop_thread = std::this_thread::get_id();
    auto add = [](int a, int b) { return std::make_pair(a + b, std::this_thread::get_id()); };
    auto [v, where] = co_await loop.run_in_executor(pool, add, 20, 22);
    EXPECT_EQ(v, 42);
    EXPECT_NE(where, loop_thread);
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    auto thrower = []() -> int { throw ThreadFailure("rie"); };
    EXPECT_THROW(co_await loop.run_in_executor(pool, thrower), ThreadFailure);
    // Many at once, gathered: results in order.
    std::vector<aio::Coro<int>> cs;
    auto square = [](int x) { return x * x; };
    for (int i = 0; i < 64; ++i) cs.push_back(loop.run_in_executor(pool, square, i));
    std::vector<int> r = co_await aio::gather(std::move(cs));
    EXPECT_EQ(r.size(), 64u);
    for (std::size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], static_cast<int>(i * i));
  });
}

TEST_P(ThreadsTest, RunInExecutorTheLoopKeepsRunningMeanwhile) {
  cf::ThreadPoolExecutor pool(1);
  run_main([&pool]() -> aio::Coro<void> {
    auto go = std::make_shared<th::Event>();
    auto ticks = std::make_shared<int>(0);
    aio::Task<void> ticker = aio::create_task(tick_then_open(ticks, go));
    auto& loop = aio::get_running_loop();
    auto wait_go = [go] { return go->wait(30s); };
    EXPECT_TRUE(co_await loop.run_in_executor(pool, wait_go));
    EXPECT_EQ(*ticks, 3);
    co_await ticker;
  });
}

// -------------------------------------------------------------- run_coroutine_threadsafe

namespace {
aio::Coro<int> on_the_loop(int v, std::shared_ptr<std::thread::id> where) {
  co_await aio::sleep(0s);
  *where = std::this_thread::get_id();
  co_return v * 2;
}
aio::Coro<int> failing_on_the_loop() {
  co_await aio::sleep(0s);
  throw ThreadFailure("loop side");
}
struct CancelProbe {
  std::atomic<bool> started{false};
  std::atomic<bool> saw_cancel{false};
  std::atomic<bool> finished{false};
};
aio::Coro<int> cancellable_on_the_loop(std::shared_ptr<CancelProbe> p) {
  p->started = true;
  bool cancelled = false;
  try {
    co_await aio::sleep(24h);
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (cancelled) {
    p->saw_cancel = true;
    throw CancelledError();
  }
  p->finished = true;
  co_return 1;
}
}  // namespace

TEST_P(ThreadsTest, RunCoroutineThreadsafeResult) {
  run_main([]() -> aio::Coro<void> {
    aio::EventLoop* loop = &aio::get_running_loop();
    auto where = std::make_shared<std::thread::id>();
    const auto loop_thread = std::this_thread::get_id();
    // From a pool thread (the loop keeps running meanwhile): submit and block on the result.
    auto submit = [loop, where] {
      cf::Future<int> f = aio::run_coroutine_threadsafe(on_the_loop(21, where), *loop);
      return f.result(30s);
    };
    int v = co_await aio::to_thread(submit);
    EXPECT_EQ(v, 42);
    EXPECT_EQ(*where, loop_thread);  // the coroutine ran on the loop's thread
  });
}

TEST_P(ThreadsTest, RunCoroutineThreadsafeFromAPlainThread) {
  run_main([]() -> aio::Coro<void> {
    aio::EventLoop* loop = &aio::get_running_loop();
    auto result = std::make_shared<std::atomic<int>>(0);
    auto done = std::make_shared<cf::Promise<void>>();
    cf::Future<void> done_f = done->get_future();
    std::thread other([loop, result, done] {
      auto where = std::make_shared<std::thread::id>();
      std::vector<cf::Future<int>> fs;
      for (int i = 0; i < 20; ++i) fs.push_back(aio::run_coroutine_threadsafe(on_the_loop(i, where), *loop));
      int sum = 0;
      for (auto& f : fs) sum += f.result(30s);
      result->store(sum);
      done->set_result();
    });
    co_await done_f;  // the loop runs until the thread has every result
    other.join();
    EXPECT_EQ(result->load(), 2 * (19 * 20 / 2));
  });
}

TEST_P(ThreadsTest, RunCoroutineThreadsafeException) {
  run_main([]() -> aio::Coro<void> {
    aio::EventLoop* loop = &aio::get_running_loop();
    auto submit = [loop] {
      cf::Future<int> f = aio::run_coroutine_threadsafe(failing_on_the_loop(), *loop);
      try {
        f.result(30s);
        return std::string("no exception");
      } catch (const ThreadFailure&) {
        return std::string("ThreadFailure");
      } catch (...) {
        return std::string("another exception");
      }
    };
    std::string caught = co_await aio::to_thread(submit);
    EXPECT_EQ(caught, "ThreadFailure");
  });
}

TEST_P(ThreadsTest, RunCoroutineThreadsafeCancellingTheFutureCancelsTheTask) {
  run_main([]() -> aio::Coro<void> {
    aio::EventLoop* loop = &aio::get_running_loop();
    auto probe = std::make_shared<CancelProbe>();
    const std::size_t tasks_before = loop->pending_task_count();
    auto submit_and_cancel = [loop, probe] {
      cf::Future<int> f = aio::run_coroutine_threadsafe(cancellable_on_the_loop(probe), *loop);
      if (!concur::test::eventually([&] { return probe->started.load(); }, 30s)) return false;
      if (!f.cancel()) return false;
      if (!f.cancelled()) return false;
      return concur::test::eventually([&] { return probe->saw_cancel.load(); }, 30s);
    };
    bool ok = co_await aio::to_thread(submit_and_cancel);
    EXPECT_TRUE(ok);
    EXPECT_TRUE(probe->saw_cancel.load());
    EXPECT_FALSE(probe->finished.load());
    co_await concur::test::settle();
    EXPECT_EQ(loop->pending_task_count(), tasks_before);  // the loop-side task is gone
  });
}

TEST_P(ThreadsTest, RunCoroutineThreadsafeCancelledAtOnceNeverFinishes) {
  run_main([]() -> aio::Coro<void> {
    aio::EventLoop* loop = &aio::get_running_loop();
    auto probe = std::make_shared<CancelProbe>();
    const std::size_t tasks_before = loop->pending_task_count();
    auto submit_and_cancel = [loop, probe] {
      cf::Future<int> f = aio::run_coroutine_threadsafe(cancellable_on_the_loop(probe), *loop);
      return f.cancel();  // the task may not even exist yet
    };
    bool cancelled = co_await aio::to_thread(submit_and_cancel);
    EXPECT_TRUE(cancelled);
    co_await concur::test::settle();
    EXPECT_FALSE(probe->finished.load());
    // Either it never started, or it started and saw the cancellation.
    EXPECT_EQ(probe->started.load(), probe->saw_cancel.load());
    EXPECT_EQ(loop->pending_task_count(), tasks_before);
  });
}

// ------------------------------------------------------------------ co_await pool.submit

TEST_P(ThreadsTest, AwaitPoolSubmit) {
  cf::ThreadPoolExecutor pool(2);
  run_main([&pool]() -> aio::Coro<void> {
    auto square = [](int x) { return x * x; };
    auto thrower = []() -> int { throw ThreadFailure("pool"); };
    auto nothing = [] {};
    EXPECT_EQ(co_await pool.submit(square, 7), 49);
    EXPECT_THROW(co_await pool.submit(thrower), ThreadFailure);
    co_await pool.submit(nothing);
    // Many pool futures awaited together (each wrapped in a task), results in order.
    std::vector<aio::Task<int>> ts;
    for (int i = 0; i < 32; ++i) ts.push_back(aio::ensure_task(pool.submit([i] { return i + 1; })));
    std::vector<int> r = co_await aio::gather(std::move(ts));
    EXPECT_EQ(r.size(), 32u);
    for (std::size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], static_cast<int>(i) + 1);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, ThreadsTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
