#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/core/error.hpp"
#include "concur/threading/event.hpp"
#include "concur/threading/thread.hpp"

using namespace std::chrono_literals;
namespace th = concur::threading;

namespace {

void add_to(std::atomic<int>* out, int a, std::string s) { *out += a + static_cast<int>(s.size()); }

TEST(Thread, RunsTargetWithDecayCopiedArgs) {
  std::atomic<int> out{0};
  th::Thread t(add_to, &out, 1, std::string("abc"));
  t.start();
  t.join();
  EXPECT_EQ(out.load(), 4);
  EXPECT_FALSE(t.is_alive());
}

TEST(Thread, MoveOnlyArgumentsAndRefs) {
  int seen = 0;
  th::Thread t([](std::unique_ptr<int> p, int& out) { out = *p; }, std::make_unique<int>(9), std::ref(seen));
  t.start();
  t.join();
  EXPECT_EQ(seen, 9);
}

TEST(Thread, OptionsNameAndDaemon) {
  th::Thread d({.name = "poller", .daemon = true}, [] {});
  EXPECT_EQ(d.name(), "poller");
  EXPECT_TRUE(d.daemon());
  th::Thread n({.name = "", .daemon = false}, [] {});
  EXPECT_FALSE(n.daemon());
  EXPECT_EQ(n.name().rfind("Thread-", 0), 0u);
  d.start();
  d.join();
}

TEST(Thread, DefaultNamesAreThreadN) {
  th::Thread a([] {});
  th::Thread b([] {});
  std::string na = a.name(), nb = b.name();
  ASSERT_EQ(na.rfind("Thread-", 0), 0u) << na;
  ASSERT_EQ(nb.rfind("Thread-", 0), 0u) << nb;
  EXPECT_EQ(std::stoi(nb.substr(7)), std::stoi(na.substr(7)) + 1);
}

TEST(Thread, SetNameAndSetDaemonBeforeStart) {
  th::Thread t([] {});
  t.set_name("renamed");
  EXPECT_EQ(t.name(), "renamed");
  t.set_daemon(true);
  EXPECT_TRUE(t.daemon());
  t.set_daemon(false);
  EXPECT_FALSE(t.daemon());
  t.start();
  EXPECT_THROW(t.set_daemon(true), std::logic_error);
  t.join();
  EXPECT_THROW(t.set_daemon(true), std::logic_error);
  t.set_name("after");  // allowed any time, as in Python
  EXPECT_EQ(t.name(), "after");
}

TEST(Thread, DaemonIsInheritedFromTheCreatingThread) {
  EXPECT_FALSE(th::main_thread().daemon());
  std::atomic<int> child_daemon{-1};
  std::atomic<int> child_nondaemon{-1};
  th::Thread parent({.name = "parent", .daemon = true}, [&] {
    th::Thread c([] {});
    child_daemon = c.daemon() ? 1 : 0;
    th::Thread c2({.daemon = false}, [] {});
    child_nondaemon = c2.daemon() ? 1 : 0;
  });
  parent.start();
  parent.join();
  th::Thread from_main([] {});
  EXPECT_EQ(child_daemon.load(), 1);
  EXPECT_EQ(child_nondaemon.load(), 0);
  EXPECT_FALSE(from_main.daemon());
}

TEST(Thread, StartTwiceThrows) {
  th::Thread t([] {});
  EXPECT_FALSE(t.is_alive());  // not before start()
  t.start();
  EXPECT_THROW(t.start(), std::logic_error);
  t.join();
  EXPECT_THROW(t.start(), std::logic_error);
}

TEST(Thread, JoinBeforeStartThrows) {
  th::Thread t([] {});
  EXPECT_THROW(t.join(), std::logic_error);
  EXPECT_THROW(t.join(10ms), std::logic_error);
  EXPECT_THROW(t.join_until(concur::core::Clock::now()), std::logic_error);
}

TEST(Thread, EmptyHandle) {
  th::Thread t;
  EXPECT_FALSE(t.valid());
  EXPECT_FALSE(t.is_alive());
  EXPECT_EQ(t.name(), "");
  EXPECT_FALSE(t.daemon());
  EXPECT_EQ(t.ident(), 0u);
  EXPECT_EQ(t.native_id(), 0u);
  EXPECT_THROW(t.start(), std::logic_error);
  EXPECT_THROW(t.join(), std::logic_error);
  EXPECT_THROW(t.set_name("x"), std::logic_error);
  EXPECT_THROW(t.set_daemon(true), std::logic_error);
  EXPECT_TRUE(t == th::Thread());
}

TEST(Thread, JoinCurrentThreadThrows) {
  EXPECT_THROW(th::current_thread().join(), std::logic_error);
  EXPECT_THROW(th::current_thread().join(10ms), std::logic_error);
  std::atomic<int> threw{0};
  th::Thread t([&] {
    try {
      th::current_thread().join();
    } catch (const std::logic_error&) {
      ++threw;
    }
    try {
      th::current_thread().join(10ms);
    } catch (const std::logic_error&) {
      ++threw;
    }
  });
  t.start();
  t.join();
  EXPECT_EQ(threw.load(), 2);
}

TEST(Thread, TimedJoinThenIsAlive) {
  th::Event release;
  th::Thread t([&] { release.wait(); });
  t.start();
  EXPECT_TRUE(t.is_alive());  // alive from the return of start()
  EXPECT_FALSE(t.join(20ms));
  EXPECT_TRUE(t.is_alive());
  EXPECT_FALSE(t.join_until(concur::core::deadline_after(1ms)));
  release.set();
  EXPECT_TRUE(t.join(10s));
  EXPECT_FALSE(t.is_alive());
  EXPECT_TRUE(t.join(0ms));  // joining an ended thread again is fine
  t.join();
}

TEST(Thread, IdentsAndNativeIds) {
  th::Thread t([] {});
  EXPECT_EQ(t.ident(), 0u);
  EXPECT_EQ(t.native_id(), 0u);
  std::atomic<std::uint64_t> ident{0}, native{0}, cur_native{0};
  th::Thread u([&] {
    ident = th::get_ident();
    native = th::get_native_id();
    cur_native = th::current_thread().native_id();
  });
  u.start();
  u.join();
  EXPECT_NE(u.ident(), 0u);
  EXPECT_NE(u.native_id(), 0u);
  EXPECT_EQ(u.ident(), ident.load());
  EXPECT_EQ(u.native_id(), native.load());
  EXPECT_EQ(cur_native.load(), native.load());
  EXPECT_NE(u.native_id(), th::get_native_id());
  EXPECT_NE(u.ident(), th::get_ident());
}

TEST(Thread, CurrentThreadIsTheSameHandleInsideTheTarget) {
  th::Thread self;
  std::string name_inside;
  th::Thread t({.name = "worker-x"}, [&] {
    self = th::current_thread();
    name_inside = th::current_thread().name();
  });
  t.start();
  t.join();
  EXPECT_TRUE(self == t);
  EXPECT_EQ(name_inside, "worker-x");
  th::Thread copy = t;  // copies refer to the same thread
  EXPECT_TRUE(copy == t);
  EXPECT_EQ(copy.name(), "worker-x");
}

TEST(Thread, MainThreadRegistry) {
  th::Thread m = th::main_thread();
  EXPECT_EQ(m.name(), "MainThread");
  EXPECT_TRUE(m.valid());
  EXPECT_TRUE(m.is_alive());
  EXPECT_FALSE(m.daemon());
  EXPECT_NE(m.native_id(), 0u);
  EXPECT_TRUE(th::current_thread() == m);  // gtest runs tests on the main thread
  EXPECT_EQ(th::current_thread().name(), "MainThread");
  EXPECT_TRUE(th::main_thread() == m);
  bool main_from_worker = false;
  th::Thread t([&] { main_from_worker = (th::main_thread() == m) && !(th::current_thread() == m); });
  t.start();
  t.join();
  EXPECT_TRUE(main_from_worker);
}

TEST(Thread, EnumerateAndActiveCountTrackAliveThreads) {
  std::size_t before = th::active_count();
  auto all = th::enumerate();
  EXPECT_EQ(all.size(), before);
  EXPECT_TRUE(std::any_of(all.begin(), all.end(), [](const th::Thread& t) { return t.name() == "MainThread"; }));
  th::Event release;
  th::Thread t({.name = "enumerated"}, [&] { release.wait(); });
  t.start();
  std::size_t during = th::active_count();
  auto listed = th::enumerate();
  bool found = std::any_of(listed.begin(), listed.end(), [&](const th::Thread& x) { return x == t; });
  release.set();
  t.join();
  std::size_t after = th::active_count();
  auto after_list = th::enumerate();
  bool found_after = std::any_of(after_list.begin(), after_list.end(), [&](const th::Thread& x) { return x == t; });
  EXPECT_EQ(during, before + 1);
  EXPECT_TRUE(found);
  EXPECT_EQ(after, before);
  EXPECT_FALSE(found_after);
}

TEST(Thread, ForeignThreadsGetDummyHandles) {
  std::string name;
  bool daemon = false;
  bool listed = false;
  std::size_t before = th::active_count();
  std::thread f([&] {
    th::Thread me = th::current_thread();
    name = me.name();
    daemon = me.daemon();
    auto all = th::enumerate();
    listed = std::any_of(all.begin(), all.end(), [&](const th::Thread& x) { return x == me; });
  });
  f.join();
  EXPECT_EQ(name.rfind("Dummy-", 0), 0u) << name;
  EXPECT_TRUE(daemon);
  EXPECT_TRUE(listed);
  EXPECT_EQ(th::active_count(), before);  // unregistered when it ended
}

TEST(Thread, ExcepthookGetsTheTargetsExceptionAndThreadEnds) {
  std::mutex m;
  std::vector<std::string> messages;
  std::vector<th::Thread> threads;
  th::set_excepthook([&](const th::ExceptHookArgs& args) {
    std::lock_guard g(m);
    messages.push_back(concur::describe(args.exc_value));
    threads.push_back(args.thread);
  });
  th::Thread t({.name = "thrower"}, [] { throw std::runtime_error("target failed"); });
  t.start();
  t.join();
  th::set_excepthook(nullptr);
  EXPECT_FALSE(t.is_alive());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0], "std::runtime_error: target failed");
  EXPECT_TRUE(threads[0] == t);
  EXPECT_EQ(threads[0].name(), "thrower");
}

