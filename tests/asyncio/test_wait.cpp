// asyncio.wait (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED, timeout, cancel safety),
// wait_for (value, timeout cancels and awaits the inner, an inner that swallows the
// cancellation, the caller cancelled, and the races where the inner finishes in the same
// iteration as the timeout or as the caller's cancel), shield, as_completed (order, errors,
// timeout, 20,000 tasks, a cancelled next() loses nothing), and ensure_task.
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "aio_support.hpp"
#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"
#include "concur/futures.hpp"
#include "concur/threading.hpp"

namespace aio = concur::asyncio;
namespace cf = concur::futures;
using concur::CancelledError;
using concur::TimeoutError;
using namespace std::chrono_literals;

namespace {

class WaitTest : public concur::test::BackendTest {};

using concur::test::yields;
aio::Coro<int> fail_after(int n, std::string msg) {
  for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
  throw std::runtime_error(msg);
}
aio::Coro<int> forever_int() {
  co_await aio::sleep(24h);
  co_return -1;
}
aio::Coro<int> after(std::chrono::milliseconds d, int v) {
  co_await aio::sleep(d);
  co_return v;
}
aio::Coro<int> value_when_set(aio::Event* ev, int v) {
  co_await ev->wait();
  co_return v;
}
aio::Coro<void> set_after(aio::Event* ev, int n) {
  for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
  ev->set();
}

/// On cancellation: `cleanup_steps` loop iterations of asynchronous clean-up, then a flag, then
/// re-raise (or, with `swallow`, return -1 instead).
aio::Coro<int> cancellable(std::shared_ptr<bool> cleaned, int cleanup_steps, bool swallow) {
  bool cancelled = false;
  try {
    co_await aio::sleep(24h);
  } catch (const CancelledError&) {
    cancelled = true;  // (no co_await inside a handler: leave it first)
  }
  if (!cancelled) co_return 0;
  for (int i = 0; i < cleanup_steps; ++i) co_await aio::sleep(0s);
  *cleaned = true;
  if (swallow) co_return -1;
  throw CancelledError();
}

aio::Coro<aio::WaitResult<int>> wait_all(std::vector<aio::Task<int>> ts) {
  co_return co_await aio::wait(std::move(ts));
}
aio::Coro<int> wait_for_task(aio::Task<int> t, std::chrono::milliseconds d) { co_return co_await aio::wait_for(t, d); }
aio::Coro<int> shield_task(aio::Task<int> t) { co_return co_await aio::shield(t); }
aio::Coro<int> take_next(aio::AsCompleted<int>* ac) { co_return co_await ac->next(); }

template <class T>
bool contains(const std::vector<aio::Task<T>>& v, const aio::Task<T>& t) {
  for (auto& x : v)
    if (x.state() == t.state()) return true;
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------- wait

TEST_P(WaitTest, WaitFirstCompleted) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(6, 0)));
    ts.push_back(aio::create_task(yields(1, 1)));
    ts.push_back(aio::create_task(yields(12, 2)));
    aio::WaitOptions opts{.return_when = aio::FIRST_COMPLETED};  // (GCC 12: no braced list in co_await)
    auto [done, pending] = co_await aio::wait(ts, opts);
    CO_ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].state(), ts[1].state());
    EXPECT_EQ(done[0].result(), 1);
    EXPECT_EQ(pending.size(), 2u);
    EXPECT_TRUE(contains(pending, ts[0]));
    EXPECT_TRUE(contains(pending, ts[2]));
    for (auto& t : pending) EXPECT_FALSE(t.done());
    for (auto& t : ts) co_await t;
  });
}

TEST_P(WaitTest, WaitFirstException) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(1, 0)));
    ts.push_back(aio::create_task(fail_after(4, "bad")));
    ts.push_back(aio::create_task(forever_int()));
    aio::WaitOptions opts{.return_when = aio::FIRST_EXCEPTION};
    auto [done, pending] = co_await aio::wait(ts, opts);
    CO_ASSERT_EQ(done.size(), 2u);
    EXPECT_TRUE(contains(done, ts[0]));
    EXPECT_TRUE(contains(done, ts[1]));
    CO_ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].state(), ts[2].state());
    EXPECT_FALSE(ts[2].cancelled());  // wait never cancels anything
    EXPECT_THROW(ts[1].result(), std::runtime_error);
    ts[2].cancel();
    EXPECT_THROW(co_await ts[2], CancelledError);
  });
}

