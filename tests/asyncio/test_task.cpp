// asyncio.Task: results, errors, names, done-callbacks, awaiting many times, the
// "never retrieved" report, and cancellation exactly as Python's (cancel at the current or next
// suspension, catch-and-rethrow, swallow, before the first step, propagation to an awaited task,
// cancelling()/uncancel(), cancel while being woken).
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using concur::CancelledError;
using namespace std::chrono_literals;

namespace {

aio::Coro<int> after(std::chrono::milliseconds d, int v) {
  co_await aio::sleep(d);
  co_return v;
}
aio::Coro<int> fail_after(std::chrono::milliseconds d, std::string msg) {
  co_await aio::sleep(d);
  throw std::runtime_error(msg);
}
aio::Coro<void> forever() { co_await aio::sleep(24h); }

template <class F>
auto run_main(F&& f) {
  return aio::run(f());
}

}  // namespace

TEST(Task, ResultAfterCompletion) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> t = aio::create_task(after(1ms, 5), "five");
    EXPECT_FALSE(t.done());
    EXPECT_FALSE(t.cancelled());
    EXPECT_TRUE(t.valid());
    int v = co_await t;
    EXPECT_EQ(v, 5);
    EXPECT_TRUE(t.done());
    EXPECT_EQ(t.result(), 5);
    EXPECT_EQ(t.exception(), nullptr);
  });
}

TEST(Task, ResultBeforeDoneIsInvalidStateError) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> t = aio::create_task(after(5ms, 1));
    EXPECT_THROW(t.result(), concur::InvalidStateError);
    EXPECT_THROW(t.exception(), concur::InvalidStateError);
    co_await t;
  });
}

TEST(Task, ExceptionPropagatesToAwaiterAndAccessors) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> t = aio::create_task(fail_after(1ms, "bad"));
    try {
      co_await t;
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "bad");
    }
    EXPECT_TRUE(t.done());
    EXPECT_FALSE(t.cancelled());
    EXPECT_THROW(t.result(), std::runtime_error);
    EXPECT_NE(t.exception(), nullptr);
  });
}

TEST(Task, VoidTask) {
  int side = 0;
  run_main([&]() -> aio::Coro<void> {
    auto body = [&]() -> aio::Coro<void> {
      co_await aio::sleep(1ms);
      side = 1;
    };
    aio::Task<void> t = aio::create_task(body());
    co_await t;
    t.result();
  });
  EXPECT_EQ(side, 1);
}

TEST(Task, Names) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> t = aio::create_task(after(0ms, 1), "worker-1");
    EXPECT_EQ(t.get_name(), "worker-1");
    t.set_name("renamed");
    EXPECT_EQ(t.get_name(), "renamed");
    EXPECT_NE(aio::get_running_loop().dump_tasks().find("renamed"), std::string::npos);
    co_await t;
  });
}

TEST(Task, UnnamedTasksAreTaskNAsInPython) {
  std::string an, bn, dump, renamed, emptied;
  const int sum = run_main([&]() -> aio::Coro<int> {
    aio::Task<int> a = aio::create_task(after(0ms, 1));
    aio::Task<int> b = aio::create_task(after(0ms, 2));
    an = a.get_name();
    bn = b.get_name();
    dump = aio::get_running_loop().dump_tasks();
    b.set_name("named");
    renamed = b.get_name();
    b.set_name("");  // as Python: a name given is kept, even an empty one
    emptied = b.get_name();
    co_return co_await a + co_await b;
  });
  EXPECT_EQ(sum, 3);
  ASSERT_EQ(an.rfind("Task-", 0), 0u) << an;
  ASSERT_EQ(bn.rfind("Task-", 0), 0u) << bn;
  EXPECT_GT(std::stoull(an.substr(5)), 0u);
  EXPECT_GT(std::stoull(bn.substr(5)), std::stoull(an.substr(5)));  // counted up, as Python's counter
  EXPECT_NE(dump.find("name='" + an + "'"), std::string::npos) << dump;
  EXPECT_EQ(renamed, "named");
  EXPECT_EQ(emptied, "");
}

