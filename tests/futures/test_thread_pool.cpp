// concurrent.futures.ThreadPoolExecutor: construction, naming, initializer, submit, shutdown,
// nested waits, concurrency, idle parking.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/futures.hpp"
#include "concur/threading.hpp"

namespace cf = concur::futures;
namespace th = concur::threading;
using namespace std::chrono_literals;
using concur::test::eventually;

namespace {

int square(int x) { return x * x; }

/// fib(n) with every recursive call submitted to the pool and waited for from inside the task.
struct NestedFib {
  cf::ThreadPoolExecutor* pool;
  int operator()(int n) const {
    if (n < 2) return n;
    auto a = pool->submit(*this, n - 1);
    auto b = pool->submit(*this, n - 2);
    return a.result() + b.result();
  }
};

int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

std::string current_name() { return th::current_thread().name(); }

}  // namespace

// ---- construction -------------------------------------------------------------------------------

TEST(ThreadPool, DefaultMaxWorkersIsPythons) {
  unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  int expected = static_cast<int>(std::min(32u, cpus + 4));
  EXPECT_EQ(cf::default_max_workers(), expected);
  cf::ThreadPoolExecutor pool;
  EXPECT_EQ(pool.max_workers(), expected);
}

TEST(ThreadPool, MaxWorkersFromIntAndOptions) {
  cf::ThreadPoolExecutor a(3);
  EXPECT_EQ(a.max_workers(), 3);
  cf::ThreadPoolExecutor b({.max_workers = 2, .thread_name_prefix = "opt"});
  EXPECT_EQ(b.max_workers(), 2);
  EXPECT_FALSE(a.broken());
  EXPECT_FALSE(b.broken());
}

TEST(ThreadPool, NonPositiveMaxWorkersThrowsInvalidArgument) {
  EXPECT_THROW(cf::ThreadPoolExecutor(0), std::invalid_argument);
  EXPECT_THROW(cf::ThreadPoolExecutor(-1), std::invalid_argument);
  EXPECT_THROW(cf::ThreadPoolExecutor({.max_workers = 0}), std::invalid_argument);
  EXPECT_THROW(cf::ThreadPoolExecutor({.max_workers = -5}), std::invalid_argument);
}

TEST(ThreadPool, ThreadNamePrefixNamesEveryWorker) {
  constexpr int n = 3;
  cf::ThreadPoolExecutor pool({.max_workers = n, .thread_name_prefix = "dl"});
  // Three tasks meeting at a barrier must run on three different workers.
  th::Barrier barrier(n);
  std::vector<cf::Future<std::string>> fs;
  for (int i = 0; i < n; ++i) {
    fs.push_back(pool.submit([&barrier] {
      barrier.wait(10s);
      return current_name();
    }));
  }
  std::set<std::string> names;
  for (auto& f : fs) names.insert(f.result(10s));
  EXPECT_EQ(names, (std::set<std::string>{"dl_0", "dl_1", "dl_2"}));
}

TEST(ThreadPool, DefaultThreadNames) {
  cf::ThreadPoolExecutor pool(2);
  std::string name = pool.submit(current_name).result(5s);
  EXPECT_EQ(name.rfind("ThreadPoolExecutor-", 0), 0u) << name;
  auto underscore = name.rfind('_');
  ASSERT_NE(underscore, std::string::npos) << name;
  std::string index = name.substr(underscore + 1);
  EXPECT_TRUE(index == "0" || index == "1") << name;
  // Two pools get different prefixes.
  cf::ThreadPoolExecutor other(1);
  std::string other_name = other.submit(current_name).result(5s);
  EXPECT_EQ(other_name.rfind("ThreadPoolExecutor-", 0), 0u) << other_name;
  EXPECT_NE(other_name.substr(0, other_name.rfind('_')), name.substr(0, underscore));
}

// ---- initializer --------------------------------------------------------------------------------

TEST(ThreadPool, InitializerRunsOnEachWorker) {
  std::mutex m;
  std::set<std::string> names;
  std::atomic<int> calls{0};
  {
    cf::ThreadPoolExecutor pool({.max_workers = 4, .thread_name_prefix = "init", .initializer = [&] {
                                   ++calls;
                                   std::lock_guard g(m);
                                   names.insert(current_name());
                                 }});
    EXPECT_EQ(pool.submit(square, 3).result(5s), 9);
  }  // joins the workers
  EXPECT_EQ(calls.load(), 4);
  EXPECT_EQ(names, (std::set<std::string>{"init_0", "init_1", "init_2", "init_3"}));
}

