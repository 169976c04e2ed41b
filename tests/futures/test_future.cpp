// concurrent.futures.Future: result/exception/cancel/state queries, done-callbacks, then().
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
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

namespace {

// --- an unraisable hook that records what it is given (function pointer: global state) ---------
std::mutex g_unraisable_m;
std::vector<std::string> g_unraisable_ctx;   // guarded by g_unraisable_m
std::vector<std::string> g_unraisable_what;  // guarded by g_unraisable_m

void recording_hook(const std::string& context, const std::exception_ptr& e) {
  std::string what;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
    what = "?";
  }
  std::lock_guard g(g_unraisable_m);
  g_unraisable_ctx.push_back(context);
  g_unraisable_what.push_back(what);
}

struct HookGuard {
  HookGuard() {
    std::lock_guard g(g_unraisable_m);
    g_unraisable_ctx.clear();
    g_unraisable_what.clear();
    concur::set_unraisable_hook(&recording_hook);
  }
  ~HookGuard() { concur::set_unraisable_hook(nullptr); }
  HookGuard(const HookGuard&) = delete;
  HookGuard& operator=(const HookGuard&) = delete;
  static std::vector<std::string> what() {
    std::lock_guard g(g_unraisable_m);
    return g_unraisable_what;
  }
};

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "?";
  }
}

}  // namespace

// ---- result() -----------------------------------------------------------------------------------

TEST(Future, DefaultConstructedIsInvalid) {
  cf::Future<int> f;
  EXPECT_FALSE(f.valid());
  cf::Promise<int> p;
  EXPECT_TRUE(p.get_future().valid());
}

TEST(Future, ResultReturnsValue) {
  cf::Promise<int> p;
  auto f = p.get_future();
  p.set_result(42);
  EXPECT_EQ(f.result(), 42);
  EXPECT_EQ(f.result(10ms), 42);  // done: a timeout does not matter
  EXPECT_EQ(f.result(0ms), 42);
}

TEST(Future, ResultBlocksUntilSetFromAnotherThread) {
  cf::Promise<std::string> p;
  auto f = p.get_future();
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    p.set_result("late");
  });
  EXPECT_EQ(f.result(5s), "late");
  t.join();
}

TEST(Future, ResultWithTimeoutThrowsTimeoutError) {
  cf::Promise<int> p;
  auto f = p.get_future();
  EXPECT_THROW((void)f.result(20ms), concur::TimeoutError);
  EXPECT_FALSE(f.done());
  // A TimeoutError is a concur::Error.
  try {
    (void)f.result(1ms);
    ADD_FAILURE() << "no timeout";
  } catch (const concur::Error&) {
  }
  p.set_result(1);
  EXPECT_EQ(f.result(20ms), 1);
}

TEST(Future, ResultRethrowsTheTaskException) {
  cf::Promise<int> p;
  auto f = p.get_future();
  p.set_exception(std::out_of_range("bad index"));
  try {
    (void)f.result();
    ADD_FAILURE() << "no exception";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "bad index");
  }
  // Every call rethrows it again.
  EXPECT_THROW((void)f.result(), std::out_of_range);
  EXPECT_THROW((void)f.result(1s), std::out_of_range);
}

TEST(Future, ResultOfCancelledThrowsCancelledError) {
  cf::Promise<int> p;
  auto f = p.get_future();
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW((void)f.result(), concur::CancelledError);
  EXPECT_THROW((void)f.result(1s), concur::CancelledError);
}

