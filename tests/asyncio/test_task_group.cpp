// asyncio.TaskGroup (join waits for all; the first failure cancels the siblings and join
// throws an ExceptionGroup of every failure; CancelledError of a child is no failure;
// cancelling the joiner cancels and awaits the children; a group dropped unjoined cancels its
// children; the races of a cancel inside a group) and asyncio.timeout / timeout_at (expiry,
// no expiry, a cancel from outside, the uncancel() bookkeeping).
#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "aio_support.hpp"
#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"
#include "concur/core/error.hpp"

namespace aio = concur::asyncio;
using concur::CancelledError;
using concur::ExceptionGroup;
using concur::TimeoutError;
using namespace std::chrono_literals;

namespace {

class TaskGroupTest : public concur::test::BackendTest {};
class TimeoutTest : public TaskGroupTest {};

using concur::test::yields;
aio::Coro<int> fail_after(int n, std::string msg) {
  for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
  throw std::runtime_error(msg);
}
aio::Coro<void> forever() { co_await aio::sleep(24h); }
aio::Coro<int> forever_int() {
  co_await aio::sleep(24h);
  co_return -1;
}

/// Sleeps until cancelled, then does `cleanup_steps` iterations of asynchronous clean-up, sets
/// `*cleaned`, and re-raises.
aio::Coro<void> cleanup_on_cancel(std::shared_ptr<int> cleaned, int cleanup_steps) {
  bool cancelled = false;
  try {
    co_await aio::sleep(24h);
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (!cancelled) co_return;
  for (int i = 0; i < cleanup_steps; ++i) co_await aio::sleep(0s);
  ++*cleaned;
  throw CancelledError();
}

/// Sleeps until cancelled, then fails with a different error.
aio::Coro<void> fail_on_cancel(std::string msg) {
  bool cancelled = false;
  try {
    co_await aio::sleep(24h);
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (cancelled) throw std::logic_error(msg);
}

std::vector<std::string> messages(const ExceptionGroup& g) {
  std::vector<std::string> out;
  for (const auto& e : g.exceptions()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out.push_back(ex.what());
    }
  }
  return out;
}

}  // namespace

// ----------------------------------------------------------------------------- TaskGroup

TEST_P(TaskGroupTest, JoinWaitsForAll) {
  run_main([]() -> aio::Coro<void> {
    aio::TaskGroup tg;
    std::vector<aio::Task<int>> ts;
    for (int i = 0; i < 10; ++i) ts.push_back(tg.create_task(yields((i * 3) % 7, i), "child-" + std::to_string(i)));
    EXPECT_EQ(tg.size(), 10u);
    co_await tg.join();
    int sum = 0;
    for (auto& t : ts) {
      EXPECT_TRUE(t.done());
      sum += t.result();
    }
    EXPECT_EQ(sum, 45);
    EXPECT_EQ(ts[3].get_name(), "child-3");
  });
}

TEST_P(TaskGroupTest, JoinOfAnEmptyGroup) {
  run_main([]() -> aio::Coro<void> {
    aio::TaskGroup tg;
    co_await tg.join();
    EXPECT_EQ(tg.size(), 0u);
  });
}

TEST_P(TaskGroupTest, FirstFailureCancelsSiblingsJoinThrowsGroup) {
  run_main([]() -> aio::Coro<void> {
    aio::TaskGroup tg;
    aio::Task<int> early = tg.create_task(yields(0, 1));
    aio::Task<int> bad = tg.create_task(fail_after(2, "boom"));
    aio::Task<void> s1 = tg.create_task(forever());
    aio::Task<int> s2 = tg.create_task(forever_int());
    bool thrown = false;
    try {
      co_await tg.join();
    } catch (const ExceptionGroup& g) {
      thrown = true;
      EXPECT_EQ(messages(g), std::vector<std::string>{"boom"});
    }
    EXPECT_TRUE(thrown);
    EXPECT_TRUE(s1.cancelled());
    EXPECT_TRUE(s2.cancelled());
    EXPECT_FALSE(early.cancelled());
    EXPECT_EQ(early.result(), 1);
    EXPECT_THROW(bad.result(), std::runtime_error);
  });
}

TEST_P(TaskGroupTest, EveryFailureIsCollected) {
  concur::test::UnraisableRecorder rec;
  run_main([]() -> aio::Coro<void> {
    aio::TaskGroup tg;
    tg.create_task(fail_after(1, "a"));
    // Would fail in the same iteration, but "a" failed first: b's pending resume gets the
    // cancellation instead (as Python), so b is cancelled, not a failure.
    aio::Task<int> b = tg.create_task(fail_after(1, "b"));
    tg.create_task(fail_on_cancel("cleanup 1 failed"));  // fail while being cancelled
    tg.create_task(fail_on_cancel("cleanup 2 failed"));
    auto cleaned = std::make_shared<int>(0);
    tg.create_task(cleanup_on_cancel(cleaned, 2));  // cancelled: not a failure
    bool thrown = false;
    try {
      co_await tg.join();
    } catch (const ExceptionGroup& g) {
      thrown = true;
      EXPECT_EQ(g.exceptions().size(), 3u);
      auto m = messages(g);
      EXPECT_EQ(m.front(), "a");  // in the order they were collected
      std::sort(m.begin(), m.end());
      EXPECT_EQ(m, (std::vector<std::string>{"a", "cleanup 1 failed", "cleanup 2 failed"}));
    }
    EXPECT_TRUE(thrown);
    EXPECT_TRUE(b.cancelled());
    EXPECT_EQ(*cleaned, 1);
  });
  EXPECT_EQ(rec.count(), 0u);  // the group retrieved every error: none is "never retrieved"
}

TEST_P(TaskGroupTest, CancelledChildIsNotAFailure) {
  run_main([]() -> aio::Coro<void> {
    aio::TaskGroup tg;
    aio::Task<void> victim = tg.create_task(forever());
    aio::Task<int> sibling = tg.create_task(yields(5, 9));
    co_await aio::sleep(0s);
    victim.cancel();
    co_await tg.join();  // no throw
    EXPECT_TRUE(victim.cancelled());
    EXPECT_FALSE(sibling.cancelled());  // nothing was aborted
    EXPECT_EQ(sibling.result(), 9);
  });
}

namespace {
aio::Coro<void> join_group_with_cleanups(std::shared_ptr<int> cleaned, int children, std::shared_ptr<bool> after_join) {
  aio::TaskGroup tg;
  for (int i = 0; i < children; ++i) tg.create_task(cleanup_on_cancel(cleaned, i + 1));
  co_await tg.join();
  *after_join = true;
}
}  // namespace

TEST_P(TaskGroupTest, CancellingTheJoinerCancelsAndAwaitsChildren) {
  run_main([]() -> aio::Coro<void> {
    auto cleaned = std::make_shared<int>(0);
    auto after_join = std::make_shared<bool>(false);
    aio::Task<void> parent = aio::create_task(join_group_with_cleanups(cleaned, 4, after_join));
    co_await concur::test::settle();
    EXPECT_TRUE(parent.cancel());
    EXPECT_THROW(co_await parent, CancelledError);
    EXPECT_TRUE(parent.cancelled());
    EXPECT_EQ(*cleaned, 4);  // every child finished its clean-up before the parent ended
    EXPECT_FALSE(*after_join);
  });
}

TEST_P(TaskGroupTest, DestroyedWithoutJoinCancelsUnfinishedChildren) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<void> a;
    aio::Task<int> b;
    aio::Task<int> done_child;
    {
      aio::TaskGroup tg;
      a = tg.create_task(forever());
      b = tg.create_task(forever_int());
      done_child = tg.create_task(yields(0, 3));
      co_await concur::test::settle(2);
      EXPECT_TRUE(done_child.done());
    }
    co_await concur::test::settle(2);
    EXPECT_TRUE(a.cancelled());
    EXPECT_TRUE(b.cancelled());
    EXPECT_EQ(done_child.result(), 3);
  });
}

