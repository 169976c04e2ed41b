// multiprocessing.queues: Queue, SimpleQueue and JoinableQueue in one process, across threads,
// across forked children and across spawned Processes and Pool workers (the queue passed as an
// argument), including a consumer killed while blocked and a producer killed mid-put.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "multiprocessing/fork_support.hpp"
#include <gtest/gtest.h>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;
using namespace concur::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

using QueuesTest = ProcessTest;

struct Job {
  int id = 0;
  std::string name;
  std::vector<double> weights;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, name, weights);
  }
  friend bool operator==(const Job&, const Job&) = default;
};

struct Point {  // trivially copyable aggregate: travels as raw bytes
  double x = 0, y = 0;
  friend bool operator==(const Point&, const Point&) = default;
};

constexpr int kSentinel = -1;

// ---- Process targets (plain functions, run in spawned children) ----

void produce(mp::Queue<int> q, int first, int n) {
  for (int i = first; i < first + n; ++i) q.put(i);
}

void consume(mp::Queue<int> q, mp::Queue<std::vector<int>> out) {
  std::vector<int> got;
  for (;;) {
    int v = q.get(8s);
    if (v == kSentinel) break;
    got.push_back(v);
  }
  out.put(got);
}

void block_in_get(mp::Queue<int> q, mp::Event ready) {
  ready.set();
  (void)q.get(30s);  // killed while waiting here
}

void get_one_and_report(mp::Queue<int> q, mp::Queue<int> out) { out.put(q.get(8s) * 10); }

void joinable_worker(mp::JoinableQueue<int> q, mp::Value<long> total) {
  for (;;) {
    int v = q.get(8s);
    if (v == kSentinel) {
      q.task_done();
      return;
    }
    {
      std::scoped_lock g(total.get_lock());
      total.value() += v;
    }
    q.task_done();
  }
}

int put_square(mp::Queue<long> q, long x) {
  q.put(x * x);
  return 0;
}

void simple_echo(mp::SimpleQueue<std::string> in, mp::SimpleQueue<std::string> out) {
  for (;;) {
    std::string s = in.get();
    if (s.empty()) return;
    out.put(s + "!");
  }
}

void produce_many(mp::Queue<int> q, int n, bool cancel) {  // more than the ring holds
  if (cancel) q.cancel_join_thread();
  for (int i = 0; i < n; ++i) q.put(i);
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (seed + i * 7) % 26);
  return s;
}

// ---- one process ----

TEST_F(QueuesTest, FifoOrderQsizeEmpty) {
  mp::Queue<int> q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_FALSE(q.full());
  for (int i = 0; i < 100; ++i) q.put(i);
  EXPECT_EQ(q.qsize(), 100u);  // no feeder thread: exact at once
  EXPECT_FALSE(q.empty());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(q.get(), i);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.maxsize(), 0);
  EXPECT_EQ(q.capacity_bytes(), mp::kDefaultQueueCapacity);
}

TEST_F(QueuesTest, GetOnEmptyTimesOutWithEmpty) {
  mp::Queue<int> q;
  auto t0 = Clock::now();
  EXPECT_THROW(q.get(100ms), mp::Empty);
  auto dt = Clock::now() - t0;
  EXPECT_GE(dt, 100ms);
  EXPECT_LT(dt, 2s);
  EXPECT_THROW(q.get_nowait(), concur::queue::Empty);
  EXPECT_THROW(q.get(false), mp::Empty);
  t0 = Clock::now();
  EXPECT_THROW(q.get(0ms), mp::Empty);
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST_F(QueuesTest, PutOnFullRespectsMaxsize) {
  mp::Queue<int> q(2);
  EXPECT_EQ(q.maxsize(), 2);
  q.put(1);
  q.put_nowait(2);
  EXPECT_TRUE(q.full());
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_THROW(q.put_nowait(3), mp::Full);
  EXPECT_THROW(q.put(3, false), concur::queue::Full);
  auto t0 = Clock::now();
  EXPECT_THROW(q.put(3, 100ms), mp::Full);
  auto dt = Clock::now() - t0;
  EXPECT_GE(dt, 100ms);
  EXPECT_LT(dt, 2s);
  EXPECT_EQ(q.get(), 1);
  EXPECT_FALSE(q.full());
  q.put(3, 100ms);
  EXPECT_EQ(q.get_nowait(), 2);
  EXPECT_EQ(q.get_nowait(), 3);
}

TEST_F(QueuesTest, BlockedPutWakesWhenAThreadGets) {
  mp::Queue<int> q(1);
  q.put(1);
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(q.get(), 1);
  });
  q.put(2, 5s);  // waits for the get
  t.join();
  EXPECT_EQ(q.get(1s), 2);
}