TEST(ThreadPool, InitializerRunsBeforeTasksOnItsWorker) {
  // thread_local flag set by the initializer must be seen by every task.
  static thread_local bool initialized = false;
  cf::ThreadPoolExecutor pool({.max_workers = 2, .initializer = [] { initialized = true; }});
  std::vector<cf::Future<bool>> fs;
  for (int i = 0; i < 50; ++i) fs.push_back(pool.submit([] { return initialized; }));
  for (auto& f : fs) EXPECT_TRUE(f.result(5s));
}

TEST(ThreadPool, ThrowingInitializerBreaksThePool) {
  th::Event gate;
  std::atomic<int> ran{0};
  cf::ThreadPoolExecutor pool({.max_workers = 1, .initializer = [&gate] {
                                 gate.wait(10s);
                                 throw std::runtime_error("init failed");
                               }});
  std::vector<cf::Future<int>> fs;
  for (int i = 0; i < 3; ++i)
    fs.push_back(pool.submit([&ran, i] {
      ++ran;
      return i;
    }));
  gate.set();
  for (auto& f : fs) {
    EXPECT_THROW((void)f.result(5s), cf::BrokenThreadPool);
    auto e = f.exception(5s);
    ASSERT_NE(e, nullptr);
    EXPECT_THROW(std::rethrow_exception(e), cf::BrokenExecutor);
  }
  EXPECT_TRUE(eventually([&] { return pool.broken(); }));
  EXPECT_THROW((void)pool.submit(square, 2), cf::BrokenThreadPool);
  EXPECT_EQ(ran.load(), 0);
  pool.shutdown(true);  // never hangs on a broken pool
}

TEST(ThreadPool, OneFailingInitializerAmongManyBreaksThePool) {
  std::atomic<int> calls{0};
  cf::ThreadPoolExecutor pool({.max_workers = 4, .initializer = [&calls] {
                                 if (calls.fetch_add(1) == 2) throw std::runtime_error("third init fails");
                               }});
  EXPECT_TRUE(eventually([&] { return pool.broken(); }));
  bool threw = false;
  std::string what;
  try {
    (void)pool.submit(square, 2);
  } catch (const cf::BrokenThreadPool& e) {
    threw = true;
    what = e.what();
  }
  EXPECT_TRUE(threw);
  EXPECT_NE(what.find("third init fails"), std::string::npos) << what;
}

// ---- submit -------------------------------------------------------------------------------------

TEST(ThreadPool, SubmitReturnsResult) {
  cf::ThreadPoolExecutor pool(4);
  cf::Future<int> f = pool.submit(square, 7);
  EXPECT_EQ(f.result(5s), 49);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.running());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.exception(), nullptr);
}

TEST(ThreadPool, SubmitDecayCopiesArgumentsAndAcceptsMoveOnly) {
  cf::ThreadPoolExecutor pool(2);
  std::string s = "abc";
  auto f = pool.submit([](std::string x, int n) { return x + std::to_string(n); }, s, 1);
  s = "changed";
  EXPECT_EQ(f.result(5s), "abc1");
  auto g = pool.submit([](std::unique_ptr<int> p) { return *p + 1; }, std::make_unique<int>(41));
  EXPECT_EQ(g.result(5s), 42);
  auto h = pool.submit([] {});  // void task
  h.result(5s);
  EXPECT_TRUE(h.done());
}

TEST(ThreadPool, TaskExceptionReachesResult) {
  cf::ThreadPoolExecutor pool(2);
  auto f = pool.submit([]() -> int { throw std::out_of_range("task failed"); });
  EXPECT_THROW((void)f.result(5s), std::out_of_range);
  auto e = f.exception(5s);
  ASSERT_NE(e, nullptr);
  EXPECT_THROW(std::rethrow_exception(e), std::out_of_range);
  // The pool keeps working.
  EXPECT_EQ(pool.submit(square, 5).result(5s), 25);
}

TEST(ThreadPool, RunningWhileTaskRuns) {
  cf::ThreadPoolExecutor pool(1);
  th::Event gate;
  auto f = pool.submit([&gate] { return gate.wait(10s); });
  EXPECT_TRUE(eventually([&] { return f.running(); }));
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.cancel());  // running: cannot cancel
  EXPECT_FALSE(f.cancelled());
  EXPECT_THROW((void)f.result(20ms), concur::TimeoutError);
  gate.set();
  EXPECT_TRUE(f.result(5s));
  EXPECT_FALSE(f.running());
}