TEST_P(WaitTest, WaitFirstExceptionWithoutErrorsWaitsForAll) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    for (int i = 0; i < 5; ++i) ts.push_back(aio::create_task(yields(i * 2, i)));
    aio::WaitOptions opts{.return_when = aio::FIRST_EXCEPTION};
    auto [done, pending] = co_await aio::wait(ts, opts);
    EXPECT_EQ(done.size(), 5u);
    EXPECT_TRUE(pending.empty());
  });
}

TEST_P(WaitTest, WaitAllCompleted) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    for (int i = 0; i < 10; ++i) ts.push_back(aio::create_task(yields(10 - i, i)));
    ts.push_back(aio::create_task(fail_after(3, "one fails")));
    auto r = co_await aio::wait(ts);  // ALL_COMPLETED by default
    EXPECT_EQ(r.done.size(), 11u);
    EXPECT_TRUE(r.pending.empty());
    int sum = 0;
    for (int i = 0; i < 10; ++i) sum += ts[static_cast<std::size_t>(i)].result();
    EXPECT_EQ(sum, 45);
    EXPECT_NE(ts[10].exception(), nullptr);
  });
}

TEST_P(WaitTest, WaitTimeoutReturnsWhatIsDoneSoFar) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(0, 1)));
    ts.push_back(aio::create_task(forever_int()));
    auto& loop = aio::get_running_loop();
    const double t0 = loop.time();
    aio::WaitOptions opts{.timeout = 20ms};
    auto [done, pending] = co_await aio::wait(ts, opts);
    EXPECT_GE(loop.time() - t0, 0.019);
    CO_ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].state(), ts[0].state());
    CO_ASSERT_EQ(pending.size(), 1u);
    EXPECT_FALSE(ts[1].done());  // not cancelled by the timeout
    ts[1].cancel();
    EXPECT_THROW(co_await ts[1], CancelledError);
  });
}

TEST_P(WaitTest, WaitTimeoutNotReachedWhenAllFinish) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(1, 1)));
    ts.push_back(aio::create_task(yields(2, 2)));
    auto& loop = aio::get_running_loop();
    const double t0 = loop.time();
    aio::WaitOptions opts{.timeout = 1h};
    auto r = co_await aio::wait(ts, opts);
    EXPECT_EQ(r.done.size(), 2u);
    EXPECT_LT(loop.time() - t0, 60.0);
  });
}

TEST_P(WaitTest, CancellingTheWaiterLeavesTasksRunning) {
  run_main([]() -> aio::Coro<void> {
    aio::Event ev;
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(value_when_set(&ev, 1)));
    ts.push_back(aio::create_task(value_when_set(&ev, 2)));
    aio::Task<aio::WaitResult<int>> waiter = aio::create_task(wait_all(ts));
    co_await concur::test::settle();
    EXPECT_TRUE(waiter.cancel());
    EXPECT_THROW(co_await waiter, CancelledError);
    for (auto& t : ts) {
      EXPECT_FALSE(t.done());
      EXPECT_FALSE(t.cancelled());
    }
    ev.set();
    EXPECT_EQ(co_await ts[0] + co_await ts[1], 3);
  });
}

// ------------------------------------------------------------------------------ wait_for

TEST_P(WaitTest, WaitForValueInTime) {
  run_main([]() -> aio::Coro<void> {
    EXPECT_EQ(co_await aio::wait_for(yields(3, 7), 1h), 7);
    aio::Task<int> t = aio::create_task(yields(2, 8));
    EXPECT_EQ(co_await aio::wait_for(t, 1h), 8);
    aio::Event ev;
    aio::Task<void> setter = aio::create_task(set_after(&ev, 2));
    EXPECT_TRUE(co_await aio::wait_for(ev.wait(), 1h));
    co_await setter;
  });
}

TEST_P(WaitTest, WaitForErrorPropagates) {
  run_main([]() -> aio::Coro<void> {
    try {
      co_await aio::wait_for(fail_after(2, "inner failed"), 1h);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "inner failed");
    }
  });
}

