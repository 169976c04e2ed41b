#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "concur/core/trace.hpp"

namespace trace = concur::trace;

namespace {

std::size_t count_source(const std::vector<trace::Event>& evs, const char* source) {
  return static_cast<std::size_t>(
      std::count_if(evs.begin(), evs.end(), [&](const trace::Event& e) { return std::strcmp(e.source, source) == 0; }));
}

TEST(Trace, SpanRecordsNothingWhenDisabled) {
  trace::disable();
  trace::clear();
  EXPECT_FALSE(trace::enabled());
  { trace::Span s("TestDisabled", 1, 2); }
  EXPECT_EQ(count_source(trace::collect(), "TestDisabled"), 0u);
}

TEST(Trace, SpanRecordsOneEventWhenEnabled) {
  trace::clear();
  trace::enable();
  EXPECT_TRUE(trace::enabled());
  auto before = trace::now_ns();
  { trace::Span s("TestEnabled", 3, 4); }
  auto after = trace::now_ns();
  trace::disable();
  auto evs = trace::collect();
  ASSERT_EQ(count_source(evs, "TestEnabled"), 1u);
  auto it = std::find_if(evs.begin(), evs.end(),
                         [](const trace::Event& e) { return std::strcmp(e.source, "TestEnabled") == 0; });
  EXPECT_EQ(it->source_id, 3u);
  EXPECT_EQ(it->worker, 4u);
  EXPECT_GE(it->begin_ns, before);
  EXPECT_LE(it->begin_ns, it->end_ns);
  EXPECT_LE(it->end_ns, after);
  EXPECT_EQ(it->pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_NE(it->tid, 0u);
  EXPECT_NE(it->task_id, 0u);
}

TEST(Trace, SpanStartedWhileDisabledStaysInactive) {
  trace::clear();
  trace::disable();
  {
    trace::Span s("TestToggle", 0, 0);
    trace::enable();
  }
  trace::disable();
  EXPECT_EQ(count_source(trace::collect(), "TestToggle"), 0u);
}

TEST(Trace, CollectGathersEveryThreadSortedAndClearDrops) {
  trace::clear();
  trace::enable();
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([i] {
      for (int k = 0; k < 10; ++k) trace::Span s("TestThreads", 0, static_cast<std::uint32_t>(i));
    });
  }
  for (auto& t : ts) t.join();
  trace::disable();
  auto evs = trace::collect();
  EXPECT_EQ(count_source(evs, "TestThreads"), 40u);
  EXPECT_TRUE(std::is_sorted(evs.begin(), evs.end(),
                             [](const trace::Event& a, const trace::Event& b) { return a.begin_ns < b.begin_ns; }));
  trace::clear();
  EXPECT_EQ(count_source(trace::collect(), "TestThreads"), 0u);
}

TEST(Trace, RecordAndIdsAndClock) {
  trace::clear();
  auto a = trace::next_task_id();
  auto b = trace::next_task_id();
  EXPECT_LT(a, b);
  auto t0 = trace::now_ns();
  auto t1 = trace::now_ns();
  EXPECT_LE(t0, t1);
  trace::Event e;
  e.source = "TestRecord";
  e.begin_ns = 1;
  e.end_ns = 2;
  trace::record(e);
  EXPECT_EQ(count_source(trace::collect(), "TestRecord"), 1u);
  trace::clear();
}

}  // namespace
