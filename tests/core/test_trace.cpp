#include <unistd.h>

#include <algorithm>
#include <atomic>
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

// Each thread's buffer grows in blocks (4 KiB doubling to 1 MiB, about 18,700 events): every
// event of every block comes back intact while collect() and clear() run
// concurrently with the recording threads, and recording goes on after a clear().
TEST(Trace, ManyEventsCrossBlocksAndSurviveConcurrentCollectAndClear) {
  trace::clear();
  trace::enable();
  constexpr int kThreads = 3;
  const int per_thread = 60'000;  // several blocks each
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.emplace_back([i, per_thread, &done] {
      trace::Event e;
      e.source = "TestBlocks";
      e.worker = static_cast<std::uint32_t>(i);
      for (int k = 0; k < per_thread; ++k) {
        e.task_id = static_cast<std::uint64_t>(k);
        e.begin_ns = e.end_ns = static_cast<std::uint64_t>(k);
        trace::record(e);
      }
      done.fetch_add(1);
    });
  }
  do {  // collect() racing the writers (at least once, even if they were quick)
    auto part = trace::collect();
    EXPECT_LE(count_source(part, "TestBlocks"), static_cast<std::size_t>(kThreads * per_thread));
  } while (done.load() < kThreads);
  for (auto& t : ts) t.join();
  auto evs = trace::collect();
  ASSERT_EQ(count_source(evs, "TestBlocks"), static_cast<std::size_t>(kThreads * per_thread));
  std::vector<std::uint64_t> next(kThreads, 0);
  for (const auto& e : evs) {
    if (std::strcmp(e.source, "TestBlocks") != 0) continue;
    ASSERT_LT(e.worker, static_cast<std::uint32_t>(kThreads));
    EXPECT_EQ(e.task_id, e.begin_ns);  // no torn or mixed-up event
    next[e.worker] += 1;
  }
  for (int i = 0; i < kThreads; ++i)
    EXPECT_EQ(next[static_cast<std::size_t>(i)], static_cast<std::uint64_t>(per_thread));
  // clear() while threads record, then recording goes on into fresh blocks.
  std::thread writer([] {
    for (int k = 0; k < 20'000; ++k) trace::Span s("TestAfterClear", 0, 0);
  });
  trace::clear();
  writer.join();
  trace::clear();
  { trace::Span s("TestAfterClear", 0, 0); }
  trace::disable();
  EXPECT_EQ(count_source(trace::collect(), "TestAfterClear"), 1u);
  EXPECT_EQ(count_source(trace::collect(), "TestBlocks"), 0u);
  trace::clear();
}

}  // namespace