TEST_P(TaskGroupTest, CreateTaskAfterJoinIsLogicError) {
  run_main([]() -> aio::Coro<void> {
    aio::TaskGroup tg;
    tg.create_task(yields(1, 1));
    co_await tg.join();
    EXPECT_THROW(tg.create_task(yields(0, 2)), std::logic_error);
  });
}

namespace {
aio::Coro<int> spawn_more(aio::TaskGroup* tg, int depth, std::shared_ptr<int> count) {
  ++*count;
  co_await aio::sleep(0s);
  if (depth > 0) {
    tg->create_task(spawn_more(tg, depth - 1, count));
    tg->create_task(spawn_more(tg, depth - 1, count));
  }
  co_return depth;
}
aio::Coro<void> spawn_while_aborting(aio::TaskGroup* tg, std::shared_ptr<bool> late_ran,
                                     std::shared_ptr<aio::Task<int>> late) {
  bool cancelled = false;
  try {
    co_await aio::sleep(24h);
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (!cancelled) co_return;
  auto body = [](std::shared_ptr<bool> ran) -> aio::Coro<int> {
    *ran = true;
    co_return 1;
  };
  *late = tg->create_task(body(late_ran));  // the group is aborting: starts cancelled
  throw CancelledError();
}
}  // namespace

TEST_P(TaskGroupTest, ChildrenAddChildrenDuringJoin) {
  run_main([]() -> aio::Coro<void> {
    aio::TaskGroup tg;
    auto count = std::make_shared<int>(0);
    tg.create_task(spawn_more(&tg, 4, count));
    co_await tg.join();
    EXPECT_EQ(*count, 31);  // 1 + 2 + 4 + 8 + 16, every one awaited by join
    EXPECT_EQ(tg.size(), 31u);
  });
}

TEST_P(TaskGroupTest, CreateTaskInAnAbortingGroupStartsCancelled) {
  run_main([]() -> aio::Coro<void> {
    aio::TaskGroup tg;
    auto late_ran = std::make_shared<bool>(false);
    auto late = std::make_shared<aio::Task<int>>();
    tg.create_task(spawn_while_aborting(&tg, late_ran, late));
    tg.create_task(fail_after(1, "trigger"));
    EXPECT_THROW(co_await tg.join(), ExceptionGroup);
    CO_ASSERT_EQ(late->valid(), true);
    EXPECT_TRUE(late->cancelled());
    EXPECT_FALSE(*late_ran);
  });
}

// ---- races: a cancel inside a TaskGroup

namespace {
/// Queues the parent's cancellation, then fails: the parent is cancelled in the same iteration
/// as the failure is recorded.
aio::Coro<void> cancel_parent_then_fail(std::shared_ptr<aio::Task<void>> parent) {
  co_await aio::sleep(0s);
  aio::get_running_loop().call_soon([parent] { parent->cancel(); });
  throw std::runtime_error("child failed");
}
/// Queues the parent's cancellation, then finishes normally (the last child): the parent's
/// wake-up from join and its cancellation land in the same iteration.
aio::Coro<void> cancel_parent_then_finish(std::shared_ptr<aio::Task<void>> parent, std::shared_ptr<int> finished) {
  co_await aio::sleep(0s);
  aio::get_running_loop().call_soon([parent] { EXPECT_TRUE(parent->cancel()); });
  ++*finished;
}
aio::Coro<void> group_parent(std::shared_ptr<aio::Task<void>> self, int mode, std::shared_ptr<int> finished,
                             std::shared_ptr<std::vector<aio::Task<void>>> kids) {
  aio::TaskGroup tg;
  if (mode == 0) {
    kids->push_back(tg.create_task(forever()));
    kids->push_back(tg.create_task(cancel_parent_then_fail(self)));
  } else if (mode == 1) {
    kids->push_back(tg.create_task(cancel_parent_then_finish(self, finished)));
  } else {
    // Cancelled before join even suspends: the request is pending when join starts waiting.
    kids->push_back(tg.create_task(forever()));
    kids->push_back(tg.create_task(forever()));
    self->cancel();
  }
  co_await tg.join();
}
}  // namespace

TEST_P(TaskGroupTest, RaceParentCancelledAsAChildFails) {
  run_main([]() -> aio::Coro<void> {
    auto self = std::make_shared<aio::Task<void>>();
    auto kids = std::make_shared<std::vector<aio::Task<void>>>();
    *self = aio::create_task(group_parent(self, 0, std::make_shared<int>(0), kids));
    aio::Task<void> parent = *self;
    // Python: the parent was cancelled but a child failed: the ExceptionGroup wins.
    bool group = false;
    try {
      co_await parent;
    } catch (const ExceptionGroup& g) {
      group = true;
      EXPECT_EQ(messages(g), std::vector<std::string>{"child failed"});
    } catch (const CancelledError&) {
    }
    EXPECT_TRUE(group);
    for (auto& k : *kids) EXPECT_TRUE(k.done());
    EXPECT_TRUE((*kids)[0].cancelled());
    *self = {};
  });
}

TEST_P(TaskGroupTest, RaceParentCancelledAsTheLastChildFinishes) {
  run_main([]() -> aio::Coro<void> {
    auto self = std::make_shared<aio::Task<void>>();
    auto kids = std::make_shared<std::vector<aio::Task<void>>>();
    auto finished = std::make_shared<int>(0);
    *self = aio::create_task(group_parent(self, 1, finished, kids));
    aio::Task<void> parent = *self;
    EXPECT_THROW(co_await parent, CancelledError);
    EXPECT_TRUE(parent.cancelled());
    EXPECT_EQ(*finished, 1);
    CO_ASSERT_EQ(kids->size(), 1u);
    EXPECT_FALSE((*kids)[0].cancelled());  // it had finished: its result stands
    *self = {};
  });
}

TEST_P(TaskGroupTest, RaceParentCancelledBeforeJoinSuspends) {
  run_main([]() -> aio::Coro<void> {
    auto self = std::make_shared<aio::Task<void>>();
    auto kids = std::make_shared<std::vector<aio::Task<void>>>();
    *self = aio::create_task(group_parent(self, 2, std::make_shared<int>(0), kids));
    aio::Task<void> parent = *self;
    EXPECT_THROW(co_await parent, CancelledError);
    EXPECT_TRUE(parent.cancelled());
    CO_ASSERT_EQ(kids->size(), 2u);
    for (auto& k : *kids) EXPECT_TRUE(k.cancelled());
    *self = {};
  });
}

namespace {
aio::Coro<void> stress_child(int steps, bool fail) {
  for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
  if (fail) throw std::runtime_error("stress failure");
}
aio::Coro<void> stress_parent(std::uint64_t seed, std::shared_ptr<std::vector<aio::Task<void>>> kids) {
  aio::TaskGroup tg;
  for (int c = 0; c < 5; ++c) {
    const int steps = static_cast<int>((seed * 7 + static_cast<std::uint64_t>(c) * 3) % 6);
    const bool fail = seed % 3 == 0 && c == static_cast<int>(seed % 5);
    kids->push_back(tg.create_task(stress_child(steps, fail)));
  }
  co_await tg.join();
}
}  // namespace

TEST_P(TaskGroupTest, RaceStressCancelAtEveryPoint) {
  // Children of varied lengths, sometimes one failing, and the parent cancelled after a varied
  // number of iterations: the outcome is always one of success, CancelledError, ExceptionGroup,
  // consistent with what happened, every child done, nothing hung.
  run_main([]() -> aio::Coro<void> {
    concur::test::Budget budget(std::chrono::seconds(20));
    const auto rounds = concur::test::stress_iters(300);
    int ok = 0, cancelled = 0, grouped = 0;
    for (std::int64_t r = 0; r < rounds && !budget.exhausted(); ++r) {
      const auto seed = static_cast<std::uint64_t>(r);
      auto kids = std::make_shared<std::vector<aio::Task<void>>>();
      aio::Task<void> parent = aio::create_task(stress_parent(seed, kids));
      const int cancel_after = static_cast<int>(seed % 9);
      for (int i = 0; i < cancel_after && !parent.done(); ++i) co_await aio::sleep(0s);
      const bool cancel_sent = parent.cancel();
      bool failed_child = false;
      try {
        co_await parent;
        ++ok;
        EXPECT_FALSE(cancel_sent) << "round " << r;
      } catch (const ExceptionGroup& g) {
        ++grouped;
        failed_child = true;
        EXPECT_EQ(messages(g), std::vector<std::string>{"stress failure"}) << "round " << r;
      } catch (const CancelledError&) {
        ++cancelled;
        EXPECT_TRUE(cancel_sent) << "round " << r;
        EXPECT_TRUE(parent.cancelled());
      }
      bool any_failed = false;
      for (auto& k : *kids) {
        EXPECT_TRUE(k.done()) << "round " << r;
        if (!k.cancelled() && k.exception()) any_failed = true;
      }
      EXPECT_EQ(failed_child, any_failed) << "round " << r;
    }
    EXPECT_GT(ok, 0);
    EXPECT_GT(cancelled, 0);
    EXPECT_GT(grouped, 0);
    EXPECT_EQ(aio::get_running_loop().pending_task_count(), 1u);
  });
}

// ------------------------------------------------------------------- timeout / timeout_at

namespace {
aio::Coro<void> expiries() {
  auto& loop = aio::get_running_loop();
  const double t0 = loop.time();
  EXPECT_THROW(co_await aio::timeout(10ms, forever_int()), TimeoutError);
  EXPECT_GE(loop.time() - t0, 0.009);
  EXPECT_THROW(co_await aio::timeout(5ms, forever()), TimeoutError);
  // The task goes on normally afterwards: no cancellation left pending.
  EXPECT_EQ(co_await yields(3, 4), 4);
  co_await aio::sleep(5ms);
}
}  // namespace

TEST_P(TimeoutTest, ExpiryRaisesTimeoutError) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<void> t = aio::create_task(expiries());
    co_await t;
    EXPECT_FALSE(t.cancelled());
    EXPECT_EQ(t.cancelling(), 0);  // each expiry's request was withdrawn (uncancel)
  });
}

