// Executor.map: order, laziness, zipping, chunksize, exceptions, timeout, early destruction.
#include <atomic>
#include <chrono>
#include <list>
#include <numeric>
#include <ranges>
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
std::vector<int> iota_vec(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}
}  // namespace

TEST(Map, ResultsInInputOrder) {
  cf::ThreadPoolExecutor pool(4);
  std::vector<int> out;
  // Later items finish first: order must still be the input's.
  for (int r : pool.map(
           [](int x) {
             std::this_thread::sleep_for(std::chrono::milliseconds(10 - x));
             return x * x;
           },
           iota_vec(10)))
    out.push_back(r);
  std::vector<int> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(i * i);
  EXPECT_EQ(out, expected);
}

TEST(Map, SizeAndToVector) {
  cf::ThreadPoolExecutor pool(2);
  auto results = pool.map(square, std::vector<int>{1, 2, 3});
  EXPECT_EQ(results.size(), 3u);
  EXPECT_EQ(results.to_vector(), (std::vector<int>{1, 4, 9}));
}

TEST(Map, EmptyInput) {
  cf::ThreadPoolExecutor pool(2);
  auto results = pool.map(square, std::vector<int>{});
  EXPECT_EQ(results.size(), 0u);
  int n = 0;
  for (int r : results) n += r + 1;
  EXPECT_EQ(n, 0);
  auto chunked = pool.map(square, std::vector<int>{}, {.chunksize = 8});
  EXPECT_EQ(chunked.size(), 0u);
  EXPECT_TRUE(chunked.to_vector().empty());
}

TEST(Map, EveryTaskIsSubmittedAtOnceAndResultsAreLazy) {
  cf::ThreadPoolExecutor pool(2);
  std::atomic<int> ran{0};
  auto results = pool.map(
      [&ran](int x) {
        ++ran;
        return x;
      },
      iota_vec(20));
  // Nothing consumed yet, yet every item runs.
  EXPECT_TRUE(eventually([&] { return ran.load() == 20; }));
  EXPECT_EQ(results.to_vector(), iota_vec(20));
}

TEST(Map, LazyConsumerGetsFirstResultBeforeLaterItemsFinish) {
  cf::ThreadPoolExecutor pool(2);
  th::Event gate;
  auto results = pool.map(
      [&gate](int x) {
        if (x == 3) gate.wait(10s);
        return x;
      },
      iota_vec(4));
  auto it = results.begin();
  EXPECT_EQ(*it, 0);  // delivered while item 3 still blocks
  ++it;
  EXPECT_EQ(*it, 1);
  gate.set();
  ++it;
  EXPECT_EQ(*it, 2);
  ++it;
  EXPECT_EQ(*it, 3);
  ++it;
  EXPECT_TRUE(it == results.end());
}

TEST(Map, SeveralRangesAreZippedStoppingAtTheShortest) {
  cf::ThreadPoolExecutor pool(3);
  std::vector<int> a{1, 2, 3, 4};
  std::vector<int> b{10, 20, 30};
  auto two = pool.map([](int x, int y) { return x + y; }, a, b).to_vector();
  EXPECT_EQ(two, (std::vector<int>{11, 22, 33}));

  std::list<std::string> c{"a", "b"};
  auto three =
      pool.map([](int x, int y, const std::string& s) { return s + std::to_string(x * y); }, a, b, c).to_vector();
  EXPECT_EQ(three, (std::vector<std::string>{"a10", "b40"}));

  std::vector<int> empty;
  EXPECT_EQ(pool.map([](int x, int y) { return x + y; }, a, empty).size(), 0u);
}

TEST(Map, SeveralRangesWithOptions) {
  cf::ThreadPoolExecutor pool(3);
  std::vector<int> a{1, 2, 3, 4, 5};
  std::vector<int> b{2, 2, 2};
  auto r = pool.map([](int x, int y) { return x * y; }, a, b, {.timeout = 5s, .chunksize = 2}).to_vector();
  EXPECT_EQ(r, (std::vector<int>{2, 4, 6}));
  std::vector<int> c{1, 1, 1, 1};
  auto r3 = pool.map([](int x, int y, int z) { return x + y + z; }, a, b, c, {.chunksize = 1}).to_vector();
  EXPECT_EQ(r3, (std::vector<int>{4, 5, 6}));
}