TEST_F(QueuesTest, StringsVectorsStructs) {
  mp::Queue<std::string> s;
  s.put("job");
  s.put(std::string());
  s.put(std::string(1000, 'x'));
  EXPECT_EQ(s.get(), "job");
  EXPECT_EQ(s.get(), "");
  EXPECT_EQ(s.get(), std::string(1000, 'x'));

  mp::Queue<std::vector<int>> v;
  v.put({1, 2, 3});
  v.put({});
  EXPECT_EQ(v.get(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(v.get(), std::vector<int>{});

  mp::Queue<Job> j;
  Job job{7, "seven", {0.5, 1.5}};
  j.put(job);
  EXPECT_EQ(j.get(), job);

  mp::Queue<Point> p;
  p.put({1.5, -2.5});
  EXPECT_EQ(p.get(), (Point{1.5, -2.5}));

  mp::Queue<std::map<std::string, std::vector<int>>> m;
  m.put({{"a", {1}}, {"b", {2, 3}}});
  EXPECT_EQ(m.get().at("b"), (std::vector<int>{2, 3}));
}

TEST_F(QueuesTest, LargeItemsNearCapacityAndOversized) {
  constexpr std::size_t kCap = 64 * 1024;
  mp::Queue<std::string> q(0, kCap);
  // A string serialises as an 8-byte size plus its bytes; the ring adds an 8-byte length.
  const std::size_t biggest = kCap - 16;
  for (int round = 0; round < 5; ++round) {
    // Shift head/tail so that the big item wraps around the end of the ring.
    q.put(pattern(1000 + round * 3000, round));
    EXPECT_EQ(q.get(), pattern(1000 + round * 3000, round));
    std::string big = pattern(biggest, round);
    q.put(big);
    q.put_nowait("x");  // no room left in the ring: unbounded, so it waits in the feeder's backlog
    EXPECT_EQ(q.qsize(), 1u);
    EXPECT_EQ(q.get(), big);
    EXPECT_EQ(q.get(5s), "x");
    // The feeder may still be finishing "x" (written, not yet dropped from its backlog); a put
    // made before it is done goes behind that backlog, so the next round's qsize() would count
    // too few. Wait for it: each round starts with no backlog.
    q.join_thread();
  }
  try {
    q.put(std::string(biggest + 1, 'y'));
    ADD_FAILURE() << "an oversized item was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("capacity_bytes"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(q.empty());
  q.put("still works");
  EXPECT_EQ(q.get(), "still works");
  EXPECT_THROW(mp::Queue<int>(0, 8), std::invalid_argument);
}

TEST_F(QueuesTest, ThreadsShareAQueueThroughASmallRing) {
  mp::Queue<std::string> q(0, 4096);  // many wrap-arounds, producers often wait for bytes
  constexpr int kProducers = 3, kPerProducer = 2000;
  std::atomic<long> sum{0};
  std::atomic<int> count{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        int v = p * kPerProducer + i;
        q.put(std::to_string(v) + std::string(static_cast<std::size_t>(v % 200), '.'), 5s);
      }
    });
  for (int c = 0; c < 2; ++c)
    threads.emplace_back([&] {
      for (;;) {
        std::string s = q.get(5s);
        if (s == "stop") return;
        sum += std::stol(s);
        ++count;
      }
    });
  for (int p = 0; p < kProducers; ++p) threads[static_cast<std::size_t>(p)].join();
  q.put("stop");
  q.put("stop");
  for (std::size_t t = kProducers; t < threads.size(); ++t) threads[t].join();
  const long n = kProducers * kPerProducer;
  EXPECT_EQ(count.load(), n);
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  EXPECT_TRUE(q.empty());
}

TEST_F(QueuesTest, CloseStopsThisProcessOnly) {
  mp::Queue<int> q;
  q.put(1);
  mp::Queue<int> copy = q;
  mp::Queue<int> other = mp::Queue<int>::from_handle(q.handle());  // like another process's view
  q.close();
  q.close();
  EXPECT_THROW(q.put(2), std::invalid_argument);
  EXPECT_THROW(copy.get(), std::invalid_argument);  // copies here are the same object
  EXPECT_EQ(other.get(), 1);
  other.put(3);
  EXPECT_EQ(other.qsize(), 1u);
  q.join_thread();
  q.cancel_join_thread();
  EXPECT_EQ(other.get(), 3);
}

TEST_F(QueuesTest, HandlesCheckKindAndType) {
  mp::Queue<int> q;
  mp::JoinableQueue<int> jq;
  EXPECT_THROW(mp::Queue<std::string>::from_handle(q.handle()), std::invalid_argument);
  EXPECT_THROW(mp::JoinableQueue<int>::from_handle(q.handle()), std::invalid_argument);
  EXPECT_THROW(mp::Queue<int>::from_handle(jq.handle()), std::invalid_argument);
  EXPECT_THROW(mp::SimpleQueue<int>::from_handle(q.handle()), std::invalid_argument);
  // Through cereal, as a Process argument travels.
  auto back = mp::loads<mp::JoinableQueue<int>>(mp::dumps(jq));
  back.put(5);
  EXPECT_EQ(jq.get(), 5);
  jq.task_done();
  EXPECT_TRUE(jq.join(1s));
  std::string gone_name;
  {
    mp::Queue<int> tmp;
    gone_name = mp::dumps(tmp);
  }
  EXPECT_THROW(mp::loads<mp::Queue<int>>(gone_name), concur::FileNotFoundError);
}

TEST_F(QueuesTest, JoinableQueueInOneProcess) {
  mp::JoinableQueue<int> q;
  EXPECT_TRUE(q.join(10ms));  // nothing put
  EXPECT_THROW(q.task_done(), std::invalid_argument);
  q.put(1);
  q.put(2);
  EXPECT_FALSE(q.join(50ms));
  EXPECT_EQ(q.get(), 1);
  q.task_done();
  EXPECT_FALSE(q.join(10ms));
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(q.get(), 2);
    q.task_done();
  });
  q.join();
  t.join();
  EXPECT_THROW(q.task_done(), std::invalid_argument);
}

