// mp::Pool and futures::ProcessPoolExecutor: map/starmap/imap/apply in worker processes
// (this test binary started again), serialised arguments and results of every supported shape,
// exceptions coming back typed, crash isolation (segfault, abort, _exit, SIGKILL from outside:
// only that task fails, the pool replaces the worker), maxtasksperchild, a failing initializer,
// terminate, cancel_futures, a pool created while threads run, and no zombies.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "multiprocessing/fork_support.hpp"
#include <gtest/gtest.h>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;
namespace cf = concur::futures;
using namespace std::chrono_literals;

namespace {

long square(long x) { return x * x; }
long cpu_bound(long n) {
  long s = 0;
  for (long i = 0; i < n; ++i) s += i * i;
  return s;
}
int add(int a, int b) { return a + b; }
int my_pid(int) { return static_cast<int>(::getpid()); }
int slow_pid(int) {
  ::usleep(30'000);
  return static_cast<int>(::getpid());
}
/// Sleeps `ms`, then says which process ran it.
int sleep_then_pid(int ms) {
  ::usleep(static_cast<useconds_t>(ms) * 1000);
  return static_cast<int>(::getpid());
}
void nothing(int) {}

struct Point {
  double x, y;
};
Point mirror(Point p) { return Point{p.y, p.x}; }

struct Named {
  std::string name;
  std::vector<int> values;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, values);
  }
};

/// A type whose serialisation calls dumps/loads itself (it carries its inner value as bytes):
/// the per-thread streams must not be reused while one is in use.
struct Sealed {
  Named inner;
  template <class Archive>
  void save(Archive& ar) const {
    ar(mp::dumps(inner));
  }
  template <class Archive>
  void load(Archive& ar) {
    std::string bytes;
    ar(bytes);
    inner = mp::loads<Named>(bytes);
  }
};
Sealed reseal(Sealed s) {
  s.inner.name += "!";
  return s;
}
std::size_t length_of(std::string s) { return s.size(); }

using Shape = std::tuple<std::map<std::string, std::vector<int>>, std::set<long>, std::optional<std::string>,
                         std::pair<int, double>, std::variant<int, std::string>, std::vector<Point>, Named>;
Shape echo_shape(Shape s) {
  std::get<1>(s).insert(99);
  return s;
}

int fail_with(int kind) {
  switch (kind) {
    case 0:
      throw std::invalid_argument("bad argument 0");
    case 1:
      throw std::runtime_error("runtime trouble");
    case 2:
      throw concur::TimeoutError("took too long");
    case 3:
      throw std::bad_alloc();
    default:
      return kind;
  }
}

int crash_on(int x) {
  if (x == 3) {
    volatile int* p = nullptr;
    *p = 1;  // segfault
  }
  if (x == 5) std::abort();
  if (x == 7) ::_exit(42);
  return x * 10;
}

int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

/// Creates the file `path` (the caller's sign that the call is running), then sleeps.
int mark_then_sleep_ms(std::string path, int ms) {
  if (std::FILE* f = std::fopen(path.c_str(), "w")) std::fclose(f);
  return sleep_ms(ms);
}

