// Stress of queue::Queue/LifoQueue/PriorityQueue/SimpleQueue under many producers and consumers.
#include <atomic>
#include <chrono>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/queue.hpp"
#include "concur/threading/thread.hpp"

using namespace std::chrono_literals;
namespace q = concur::queue;
namespace th = concur::threading;
using concur::test::Budget;
using concur::test::stress_iters;

namespace {

// Producers put 1..n each (mixing blocking, timed and nowait puts on a small bounded queue);
// consumers get until ShutDown. Every item arrives exactly once; join() sees all task_done.
template <class Q>
void bounded_mpmc() {
  Q queue(8);
  const auto iters = stress_iters();
  constexpr int kProducers = 3, kConsumers = 3;
  std::atomic<std::int64_t> put_sum{0}, put_count{0}, got_sum{0}, got_count{0};
  Budget budget;
  std::vector<th::Thread> producers, consumers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (std::int64_t i = 1; i <= iters && !budget.exhausted(); ++i) {
        try {
          switch ((i + p) % 3) {
            case 0:
              queue.put(i);
              break;
            case 1:
              queue.put(i, 100us);
              break;
            default:
              queue.put_nowait(i);
              break;
          }
        } catch (const q::Full&) {
          continue;  // timed/nowait put refused: the item was not added
        }
        put_sum += i;
        ++put_count;
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      for (std::int64_t k = 0;; ++k) {
        std::int64_t v;
        try {
          if (c == 0 && k % 2) {
            v = queue.get(100us);
          } else {
            v = queue.get();
          }
        } catch (const q::Empty&) {
          continue;
        } catch (const q::ShutDown&) {
          return;
        }
        got_sum += v;
        ++got_count;
        queue.task_done();
      }
    });
  }
  for (auto& t : producers) t.start();
  for (auto& t : consumers) t.start();
  for (auto& t : producers) t.join();
  queue.join();  // every put item was fetched and marked done
  std::int64_t count_at_join = got_count.load();
  queue.shutdown();
  for (auto& t : consumers) t.join();
  EXPECT_EQ(count_at_join, put_count.load());
  EXPECT_EQ(got_sum.load(), put_sum.load());
  EXPECT_GT(put_count.load(), 0);
  EXPECT_TRUE(queue.empty());
}

TEST(QueueStress, FifoBoundedManyProducersManyConsumers) { bounded_mpmc<q::Queue<std::int64_t>>(); }
TEST(QueueStress, LifoBoundedManyProducersManyConsumers) { bounded_mpmc<q::LifoQueue<std::int64_t>>(); }
TEST(QueueStress, PriorityBoundedManyProducersManyConsumers) { bounded_mpmc<q::PriorityQueue<std::int64_t>>(); }

TEST(QueueStress, FifoOrderPerProducer) {
  // With one consumer, each producer's items come out in the order that producer put them.
  q::Queue<std::pair<int, std::int64_t>> queue(4);
  const auto iters = stress_iters();
  constexpr int kProducers = 3;
  Budget budget;
  std::vector<th::Thread> producers;
  std::atomic<int> producers_done{0};
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (std::int64_t i = 0; i < iters && !budget.exhausted(); ++i) queue.put({p, i});
      ++producers_done;
    });
    producers.back().start();
  }
  std::vector<std::int64_t> last(kProducers, -1);
  int out_of_order = 0;
  std::int64_t received = 0;
  th::Thread closer([&] {
    for (auto& t : producers) t.join();
    queue.shutdown();
  });
  closer.start();
  for (;;) {
    std::pair<int, std::int64_t> item;
    try {
      item = queue.get();
    } catch (const q::ShutDown&) {
      break;
    }
    if (item.second != last[item.first] + 1) ++out_of_order;
    last[item.first] = item.second;
    ++received;
  }
  closer.join();
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(producers_done.load(), kProducers);
  EXPECT_GT(received, 0);
}

TEST(QueueStress, ShutdownWhileBlockedNeverHangs) {
  const auto rounds = stress_iters() / 50 + 1;
  Budget budget;
  std::atomic<int> unexpected{0};
  for (std::int64_t r = 0; r < rounds && !budget.exhausted(); ++r) {
    q::Queue<int> queue(1);
    queue.put(0);
    std::vector<th::Thread> ts;
    for (int i = 0; i < 2; ++i) {
      ts.emplace_back([&] {  // putter: blocked on a full queue
        try {
          queue.put(1);
        } catch (const q::ShutDown&) {
        } catch (...) {
          ++unexpected;
        }
      });
      ts.emplace_back([&] {  // getter: gets the item(s) or ShutDown
        try {
          for (;;) (void)queue.get();
        } catch (const q::ShutDown&) {
        } catch (...) {
          ++unexpected;
        }
      });
    }
    for (auto& t : ts) t.start();
    queue.shutdown(r % 2 == 1);
    for (auto& t : ts) t.join();
  }
  EXPECT_EQ(unexpected.load(), 0);
}

TEST(QueueStress, SimpleQueueManyProducersManyConsumers) {
  q::SimpleQueue<std::int64_t> queue;
  const auto iters = stress_iters();
  constexpr int kProducers = 3, kConsumers = 3;
  std::atomic<std::int64_t> put_sum{0}, got_sum{0}, got_count{0}, total{0};
  Budget budget;
  std::vector<th::Thread> producers, consumers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      for (std::int64_t i = 1; i <= iters && !budget.exhausted(); ++i) {
        queue.put(i);
        put_sum += i;
        ++total;
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      for (;;) {
        std::int64_t v;
        try {
          v = c == 0 ? queue.get(100us) : queue.get();
        } catch (const q::Empty&) {
          continue;
        }
        if (v < 0) return;  // poison pill
        got_sum += v;
        ++got_count;
      }
    });
  }
  for (auto& t : producers) t.start();
  for (auto& t : consumers) t.start();
  for (auto& t : producers) t.join();
  for (int c = 0; c < kConsumers; ++c) queue.put_nowait(-1);  // after every real item
  for (auto& t : consumers) t.join();
  EXPECT_EQ(got_count.load(), total.load());
  EXPECT_EQ(got_sum.load(), put_sum.load());
  EXPECT_TRUE(queue.empty());
}

}  // namespace
