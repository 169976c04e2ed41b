// The "forkserver" start method: Processes and pools whose children the fork server forks (a
// single-threaded copy of this test binary, spawned on first use). Exit codes and signals as for
// spawn, crash isolation of a pool task, children and the server dying with the program, a
// program that already runs threads, and no zombies.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "multiprocessing/fork_support.hpp"
#include <gtest/gtest.h>

#include "concur/multiprocessing.hpp"
#include "concur/multiprocessing/detail/worker.hpp"

namespace mp = concur::multiprocessing;
using concur::test::read_file;
using namespace std::chrono_literals;

namespace {

void exit_with(int code) { ::_exit(code); }
void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
void throws(std::string message) { throw std::runtime_error(message); }
void report_parent(std::string path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) ::_exit(3);
  std::fprintf(f, "%s %d", mp::current_process().name.c_str(), static_cast<int>(::getppid()));
  std::fclose(f);
}
long square(long x) { return x * x; }
int crash_on(int x) {
  if (x == 3) {
    volatile int* p = nullptr;
    *p = 1;  // segfault
  }
  if (x == 7) ::_exit(42);
  return x * 10;
}
int my_pid(int) { return static_cast<int>(::getpid()); }

/// The children of this process that are zombies (the fork server itself stays alive).
bool no_zombie_children() {
  siginfo_t info{};
  int r = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  return (r != 0 && errno == ECHILD) || (r == 0 && info.si_pid == 0);
}

class ForkServer : public ::testing::Test {
 protected:
  void SetUp() override { mp::set_start_method("forkserver"); }
  void TearDown() override { mp::set_start_method("spawn"); }
};

}  // namespace

TEST_F(ForkServer, ProcessRunsTheTargetAndReportsExitCodesAndSignals) {
  EXPECT_EQ(mp::get_start_method(), "forkserver");
  mp::Process ok(sleep_ms, 10);
  ok.start();
  ASSERT_TRUE(ok.pid());
  ok.join();
  EXPECT_EQ(ok.exitcode(), 0);
  EXPECT_FALSE(ok.is_alive());
  const pid_t server = mp::detail::forkserver_pid();
  ASSERT_GT(server, 0);  // started lazily, by the first Process

  mp::Process seven(exit_with, 7);
  seven.start();
  seven.join();
  EXPECT_EQ(seven.exitcode(), 7);

  mp::Process bad(throws, std::string("boom"));  // printed, exit code 1 (as Python)
  bad.start();
  bad.join();
  EXPECT_EQ(bad.exitcode(), 1);

  mp::Process slow(sleep_ms, 10000);
  slow.start();
  EXPECT_FALSE(slow.join(100ms));
  EXPECT_TRUE(slow.is_alive());
  EXPECT_EQ(mp::active_children(), std::vector<pid_t>{*slow.pid()});
  slow.terminate();
  EXPECT_TRUE(slow.join(10s));
  EXPECT_EQ(slow.exitcode(), -SIGTERM);
  mp::Process k(sleep_ms, 10000);
  k.start();
  k.kill();
  k.join();
  EXPECT_EQ(k.exitcode(), -SIGKILL);
  EXPECT_TRUE(mp::active_children().empty());
  EXPECT_EQ(mp::detail::forkserver_pid(), server);  // one server for them all
  EXPECT_TRUE(no_zombie_children());
}

TEST_F(ForkServer, ChildrenAreForkedByTheServerWithTheirName) {
  std::string path = "/tmp/concur-mp-fs-" + std::to_string(::getpid());
  mp::Process p(report_parent, path);
  p.set_name("fs-worker");
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(read_file(path), "fs-worker " + std::to_string(mp::detail::forkserver_pid()));
  std::remove(path.c_str());
}

TEST_F(ForkServer, PoolMapsAndIsolatesACrashingTask) {
  mp::Pool pool(2);
  std::vector<long> nums;
  for (long i = 0; i < 50; ++i) nums.push_back(i);
  std::vector<long> sq = pool.map(square, nums);
  ASSERT_EQ(sq.size(), 50u);
  for (long i = 0; i < 50; ++i) EXPECT_EQ(sq[static_cast<std::size_t>(i)], i * i);
  auto segv = pool.apply_async(crash_on, 3);
  try {
    (void)segv.get(20s);
    ADD_FAILURE() << "the crashing task succeeded";
  } catch (const mp::BrokenProcessPool& e) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // The sanitizers catch SIGSEGV themselves and exit with an error code.
    EXPECT_NE(std::string(e.what()).find("died while running the task"), std::string::npos) << e.what();
#else
    EXPECT_NE(std::string(e.what()).find("SIGSEGV"), std::string::npos) << e.what();
#endif
  }
  auto exit42 = pool.apply_async(crash_on, 7);
  try {
    (void)exit42.get(20s);
    ADD_FAILURE() << "the exiting task succeeded";
  } catch (const mp::BrokenProcessPool& e) {
    EXPECT_NE(std::string(e.what()).find("exit code 42"), std::string::npos) << e.what();
  }
  // The pool replaced the workers; every other task completes.
  EXPECT_EQ(pool.map(crash_on, std::vector<int>{1, 2, 4, 5}), (std::vector<int>{10, 20, 40, 50}));
  pool.close();
  pool.join();
  EXPECT_TRUE(no_zombie_children());
}

TEST_F(ForkServer, ExecutorWorksFromAProgramThatRunsThreads) {
  // Threads that allocate all the time while children start: a child is forked from the
  // single-threaded server, never from this process, so no allocator lock is held in it.
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int i = 0; i < 2; ++i) {
    busy.emplace_back([&stop] {
      while (!stop.load()) {
        std::vector<std::string> v(64, std::string(100, 'x'));
        (void)v;
      }
    });
  }
  {
    concur::futures::ProcessPoolExecutor ex({.max_workers = 2, .max_tasks_per_child = 1});  // a worker per task
    std::vector<concur::futures::Future<int>> fs;
    for (int i = 0; i < 8; ++i) fs.push_back(ex.submit(my_pid, i));
    std::vector<int> pids;
    for (auto& f : fs) pids.push_back(f.result(20s));
    std::sort(pids.begin(), pids.end());
    EXPECT_EQ(std::unique(pids.begin(), pids.end()), pids.end());  // one worker per task
    EXPECT_EQ(std::count(pids.begin(), pids.end(), static_cast<int>(::getpid())), 0);
  }
  stop = true;
  for (auto& t : busy) t.join();
}

TEST(ForkServerLifetime, ServerAndChildrenDieWithAParentKilledBySigkill) {
  EXPECT_EQ(concur::test::survivors_of_a_killed_parent(
                [] {  // a program using the fork server, killed from outside
                  mp::set_start_method("forkserver");
                  static mp::Pool pool(2);  // these run until the program is killed
                  (void)pool.map(square, std::vector<long>{1, 2, 3, 4});
                  static mp::Process child(sleep_ms, 60000);
                  child.start();
                  std::vector<pid_t> pids = pool.pids();
                  pids.push_back(*child.pid());
                  pids.push_back(mp::detail::forkserver_pid());
                  return pids;
                },
                4),
            "");
}