/// Waits (at most `limit`) until the file `path` exists.
bool wait_for_file(const std::string& path, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (::access(path.c_str(), F_OK) != 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

int g_initialized = 0;
void init_worker() { g_initialized = 7; }
int read_initialized(int) { return g_initialized; }
void failing_init() { throw std::runtime_error("no database"); }

/// No child of this process is a zombie (or alive) after a pool is gone.
bool no_children_left() {
  siginfo_t info{};
  int r = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  return r != 0 && errno == ECHILD;
}

}  // namespace

TEST(Pool, MapComputesInWorkersInOrder) {
  std::vector<long> nums;
  for (long i = 0; i < 100; ++i) nums.push_back(i);
  {
    mp::Pool pool(2);
    std::vector<long> sq = pool.map(square, nums);
    ASSERT_EQ(sq.size(), 100u);
    for (long i = 0; i < 100; ++i) EXPECT_EQ(sq[static_cast<std::size_t>(i)], i * i);
    EXPECT_EQ(pool.map(cpu_bound, std::vector<long>{1000, 2000}, 1),
              (std::vector<long>{cpu_bound(1000), cpu_bound(2000)}));
    std::vector<int> pids = pool.map(my_pid, std::vector<int>(20, 0), 1);
    for (int p : pids) EXPECT_NE(p, static_cast<int>(::getpid()));  // really other processes
    pool.close();
    pool.join();
  }
  EXPECT_TRUE(no_children_left());
}

TEST(Pool, AFewSlowChunksSpreadOverEveryWorker) {
  // Regression: the manager filled the first worker's window (16 chunks) before the second
  // got any, so a map of a few slow chunks ran serially in one worker.
  mp::Pool pool(2);
  std::vector<int> pids = pool.map(slow_pid, std::vector<int>(4, 0), 1);
  EXPECT_EQ(std::set<int>(pids.begin(), pids.end()).size(), 2u);
  // Once chunks are known to be slow, each worker holds at most two, so the second map spreads
  // too, and a worker that is free takes the next chunk.
  pids = pool.map(slow_pid, std::vector<int>(8, 0), 1);
  std::map<int, int> per_worker;
  for (int pid : pids) ++per_worker[pid];
  ASSERT_EQ(per_worker.size(), 2u);
  for (auto [pid, n] : per_worker) EXPECT_GE(n, 2) << "worker " << pid;
}

TEST(Pool, AfterManyQuickTasksTheNextMapsSlowItemsStillSpread) {
  // Regression: a pool that had just run thousands of quick chunks handed each worker a window
  // of up to 128 of the next map's chunks at once, round-robin. With slow and quick items
  // alternating, every slow one went to the first worker, and the second sat idle. A worker's
  // window now starts small again once the pool ran out of work, and grows as replies come.
  mp::Pool pool(2);
  (void)pool.map(my_pid, std::vector<int>(4000, 0), 1);
  std::vector<int> ms;
  for (int i = 0; i < 6; ++i) {
    ms.push_back(150);
    ms.push_back(0);
  }
  std::vector<int> pids = pool.map(sleep_then_pid, ms, 1);
  ASSERT_EQ(pids.size(), ms.size());
  std::set<int> slow;
  for (std::size_t i = 0; i < ms.size(); i += 2) slow.insert(pids[i]);
  EXPECT_EQ(slow.size(), 2u) << "every slow item ran in one worker";
}

TEST(Pool, ApplyStarmapImapAndLambdas) {
  mp::Pool pool(2);
  EXPECT_EQ(pool.apply(add, 2, 3), 5);
  mp::AsyncResult<long> r = pool.apply_async(cpu_bound, 10);
  EXPECT_EQ(r.get(5s), 285);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.starmap(add, pairs), (std::vector<int>{3, 7, 11}));
  EXPECT_EQ(pool.starmap_async(add, pairs).get(), (std::vector<int>{3, 7, 11}));
  std::vector<long> got;
  for (long v : pool.imap(square, std::vector<long>{1, 2, 3})) got.push_back(v);
  EXPECT_EQ(got, (std::vector<long>{1, 4, 9}));
  std::multiset<long> unordered;
  for (long v : pool.imap_unordered(square, std::vector<long>{4, 5, 6})) unordered.insert(v);
  EXPECT_EQ(unordered, (std::multiset<long>{16, 25, 36}));
  auto triple = [](int x) { return 3 * x; };  // captureless lambda: runs in the worker too
  EXPECT_EQ(pool.map(triple, std::vector<int>{1, 2}), (std::vector<int>{3, 6}));
  EXPECT_EQ(pool.map_async(square, std::vector<long>{7}).get(), std::vector<long>{49});
  pool.apply(nothing, 1);  // void
}

TEST(Pool, EverySerialisableShapeRoundTrips) {
  mp::Pool pool(1);
  Shape s{{{"a", {1, 2}}}, {5, 6}, std::string("opt"), {3, 2.5}, std::string("var"), {{1.5, 2.5}}, Named{"n", {9}}};
  Shape back = pool.apply(echo_shape, s);
  EXPECT_EQ(std::get<0>(back), std::get<0>(s));
  EXPECT_EQ(std::get<1>(back), (std::set<long>{5, 6, 99}));
  EXPECT_EQ(std::get<2>(back), std::optional<std::string>("opt"));
  EXPECT_EQ(std::get<3>(back), (std::pair<int, double>{3, 2.5}));
  EXPECT_EQ(std::get<std::string>(std::get<4>(back)), "var");
  EXPECT_EQ(std::get<5>(back)[0].y, 2.5);
  EXPECT_EQ(std::get<6>(back).values, std::vector<int>{9});
  Point p = pool.apply(mirror, Point{1, 2});  // a trivially copyable aggregate: raw bytes
  EXPECT_EQ(p.x, 2);
  EXPECT_EQ(mp::loads<Named>(mp::dumps(Named{"x", {1}})).name, "x");
  EXPECT_THROW(mp::loads<Named>(std::string("\x01", 1)), mp::UnpicklingError);
}