TEST(Future, CancelWakesABlockedWaiter) {
  cf::Promise<int> p;
  auto f = p.get_future();
  std::atomic<int> outcome{0};  // 1 = CancelledError, 2 = other
  std::thread t([f, &outcome] {
    try {
      (void)f.result(10s);
      outcome = 2;
    } catch (const concur::CancelledError&) {
      outcome = 1;
    } catch (...) {
      outcome = 2;
    }
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(f.cancel());
  t.join();
  EXPECT_EQ(outcome.load(), 1);
}

TEST(Future, ResultReferenceOutlivesCopiesWhileAHandleLives) {
  cf::Promise<std::vector<int>> p;
  auto f = p.get_future();
  p.set_result(std::vector<int>{1, 2, 3});
  const std::vector<int>& v = f.result();
  { auto copy = f; }
  EXPECT_EQ(v, (std::vector<int>{1, 2, 3}));
}

TEST(Future, MoveOnlyResult) {
  cf::Promise<std::unique_ptr<int>> p;
  auto f = p.get_future();
  p.set_result(std::make_unique<int>(5));
  ASSERT_NE(f.result(), nullptr);
  EXPECT_EQ(*f.result(), 5);
}

// ---- exception() --------------------------------------------------------------------------------

TEST(Future, ExceptionIsNullOnSuccess) {
  cf::Promise<int> p;
  auto f = p.get_future();
  p.set_result(3);
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(f.exception(10ms), nullptr);
}

TEST(Future, ExceptionReturnsTheException) {
  cf::Promise<int> p;
  auto f = p.get_future();
  p.set_exception(std::runtime_error("boom"));
  auto e = f.exception();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(what_of(e), "boom");
  EXPECT_THROW(std::rethrow_exception(e), std::runtime_error);
}

TEST(Future, ExceptionTimesOut) {
  cf::Promise<int> p;
  auto f = p.get_future();
  EXPECT_THROW((void)f.exception(20ms), concur::TimeoutError);
}

TEST(Future, ExceptionOfCancelledThrowsCancelledError) {
  cf::Promise<int> p;
  auto f = p.get_future();
  f.cancel();
  EXPECT_THROW((void)f.exception(), concur::CancelledError);
  EXPECT_THROW((void)f.exception(1s), concur::CancelledError);
}

// ---- cancel() and state queries -----------------------------------------------------------------

TEST(Future, StateQueriesWhilePending) {
  cf::Promise<int> p;
  auto f = p.get_future();
  EXPECT_FALSE(f.running());
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.cancelled());
}

TEST(Future, CancelWhilePendingSucceeds) {
  cf::Promise<int> p;
  auto f = p.get_future();
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.running());
  // Cancelling again still reports "cancelled".
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
}

TEST(Future, CancelWhileRunningFails) {
  cf::Promise<int> p;
  auto f = p.get_future();
  EXPECT_TRUE(p.set_running_or_notify_cancel());
  EXPECT_TRUE(f.running());
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.cancel());
  EXPECT_FALSE(f.cancelled());
  EXPECT_TRUE(f.running());
  p.set_result(9);
  EXPECT_FALSE(f.running());
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), 9);
}

TEST(Future, CancelWhenDoneFails) {
  cf::Promise<int> p;
  auto f = p.get_future();
  p.set_result(1);
  EXPECT_FALSE(f.cancel());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.result(), 1);

  cf::Promise<int> q;
  auto g = q.get_future();
  q.set_exception(std::runtime_error("x"));
  EXPECT_FALSE(g.cancel());
  EXPECT_FALSE(g.cancelled());
  EXPECT_TRUE(g.done());
}