TEST(Task, TaskNumbersAreUniqueAcrossThreadsAndBlocks) {
  // Each thread takes numbers from the shared counter in blocks of 256; 600 tasks per thread
  // cross blocks while other threads take theirs.
  constexpr int kThreads = 3, kTasks = 600;
  std::vector<std::vector<std::string>> names(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&names, t] {
      aio::run([&names, t]() -> aio::Coro<void> {
        std::vector<aio::Task<int>> ts;
        for (int i = 0; i < kTasks; ++i) ts.push_back(aio::create_task(after(0ms, i)));
        for (auto& task : ts) names[static_cast<std::size_t>(t)].push_back(task.get_name());
        (void)co_await aio::gather(std::move(ts));
      }());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : names) {
    ASSERT_EQ(v.size(), static_cast<std::size_t>(kTasks));
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kTasks));
}

TEST(Task, CreateTaskSchedulesAtOnceAndLoopOwnsIt) {
  std::vector<std::string> order;
  run_main([&]() -> aio::Coro<void> {
    auto body = [&]() -> aio::Coro<void> {
      order.push_back("task");
      co_return;
    };
    aio::create_task(body());  // handle dropped at once: still runs (strong reference)
    order.push_back("main before yield");
    co_await aio::sleep(0s);
    order.push_back("main after yield");
  });
  EXPECT_EQ(order, (std::vector<std::string>{"main before yield", "task", "main after yield"}));
}

TEST(Task, AwaitedManyTimesFromManyCoroutines) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> shared = aio::create_task(after(5ms, 7), "shared");
    int sum = 0;
    auto reader = [&sum](aio::Task<int> t) -> aio::Coro<void> {
      sum += co_await t;
      sum += co_await t;  // again, already done
    };
    std::vector<aio::Task<void>> readers;
    for (int i = 0; i < 5; ++i) readers.push_back(aio::create_task(reader(shared)));
    for (auto& r : readers) co_await r;
    EXPECT_EQ(sum, 70);
    EXPECT_EQ(co_await shared, 7);
  });
}

TEST(Task, AddDoneCallbackRunsOnceWithTheTask) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> t = aio::create_task(after(1ms, 3));
    int calls = 0, seen = 0;
    t.add_done_callback([&](const aio::Task<int>& done) {
      ++calls;
      seen = done.result();
    });
    co_await t;
    co_await aio::sleep(1ms);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(seen, 3);
    // Added after completion: still called (once).
    int late = 0;
    t.add_done_callback([&](const aio::Task<int>&) { ++late; });
    co_await aio::sleep(1ms);
    EXPECT_EQ(late, 1);
  });
}

TEST(Task, UnretrievedExceptionIsReportedOnce) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    aio::create_task(fail_after(0ms, "lost"), "loser");
    // Let it fail (a few loop iterations; a time-based wait can lose to a slow machine).
    for (int i = 0; i < 5; ++i) co_await aio::sleep(0s);
  });
  auto e = rec.get();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].context.find("Task exception was never retrieved"), std::string::npos) << e[0].context;
  EXPECT_NE(e[0].context.find("loser"), std::string::npos) << e[0].context;
  EXPECT_EQ(e[0].what, "lost");
}

TEST(Task, UnretrievedExceptionReportedWhenLastHandleGoes) {
  concur::test::UnraisableRecorder rec;
  run_main([&]() -> aio::Coro<void> {
    {
      aio::Task<int> t = aio::create_task(fail_after(0ms, "held"));
      for (int i = 0; i < 5; ++i) co_await aio::sleep(0s);
      EXPECT_TRUE(t.done());
      EXPECT_EQ(rec.count(), 0u);  // a handle still exists: it might yet be retrieved
      aio::Task<int> copy = t;
    }
    EXPECT_EQ(rec.count(), 1u);
  });
  EXPECT_EQ(rec.count(), 1u);
}