TEST_P(WaitTest, WaitForTimeoutCancelsAndAwaitsTheInner) {
  run_main([]() -> aio::Coro<void> {
    auto cleaned = std::make_shared<bool>(false);
    aio::Task<int> inner = aio::create_task(cancellable(cleaned, 3, false));
    auto& loop = aio::get_running_loop();
    const double t0 = loop.time();
    EXPECT_THROW(co_await aio::wait_for(inner, 10ms), TimeoutError);
    EXPECT_GE(loop.time() - t0, 0.009);
    // The inner was cancelled and awaited (its asynchronous clean-up finished) before the throw.
    EXPECT_TRUE(*cleaned);
    EXPECT_TRUE(inner.done());
    EXPECT_TRUE(inner.cancelled());
  });
}

TEST_P(WaitTest, WaitForTimeoutWithACoroutineAndAFuture) {
  cf::ThreadPoolExecutor pool(1);
  run_main([&pool]() -> aio::Coro<void> {
    EXPECT_THROW(co_await aio::wait_for(forever_int(), 5ms), TimeoutError);
    aio::Event ev;
    EXPECT_THROW(co_await aio::wait_for(ev.wait(), 5ms), TimeoutError);
    // A future whose call has not started is cancelled by the timeout. (The blocker waits on a
    // threading::Event, not a future: a worker waiting on a future would run the queued call.)
    auto gate = std::make_shared<concur::threading::Event>();
    auto started = std::make_shared<concur::threading::Event>();
    cf::Future<bool> blocker = pool.submit([gate, started] {
      started->set();
      return gate->wait(30s);
    });
    EXPECT_TRUE(started->wait(30s));
    cf::Future<int> queued = pool.submit([] { return 1; });
    EXPECT_THROW(co_await aio::wait_for(queued, 5ms), TimeoutError);
    EXPECT_TRUE(queued.cancelled());
    gate->set();
    EXPECT_TRUE(co_await blocker);
  });
}

TEST_P(WaitTest, WaitForInnerThatSwallowsCancellationGivesItsValue) {
  run_main([]() -> aio::Coro<void> {
    auto cleaned = std::make_shared<bool>(false);
    aio::Task<int> inner = aio::create_task(cancellable(cleaned, 2, true));
    // Python 3.12: the inner's value is returned; no TimeoutError.
    EXPECT_EQ(co_await aio::wait_for(inner, 5ms), -1);
    EXPECT_TRUE(*cleaned);
    EXPECT_FALSE(inner.cancelled());
  });
}

TEST_P(WaitTest, WaitForCallerCancelledCancelsTheInner) {
  run_main([]() -> aio::Coro<void> {
    auto cleaned = std::make_shared<bool>(false);
    aio::Task<int> inner = aio::create_task(cancellable(cleaned, 0, false));
    aio::Task<int> outer = aio::create_task(wait_for_task(inner, 1h));
    co_await concur::test::settle();
    EXPECT_TRUE(outer.cancel());
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_TRUE(outer.cancelled());
    co_await concur::test::settle();
    EXPECT_TRUE(inner.cancelled());
    EXPECT_TRUE(*cleaned);
  });
}

namespace {
/// One round of the timeout race: the inner's sleep and wait_for's deadline both become due in
/// the same loop iteration (the loop thread is blocked past both); `inner_first` decides whose
/// timer is earlier.
aio::Coro<void> timeout_race_round(bool inner_first, int* values, int* timeouts) {
  aio::Task<int> inner;
  if (inner_first) {
    inner = aio::create_task(after(2ms, 5));
    co_await aio::sleep(0s);  // the inner's timer is armed before wait_for's
  } else {
    inner = aio::create_task(after(2ms, 5));  // armed after wait_for's, on its first step
  }
  // Blocks the loop thread past both deadlines, after both timers are armed.
  auto blocker = [](int rounds) -> aio::Coro<void> {
    for (int i = 0; i < rounds; ++i) co_await aio::sleep(0s);
    std::this_thread::sleep_for(6ms);
  };
  aio::Task<void> b = aio::create_task(blocker(1));
  // Both outcomes are consistent; which one comes is decided by the timers' order: the
  // earlier one's task runs first in that iteration.
  try {
    int v = co_await aio::wait_for(inner, 2ms);
    EXPECT_TRUE(inner_first) << "the deadline was first, yet the value came";
    ++*values;
    EXPECT_EQ(v, 5);
    EXPECT_TRUE(inner.done());
    EXPECT_FALSE(inner.cancelled());
  } catch (const TimeoutError&) {
    EXPECT_FALSE(inner_first) << "the inner's timer was first, yet wait_for timed out";
    ++*timeouts;
    // A timeout means the inner was really cancelled (and is finished): no value was dropped.
    EXPECT_TRUE(inner.done());
    EXPECT_TRUE(inner.cancelled());
  }
  co_await b;
}
}  // namespace

