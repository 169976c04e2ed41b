#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "concur/threading/local.hpp"
#include "concur/threading/thread.hpp"

namespace th = concur::threading;

namespace {

struct Session {
  int id = 0;
  std::string host = "default";
};

TEST(Local, EachThreadGetsItsOwnValue) {
  th::local<Session> session;
  session->id = 1;
  std::mutex m;
  std::vector<int> seen_initial;
  std::vector<th::Thread> ts;
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&, i] {
      int initial = session->id;  // fresh, default-constructed
      session->id = 100 + i;
      std::this_thread::yield();
      int after = session.get().id;
      std::lock_guard g(m);
      seen_initial.push_back(initial);
      seen_initial.push_back(after - 100 - i);  // 0 if untouched by other threads
    });
    ts.back().start();
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(session->id, 1);
  EXPECT_EQ(seen_initial, std::vector<int>(6, 0));
}

TEST(Local, MadeOnFirstUseAndHasValue) {
  th::local<Session> s;
  EXPECT_FALSE(s.has_value());
  (*s).host = "h";
  EXPECT_TRUE(s.has_value());
  EXPECT_EQ(s.get().host, "h");
  bool other_has = true;
  std::thread t([&] { other_has = s.has_value(); });
  t.join();
  EXPECT_FALSE(other_has);
}

TEST(Local, FactoryRunsOncePerThread) {
  std::atomic<int> made{0};
  th::local<int> counter([&] { return ++made * 10; });
  EXPECT_EQ(*counter, 10);
  EXPECT_EQ(*counter, 10);
  EXPECT_EQ(made.load(), 1);
  int other = 0;
  th::Thread t([&] { other = *counter; });
  t.start();
  t.join();
  EXPECT_EQ(other, 20);
  EXPECT_EQ(made.load(), 2);
}

TEST(Local, FactoryForNonDefaultConstructibleType) {
  struct NoDefault {
    explicit NoDefault(int v) : value(v) {}
    int value;
  };
  th::local<NoDefault> l([] { return NoDefault(5); });
  EXPECT_EQ(l->value, 5);
}

TEST(Local, ResetDropsOnlyThisThreadsValue) {
  std::atomic<int> made{0};
  th::local<int> l([&] { return ++made; });
  EXPECT_EQ(*l, 1);
  std::atomic<bool> go{false}, other_ready{false};
  int other_before = 0, other_after = 0;
  std::thread t([&] {
    other_before = *l;
    other_ready = true;
    while (!go.load()) std::this_thread::yield();
    other_after = *l;
  });
  while (!other_ready.load()) std::this_thread::yield();
  l.reset();
  EXPECT_FALSE(l.has_value());
  go = true;
  t.join();
  EXPECT_EQ(other_before, 2);
  EXPECT_EQ(other_after, 2);  // its value survived our reset
  EXPECT_EQ(*l, 3);           // remade on next use
  l.reset();
  l.reset();  // resetting twice is harmless
}

struct Tracked {
  static std::atomic<int> alive;
  Tracked() { ++alive; }
  Tracked(const Tracked&) { ++alive; }
  ~Tracked() { --alive; }
};
std::atomic<int> Tracked::alive{0};

TEST(Local, ValueDestroyedWhenItsThreadEnds) {
  th::local<Tracked> l;
  int during = -1;
  th::Thread t([&] {
    (void)l.get();
    during = Tracked::alive.load();
  });
  int before = Tracked::alive.load();
  t.start();
  t.join();
  // join() returns once the target is done; thread-locals go with the thread just after.
  std::thread probe([] {});
  probe.join();
  for (int i = 0; i < 1000 && Tracked::alive.load() != before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(during, before + 1);
  EXPECT_EQ(Tracked::alive.load(), before);
}

TEST(Local, DestroyingTheLocalDropsThisThreadsValue) {
  int before = Tracked::alive.load();
  {
    th::local<Tracked> l;
    (void)*l;
    EXPECT_EQ(Tracked::alive.load(), before + 1);
  }
  EXPECT_EQ(Tracked::alive.load(), before);
  // A new local never sees a dead one's value, even at the same address.
  th::local<Session> a;
  a->id = 42;
}

TEST(Local, DistinctLocalsAreIndependent) {
  th::local<int> a([] { return 1; });
  th::local<int> b([] { return 2; });
  *a = 10;
  EXPECT_EQ(*b, 2);
  EXPECT_EQ(*a, 10);
}

}  // namespace