TEST(Pool, NestedSerialisationAndChunksOfStringsAndStructs) {
  const Sealed sealed{Named{"in", {1, 2, 3}}};
  Sealed back = mp::loads<Sealed>(mp::dumps(sealed));
  EXPECT_EQ(back.inner.name, "in");
  EXPECT_EQ(back.inner.values, (std::vector<int>{1, 2, 3}));
  mp::Pool pool(2);
  // One-argument map chunks travel as a vector of the argument: numbers, strings and structs.
  std::vector<Sealed> many(5, sealed);
  std::vector<Sealed> out = pool.map(reseal, many, 2);
  ASSERT_EQ(out.size(), 5u);
  for (const Sealed& x : out) EXPECT_EQ(x.inner.name, "in!");
  std::vector<std::string> words{"", "a", std::string(100000, 'w'), "abc"};
  EXPECT_EQ(pool.map(length_of, words), (std::vector<std::size_t>{0, 1, 100000, 3}));
  std::vector<std::tuple<int, int>> pairs;
  for (int i = 0; i < 1000; ++i) pairs.emplace_back(i, 2 * i);
  std::vector<int> sums = pool.starmap(add, pairs, 64);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(sums[static_cast<std::size_t>(i)], 3 * i);
}

TEST(Pool, ExceptionsComeBackWithTheirTypeAndMessage) {
  mp::Pool pool(1);
  EXPECT_THROW(pool.apply(fail_with, 0), std::invalid_argument);
  try {
    pool.apply(fail_with, 1);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "runtime trouble");
  }
  EXPECT_THROW(pool.apply(fail_with, 2), concur::TimeoutError);
  try {
    pool.apply(fail_with, 3);
    ADD_FAILURE();
  } catch (const mp::RemoteError& e) {
    EXPECT_EQ(e.type(), "std::bad_alloc");
  }
  mp::AsyncResult<int> r = pool.apply_async(fail_with, 0);
  r.wait();
  EXPECT_FALSE(r.successful());
  EXPECT_EQ(pool.apply(fail_with, 9), 9);  // the worker is fine
  // map: the first failure (in order) is rethrown.
  EXPECT_THROW(pool.map(fail_with, std::vector<int>{9, 1, 0}), std::runtime_error);
}

TEST(Pool, ACrashingTaskFailsOnlyItselfAndTheWorkerIsReplaced) {
  std::vector<int> xs;
  for (int i = 0; i < 12; ++i) xs.push_back(i);
  {
    mp::Pool pool(2);
    std::vector<mp::AsyncResult<int>> rs;
    for (int x : xs) rs.push_back(pool.apply_async(crash_on, x));
    for (int x : xs) {
      const auto& r = rs[static_cast<std::size_t>(x)];
      if (x == 3 || x == 5 || x == 7) {
        try {
          (void)r.get(30s);
          ADD_FAILURE() << x;
        } catch (const mp::BrokenProcessPool& e) {
          std::string what = e.what();
          const char* expected = x == 3 ? "SIGSEGV" : x == 5 ? "SIGABRT" : "exit code 42";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
          // The sanitizers catch SIGSEGV/SIGABRT themselves and exit with an error code.
          if (x == 3 || x == 5) expected = "died while running the task";
#endif
          EXPECT_NE(what.find(expected), std::string::npos) << what;
        }
      } else {
        EXPECT_EQ(r.get(30s), x * 10);
      }
    }
    EXPECT_EQ(pool.map(square, std::vector<long>{2, 3}), (std::vector<long>{4, 9}));  // still serving
  }
  EXPECT_TRUE(no_children_left());
}

