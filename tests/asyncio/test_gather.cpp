// asyncio.gather: the tuple form (argument order, mixed types, all-void is void), the vector
// forms, every kind of awaitable (Task, Coro, futures::Future, ev.wait()), the first error
// propagating while the others run on, return_exceptions (errors and cancellations as
// Outcome values), cancelling the gathering task, and an empty vector.
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "aio_support.hpp"
#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"
#include "concur/futures.hpp"

namespace aio = concur::asyncio;
namespace cf = concur::futures;
using concur::CancelledError;
using namespace std::chrono_literals;

namespace {

class GatherTest : public concur::test::BackendTest {};

using concur::test::yields;
aio::Coro<std::string> yields_str(int n, std::string v) {
  for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
  co_return v;
}
aio::Coro<void> yields_void(int n, std::shared_ptr<std::vector<int>> log, int id) {
  for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
  log->push_back(id);
}
aio::Coro<int> fail_after(int n, std::string msg) {
  for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
  throw std::runtime_error(msg);
}
aio::Coro<void> fail_void_after(int n, std::string msg) {
  for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
  throw std::runtime_error(msg);
}
aio::Coro<int> forever_int() {
  co_await aio::sleep(24h);
  co_return -1;
}
aio::Coro<void> set_after(aio::Event* ev, int n) {
  for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
  ev->set();
}
aio::Coro<void> fulfil_after(std::shared_ptr<cf::Promise<int>> p, int n, int v) {
  for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
  p->set_result(v);
}

aio::Coro<int> gather_sum(std::vector<aio::Task<int>> ts) {
  std::vector<int> r = co_await aio::gather(std::move(ts));
  int sum = 0;
  for (int v : r) sum += v;
  co_return sum;
}
aio::Coro<int> gather_pair(aio::Task<int> a, aio::Task<int> b) {
  auto [x, y] = co_await aio::gather(a, b);
  co_return x + y;
}

}  // namespace

TEST_P(GatherTest, TupleResultsAreInArgumentOrder) {
  auto r = run_main([]() -> aio::Coro<std::tuple<int, int, int>> {
    // Completion order is 2, 3, 1; results come back in argument order.
    co_return co_await aio::gather(yields(3, 1), yields(0, 2), yields(1, 3));
  });
  EXPECT_EQ(r, std::make_tuple(1, 2, 3));
}

TEST_P(GatherTest, TupleOfMixedTypes) {
  run_main([]() -> aio::Coro<void> {
    auto log = std::make_shared<std::vector<int>>();
    auto r = co_await aio::gather(yields(2, 7), yields_str(1, "seven"), yields_void(0, log, 1));
    static_assert(std::is_same_v<decltype(r), std::tuple<int, std::string, std::monostate>>);
    EXPECT_EQ(std::get<0>(r), 7);
    EXPECT_EQ(std::get<1>(r), "seven");
    EXPECT_EQ(*log, std::vector<int>{1});
  });
}

TEST_P(GatherTest, AllVoidGatherIsVoid) {
  auto log = std::make_shared<std::vector<int>>();
  run_main([log]() -> aio::Coro<void> {
    using G = decltype(aio::gather(yields_void(0, log, 0), yields_void(0, log, 0)));
    static_assert(std::is_same_v<G, aio::Coro<void>>);
    co_await aio::gather(yields_void(3, log, 1), yields_void(1, log, 2), yields_void(2, log, 3));
    // All three finished (in completion order) before gather returned.
    EXPECT_EQ(*log, (std::vector<int>{2, 3, 1}));
  });
  EXPECT_EQ(log->size(), 3u);
}

