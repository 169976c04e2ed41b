// concurrent.futures Promise (the producer side of a Future, for executor authors).
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "concur/futures.hpp"

namespace cf = concur::futures;
using namespace std::chrono_literals;

TEST(Promise, SetResult) {
  cf::Promise<std::string> p;
  auto f = p.get_future();
  p.set_result("hello");
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), "hello");
}

TEST(Promise, SetResultEmplacesFromSeveralArguments) {
  cf::Promise<std::string> p;
  auto f = p.get_future();
  p.set_result(3u, 'x');
  EXPECT_EQ(f.result(), "xxx");
}

TEST(Promise, SetExceptionFromObjectAndPointer) {
  cf::Promise<int> p;
  auto f = p.get_future();
  p.set_exception(std::range_error("r"));
  EXPECT_THROW((void)f.result(), std::range_error);

  cf::Promise<int> q;
  auto g = q.get_future();
  q.set_exception(std::make_exception_ptr(std::length_error("l")));
  EXPECT_THROW((void)g.result(), std::length_error);
}

TEST(Promise, SecondSetThrowsInvalidStateError) {
  cf::Promise<int> p;
  auto f = p.get_future();
  p.set_result(1);
  EXPECT_THROW(p.set_result(2), concur::InvalidStateError);
  EXPECT_THROW(p.set_exception(std::runtime_error("late")), concur::InvalidStateError);
  EXPECT_EQ(f.result(), 1);  // the first one wins

  cf::Promise<int> q;
  auto g = q.get_future();
  q.set_exception(std::runtime_error("first"));
  EXPECT_THROW(q.set_result(3), concur::InvalidStateError);
  EXPECT_THROW(q.set_exception(std::runtime_error("second")), concur::InvalidStateError);
  try {
    (void)g.result();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "first");
  }
}

TEST(Promise, SetAfterCancelThrowsInvalidStateError) {
  cf::Promise<int> p;
  auto f = p.get_future();
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(p.set_result(1), concur::InvalidStateError);
  EXPECT_THROW(p.set_exception(std::runtime_error("x")), concur::InvalidStateError);
  EXPECT_TRUE(f.cancelled());
}

TEST(Promise, SetRunningOrNotifyCancel) {
  cf::Promise<int> p;
  auto f = p.get_future();
  EXPECT_TRUE(p.set_running_or_notify_cancel());
  EXPECT_TRUE(f.running());
  // Already running: Python raises RuntimeError; here InvalidStateError.
  EXPECT_THROW((void)p.set_running_or_notify_cancel(), concur::InvalidStateError);
  p.set_result(5);
  EXPECT_THROW((void)p.set_running_or_notify_cancel(), concur::InvalidStateError);
  EXPECT_EQ(f.result(), 5);
}

TEST(Promise, SetRunningOrNotifyCancelFalseAfterCancel) {
  cf::Promise<int> p;
  auto f = p.get_future();
  int callbacks = 0;
  f.add_done_callback([&](cf::Future<int>) { ++callbacks; });
  EXPECT_TRUE(f.cancel());
  EXPECT_EQ(callbacks, 1);
  EXPECT_FALSE(p.set_running_or_notify_cancel());
  EXPECT_FALSE(p.set_running_or_notify_cancel());  // still false, never throws for cancelled
  EXPECT_TRUE(f.cancelled());
  EXPECT_EQ(callbacks, 1);
}

TEST(Promise, DestroyedWithoutResultGivesBrokenPromise) {
  cf::Future<int> f;
  {
    cf::Promise<int> p;
    f = p.get_future();
  }
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_THROW((void)f.result(), cf::BrokenPromise);
  auto e = f.exception();
  ASSERT_NE(e, nullptr);
  EXPECT_THROW(std::rethrow_exception(e), concur::Error);  // BrokenPromise is a concur::Error
}

TEST(Promise, DestroyedWhileRunningGivesBrokenPromise) {
  cf::Future<void> f;
  {
    cf::Promise<void> p;
    f = p.get_future();
    EXPECT_TRUE(p.set_running_or_notify_cancel());
  }
  EXPECT_THROW(f.result(1s), cf::BrokenPromise);
}

TEST(Promise, DestroyedWakesABlockedWaiter) {
  auto p = std::make_unique<cf::Promise<int>>();
  auto f = p->get_future();
  std::atomic<int> outcome{0};  // 1 = BrokenPromise
  std::thread t([f, &outcome] {
    try {
      (void)f.result(10s);
      outcome = 2;
    } catch (const cf::BrokenPromise&) {
      outcome = 1;
    } catch (...) {
      outcome = 3;
    }
  });
  std::this_thread::sleep_for(20ms);
  p.reset();
  t.join();
  EXPECT_EQ(outcome.load(), 1);
}

TEST(Promise, DestroyedAfterResultOrCancelChangesNothing) {
  cf::Future<int> f, g;
  {
    cf::Promise<int> p;
    f = p.get_future();
    p.set_result(11);
    cf::Promise<int> q;
    g = q.get_future();
    g.cancel();
  }
  EXPECT_EQ(f.result(), 11);
  EXPECT_TRUE(g.cancelled());
}

TEST(Promise, MoveTransfersOwnership) {
  cf::Promise<int> a;
  auto f = a.get_future();
  cf::Promise<int> b(std::move(a));
  {
    cf::Promise<int> dead(std::move(b));
    dead.set_result(3);
  }
  EXPECT_EQ(f.result(), 3);
}

TEST(Promise, MoveAssignAbandonsTheOldState) {
  cf::Promise<int> a;
  auto fa = a.get_future();
  cf::Promise<int> b;
  auto fb = b.get_future();
  a = std::move(b);  // a's old state is abandoned
  EXPECT_THROW((void)fa.result(1s), cf::BrokenPromise);
  EXPECT_FALSE(fb.done());
  a.set_result(2);
  EXPECT_EQ(fb.result(), 2);
}

TEST(Promise, GetFutureManyTimes) {
  cf::Promise<int> p;
  auto f1 = p.get_future();
  auto f2 = p.get_future();
  EXPECT_TRUE(f1 == f2);
  p.set_result(1);
  EXPECT_EQ(f2.result(), 1);
}

TEST(Promise, ValueConstructorThrowingFailsTheFuture) {
  struct Explodes {
    explicit Explodes(int v) {
      if (v < 0) throw std::domain_error("negative");
    }
  };
  cf::Promise<Explodes> p;
  auto f = p.get_future();
  EXPECT_NO_THROW(p.set_result(-1));
  EXPECT_THROW((void)f.result(), std::domain_error);
  EXPECT_THROW(p.set_result(1), concur::InvalidStateError);
}

TEST(Promise, SetFromAnotherThreadWhileWaiting) {
  cf::Promise<int> p;
  auto f = p.get_future();
  bool started = false;
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    started = p.set_running_or_notify_cancel();
    p.set_result(99);
  });
  EXPECT_EQ(f.result(5s), 99);
  t.join();
  EXPECT_TRUE(started);
}

TEST(Promise, SetExceptionWithAnLvalueExceptionPtrIsNotWrapped) {
  cf::Promise<int> p;
  auto f = p.get_future();
  std::exception_ptr e = std::make_exception_ptr(std::overflow_error("o"));
  p.set_exception(e);  // must store `e` itself, not an exception_ptr holding an exception_ptr
  EXPECT_THROW((void)f.result(), std::overflow_error);
  EXPECT_EQ(f.exception(), e);
}