// ---- spawned processes ----

TEST_F(QueuesTest, SpawnedProducersAndConsumersCountEveryItemOnce) {
  constexpr int kProducers = 3, kConsumers = 2, kPer = 400;
  mp::Queue<int> q(16);  // bounded: producers wait for consumers
  mp::Queue<std::vector<int>> out;
  std::vector<std::unique_ptr<mp::Process>> producers, consumers;
  for (int c = 0; c < kConsumers; ++c) consumers.push_back(std::make_unique<mp::Process>(consume, q, out));
  for (int p = 0; p < kProducers; ++p) producers.push_back(std::make_unique<mp::Process>(produce, q, p * kPer, kPer));
  for (auto& c : consumers) c->start();
  for (auto& p : producers) p->start();
  for (auto& p : producers) {
    ASSERT_TRUE(p->join(8s));
    EXPECT_EQ(p->exitcode(), 0);
  }
  for (int c = 0; c < kConsumers; ++c) q.put(kSentinel);
  std::vector<int> all;
  for (int c = 0; c < kConsumers; ++c) {
    auto got = out.get(8s);  // one consumer may have taken everything (a slow start under sanitizers)
    all.insert(all.end(), got.begin(), got.end());
  }
  for (auto& c : consumers) {
    ASSERT_TRUE(c->join(8s));
    EXPECT_EQ(c->exitcode(), 0);
  }
  std::sort(all.begin(), all.end());
  std::vector<int> expected(kProducers * kPer);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all, expected);
  EXPECT_TRUE(q.empty());
}

TEST_F(QueuesTest, ConsumerKilledWhileBlockedInGetBreaksNothing) {
  mp::Queue<int> q;
  mp::Queue<int> out;
  mp::Event ready;
  mp::Process victim(block_in_get, q, ready);
  victim.start();
  ASSERT_TRUE(ready.wait(8s));
  std::this_thread::sleep_for(100ms);  // now asleep in get()
  victim.kill();
  ASSERT_TRUE(victim.join(8s));
  EXPECT_EQ(victim.exitcode(), -SIGKILL);

  mp::Process other(get_one_and_report, q, out);
  other.start();
  std::this_thread::sleep_for(50ms);
  q.put(4);
  EXPECT_EQ(out.get(8s), 40);
  ASSERT_TRUE(other.join(8s));
  EXPECT_EQ(other.exitcode(), 0);
  q.put(5);
  EXPECT_EQ(q.get(1s), 5);
  EXPECT_TRUE(q.empty());
}