TEST_P(GatherTest, AcceptsTaskCoroFutureAndEventWait) {
  run_main([]() -> aio::Coro<void> {
    aio::Event ev;
    auto promise = std::make_shared<cf::Promise<int>>();
    cf::Future<int> fut = promise->get_future();
    aio::Task<int> task = aio::create_task(yields(2, 10), "task");
    aio::Task<void> setter = aio::create_task(set_after(&ev, 3));
    aio::Task<void> fulfiller = aio::create_task(fulfil_after(promise, 4, 30));
    auto r = co_await aio::gather(task, yields_str(1, "coro"), fut, ev.wait());
    static_assert(std::is_same_v<decltype(r), std::tuple<int, std::string, int, bool>>);
    EXPECT_EQ(std::get<0>(r), 10);
    EXPECT_EQ(std::get<1>(r), "coro");
    EXPECT_EQ(std::get<2>(r), 30);
    EXPECT_TRUE(std::get<3>(r));
    EXPECT_TRUE(task.done());  // the Task argument is the same task, not a copy of its work
    co_await setter;
    co_await fulfiller;
  });
}

TEST_P(GatherTest, FutureFromAThreadPool) {
  cf::ThreadPoolExecutor pool(2);
  run_main([&pool]() -> aio::Coro<void> {
    cf::Future<int> a = pool.submit([] { return 6; });
    cf::Future<int> b = pool.submit([] { return 7; });
    auto [x, y] = co_await aio::gather(a, b);
    EXPECT_EQ(x * y, 42);
  });
}

TEST_P(GatherTest, VectorOfCoroutines) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Coro<int>> cs;
    for (int i = 0; i < 100; ++i) cs.push_back(yields((i * 7) % 11, i));
    std::vector<int> r = co_await aio::gather(std::move(cs));
    CO_ASSERT_EQ(r.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)], i);
  });
}

TEST_P(GatherTest, VectorOfTasks) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<std::string>> ts;
    for (int i = 0; i < 10; ++i) ts.push_back(aio::create_task(yields_str(10 - i, std::to_string(i))));
    std::vector<std::string> r = co_await aio::gather(ts);
    CO_ASSERT_EQ(r.size(), 10u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)], std::to_string(i));
    for (auto& t : ts) EXPECT_TRUE(t.done());
  });
}

TEST_P(GatherTest, VectorOfVoidCoroutinesIsVoid) {
  auto log = std::make_shared<std::vector<int>>();
  run_main([log]() -> aio::Coro<void> {
    std::vector<aio::Coro<void>> cs;
    for (int i = 0; i < 5; ++i) cs.push_back(yields_void(5 - i, log, i));
    using G = decltype(aio::gather(std::move(cs)));
    static_assert(std::is_same_v<G, aio::Coro<void>>);
    std::vector<aio::Coro<void>> cs2;
    for (int i = 0; i < 5; ++i) cs2.push_back(yields_void(5 - i, log, i));
    co_await aio::gather(std::move(cs2));
    EXPECT_EQ(*log, (std::vector<int>{4, 3, 2, 1, 0}));
  });
}

TEST_P(GatherTest, FirstExceptionPropagatesOthersRunOn) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> slow = aio::create_task(yields(10, 1), "slow");
    aio::Task<int> bad = aio::create_task(fail_after(1, "boom"), "bad");
    try {
      co_await aio::gather(slow, bad);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom");
    }
    EXPECT_FALSE(slow.done());  // not cancelled: it keeps running
    EXPECT_EQ(co_await slow, 1);
    EXPECT_FALSE(slow.cancelled());
  });
}

TEST_P(GatherTest, FirstExceptionPropagatesWhicheverArgumentFails) {
  // The failing child first and last in argument order: the error, never InvalidStateError
  // from a sibling that is still pending.
  run_main([]() -> aio::Coro<void> {
    for (int failing_first = 0; failing_first < 2; ++failing_first) {
      aio::Task<int> slow = aio::create_task(yields(10, 1));
      aio::Task<int> bad = aio::create_task(fail_after(1, "boom"));
      try {
        if (failing_first) {
          co_await aio::gather(bad, slow);
        } else {
          co_await aio::gather(slow, bad);
        }
        ADD_FAILURE() << "no exception";
      } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "boom");
      }
      EXPECT_FALSE(slow.done());
      EXPECT_EQ(co_await slow, 1);
    }
  });
}