TEST(ThreadPool, CancelQueuedTaskPreventsItFromRunning) {
  cf::ThreadPoolExecutor pool(1);
  th::Event gate;
  std::atomic<bool> ran{false};
  auto blocker = pool.submit([&gate] { gate.wait(10s); });
  auto queued = pool.submit([&ran] { ran = true; });
  EXPECT_TRUE(eventually([&] { return blocker.running(); }));
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(queued.cancelled());
  gate.set();
  blocker.result(5s);
  pool.shutdown(true);
  EXPECT_FALSE(ran.load());
  EXPECT_THROW(queued.result(), concur::CancelledError);
}

TEST(ThreadPool, DoneCallbackRunsOnAWorker) {
  cf::ThreadPoolExecutor pool({.max_workers = 1, .thread_name_prefix = "cbw"});
  th::Event gate;
  auto f = pool.submit([&gate] {
    gate.wait(10s);
    return 1;
  });
  std::string where;
  th::Event called;
  f.add_done_callback([&](cf::Future<int>) {
    where = current_name();
    called.set();
  });
  gate.set();
  EXPECT_TRUE(called.wait(5s));
  EXPECT_EQ(where, "cbw_0");
}

TEST(ThreadPool, TaskCallableIsDroppedAfterRunning) {
  cf::ThreadPoolExecutor pool(1);
  auto token = std::make_shared<int>(0);
  auto f = pool.submit([token] { return *token; });
  EXPECT_EQ(f.result(5s), 0);
  // The future is still alive, but the callable (and its capture) are gone.
  EXPECT_TRUE(eventually([&] { return token.use_count() == 1; }));
}

TEST(ThreadPool, SubmitFromManyThreadsConcurrently) {
  cf::ThreadPoolExecutor pool(4);
  constexpr int threads = 8;
  constexpr int per_thread = 250;
  std::vector<std::vector<cf::Future<int>>> fs(threads);
  std::vector<std::thread> submitters;
  for (int t = 0; t < threads; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) fs[t].push_back(pool.submit([t, i] { return t * 100000 + i; }));
    });
  }
  for (auto& s : submitters) s.join();
  int checked = 0;
  for (int t = 0; t < threads; ++t) {
    ASSERT_EQ(fs[t].size(), static_cast<std::size_t>(per_thread));
    for (int i = 0; i < per_thread; ++i) {
      EXPECT_EQ(fs[t][i].result(10s), t * 100000 + i);
      ++checked;
    }
  }
  EXPECT_EQ(checked, threads * per_thread);
}

TEST(ThreadPool, RegressionLostWakeupBurstOfBlockingTasksRunsConcurrently) {
  // Bug: a burst of N blocking tasks on N workers could leave one task stranded in the deque of
  // a worker blocked in another task while a third worker slept (one notify() for two tasks).
  constexpr int n = 3;
  int starved_rounds = 0;
  for (int round = 0; round < 60; ++round) {
    cf::ThreadPoolExecutor pool(n);
    if (round % 2) std::this_thread::sleep_for(std::chrono::microseconds(round * 20));
    th::Barrier barrier(n);
    std::vector<cf::Future<bool>> fs;
    for (int i = 0; i < n; ++i)
      fs.push_back(pool.submit([&barrier] {
        try {
          barrier.wait(2s);
          return true;
        } catch (const th::BrokenBarrierError&) {
          return false;
        }
      }));
    bool ok = true;
    for (auto& f : fs) ok = f.result(10s) && ok;
    if (!ok) ++starved_rounds;
  }
  EXPECT_EQ(starved_rounds, 0);
}

// ---- nested waits -------------------------------------------------------------------------------

TEST(ThreadPool, NestedSubmitAndWaitWithOneWorkerDoesNotDeadlock) {
  cf::ThreadPoolExecutor pool(1);
  NestedFib nf{&pool};
  for (int n : {15, 18, 20}) EXPECT_EQ(pool.submit(nf, n).result(30s), fib(n)) << n;
}

TEST(ThreadPool, NestedSubmitAndWaitWithSeveralWorkers) {
  cf::ThreadPoolExecutor pool(3);
  NestedFib nf{&pool};
  std::vector<cf::Future<int>> fs;
  for (int n = 10; n <= 17; ++n) fs.push_back(pool.submit(nf, n));
  for (int n = 10; n <= 17; ++n) EXPECT_EQ(fs[static_cast<std::size_t>(n - 10)].result(30s), fib(n));
}