TEST_P(TimeoutTest, NoExpiryGivesTheValue) {
  run_main([]() -> aio::Coro<void> {
    EXPECT_EQ(co_await aio::timeout(1h, yields(3, 5)), 5);
    // A short timeout that is not reached: its timer must not fire later.
    EXPECT_EQ(co_await aio::timeout(5ms, yields(0, 6)), 6);
    co_await aio::sleep(20ms);  // past the old deadline: not cancelled
    EXPECT_EQ(co_await yields(1, 7), 7);
  });
}

TEST_P(TimeoutTest, ErrorsPassThrough) {
  run_main([]() -> aio::Coro<void> {
    try {
      co_await aio::timeout(1h, fail_after(1, "inner"));
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "inner");
    }
    co_await aio::sleep(0s);
  });
}

TEST_P(TimeoutTest, TimeoutAt) {
  run_main([]() -> aio::Coro<void> {
    auto& loop = aio::get_running_loop();
    EXPECT_THROW(co_await aio::timeout_at(loop.time() + 0.01, forever_int()), TimeoutError);
    EXPECT_EQ(co_await aio::timeout_at(loop.time() + 3600, yields(2, 8)), 8);
    // A deadline already past: expires at the first suspension.
    EXPECT_THROW(co_await aio::timeout_at(loop.time() - 1.0, yields(2, 9)), TimeoutError);
  });
}