TEST_P(GatherTest, FirstExceptionPropagatesVoidTuple) {
  run_main([]() -> aio::Coro<void> {
    auto log = std::make_shared<std::vector<int>>();
    aio::Task<void> slow = aio::create_task(yields_void(10, log, 1));
    try {
      co_await aio::gather(slow, fail_void_after(1, "void boom"));
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "void boom");
    }
    EXPECT_FALSE(slow.done());
    co_await slow;
    EXPECT_EQ(*log, std::vector<int>{1});
  });
}

TEST_P(GatherTest, FirstExceptionPropagatesVector) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(10, 0)));
    ts.push_back(aio::create_task(fail_after(4, "late")));
    ts.push_back(aio::create_task(fail_after(1, "early")));
    ts.push_back(aio::create_task(yields(10, 3)));
    try {
      co_await aio::gather(ts);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "early");  // the first to be raised, whatever its position
    }
    EXPECT_FALSE(ts[0].done());
    EXPECT_FALSE(ts[3].done());
    EXPECT_EQ(co_await ts[0], 0);
    EXPECT_EQ(co_await ts[3], 3);
    EXPECT_THROW(co_await ts[1], std::runtime_error);
  });
}

TEST_P(GatherTest, FirstExceptionWithOptionsButNoReturnExceptions) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(5, 0)));
    ts.push_back(aio::create_task(fail_after(1, "opt")));
    try {
      aio::GatherOptions opts;
      co_await aio::gather(ts, opts);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "opt");
    }
    EXPECT_EQ(co_await ts[0], 0);
  });
}

TEST_P(GatherTest, ReturnExceptionsGivesOutcomes) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(3, 1)));
    ts.push_back(aio::create_task(fail_after(1, "bad")));
    ts.push_back(aio::create_task(forever_int()));
    ts.push_back(aio::create_task(yields(0, 4)));
    aio::Task<int> victim = ts[2];
    aio::get_running_loop().call_soon([victim]() mutable { victim.cancel(); });
    aio::GatherOptions opts{.return_exceptions = true};  // (GCC 12: no braced list in co_await)
    std::vector<aio::Outcome<int>> r = co_await aio::gather(ts, opts);
    CO_ASSERT_EQ(r.size(), 4u);
    EXPECT_TRUE(r[0].ok());
    EXPECT_EQ(r[0].get(), 1);
    EXPECT_FALSE(r[1].ok());
    EXPECT_FALSE(r[1].value.has_value());
    EXPECT_THROW(r[1].get(), std::runtime_error);
    EXPECT_FALSE(r[2].ok());  // the cancelled child: a CancelledError result, not a throw
    EXPECT_THROW(r[2].get(), CancelledError);
    EXPECT_TRUE(r[3].ok());
    EXPECT_EQ(*r[3].value, 4);
    EXPECT_TRUE(ts[2].cancelled());
  });
}

TEST_P(GatherTest, ReturnExceptionsWithCoroutinesAndVoid) {
  run_main([]() -> aio::Coro<void> {
    auto log = std::make_shared<std::vector<int>>();
    std::vector<aio::Coro<void>> cs;
    cs.push_back(fail_void_after(2, "v1"));
    cs.push_back(yields_void(1, log, 7));
    cs.push_back(fail_void_after(0, "v3"));
    aio::GatherOptions opts{.return_exceptions = true};
    std::vector<aio::Outcome<void>> r = co_await aio::gather(std::move(cs), opts);
    CO_ASSERT_EQ(r.size(), 3u);
    EXPECT_FALSE(r[0].ok());
    EXPECT_TRUE(r[1].ok());
    EXPECT_FALSE(r[2].ok());
    try {
      r[2].get();
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "v3");
    }
    EXPECT_EQ(*log, std::vector<int>{7});
  });
}