TEST_P(WaitTest, WaitForRaceInnerFinishesInTheTimeoutIteration) {
  run_main([]() -> aio::Coro<void> {
    int values = 0, timeouts = 0;
    const auto rounds = concur::test::stress_iters(40);
    concur::test::Budget budget(std::chrono::seconds(20));
    std::int64_t done = 0;
    for (std::int64_t i = 0; i < rounds && !budget.exhausted(); ++i, ++done)
      co_await timeout_race_round(i % 2 == 0, &values, &timeouts);
    EXPECT_EQ(values + timeouts, done);
    EXPECT_EQ(values, (done + 1) / 2);
    EXPECT_EQ(aio::get_running_loop().pending_task_count(), 1u);  // nothing hung
  });
}

namespace {
/// The inner finishes and, just before, queues the cancellation of the caller: the caller's
/// wake-up and the cancel land in the same iteration.
aio::Coro<int> finish_and_cancel(std::shared_ptr<aio::Task<int>> victim) {
  co_await aio::sleep(0s);
  aio::get_running_loop().call_soon([victim] { EXPECT_TRUE(victim->cancel()); });
  co_return 5;
}
}  // namespace

TEST_P(WaitTest, WaitForRaceCallerCancelledAsTheInnerFinishes) {
  run_main([]() -> aio::Coro<void> {
    auto outer_slot = std::make_shared<aio::Task<int>>();
    aio::Task<int> inner = aio::create_task(finish_and_cancel(outer_slot));
    aio::Task<int> outer = aio::create_task(wait_for_task(inner, 1h));
    *outer_slot = outer;
    int got = 0;
    bool cancelled = false;
    try {
      got = co_await outer;
    } catch (const CancelledError&) {
      cancelled = true;
    }
    // Either outcome is allowed; it must be consistent, and the inner's value is never lost.
    EXPECT_TRUE(cancelled ? outer.cancelled() : got == 5);
    EXPECT_TRUE(inner.done());
    EXPECT_FALSE(inner.cancelled());
    EXPECT_EQ(inner.result(), 5);
    *outer_slot = {};
  });
}

TEST_P(WaitTest, WaitForRaceCancelAtEveryOffset) {
  // The caller is cancelled k iterations after the start, for every k around the inner's end:
  // every round ends with a value or CancelledError, the inner done (value kept or cancelled).
  run_main([]() -> aio::Coro<void> {
    concur::test::Budget budget(std::chrono::seconds(20));
    const auto rounds = concur::test::stress_iters(60);
    for (std::int64_t r = 0; r < rounds && !budget.exhausted(); ++r) {
      const int k = static_cast<int>(r % 8);
      aio::Task<int> inner = aio::create_task(yields(3, 9));
      aio::Task<int> outer = aio::create_task(wait_for_task(inner, 1h));
      for (int i = 0; i < k; ++i) co_await aio::sleep(0s);
      outer.cancel();
      try {
        EXPECT_EQ(co_await outer, 9);
      } catch (const CancelledError&) {
        EXPECT_TRUE(outer.cancelled());
      }
      co_await concur::test::settle(2);
      EXPECT_TRUE(inner.done());
      if (!inner.cancelled()) {
        EXPECT_EQ(inner.result(), 9);
      }
    }
    EXPECT_EQ(aio::get_running_loop().pending_task_count(), 1u);
  });
}

// -------------------------------------------------------------------------------- shield

TEST_P(WaitTest, ShieldValueAndError) {
  run_main([]() -> aio::Coro<void> {
    EXPECT_EQ(co_await aio::shield(yields(2, 3)), 3);
    EXPECT_THROW(co_await aio::shield(fail_after(1, "shielded")), std::runtime_error);
  });
}