TEST(Map, NonSizedInputRange) {
  cf::ThreadPoolExecutor pool(2);
  auto evens = std::views::iota(0, 20) | std::views::filter([](int x) { return x % 2 == 0; });
  EXPECT_EQ(pool.map(square, evens).to_vector(), (std::vector<int>{0, 4, 16, 36, 64, 100, 144, 196, 256, 324}));
  EXPECT_EQ(pool.map(square, evens, {.chunksize = 3}).to_vector(),
            (std::vector<int>{0, 4, 16, 36, 64, 100, 144, 196, 256, 324}));
}

TEST(Map, ChunksizeGivesTheSameResultsInOrder) {
  cf::ThreadPoolExecutor pool(4);
  auto input = iota_vec(101);
  auto plain = pool.map(square, input).to_vector();
  for (std::size_t cs : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{64},
                         std::size_t{101}, std::size_t{500}}) {
    auto chunked = pool.map(square, input, {.chunksize = cs});
    EXPECT_EQ(chunked.size(), input.size()) << cs;
    EXPECT_EQ(chunked.to_vector(), plain) << cs;
  }
}

TEST(Map, ExceptionIsThrownAtItsItemAfterEarlierItems) {
  cf::ThreadPoolExecutor pool(3);
  for (std::size_t cs : {std::size_t{1}, std::size_t{4}}) {
    auto results = pool.map(
        [](int x) {
          if (x == 5) throw std::domain_error("five");
          return x;
        },
        iota_vec(10), {.chunksize = cs});
    std::vector<int> got;
    bool threw = false;
    try {
      for (int r : results) got.push_back(r);
    } catch (const std::domain_error& e) {
      threw = true;
      EXPECT_STREQ(e.what(), "five");
    }
    EXPECT_TRUE(threw) << cs;
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4})) << cs;
  }
}

TEST(Map, ToVectorThrowsTheFirstException) {
  cf::ThreadPoolExecutor pool(2);
  auto results = pool.map(
      [](int x) {
        if (x >= 2) throw std::runtime_error("item " + std::to_string(x));
        return x;
      },
      iota_vec(5));
  try {
    (void)results.to_vector();
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "item 2");
  }
}

TEST(Map, TimeoutThrowsTimeoutError) {
  cf::ThreadPoolExecutor pool(2);
  th::Event gate;
  auto results = pool.map(
      [&gate](int x) {
        if (x == 1) gate.wait(10s);
        return x;
      },
      iota_vec(2), {.timeout = 30ms});
  auto it = results.begin();
  EXPECT_EQ(*it, 0);
  ++it;
  EXPECT_THROW((void)*it, concur::TimeoutError);
  gate.set();
}

TEST(Map, TimeoutIsCountedFromTheCall) {
  cf::ThreadPoolExecutor pool(2);
  th::Event gate;
  auto results = pool.map(
      [&gate](int x) {
        if (x == 1) gate.wait(10s);
        return x;
      },
      iota_vec(2), {.timeout = 300ms});
  std::this_thread::sleep_for(350ms);  // the deadline has passed before iterating
  // Would satisfy a wait counted from the start of iteration (300 ms), not one from the call.
  std::thread opener([&gate] {
    std::this_thread::sleep_for(100ms);
    gate.set();
  });
  auto it = results.begin();
  EXPECT_EQ(*it, 0);  // done results are delivered even past the deadline
  ++it;
  EXPECT_THROW((void)*it, concur::TimeoutError);
  opener.join();
}