namespace {
aio::Coro<int> under_timeout(std::chrono::milliseconds d, std::shared_ptr<std::string> seen) {
  try {
    co_return co_await aio::timeout(d, forever_int());
  } catch (const TimeoutError&) {
    *seen = "timeout";
    throw;
  } catch (const CancelledError&) {
    *seen = "cancelled";
    throw;
  }
}
}  // namespace

TEST_P(TimeoutTest, OutsideCancelPropagatesAsCancelledError) {
  run_main([]() -> aio::Coro<void> {
    auto seen = std::make_shared<std::string>();
    aio::Task<int> worker = aio::create_task(under_timeout(1h, seen));
    co_await concur::test::settle();
    EXPECT_TRUE(worker.cancel());
    EXPECT_THROW(co_await worker, CancelledError);
    EXPECT_TRUE(worker.cancelled());
    EXPECT_EQ(*seen, "cancelled");
  });
}

TEST_P(TimeoutTest, OutsideCancelInTheExpiryIterationStaysCancelledError) {
  // The deadline and a cancel from outside come in the same iteration: two cancel requests,
  // uncancel() leaves one: CancelledError, not TimeoutError (Python's rule).
  run_main([]() -> aio::Coro<void> {
    auto seen = std::make_shared<std::string>();
    auto& loop = aio::get_running_loop();
    aio::Task<int> worker = aio::create_task(under_timeout(2ms, seen));
    co_await aio::sleep(0s);  // the worker's timeout timer is armed
    [[maybe_unused]] aio::TimerHandle h =
        loop.call_later(2ms, [worker]() mutable { worker.cancel(); });  // due after it
    std::this_thread::sleep_for(5ms);                                   // both are due at the next iteration
    EXPECT_THROW(co_await worker, CancelledError);
    EXPECT_TRUE(worker.cancelled());
    EXPECT_EQ(*seen, "cancelled");
  });
}