TEST_P(WaitTest, ShieldCallerCancelledInnerFinishes) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> inner = aio::create_task(yields(6, 42));
    aio::Task<int> outer = aio::create_task(shield_task(inner));
    co_await aio::sleep(0s);
    EXPECT_TRUE(outer.cancel());
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_TRUE(outer.cancelled());
    EXPECT_FALSE(inner.done());
    EXPECT_FALSE(inner.cancelled());
    EXPECT_EQ(co_await inner, 42);  // the result is still there
  });
}

TEST_P(WaitTest, ShieldOfACoroutineRunsOnAfterTheCallerIsCancelled) {
  auto finished = std::make_shared<bool>(false);
  run_main([finished]() -> aio::Coro<void> {
    auto body = [](std::shared_ptr<bool> flag) -> aio::Coro<int> {
      for (int i = 0; i < 5; ++i) co_await aio::sleep(0s);
      *flag = true;
      co_return 1;
    };
    auto caller = [](aio::Coro<int> c) -> aio::Coro<int> { co_return co_await aio::shield(std::move(c)); };
    aio::Task<int> outer = aio::create_task(caller(body(finished)));
    co_await aio::sleep(0s);
    co_await aio::sleep(0s);
    outer.cancel();
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_FALSE(*finished);
    co_await concur::test::settle(10);
    EXPECT_TRUE(*finished);
  });
  EXPECT_TRUE(*finished);
}

TEST_P(WaitTest, ShieldOfACancelledInnerIsCancelledError) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> inner = aio::create_task(forever_int());
    aio::Task<int> outer = aio::create_task(shield_task(inner));
    co_await concur::test::settle();
    inner.cancel();
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_TRUE(inner.cancelled());
  });
}

// -------------------------------------------------------------------------- as_completed

TEST_P(WaitTest, AsCompletedYieldsInCompletionOrder) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(6, 0)));
    ts.push_back(aio::create_task(yields(2, 1)));
    ts.push_back(aio::create_task(yields(4, 2)));
    ts.push_back(aio::create_task(yields(0, 3)));
    std::vector<int> order;
    auto it = aio::as_completed(ts);
    while (it.has_next()) order.push_back(co_await it.next());
    EXPECT_EQ(order, (std::vector<int>{3, 1, 2, 0}));
    EXPECT_THROW(co_await it.next(), std::logic_error);
  });
}

TEST_P(WaitTest, AsCompletedAlreadyDoneTasksComeFirstInGivenOrder) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(5, 0)));
    ts.push_back(aio::create_task(yields(0, 1)));
    ts.push_back(aio::create_task(yields(0, 2)));
    co_await concur::test::settle(2);
    auto it = aio::as_completed(ts);
    std::vector<int> order;
    while (it.has_next()) order.push_back(co_await it.next());
    EXPECT_EQ(order, (std::vector<int>{1, 2, 0}));
  });
}

TEST_P(WaitTest, AsCompletedRethrowsAtTheFailingItem) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(1, 1)));
    ts.push_back(aio::create_task(fail_after(3, "second")));
    ts.push_back(aio::create_task(yields(5, 3)));
    auto it = aio::as_completed(ts);
    EXPECT_EQ(co_await it.next(), 1);
    try {
      co_await it.next();
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "second");
    }
    EXPECT_TRUE(it.has_next());
    EXPECT_EQ(co_await it.next(), 3);
    EXPECT_FALSE(it.has_next());
  });
}

TEST_P(WaitTest, AsCompletedTimeout) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(1, 1)));
    ts.push_back(aio::create_task(forever_int()));
    auto& loop = aio::get_running_loop();
    const double t0 = loop.time();
    auto it = aio::as_completed(ts, 20ms);
    EXPECT_EQ(co_await it.next(), 1);
    EXPECT_THROW(co_await it.next(), TimeoutError);
    EXPECT_GE(loop.time() - t0, 0.019);
    EXPECT_FALSE(ts[1].done());  // the timeout cancels nothing
    ts[1].cancel();
    EXPECT_THROW(co_await ts[1], CancelledError);
  });
}