TEST_F(QueuesTest, JoinableQueueAcrossProcesses) {
  constexpr int kWorkers = 2, kItems = 200;
  mp::JoinableQueue<int> q;
  mp::Value<long> total(0);
  std::vector<std::unique_ptr<mp::Process>> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.push_back(std::make_unique<mp::Process>(joinable_worker, q, total));
    workers.back()->start();
  }
  for (int i = 1; i <= kItems; ++i) q.put(i);
  EXPECT_TRUE(q.join(8s));
  {
    std::scoped_lock g(total.get_lock());
    EXPECT_EQ(total.value(), long{kItems} * (kItems + 1) / 2);  // every task done before join returned
  }
  for (int w = 0; w < kWorkers; ++w) q.put(kSentinel);
  EXPECT_TRUE(q.join(8s));
  for (auto& w : workers) {
    ASSERT_TRUE(w->join(8s));
    EXPECT_EQ(w->exitcode(), 0);
  }
  EXPECT_TRUE(q.empty());
}

TEST_F(QueuesTest, SimpleQueueAcrossASpawnedProcess) {
  mp::SimpleQueue<std::string> in, out;
  EXPECT_TRUE(in.empty());
  mp::Process p(simple_echo, in, out);
  p.start();
  in.put("a");
  in.put("bc");
  in.put("");
  EXPECT_EQ(out.get(), "a!");
  EXPECT_EQ(out.get(), "bc!");
  ASSERT_TRUE(p.join(8s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_TRUE(in.empty());
  EXPECT_TRUE(out.empty());
  out.close();
  EXPECT_THROW(out.put("x"), std::invalid_argument);
}

TEST_F(QueuesTest, PassedToPoolWorkers) {
  mp::Queue<long> q;
  {
    mp::Pool pool(2);
    for (long x = 1; x <= 4; ++x) EXPECT_EQ(pool.apply(put_square, q, x), 0);
    pool.close();
    pool.join();
  }
  long sum = 0;
  for (int i = 0; i < 4; ++i) sum += q.get(1s);
  EXPECT_EQ(sum, 1 + 4 + 9 + 16);
  EXPECT_TRUE(q.empty());
}

// ---- forked processes ----

TEST_F(QueuesTest, ForkedProducersAndConsumersCountEveryItemOnce) {
  constexpr int kProducers = 3, kConsumers = 3, kPer = 2000;
  mp::Queue<int> q(64);
  mp::Array<int> seen(kProducers * kPer, /*lock=*/false);
  std::vector<pid_t> consumers, producers;
  for (int c = 0; c < kConsumers; ++c)
    consumers.push_back(fork_child([&] {
      for (;;) {
        int v = q.get(8s);
        if (v == kSentinel) return 0;
        std::atomic_ref<int>(seen[static_cast<std::size_t>(v)]).fetch_add(1);
      }
    }));
  for (int p = 0; p < kProducers; ++p)
    producers.push_back(fork_child([&, p] {
      for (int i = 0; i < kPer; ++i) q.put(p * kPer + i, 8s);
      return 0;
    }));
  for (pid_t p : producers) EXPECT_EQ(wait_child(p, 9s), 0);
  for (int c = 0; c < kConsumers; ++c) q.put(kSentinel);
  for (pid_t c : consumers) EXPECT_EQ(wait_child(c, 9s), 0);
  int wrong = 0;
  for (int v : seen) wrong += v != 1;
  EXPECT_EQ(wrong, 0) << "items not seen exactly once";
  EXPECT_TRUE(q.empty());
}

TEST_F(QueuesTest, ProducerKilledMidPutLeavesTheQueueConsistent) {
  // Big items keep a producer inside put() (holding the mutex, copying into the ring) a good part
  // of the time, so some of the SIGKILLs land there and the next get() finds the mutex's owner
  // dead. Every item that comes out must be whole and in order, and the queue must go on working.
  constexpr std::size_t kItem = 2 << 20;
  const std::string body(kItem, 'q');
  auto item = [&](unsigned i) {
    std::string s = body;
    std::string stamp = std::to_string(i) + ":";
    s.replace(0, stamp.size(), stamp);
    s.back() = static_cast<char>('a' + i % 26);
    return s;
  };
  mp::Queue<std::string> q(0, 3 * kItem);
  for (unsigned round = 0; round < 8; ++round) {
    const unsigned base = round * 1000;
    pid_t child = fork_child([&] {
      for (unsigned i = 0;; ++i) q.put(item(base + i), 8s);
      return 0;
    });
    auto until = Clock::now() + std::chrono::milliseconds(15 + 7 * round);
    unsigned next = 0;
    while (Clock::now() < until) {
      try {
        ASSERT_EQ(q.get(50ms), item(base + next)) << "round " << round;
        ++next;
      } catch (const mp::Empty&) {
      }
    }
    kill_child(child);
    while (!q.empty()) {
      ASSERT_EQ(q.get_nowait(), item(base + next)) << "round " << round;
      ++next;
    }
    q.put("alive", 1s);
    EXPECT_EQ(q.get(1s), "alive");
  }
}

TEST_F(QueuesTest, JoinableAndSimpleQueuesAcrossFork) {
  mp::JoinableQueue<int> jq;
  mp::SimpleQueue<int> sq;
  pid_t child = fork_child([&] {
    for (;;) {
      int v = jq.get(8s);
      sq.put(v * 2);
      jq.task_done();
      if (v == kSentinel) return 0;
    }
  });
  for (int i = 0; i < 50; ++i) jq.put(i);
  EXPECT_TRUE(jq.join(8s));
  long sum = 0;
  for (int i = 0; i < 50; ++i) sum += sq.get();
  EXPECT_EQ(sum, 2 * 49 * 50 / 2);
  EXPECT_TRUE(sq.empty());
  jq.put(kSentinel);
  EXPECT_EQ(wait_child(child, 9s), 0);
  EXPECT_EQ(sq.get(), 2 * kSentinel);
}

// ---- the feeder: an unbounded queue's put() never blocks (Python's feeder thread) ----

TEST_F(QueuesTest, UnboundedPutNeverBlocksAndKeepsOrder) {
  mp::Queue<int> q(0, 256);  // room for about 20 ints (8-byte length + the item)
  constexpr int kItems = 500;
  auto t0 = Clock::now();
  for (int i = 0; i < kItems; ++i) q.put(i);  // no consumer yet: none of these may block
  q.put_nowait(kItems);
  q.put(kItems + 1, 1ms);
  EXPECT_LT(Clock::now() - t0, 5s);
  EXPECT_LE(q.qsize(), 32u);  // the ring; the rest waits in this process
  std::vector<int> got;
  for (int i = 0; i < kItems + 2; ++i) got.push_back(q.get(10s));
  std::vector<int> want(kItems + 2);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(got, want);
  q.join_thread();
  EXPECT_TRUE(q.empty());
}

TEST_F(QueuesTest, UnboundedPutsFromThreadsStayInOrderPerThread) {
  mp::Queue<int> q(0, 512);
  constexpr int kThreads = 3, kEach = 300;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&q, t] {
      for (int i = 0; i < kEach; ++i) q.put(t * 100000 + i);
    });
  }
  for (auto& t : ts) t.join();  // all returned without a consumer
  std::vector<int> last(kThreads, -1);
  for (int n = 0; n < kThreads * kEach; ++n) {
    int v = q.get(10s);
    int t = v / 100000, i = v % 100000;
    EXPECT_EQ(i, last[static_cast<std::size_t>(t)] + 1) << "thread " << t << " out of order";
    last[static_cast<std::size_t>(t)] = i;
  }
  q.join_thread();
  EXPECT_TRUE(q.empty());
}