TEST(Future, CopiesShareState) {
  cf::Promise<int> p;
  auto f = p.get_future();
  cf::Future<int> g = f;  // copy
  cf::Future<int> h = p.get_future();
  EXPECT_TRUE(f == g);
  EXPECT_TRUE(f == h);
  EXPECT_TRUE(g.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_TRUE(h.cancelled());

  cf::Promise<int> p2;
  auto other = p2.get_future();
  EXPECT_FALSE(other == f);
  cf::Future<int> moved = std::move(other);
  EXPECT_TRUE(moved.valid());
  EXPECT_FALSE(other.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  p2.set_result(4);
  EXPECT_EQ(moved.result(), 4);
  moved = f;  // copy-assign
  EXPECT_TRUE(moved == f);
  EXPECT_TRUE(moved.cancelled());
}

TEST(Future, DroppingEveryHandleDoesNotCancel) {
  cf::Promise<int> p;
  std::atomic<int> seen{0};
  {
    auto f = p.get_future();
    f.add_done_callback([&seen](cf::Future<int> d) { seen = d.result(); });
  }
  EXPECT_TRUE(p.set_running_or_notify_cancel());  // still pending, not cancelled
  p.set_result(17);
  EXPECT_EQ(seen.load(), 17);
}

// ---- Future<void> -------------------------------------------------------------------------------

TEST(Future, VoidFuture) {
  cf::Promise<void> p;
  auto f = p.get_future();
  EXPECT_THROW(f.result(10ms), concur::TimeoutError);
  p.set_result();
  f.result();
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.exception(), nullptr);

  cf::Promise<void> q;
  auto g = q.get_future();
  q.set_exception(std::logic_error("void failed"));
  EXPECT_THROW(g.result(), std::logic_error);
  EXPECT_NE(g.exception(), nullptr);

  cf::Promise<void> r;
  auto h = r.get_future();
  EXPECT_TRUE(h.cancel());
  EXPECT_THROW(h.result(), concur::CancelledError);
}

// ---- add_done_callback --------------------------------------------------------------------------

TEST(Future, DoneCallbacksRunInOrderOnCompletion) {
  cf::Promise<int> p;
  auto f = p.get_future();
  std::vector<int> order;  // written by the completing thread = this thread
  for (int i = 0; i < 5; ++i) f.add_done_callback([&order, i](const cf::Future<int>&) { order.push_back(i); });
  EXPECT_TRUE(order.empty());
  p.set_result(1);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Future, DoneCallbackGetsTheFuture) {
  cf::Promise<int> p;
  auto f = p.get_future();
  cf::Future<int> got;
  int value = 0;
  f.add_done_callback([&](cf::Future<int> d) {
    got = d;
    value = d.result();
  });
  p.set_result(8);
  EXPECT_TRUE(got == f);
  EXPECT_EQ(value, 8);
}

TEST(Future, DoneCallbackRunsAtOnceOnCallingThreadIfDone) {
  cf::Promise<int> p;
  auto f = p.get_future();
  p.set_result(2);
  bool ran = false;
  std::thread::id where;
  f.add_done_callback([&](cf::Future<int>) {
    ran = true;
    where = std::this_thread::get_id();
  });
  EXPECT_TRUE(ran);  // before add_done_callback returned
  EXPECT_EQ(where, std::this_thread::get_id());
}

TEST(Future, DoneCallbackRunsOnTheCompletingThread) {
  cf::Promise<int> p;
  auto f = p.get_future();
  std::atomic<bool> ran{false};
  std::thread::id where;
  f.add_done_callback([&](cf::Future<int>) {
    where = std::this_thread::get_id();
    ran = true;
  });
  std::thread::id completer;
  std::thread t([&] {
    completer = std::this_thread::get_id();
    p.set_result(1);
  });
  t.join();
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(where, completer);
}

TEST(Future, DoneCallbackRunsForCancelledFuture) {
  cf::Promise<int> p;
  auto f = p.get_future();
  int calls = 0;
  bool saw_cancelled = false;
  f.add_done_callback([&](cf::Future<int> d) {
    ++calls;
    saw_cancelled = d.cancelled();
  });
  EXPECT_TRUE(f.cancel());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(saw_cancelled);
  // Added after cancellation: runs at once.
  f.add_done_callback([&](cf::Future<int>) { ++calls; });
  EXPECT_EQ(calls, 2);
  // A second cancel() does not run callbacks again.
  EXPECT_TRUE(f.cancel());
  EXPECT_EQ(calls, 2);
}

TEST(Future, DoneCallbackRunsForException) {
  cf::Promise<int> p;
  auto f = p.get_future();
  std::string seen;
  f.add_done_callback([&](cf::Future<int> d) { seen = what_of(d.exception()); });
  p.set_exception(std::runtime_error("bad"));
  EXPECT_EQ(seen, "bad");
}

TEST(Future, ThrowingCallbackIsReportedNotPropagated) {
  HookGuard hook;
  cf::Promise<int> p;
  auto f = p.get_future();
  std::vector<int> ran;
  f.add_done_callback([&](cf::Future<int>) { ran.push_back(1); });
  f.add_done_callback([&](cf::Future<int>) {
    ran.push_back(2);
    throw std::runtime_error("callback failed");
  });
  f.add_done_callback([&](cf::Future<int>) { ran.push_back(3); });
  EXPECT_NO_THROW(p.set_result(5));
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
  auto what = HookGuard::what();
  ASSERT_EQ(what.size(), 1u);
  EXPECT_EQ(what[0], "callback failed");
  EXPECT_EQ(f.result(), 5);

  // Already done: runs at once, still reported and not thrown from add_done_callback.
  EXPECT_NO_THROW(f.add_done_callback([](cf::Future<int>) { throw std::logic_error("late"); }));
  what = HookGuard::what();
  ASSERT_EQ(what.size(), 2u);
  EXPECT_EQ(what[1], "late");
}

TEST(Future, ThrowingCallbackOnCancelIsReported) {
  HookGuard hook;
  cf::Promise<int> p;
  auto f = p.get_future();
  f.add_done_callback([](cf::Future<int>) { throw std::runtime_error("on cancel"); });
  bool second = false;
  f.add_done_callback([&](cf::Future<int>) { second = true; });
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(second);
  auto what = HookGuard::what();
  ASSERT_EQ(what.size(), 1u);
  EXPECT_EQ(what[0], "on cancel");
}

TEST(Future, CallbackMayAddAnotherCallback) {
  cf::Promise<int> p;
  auto f = p.get_future();
  std::vector<int> order;
  f.add_done_callback([&](cf::Future<int> d) {
    order.push_back(1);
    d.add_done_callback([&](cf::Future<int>) { order.push_back(3); });  // already done: at once
    order.push_back(2);
  });
  p.set_result(0);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 2}));
}