TEST_P(GatherTest, CancellingTheGathererCancelsUnfinishedChildrenVector) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(0, 5)));
    ts.push_back(aio::create_task(forever_int()));
    ts.push_back(aio::create_task(forever_int()));
    aio::Task<int> gatherer = aio::create_task(gather_sum(ts));
    co_await concur::test::settle();
    EXPECT_TRUE(ts[0].done());
    EXPECT_FALSE(gatherer.done());
    EXPECT_TRUE(gatherer.cancel());
    EXPECT_THROW(co_await gatherer, CancelledError);
    EXPECT_TRUE(gatherer.cancelled());
    EXPECT_FALSE(ts[0].cancelled());
    EXPECT_EQ(ts[0].result(), 5);
    co_await concur::test::settle(2);
    EXPECT_TRUE(ts[1].cancelled());
    EXPECT_TRUE(ts[2].cancelled());
  });
}

TEST_P(GatherTest, CancellingTheGathererCancelsUnfinishedChildrenTuple) {
  run_main([]() -> aio::Coro<void> {
    aio::Task<int> quick = aio::create_task(yields(0, 1));
    aio::Task<int> slow = aio::create_task(forever_int());
    aio::Task<int> gatherer = aio::create_task(gather_pair(quick, slow));
    co_await concur::test::settle();
    gatherer.cancel();
    EXPECT_THROW(co_await gatherer, CancelledError);
    co_await concur::test::settle(2);
    EXPECT_TRUE(slow.cancelled());
    EXPECT_EQ(quick.result(), 1);
  });
}

TEST_P(GatherTest, CancelledChildWithoutReturnExceptionsIsCancelledError) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Task<int>> ts;
    ts.push_back(aio::create_task(yields(50, 1)));
    ts.push_back(aio::create_task(forever_int()));
    aio::Task<int> victim = ts[1];
    aio::get_running_loop().call_soon([victim]() mutable { victim.cancel(); });
    EXPECT_THROW(co_await aio::gather(ts), CancelledError);
    EXPECT_TRUE(ts[1].cancelled());
    EXPECT_FALSE(ts[0].done());  // as Python: the gather ends at once, the others run on
    EXPECT_EQ(co_await ts[0], 1);
  });
}

TEST_P(GatherTest, EmptyVector) {
  run_main([]() -> aio::Coro<void> {
    std::vector<aio::Coro<int>> none;
    std::vector<int> r = co_await aio::gather(std::move(none));
    EXPECT_TRUE(r.empty());
    std::vector<aio::Task<int>> no_tasks;
    std::vector<int> r2 = co_await aio::gather(no_tasks);
    EXPECT_TRUE(r2.empty());
    aio::GatherOptions opts{.return_exceptions = true};
    std::vector<aio::Outcome<int>> r3 = co_await aio::gather(no_tasks, opts);
    EXPECT_TRUE(r3.empty());
    std::vector<aio::Coro<void>> no_voids;
    co_await aio::gather(std::move(no_voids));
  });
}

TEST_P(GatherTest, ManyChildren) {
  run_main([]() -> aio::Coro<void> {
    const int n = static_cast<int>(concur::test::stress_iters(5000));
    std::vector<aio::Coro<int>> cs;
    cs.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) cs.push_back(yields(i % 13, i));
    std::vector<int> r = co_await aio::gather(std::move(cs));
    CO_ASSERT_EQ(r.size(), static_cast<std::size_t>(n));
    int mismatch = -1;
    for (int i = 0; i < n && mismatch < 0; ++i)
      if (r[static_cast<std::size_t>(i)] != i) mismatch = i;
    EXPECT_EQ(mismatch, -1);
    EXPECT_EQ(aio::get_running_loop().pending_task_count(), 1u);  // just main
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, GatherTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