TEST(ThreadPool, WaitAndAsCompletedInsideATaskWithOneWorker) {
  cf::ThreadPoolExecutor pool(1);
  auto outer = pool.submit([&pool] {
    std::vector<cf::Future<int>> subs;
    for (int i = 1; i <= 10; ++i) subs.push_back(pool.submit(square, i));
    auto [done, not_done] = cf::wait(subs);
    int sum = 0;
    for (auto& d : done) sum += d.result();
    std::vector<cf::Future<int>> more;
    for (int i = 1; i <= 10; ++i) more.push_back(pool.submit(square, i));
    int count = 0;
    for (const auto& f : cf::as_completed(more)) {
      sum += f.result();
      ++count;
    }
    return std::vector<int>{sum, static_cast<int>(not_done.size()), count};
  });
  auto r = outer.result(30s);
  EXPECT_EQ(r, (std::vector<int>{2 * 385, 0, 10}));
}

TEST(ThreadPool, NestedMapInsideATaskWithOneWorker) {
  cf::ThreadPoolExecutor pool(1);
  auto outer = pool.submit([&pool] {
    int sum = 0;
    for (int r : pool.map(square, std::vector<int>{1, 2, 3, 4})) sum += r;
    return sum;
  });
  EXPECT_EQ(outer.result(30s), 30);
}

TEST(ThreadPool, WorkerWaitingOnForeignFutureWakesWhenSetFromOutside) {
  cf::ThreadPoolExecutor pool(1);
  cf::Promise<int> p;
  auto pf = p.get_future();
  auto f = pool.submit([pf] { return pf.result(10s) * 2; });
  EXPECT_TRUE(eventually([&] { return f.running(); }));
  std::this_thread::sleep_for(20ms);  // let the worker park in result()
  p.set_result(21);
  EXPECT_EQ(f.result(5s), 42);
}

TEST(ThreadPool, WorkerWaitWithTimeoutTimesOut) {
  cf::ThreadPoolExecutor pool(1);
  cf::Promise<int> p;
  auto pf = p.get_future();
  auto f = pool.submit([pf] {
    try {
      (void)pf.result(30ms);
      return 0;
    } catch (const concur::TimeoutError&) {
      return 1;
    }
  });
  EXPECT_EQ(f.result(5s), 1);
}

// ---- shutdown -----------------------------------------------------------------------------------

TEST(ThreadPool, SubmitAfterShutdownThrowsLogicError) {
  cf::ThreadPoolExecutor pool(2);
  pool.shutdown();
  EXPECT_THROW((void)pool.submit(square, 1), std::logic_error);
  EXPECT_THROW((void)pool.map(square, std::vector<int>{1}), std::logic_error);
  pool.shutdown();  // a second shutdown is harmless
  pool.shutdown(false, true);
}

TEST(ThreadPool, ShutdownWaitRunsEveryQueuedTask) {
  cf::ThreadPoolExecutor pool(2);
  std::atomic<int> count{0};
  std::vector<cf::Future<void>> fs;
  for (int i = 0; i < 40; ++i) {
    fs.push_back(pool.submit([&count] {
      std::this_thread::sleep_for(1ms);
      ++count;
    }));
  }
  pool.shutdown(true);
  EXPECT_EQ(count.load(), 40);
  for (auto& f : fs) {
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.cancelled());
  }
}

TEST(ThreadPool, ShutdownNoWaitReturnsAtOnceAndTasksStillComplete) {
  cf::ThreadPoolExecutor pool(1);
  th::Event gate;
  auto running = pool.submit([&gate] {
    gate.wait(10s);
    return 1;
  });
  auto queued = pool.submit([] { return 2; });
  EXPECT_TRUE(eventually([&] { return running.running(); }));
  pool.shutdown(false);  // must not wait for the gate
  EXPECT_FALSE(running.done());
  EXPECT_FALSE(queued.done());
  EXPECT_THROW((void)pool.submit(square, 1), std::logic_error);
  gate.set();
  EXPECT_EQ(running.result(5s), 1);
  EXPECT_EQ(queued.result(5s), 2);  // queued work still runs (no cancel_futures)
}