TEST_P(WaitTest, AsCompletedTwentyThousandTasksInExactOrder) {
  run_main([]() -> aio::Coro<void> {
    constexpr int n = 20000;
    constexpr int m = 50;
    std::vector<aio::Task<int>> ts;
    ts.reserve(n);
    for (int i = 0; i < n; ++i) ts.push_back(aio::create_task(yields(i % m, i)));
    auto& loop = aio::get_running_loop();
    const double t0 = loop.time();
    // Task i finishes on its (i % 50 + 1)-th step; steps run in FIFO order: by (i % 50, i).
    std::vector<int> expected;
    expected.reserve(n);
    for (int r = 0; r < m; ++r)
      for (int i = r; i < n; i += m) expected.push_back(i);
    std::vector<int> got;
    got.reserve(n);
    auto it = aio::as_completed(std::move(ts));
    while (it.has_next()) got.push_back(co_await it.next());
    CO_ASSERT_EQ(got.size(), expected.size());
    std::size_t mismatch = got.size();
    for (std::size_t i = 0; i < got.size() && mismatch == got.size(); ++i)
      if (got[i] != expected[i]) mismatch = i;
    EXPECT_EQ(mismatch, got.size()) << "first out of order: " << (mismatch < got.size() ? got[mismatch] : -1);
    EXPECT_LT(loop.time() - t0, 60.0);  // generous: O(1) per result, not O(n)
    EXPECT_EQ(loop.pending_task_count(), 1u);
  });
}

TEST_P(WaitTest, AsCompletedCancelledNextLosesNoResult) {
  run_main([]() -> aio::Coro<void> {
    aio::Event ev;
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(value_when_set(&ev, 7)));
    ts.push_back(aio::create_task(yields(30, 8)));
    auto it = aio::as_completed(ts);
    aio::Task<int> taker = aio::create_task(take_next(&it));
    co_await concur::test::settle();
    EXPECT_FALSE(taker.done());
    taker.cancel();
    EXPECT_THROW(co_await taker, CancelledError);
    ev.set();
    EXPECT_EQ(co_await it.next(), 7);
    EXPECT_EQ(co_await it.next(), 8);
    EXPECT_FALSE(it.has_next());
  });
}

namespace {
aio::Coro<int> finish_and_cancel_taker(std::shared_ptr<aio::Task<int>> taker, int v) {
  co_await aio::sleep(0s);
  co_await aio::sleep(0s);
  // Queued before the taker's wake-up (which is queued as this task completes).
  aio::get_running_loop().call_soon([taker] { EXPECT_TRUE(taker->cancel()); });
  co_return v;
}
}  // namespace

TEST_P(WaitTest, AsCompletedNextCancelledAsTheResultArrives) {
  run_main([]() -> aio::Coro<void> {
    auto slot = std::make_shared<aio::Task<int>>();
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(finish_and_cancel_taker(slot, 11)));
    auto it = aio::as_completed(ts);
    *slot = aio::create_task(take_next(&it));
    aio::Task<int> taker = *slot;
    int got = -1;
    bool cancelled = false;
    try {
      got = co_await taker;
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      // The woken-and-cancelled next() did not take the result: the next call has it.
      CO_ASSERT_EQ(it.has_next(), true);
      EXPECT_EQ(co_await it.next(), 11);
    } else {
      EXPECT_EQ(got, 11);
    }
    EXPECT_FALSE(it.has_next());
    *slot = {};
  });
}

// --------------------------------------------------------------------------- ensure_task

TEST_P(WaitTest, EnsureTask) {
  cf::ThreadPoolExecutor pool(1);
  run_main([&pool]() -> aio::Coro<void> {
    aio::Task<int> t = aio::create_task(yields(1, 1));
    auto same = aio::ensure_task(t);
    static_assert(std::is_same_v<decltype(same), aio::Task<int>>);
    EXPECT_EQ(same.state(), t.state());  // a Task is returned as it is

    auto from_coro = aio::ensure_task(yields(2, 2));
    static_assert(std::is_same_v<decltype(from_coro), aio::Task<int>>);
    EXPECT_FALSE(from_coro.done());

    cf::Future<int> f = pool.submit([] { return 3; });
    auto from_future = aio::ensure_task(f);
    static_assert(std::is_same_v<decltype(from_future), aio::Task<int>>);

    aio::Event ev;
    auto from_event = aio::ensure_task(ev.wait());
    static_assert(std::is_same_v<decltype(from_event), aio::Task<bool>>);
    co_await aio::sleep(0s);
    EXPECT_FALSE(from_event.done());
    ev.set();

    EXPECT_EQ(co_await same, 1);
    EXPECT_EQ(co_await from_coro, 2);
    EXPECT_EQ(co_await from_future, 3);
    EXPECT_TRUE(co_await from_event);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, WaitTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