TEST(Pool, AWorkerKilledFromOutsideFailsOnlyItsTask) {
  mp::Pool pool(2);
  // Killed only once `slow` runs: under load (sanitizers, a busy machine) a fixed pause could end
  // before a worker took the call, which then ran on a replacement and did not fail.
  const std::string started = "/tmp/concur-pool-kill-" + std::to_string(::getpid());
  std::remove(started.c_str());
  mp::AsyncResult<int> slow = pool.apply_async(mark_then_sleep_ms, started, 5000);
  ASSERT_TRUE(wait_for_file(started, 30s));
  std::remove(started.c_str());
  std::vector<pid_t> pids = pool.pids();
  ASSERT_EQ(pids.size(), 2u);
  for (pid_t p : pids) ::kill(p, SIGKILL);  // one of them runs `slow`
  EXPECT_THROW((void)slow.get(10s), mp::BrokenProcessPool);
  // Both replaced (a task handed to a worker in the moment it is being killed fails too: it
  // cannot be told from one that was running).
  auto replaced = [&] {
    for (pid_t p : pool.pids()) {
      if (std::find(pids.begin(), pids.end(), p) != pids.end()) return false;
    }
    return true;
  };
  for (int i = 0; i < 500 && !replaced(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(replaced());
  EXPECT_EQ(pool.apply(add, 1, 1), 2);
}

TEST(Pool, MaxTasksPerChildReplacesWorkers) {
  mp::Pool pool(mp::PoolOptions{.processes = 1, .maxtasksperchild = 2});
  std::set<int> pids;
  for (int i = 0; i < 6; ++i) pids.insert(pool.apply(my_pid, 0));
  EXPECT_EQ(pids.size(), 3u);
}

TEST(Pool, InitializerRunsInEachWorkerAndAFailingOneIsReported) {
  {
    mp::Pool pool(mp::PoolOptions{.processes = 2, .initializer = init_worker});
    EXPECT_EQ(pool.map(read_initialized, std::vector<int>{0, 0, 0, 0}, 1), (std::vector<int>{7, 7, 7, 7}));
  }
  mp::Pool bad(mp::PoolOptions{.processes = 2, .initializer = failing_init});
  try {
    (void)bad.apply_async(add, 1, 2).get(30s);
    ADD_FAILURE();
  } catch (const mp::BrokenProcessPool& e) {
    EXPECT_NE(std::string(e.what()).find("no database"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)bad.apply_async(add, 1, 2).get(30s), mp::BrokenProcessPool);  // not retried forever
}

TEST(Pool, TerminateFailsWhatIsUnfinished) {
  mp::Pool pool(1);
  mp::AsyncResult<int> r = pool.apply_async(sleep_ms, 10000);
  std::this_thread::sleep_for(100ms);
  auto t0 = std::chrono::steady_clock::now();
  pool.terminate();
  pool.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_THROW((void)r.get(1s), mp::BrokenProcessPool);
  EXPECT_THROW(pool.apply_async(add, 1, 2), std::logic_error);  // closed
}

TEST(Pool, SafeToCreateWhileThreadsRunAndAllocate) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int i = 0; i < 3; ++i) {
    busy.emplace_back([&stop] {
      while (!stop) {
        std::vector<std::string> v(100, std::string(100, 'x'));  // malloc locks held at random moments
      }
    });
  }
  for (int round = 0; round < 3; ++round) {
    mp::Pool pool(2);
    EXPECT_EQ(pool.map(square, std::vector<long>{1, 2, 3}), (std::vector<long>{1, 4, 9}));
  }
  stop = true;
  for (auto& t : busy) t.join();
}

TEST(ProcessPoolExecutor, SubmitMapAndShutdown) {
  cf::ProcessPoolExecutor ex(cf::ProcessPoolOptions{.max_workers = 2});
  cf::Future<long> f = ex.submit(cpu_bound, 100);
  EXPECT_EQ(f.result(30s), cpu_bound(100));
  EXPECT_EQ(ex.map(square, std::vector<long>{1, 2, 3}), (std::vector<long>{1, 4, 9}));
  cf::Future<int> crash = ex.submit(crash_on, 3);
  EXPECT_THROW((void)crash.result(30s), mp::BrokenProcessPool);
  EXPECT_EQ(ex.submit(add, 20, 22).result(30s), 42);  // not broken for good (Python's would be)
  ex.shutdown(true);
  EXPECT_THROW(ex.submit(add, 1, 1), std::logic_error);
}

TEST(ProcessPoolExecutor, ShutdownCancelFutures) {
  cf::ProcessPoolExecutor ex(cf::ProcessPoolOptions{.max_workers = 1});
  std::vector<cf::Future<int>> fs;
  for (int i = 0; i < 40; ++i) fs.push_back(ex.submit(sleep_ms, 20));
  std::this_thread::sleep_for(50ms);
  ex.shutdown(true, true);
  int cancelled = 0, finished = 0;
  for (auto& f : fs) {
    if (f.cancelled()) {
      ++cancelled;
    } else {
      EXPECT_EQ(f.result(), 20);
      ++finished;
    }
  }
  // Those already handed to the worker run (a worker holds a few queued calls); the rest of
  // the queue is cancelled.
  EXPECT_GE(finished, 1);
  EXPECT_GE(cancelled, 10);
  EXPECT_EQ(cancelled + finished, 40);
}

TEST(Pool, WorkersDieWithAParentKilledBySigkill) {
  EXPECT_EQ(concur::test::survivors_of_a_killed_parent(
                [] {                        // a program with a pool, killed from outside
                  static mp::Pool pool(2);  // runs until the program is killed
                  (void)pool.map(square, std::vector<long>{1, 2, 3, 4});
                  return pool.pids();
                },
                2),
            "");
}