TEST(ThreadPool, ShutdownCancelFuturesCancelsPendingOnes) {
  cf::ThreadPoolExecutor pool(1);
  th::Event gate;
  std::atomic<int> ran{0};
  auto blocker = pool.submit([&gate] {
    gate.wait(10s);
    return -1;
  });
  EXPECT_TRUE(eventually([&] { return blocker.running(); }));
  std::vector<cf::Future<int>> queued;
  for (int i = 0; i < 5; ++i)
    queued.push_back(pool.submit([&ran, i] {
      ++ran;
      return i;
    }));
  pool.shutdown(false, true);
  for (auto& f : queued) {
    EXPECT_TRUE(f.cancelled());
    EXPECT_THROW((void)f.result(), concur::CancelledError);
  }
  EXPECT_FALSE(blocker.cancelled());
  gate.set();
  EXPECT_EQ(blocker.result(5s), -1);
  pool.shutdown(true);
  EXPECT_EQ(ran.load(), 0);
}

TEST(ThreadPool, ShutdownCancelFuturesWithWaitFromAnotherThread) {
  cf::ThreadPoolExecutor pool(1);
  th::Event gate;
  auto blocker = pool.submit([&gate] { gate.wait(10s); });
  EXPECT_TRUE(eventually([&] { return blocker.running(); }));
  std::vector<cf::Future<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(pool.submit(square, i));
  std::atomic<bool> returned{false};
  std::thread closer([&] {
    pool.shutdown(true, true);
    returned = true;
  });
  EXPECT_TRUE(eventually([&] { return queued.back().cancelled(); }));
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(returned.load());  // waits for the running task
  gate.set();
  closer.join();
  EXPECT_TRUE(returned.load());
  for (auto& f : queued) EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(blocker.done());
  EXPECT_FALSE(blocker.cancelled());
}

TEST(ThreadPool, DestructorWaitsForQueuedTasks) {
  std::atomic<int> count{0};
  std::vector<cf::Future<int>> fs;
  {
    cf::ThreadPoolExecutor pool(2);
    for (int i = 0; i < 20; ++i) {
      fs.push_back(pool.submit([&count, i] {
        std::this_thread::sleep_for(1ms);
        ++count;
        return i;
      }));
    }
  }
  EXPECT_EQ(count.load(), 20);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].result(0ms), i);
}

TEST(ThreadPool, DestructorAfterShutdownNoWaitStillRunsTasks) {
  std::atomic<int> count{0};
  {
    cf::ThreadPoolExecutor pool(1);
    for (int i = 0; i < 10; ++i)
      (void)pool.submit([&count] {
        std::this_thread::sleep_for(1ms);
        ++count;
      });
    pool.shutdown(false);
  }
  EXPECT_EQ(count.load(), 10);
}

TEST(ThreadPool, ShutdownWaitWithNestedSubmitsInFlight) {
  // shutdown(true) while tasks still submit nested work: the nested work is drained.
  std::vector<cf::Future<int>> fs;
  {
    cf::ThreadPoolExecutor pool(2);
    NestedFib nf{&pool};
    for (int i = 0; i < 4; ++i) fs.push_back(pool.submit(nf, 12));
    pool.shutdown(true);
  }
  for (auto& f : fs) EXPECT_EQ(f.result(0ms), fib(12));
}

TEST(ThreadPool, ShutdownFromInsideATaskDoesNotHang) {
  cf::ThreadPoolExecutor pool(1);
  auto f = pool.submit([&pool] {
    pool.shutdown(true);  // skips joining its own worker
    return 5;
  });
  EXPECT_EQ(f.result(5s), 5);
  EXPECT_THROW((void)pool.submit(square, 1), std::logic_error);
}

// ---- idle -----------------------------------------------------------------------------------------

namespace {
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
}  // namespace

TEST(ThreadPool, IdleWorkersParkAndUseNoCpu) {
  cf::ThreadPoolExecutor pool(8);
  std::vector<cf::Future<int>> fs;
  for (int i = 0; i < 200; ++i) fs.push_back(pool.submit(square, i));
  for (auto& f : fs) (void)f.result(5s);
  std::this_thread::sleep_for(50ms);  // spinning workers give up and park
  double before = cpu_seconds();
  std::this_thread::sleep_for(300ms);
  double used = cpu_seconds() - before;
  // Eight spinning workers would burn ~2.4 s of CPU here; parked ones burn ~0.
  EXPECT_LT(used, 0.05) << "CPU seconds used by an idle pool over 300 ms";
  // And they wake for new work.
  EXPECT_EQ(pool.submit(square, 9).result(5s), 81);
}
