// ThreadPoolExecutor records one trace event per task when concur::trace is on.
#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "concur/core/trace.hpp"
#include "concur/futures.hpp"

namespace cf = concur::futures;
namespace trace = concur::trace;

namespace {
std::vector<trace::Event> pool_events() {
  std::vector<trace::Event> out;
  for (const auto& e : trace::collect())
    if (std::strcmp(e.source, "ThreadPoolExecutor") == 0) out.push_back(e);
  return out;
}
}  // namespace

TEST(FuturesTrace, PoolTasksAreRecordedWhenEnabled) {
  trace::clear();
  trace::enable();
  constexpr int workers = 3;
  constexpr int tasks = 60;
  {
    cf::ThreadPoolExecutor pool(workers);
    std::vector<cf::Future<int>> fs;
    for (int i = 0; i < tasks; ++i) fs.push_back(pool.submit([i] { return i; }));
    for (auto& f : fs) (void)f.result();
  }  // joined: every span has ended
  trace::disable();
  auto evs = pool_events();
  EXPECT_EQ(evs.size(), static_cast<std::size_t>(tasks));
  std::set<std::uint64_t> ids;
  std::set<std::uint32_t> sources;
  for (const auto& e : evs) {
    EXPECT_LT(e.worker, static_cast<std::uint32_t>(workers));
    EXPECT_LE(e.begin_ns, e.end_ns);
    EXPECT_NE(e.tid, 0u);
    ids.insert(e.task_id);
    sources.insert(e.source_id);
  }
  EXPECT_EQ(ids.size(), evs.size());  // unique task ids
  EXPECT_EQ(sources.size(), 1u);      // one pool
  trace::clear();
}

TEST(FuturesTrace, TwoPoolsHaveDifferentSourceIds) {
  trace::clear();
  trace::enable();
  {
    cf::ThreadPoolExecutor a(1), b(1);
    a.submit([] {}).result();
    b.submit([] {}).result();
  }
  trace::disable();
  auto evs = pool_events();
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_NE(evs[0].source_id, evs[1].source_id);
  trace::clear();
}

TEST(FuturesTrace, NothingIsRecordedWhenDisabled) {
  trace::disable();
  trace::clear();
  {
    cf::ThreadPoolExecutor pool(2);
    std::vector<cf::Future<int>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(pool.submit([i] { return i; }));
    for (auto& f : fs) (void)f.result();
  }
  EXPECT_TRUE(pool_events().empty());
}