namespace {
aio::Coro<std::string> nested_timeouts() {
  // The inner expires first: TimeoutError inside, the outer goes on and returns.
  std::string r;
  try {
    co_await aio::timeout(5ms, forever_int());
  } catch (const TimeoutError&) {
    r = "inner expired";
  }
  co_return r;
}
aio::Coro<std::string> outer_expires_first() {
  std::string r;
  try {
    co_await aio::timeout(1h, forever_int());
  } catch (const TimeoutError&) {
    r = "inner (wrong)";
  }
  co_return r;
}
aio::Coro<int> swallow_one_cancel() {
  try {
    co_await aio::sleep(24h);
  } catch (const CancelledError&) {
    // swallowed without uncancel(): cancelling() stays 1
  }
  co_return 0;
}
aio::Coro<std::string> timeout_after_swallowed_cancel() {
  co_await swallow_one_cancel();
  try {
    co_await aio::timeout(5ms, forever_int());
  } catch (const TimeoutError&) {
    co_return "timeout";
  } catch (const CancelledError&) {
    co_return "cancelled";
  }
  co_return "value";
}
aio::Coro<std::string> timeout_inside_cleanup() {
  // Python: a timeout used while handling a cancellation (cancelling() == 1 on entry) still
  // reports its own expiry as TimeoutError.
  bool cancelled = false;
  try {
    co_await aio::sleep(24h);
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (!cancelled) co_return "not cancelled";
  std::string r;
  try {
    co_await aio::timeout(5ms, forever_int());
    r = "value";
  } catch (const TimeoutError&) {
    r = "timeout";
  } catch (const CancelledError&) {
    r = "cancelled";
  }
  co_return r;
}
}  // namespace

TEST_P(TimeoutTest, NestedTimeouts) {
  run_main([]() -> aio::Coro<void> {
    EXPECT_EQ(co_await aio::timeout(1h, nested_timeouts()), "inner expired");
    // The outer expires first: the inner (1h) does not claim it; the outer reports it.
    EXPECT_THROW(co_await aio::timeout(5ms, outer_expires_first()), TimeoutError);
  });
}

TEST_P(TimeoutTest, ExpiryAfterASwallowedCancellationIsTimeoutError) {
  // Python's timeout compares uncancel() with cancelling() on entry, not with zero.
  run_main([]() -> aio::Coro<void> {
    aio::Task<std::string> t = aio::create_task(timeout_after_swallowed_cancel());
    co_await concur::test::settle();
    t.cancel();
    EXPECT_EQ(co_await t, "timeout");
    aio::Task<std::string> c = aio::create_task(timeout_inside_cleanup());
    co_await concur::test::settle();
    c.cancel();
    EXPECT_EQ(co_await c, "timeout");
  });
}

TEST_P(TimeoutTest, ExpiryRestoresTheCancellingCount) {
  run_main([]() -> aio::Coro<void> {
    auto body = []() -> aio::Coro<int> {
      try {
        co_await aio::timeout(2ms, forever_int());
      } catch (const TimeoutError&) {
      }
      // An expiry whose cancellation the body swallows: the request is withdrawn as well.
      auto swallow = []() -> aio::Coro<int> {
        try {
          co_await aio::sleep(24h);
        } catch (const CancelledError&) {
        }
        co_return 1;
      };
      int v = co_await aio::timeout(2ms, swallow());
      co_return v;
    };
    aio::Task<int> t = aio::create_task(body());
    EXPECT_EQ(co_await t, 1);
    EXPECT_EQ(t.cancelling(), 0);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, TaskGroupTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
INSTANTIATE_TEST_SUITE_P(Backends, TimeoutTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