TEST(Task, RetrievedExceptionsAreNotReported) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> a = aio::create_task(fail_after(0ms, "a"));
    aio::Task<int> b = aio::create_task(fail_after(0ms, "b"));
    aio::Task<int> c = aio::create_task(fail_after(0ms, "c"));
    aio::Task<void> d = aio::create_task(forever());
    for (int i = 0; i < 5; ++i) co_await aio::sleep(0s);
    try {
      co_await a;
    } catch (const std::runtime_error&) {
    }
    EXPECT_THROW(b.result(), std::runtime_error);
    EXPECT_NE(c.exception(), nullptr);
    d.cancel();  // cancelled tasks are never reported
    co_await aio::sleep(1ms);
  });
  EXPECT_EQ(rec.count(), 0u);
}

TEST(Task, CancelWhileSleepingThrowsAtTheSuspension) {
  run_main([]() -> aio::Coro<void> {
    bool caught = false;
    auto body = [&]() -> aio::Coro<int> {
      try {
        co_await aio::sleep(24h);
      } catch (const CancelledError&) {
        caught = true;
        throw;  // clean up and re-throw
      }
      co_return 1;
    };
    aio::Task<int> t = aio::create_task(body());
    co_await aio::sleep(1ms);
    auto t0 = aio::get_running_loop().time();
    EXPECT_TRUE(t.cancel());
    EXPECT_EQ(t.cancelling(), 1);
    EXPECT_FALSE(t.done());  // cancellation is delivered at the next iteration
    EXPECT_THROW(co_await t, CancelledError);
    EXPECT_LT(aio::get_running_loop().time() - t0, 1.0);
    EXPECT_TRUE(caught);
    EXPECT_TRUE(t.done());
    EXPECT_TRUE(t.cancelled());
    EXPECT_THROW(t.result(), CancelledError);
    EXPECT_THROW(t.exception(), CancelledError);
    EXPECT_FALSE(t.cancel());  // already done
  });
}

TEST(Task, TaskThatSwallowsCancellationIsNotCancelled) {
  run_main([]() -> aio::Coro<void> {
    auto body = []() -> aio::Coro<int> {
      try {
        co_await aio::sleep(24h);
      } catch (const CancelledError&) {
        co_return -1;  // swallowed: the task finishes normally
      }
      co_return 1;
    };
    aio::Task<int> t = aio::create_task(body());
    co_await aio::sleep(1ms);
    t.cancel();
    EXPECT_EQ(co_await t, -1);
    EXPECT_FALSE(t.cancelled());
    EXPECT_EQ(t.cancelling(), 1);  // as Python: the request count stays until uncancel()
    EXPECT_EQ(t.uncancel(), 0);
  });
}

TEST(Task, CancelBeforeFirstStepNeverRunsTheBody) {
  run_main([]() -> aio::Coro<void> {
    bool ran = false;
    auto body = [&]() -> aio::Coro<int> {
      ran = true;
      co_return 1;
    };
    aio::Task<int> t = aio::create_task(body());
    EXPECT_TRUE(t.cancel());
    EXPECT_TRUE(t.cancel());  // again: still pending, one more request
    EXPECT_EQ(t.cancelling(), 2);
    EXPECT_THROW(co_await t, CancelledError);
    EXPECT_FALSE(ran);
    EXPECT_TRUE(t.cancelled());
  });
}

TEST(Task, CancelWhileRunningLandsAtTheNextSuspension) {
  run_main([]() -> aio::Coro<void> {
    std::vector<std::string> log;
    auto self = std::make_shared<aio::Task<void>>();
    auto body = [&log, self]() -> aio::Coro<void> {
      co_await aio::sleep(0s);
      self->cancel();                  // cancel ourselves while running
      log.push_back("still running");  // synchronous code goes on
      try {
        co_await aio::sleep(0s);  // the next suspension point throws
        log.push_back("not reached");
      } catch (const CancelledError&) {
        log.push_back("cancelled at next await");
        throw;
      }
    };
    *self = aio::create_task(body());
    aio::Task<void> t = *self;
    EXPECT_THROW(co_await t, CancelledError);
    EXPECT_EQ(log, (std::vector<std::string>{"still running", "cancelled at next await"}));
    self->cancel();  // done: no effect
    *self = {};      // break the cycle
  });
}