std::mutex g_unraisable_m;
std::vector<std::string> g_unraisable;
void unraisable_capture(const std::string& ctx, const std::exception_ptr& e) {
  std::lock_guard g(g_unraisable_m);
  g_unraisable.push_back(ctx + " | " + concur::describe(e));
}

TEST(Thread, DefaultExcepthookReportsThroughUnraisableHook) {
  g_unraisable.clear();
  th::set_excepthook(nullptr);
  concur::set_unraisable_hook(&unraisable_capture);
  th::Thread t({.name = "bad-worker"}, [] { throw std::logic_error("oops"); });
  t.start();
  t.join();
  concur::set_unraisable_hook(nullptr);
  ASSERT_EQ(g_unraisable.size(), 1u);
  EXPECT_EQ(g_unraisable[0], "Exception in thread bad-worker | std::logic_error: oops");
}

TEST(Thread, ThrowingExcepthookIsReportedNotFatal) {
  g_unraisable.clear();
  concur::set_unraisable_hook(&unraisable_capture);
  th::set_excepthook([](const th::ExceptHookArgs&) { throw std::runtime_error("hook broke"); });
  th::Thread t({.name = "w"}, [] { throw std::runtime_error("first"); });
  t.start();
  t.join();
  th::set_excepthook(nullptr);
  concur::set_unraisable_hook(nullptr);
  ASSERT_EQ(g_unraisable.size(), 2u);
  EXPECT_NE(g_unraisable[0].find("hook broke"), std::string::npos);
  EXPECT_NE(g_unraisable[1].find("first"), std::string::npos);
}