TEST_F(QueuesTest, JoinableQueueCountsABacklogAsUnfinished) {
  mp::JoinableQueue<int> q(0, 128);
  for (int i = 0; i < 40; ++i) q.put(i);
  EXPECT_FALSE(q.join(20ms));
  for (int i = 0; i < 39; ++i) {
    EXPECT_EQ(q.get(10s), i);
    q.task_done();
  }
  EXPECT_FALSE(q.join(20ms));
  EXPECT_EQ(q.get(10s), 39);
  q.task_done();
  EXPECT_TRUE(q.join(5s));
  EXPECT_THROW(q.task_done(), std::invalid_argument);
  q.join_thread();
}

TEST_F(QueuesTest, AProcessWaitsForItsBacklogBeforeExiting) {
  mp::Queue<int> q(0, 1024);  // under 100 items fit; the child puts 2000 and returns
  mp::Process p(produce_many, q, 2000, false);
  p.start();
  EXPECT_FALSE(p.join(300ms));  // it cannot end before its items are in the queue
  long sum = 0;
  for (int i = 0; i < 2000; ++i) {
    int v = q.get(10s);
    EXPECT_EQ(v, i);
    sum += v;
  }
  EXPECT_EQ(sum, 1999L * 2000 / 2);
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(QueuesTest, CancelJoinThreadLetsAProcessExitWithABacklog) {
  mp::Queue<int> q(0, 1024);
  mp::Process p(produce_many, q, 2000, true);
  p.start();
  ASSERT_TRUE(p.join(20s));  // nobody reads: the backlog is dropped at its exit
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_GT(q.qsize(), 0u);  // what the ring held
  EXPECT_LT(q.qsize(), 100u);
}

}  // namespace