TEST(Task, CancelAReadyTaskDeliversAtItsPendingResume) {
  // The task yielded with sleep(0): it is already queued to resume; the cancel lands there.
  run_main([]() -> aio::Coro<void> {
    int progressed = 0;
    auto body = [&]() -> aio::Coro<void> {
      for (;;) {
        co_await aio::sleep(0s);
        ++progressed;
      }
    };
    aio::Task<void> t = aio::create_task(body());
    co_await aio::sleep(0s);
    co_await aio::sleep(0s);
    int before = progressed;
    t.cancel();
    EXPECT_THROW(co_await t, CancelledError);
    EXPECT_LE(progressed, before + 1);
    EXPECT_TRUE(t.cancelled());
  });
}

TEST(Task, AwaitingACancelledTaskThrowsCancelledError) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<void> t = aio::create_task(forever());
    co_await aio::sleep(1ms);
    t.cancel();
    co_await aio::sleep(1ms);
    EXPECT_TRUE(t.cancelled());
    int thrown = 0;
    for (int i = 0; i < 3; ++i) {
      try {
        co_await t;
      } catch (const CancelledError&) {
        ++thrown;
      }
    }
    EXPECT_EQ(thrown, 3);
  });
}

TEST(Task, CancellingAnAwaiterCancelsTheAwaitedTask) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<void> inner = aio::create_task(forever(), "inner");
    auto outer_body = [](aio::Task<void> in) -> aio::Coro<void> { co_await in; };
    aio::Task<void> outer = aio::create_task(outer_body(inner), "outer");
    co_await aio::sleep(1ms);
    EXPECT_TRUE(outer.cancel());
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_TRUE(inner.done());
    EXPECT_TRUE(inner.cancelled());
    EXPECT_TRUE(outer.cancelled());
  });
}

TEST(Task, CancelPropagatedToAnInnerThatSwallowsIt) {
  // Python: the outer's cancel() went to the inner; the inner returned a value, so the outer
  // gets that value and is not cancelled.
  run_main([]() -> aio::Coro<void> {
    auto inner_body = []() -> aio::Coro<int> {
      try {
        co_await aio::sleep(24h);
      } catch (const CancelledError&) {
        co_return 99;
      }
      co_return 0;
    };
    aio::Task<int> inner = aio::create_task(inner_body());
    auto outer_body = [](aio::Task<int> in) -> aio::Coro<int> { co_return co_await in + 1; };
    aio::Task<int> outer = aio::create_task(outer_body(inner));
    co_await aio::sleep(1ms);
    outer.cancel();
    EXPECT_EQ(co_await outer, 100);
    EXPECT_FALSE(outer.cancelled());
    EXPECT_FALSE(inner.cancelled());
  });
}

TEST(Task, CancelChainOfAwaitingTasks) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> chain;
    chain.push_back(aio::create_task(forever()));
    auto link = [](aio::Task<void> next) -> aio::Coro<void> { co_await next; };
    for (int i = 0; i < 100; ++i) chain.push_back(aio::create_task(link(chain.back())));
    co_await aio::sleep(1ms);
    chain.back().cancel();
    EXPECT_THROW(co_await chain.back(), CancelledError);
    for (auto& t : chain) EXPECT_TRUE(t.cancelled());
  });
}

TEST(Task, CancellingAndUncancelCounts) {
  run_main([]() -> aio::Coro<void> {
    auto body = []() -> aio::Coro<int> {
      int swallowed = 0;
      for (int i = 0; i < 2; ++i) {
        try {
          co_await aio::sleep(24h);
        } catch (const CancelledError&) {
          ++swallowed;
        }
      }
      co_return swallowed;
    };
    aio::Task<int> t = aio::create_task(body());
    co_await aio::sleep(1ms);
    EXPECT_EQ(t.cancelling(), 0);
    t.cancel();
    EXPECT_EQ(t.cancelling(), 1);
    co_await aio::sleep(1ms);
    EXPECT_EQ(t.uncancel(), 0);
    EXPECT_EQ(t.uncancel(), 0);  // never below zero
    t.cancel();
    t.cancel();
    EXPECT_EQ(t.cancelling(), 2);
    EXPECT_EQ(t.uncancel(), 1);
    EXPECT_EQ(co_await t, 2);
    EXPECT_FALSE(t.cancelled());
  });
}