TEST(Future, CallbackRunsAndIsFreedWhenThePromiseIsAbandoned) {
  // The callback owns a shared_ptr: after firing it must be destroyed (no leak, no double run).
  auto token = std::make_shared<int>(1);
  bool ran = false;
  {
    cf::Promise<int> p;
    auto f = p.get_future();
    f.add_done_callback([token, &ran](cf::Future<int>) { ran = true; });
    EXPECT_EQ(token.use_count(), 2);
    // Destroying the promise completes the future with BrokenPromise: the callback runs.
  }
  EXPECT_TRUE(ran);
  EXPECT_EQ(token.use_count(), 1);
}

// ---- then() -------------------------------------------------------------------------------------

TEST(Future, ThenChainsValues) {
  cf::Promise<int> p;
  auto f = p.get_future();
  auto g = f.then([](int v) { return v + 1; });
  auto h = g.then([](int v) { return std::to_string(v * 10); });
  static_assert(std::is_same_v<decltype(h), cf::Future<std::string>>);
  EXPECT_FALSE(h.done());
  p.set_result(4);
  EXPECT_EQ(g.result(1s), 5);
  EXPECT_EQ(h.result(1s), "50");
}

TEST(Future, ThenOnDoneFutureRunsAtOnce) {
  cf::Promise<int> p;
  auto f = p.get_future();
  p.set_result(1);
  auto g = f.then([](int v) { return v * 3; });
  EXPECT_TRUE(g.done());
  EXPECT_EQ(g.result(), 3);
}

TEST(Future, ThenPropagatesExceptionsWithoutCallingFn) {
  cf::Promise<int> p;
  auto f = p.get_future();
  bool called = false;
  auto g = f.then([&](int v) {
    called = true;
    return v;
  });
  p.set_exception(std::invalid_argument("nope"));
  EXPECT_THROW((void)g.result(1s), std::invalid_argument);
  EXPECT_FALSE(called);
}

TEST(Future, ThenFnExceptionFailsTheNewFuture) {
  cf::Promise<int> p;
  auto f = p.get_future();
  auto g = f.then([](int) -> int { throw std::runtime_error("in then"); });
  auto h = g.then([](int v) { return v; });
  p.set_result(1);
  EXPECT_EQ(f.result(), 1);
  EXPECT_THROW((void)g.result(1s), std::runtime_error);
  EXPECT_THROW((void)h.result(1s), std::runtime_error);
}

TEST(Future, ThenPropagatesCancellation) {
  cf::Promise<int> p;
  auto f = p.get_future();
  bool called = false;
  auto g = f.then([&](int v) {
    called = true;
    return v;
  });
  auto h = g.then([](int v) { return v; });
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(g.cancelled());
  EXPECT_TRUE(h.cancelled());
  EXPECT_THROW((void)h.result(1s), concur::CancelledError);
  EXPECT_FALSE(called);
}

TEST(Future, ThenWithVoidFutures) {
  cf::Promise<void> p;
  auto f = p.get_future();
  auto g = f.then([] { return 7; });  // void -> int
  int side = 0;
  auto h = g.then([&side](int v) { side = v; });  // int -> void
  auto k = h.then([&side] { side *= 2; });        // void -> void
  static_assert(std::is_same_v<decltype(g), cf::Future<int>>);
  static_assert(std::is_same_v<decltype(h), cf::Future<void>>);
  static_assert(std::is_same_v<decltype(k), cf::Future<void>>);
  p.set_result();
  EXPECT_EQ(g.result(1s), 7);
  h.result(1s);
  k.result(1s);
  EXPECT_EQ(side, 14);
}

TEST(Future, ThenRunsOnTheCompletingThread) {
  cf::Promise<int> p;
  auto f = p.get_future();
  std::thread::id where;
  auto g = f.then([&](int v) {
    where = std::this_thread::get_id();
    return v;
  });
  std::thread::id completer;
  std::thread t([&] {
    completer = std::this_thread::get_id();
    p.set_result(3);
  });
  t.join();
  EXPECT_EQ(g.result(1s), 3);
  EXPECT_EQ(where, completer);
}

TEST(Future, ThenOnPoolFuture) {
  cf::ThreadPoolExecutor pool(2);
  auto f = pool.submit([] { return 20; });
  auto g = f.then([](int v) { return v + 1; }).then([](int v) { return v * 2; });
  EXPECT_EQ(g.result(5s), 42);
}