TEST(Map, TimeoutWithChunks) {
  cf::ThreadPoolExecutor pool(2);
  th::Event gate;
  auto results = pool.map(
      [&gate](int x) {
        if (x == 5) gate.wait(10s);
        return x;
      },
      iota_vec(8), {.timeout = 30ms, .chunksize = 4});
  std::vector<int> got;
  bool timed_out = false;
  try {
    for (int r : results) got.push_back(r);
  } catch (const concur::TimeoutError&) {
    timed_out = true;
  }
  gate.set();
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Map, TimeoutCancelsTheRest) {
  cf::ThreadPoolExecutor pool(1);
  th::Event gate;
  std::atomic<int> ran{0};
  {
    auto results = pool.map(
        [&](int x) {
          ++ran;
          if (x == 0) gate.wait(10s);
          return x;
        },
        iota_vec(6), {.timeout = 30ms});
    EXPECT_THROW((void)results.to_vector(), concur::TimeoutError);
    gate.set();
  }
  pool.shutdown(true);
  EXPECT_EQ(ran.load(), 1);  // only the item that was running when the timeout hit
}

TEST(Map, DestroyingAPartlyConsumedResultCancelsNotStartedTasks) {
  cf::ThreadPoolExecutor pool(1);
  th::Event gate;
  std::atomic<int> ran{0};
  {
    auto results = pool.map(
        [&](int x) {
          ++ran;
          if (x == 1) gate.wait(10s);
          return x;
        },
        iota_vec(10));
    auto it = results.begin();
    EXPECT_EQ(*it, 0);
    EXPECT_TRUE(eventually([&] { return ran.load() == 2; }));  // item 1 runs (blocked)
  }                                                            // items 2..9 are cancelled
  gate.set();
  pool.shutdown(true);
  EXPECT_EQ(ran.load(), 2);
}

TEST(Map, DestroyingAPartlyConsumedChunkedResultCancelsNotStartedChunks) {
  cf::ThreadPoolExecutor pool(1);
  th::Event gate;
  std::atomic<int> ran{0};
  {
    auto results = pool.map(
        [&](int x) {
          ++ran;
          if (x == 3) gate.wait(10s);
          return x;
        },
        iota_vec(12), {.chunksize = 3});
    auto it = results.begin();
    EXPECT_EQ(*it, 0);  // chunk 0 (items 0..2) is done; chunk 1 runs, blocked at item 3
    EXPECT_TRUE(eventually([&] { return ran.load() == 4; }));
  }
  gate.set();
  pool.shutdown(true);
  EXPECT_EQ(ran.load(), 6);  // chunk 1 finishes (items 3..5); chunks 2 and 3 never ran
}

TEST(Map, DroppedUnstartedResultStillRunsEveryTask) {
  // Python: a generator that is never started has no finally to run; every task completes.
  cf::ThreadPoolExecutor pool(2);
  std::atomic<int> ran{0};
  (void)pool.map([&ran](int) { ++ran; }, iota_vec(50));  // void fn, result dropped at once
  {
    auto chunked = pool.map([&ran](int) { ++ran; }, iota_vec(50), {.chunksize = 8});
  }
  pool.shutdown(true);
  EXPECT_EQ(ran.load(), 100);
}

TEST(Map, VoidFunctionYieldsMonostate) {
  cf::ThreadPoolExecutor pool(2);
  std::atomic<int> sum{0};
  auto results = pool.map([&sum](int x) { sum += x; }, iota_vec(5));
  static_assert(std::is_same_v<decltype(results)::value_type, std::monostate>);
  int n = 0;
  for (auto v : results) {
    (void)v;
    ++n;
  }
  EXPECT_EQ(n, 5);
  EXPECT_EQ(sum.load(), 10);
}

TEST(Map, VoidFunctionExceptionAtItsItem) {
  cf::ThreadPoolExecutor pool(2);
  for (std::size_t cs : {std::size_t{1}, std::size_t{3}}) {
    auto results = pool.map(
        [](int x) {
          if (x == 2) throw std::logic_error("two");
        },
        iota_vec(5), {.chunksize = cs});
    int delivered = 0;
    bool threw = false;
    try {
      for (auto v : results) {
        (void)v;
        ++delivered;
      }
    } catch (const std::logic_error&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
    EXPECT_EQ(delivered, 2);
  }
}

TEST(Map, MovedResultStillIterates) {
  cf::ThreadPoolExecutor pool(2);
  auto a = pool.map(square, std::vector<int>{2, 3});
  auto b = std::move(a);
  EXPECT_EQ(b.to_vector(), (std::vector<int>{4, 9}));
}