TEST(Task, UncancelBeforeDeliveryWithdrawsTheCancellation) {
  // Python: uncancel() back to zero clears a pending (not yet delivered) cancellation.
  run_main([]() -> aio::Coro<void> {
    auto body = []() -> aio::Coro<int> {
      co_await aio::sleep(0s);
      co_return 5;
    };
    aio::Task<int> t = aio::create_task(body());
    co_await aio::sleep(0s);  // t is now suspended in sleep(0), its resume already queued
    t.cancel();
    EXPECT_EQ(t.uncancel(), 0);
    EXPECT_EQ(co_await t, 5);
    EXPECT_FALSE(t.cancelled());
  });
}

TEST(Task, CancelWhileBeingWoken) {
  // The awaited task has completed and the awaiter's wake-up is queued when the cancel comes:
  // the cancellation is delivered at that resume (Python: _must_cancel), the value is dropped.
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> awaiter;
    auto inner_body = [&]() -> aio::Coro<int> {
      co_await aio::sleep(1ms);
      // Queued before the awaiter's wake-up (which is queued when this task completes).
      aio::get_running_loop().call_soon([&] { EXPECT_TRUE(awaiter.cancel()); });
      co_return 5;
    };
    aio::Task<int> inner = aio::create_task(inner_body());
    auto awaiter_body = [](aio::Task<int> in) -> aio::Coro<int> { co_return co_await in; };
    awaiter = aio::create_task(awaiter_body(inner));
    EXPECT_THROW(co_await awaiter, CancelledError);
    EXPECT_TRUE(awaiter.cancelled());
    EXPECT_EQ(inner.result(), 5);
    EXPECT_FALSE(inner.cancelled());
  });
}

TEST(Task, CancelSleepWhoseTimerIsAlreadyDue) {
  // The sleep's timer fired in this very iteration (the task's resume is queued) when another
  // callback cancels it: CancelledError at that resume, nothing runs twice.
  run_main([]() -> aio::Coro<void> {
    int resumed_normally = 0;
    auto body = [&]() -> aio::Coro<void> {
      co_await aio::sleep(2ms);
      ++resumed_normally;
    };
    aio::Task<void> t = aio::create_task(body());
    co_await aio::sleep(0s);  // t is asleep
    auto& loop = aio::get_running_loop();
    // A timer due just before t's: fires in the same iteration, cancels t whose sleep is due.
    loop.call_later(2ms, [&] { t.cancel(); });
    std::this_thread::sleep_for(5ms);  // both timers are due at the next iteration
    EXPECT_THROW(co_await t, CancelledError);
    EXPECT_EQ(resumed_normally, 0);
  });
}

TEST(Task, ManyTasks) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    for (int i = 0; i < 10000; ++i) ts.push_back(aio::create_task(after(std::chrono::milliseconds(i % 7), i)));
    long sum = 0;
    for (auto& t : ts) sum += co_await t;
    EXPECT_EQ(sum, 10000L * 9999 / 2);
    EXPECT_EQ(aio::get_running_loop().pending_task_count(), 1u);  // just main
  });
}

TEST(Task, TaskCreatesTasks) {
  run_main([]() -> aio::Coro<void> {
    auto child = [](int v) -> aio::Coro<int> { co_return co_await after(0ms, v); };
    auto parent = [&child]() -> aio::Coro<int> {
      aio::Task<int> a = aio::create_task(child(1));
      aio::Task<int> b = aio::create_task(child(2));
      co_return co_await a + co_await b;
    };
    EXPECT_EQ(co_await aio::create_task(parent()), 3);
  });
}

TEST(Task, AwaitTaskOutsideAnyTaskIsLogicError) {
  aio::EventLoop loop;
  aio::Task<int> t = loop.create_task(after(0ms, 1));
  // Driving the Task awaiter by hand outside a task (no current task) must be a clear error.
  auto aw = t.operator co_await();
  if (!aw.await_ready()) {
    EXPECT_THROW(aw.await_suspend(std::noop_coroutine()), std::logic_error);
  }
  loop.run_until_complete(t);
}