TEST(Thread, DestroyedHandleOfRunningThreadKeepsRunning) {
  auto release = std::make_shared<th::Event>();
  auto finished = std::make_shared<th::Event>();
  th::Thread observer;
  {
    th::Thread t([release, finished] {
      release->wait();
      finished->set();
    });
    t.start();
    observer = th::enumerate().back();  // keep a way to join it; the original handle dies
    for (auto& x : th::enumerate())
      if (x == t) observer = x;
    EXPECT_TRUE(observer == t);
  }
  EXPECT_TRUE(observer.is_alive());
  release->set();
  EXPECT_TRUE(finished->wait(10s));
  EXPECT_TRUE(observer.join(10s));
}

TEST(Thread, HandleDroppedWithoutKeepingAnyCopy) {
  auto done = std::make_shared<th::Event>();
  {
    th::Thread t([done] {
      std::this_thread::sleep_for(10ms);
      done->set();
    });
    t.start();
  }  // every handle gone while it runs: nothing terminates
  EXPECT_TRUE(done->wait(10s));
  // It unregisters shortly after setting `done`.
  auto others = [&] {
    for (auto& x : th::enumerate())
      if (x.name() != "MainThread") return true;
    return false;
  };
  EXPECT_TRUE(concur::test::eventually([&] { return !others(); }));
}

// Exit behaviour runs in a child process (gtest death-test machinery, re-executed so that no
// thread of this process is forked).
TEST(ThreadExit, NonDaemonThreadsAreJoinedAtNormalExit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        th::Thread t([] {
          std::this_thread::sleep_for(50ms);
          std::fputs("worker finished before exit\n", stderr);
          std::fflush(stderr);
        });
        t.start();
        std::exit(0);  // returns from main: the interpreter-style shutdown joins `t` first
      },
      testing::ExitedWithCode(0), "worker finished before exit");
}

TEST(ThreadExit, DaemonThreadsAreNotJoinedAtExit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static th::Event never;  // static: the daemon may still wait on it during exit
        th::Thread d({.name = "daemon", .daemon = true}, [] { never.wait(); });
        d.start();
        std::fputs("main exiting\n", stderr);
        std::exit(0);  // would hang if daemon threads were joined
      },
      testing::ExitedWithCode(0), "main exiting");
}

TEST(ThreadExit, ThrowingTargetDoesNotTerminateTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        th::set_excepthook(nullptr);
        concur::set_unraisable_hook(nullptr);
        th::Thread t({.name = "failing"}, [] { throw std::runtime_error("escaped"); });
        t.start();
        t.join();
        std::fputs("process still alive\n", stderr);
        std::exit(3);
      },
      testing::ExitedWithCode(3), "Exception in thread failing: std::runtime_error: escaped(.|\n)*process still alive");
}

}  // namespace
