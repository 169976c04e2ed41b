// Stress: races on a future's state — completion vs add_done_callback, cancel vs run, waits vs
// completion, abandoned promises. Every future ends in exactly one state; nothing hangs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "support/helpers.hpp"
#include <gtest/gtest.h>

#include "concur/futures.hpp"
#include "concur/threading.hpp"

namespace cf = concur::futures;
namespace th = concur::threading;
using namespace std::chrono_literals;
using concur::test::Budget;
using concur::test::stress_iters;

namespace {

/// Two threads released together (spin start line) to maximise overlap.
class StartLine {
 public:
  void arrive_and_wait() {
    ready_.fetch_add(1);
    while (ready_.load() < 2) std::this_thread::yield();
  }
  void reset() { ready_.store(0); }

 private:
  std::atomic<int> ready_{0};
};

}  // namespace

TEST(FutureStress, CompletionRacesAddDoneCallback) {
  const auto n = std::max<std::int64_t>(200, stress_iters(2000));
  Budget budget(std::chrono::seconds(15));
  std::int64_t wrong_calls = 0, wrong_value = 0, rounds = 0;
  for (std::int64_t r = 0; r < n && !budget.exhausted(); ++r, ++rounds) {
    cf::Promise<int> p;
    auto f = p.get_future();
    std::atomic<int> calls{0};
    std::atomic<int> seen{-1};
    StartLine line;
    std::thread completer([&] {
      line.arrive_and_wait();
      p.set_result(static_cast<int>(r));
    });
    line.arrive_and_wait();
    for (int k = 0; k < 3; ++k) {
      f.add_done_callback([&](cf::Future<int> d) {
        seen.store(d.result());
        calls.fetch_add(1);
      });
    }
    completer.join();
    if (calls.load() != 3) ++wrong_calls;
    if (seen.load() != static_cast<int>(r)) ++wrong_value;
  }
  EXPECT_EQ(wrong_calls, 0);
  EXPECT_EQ(wrong_value, 0);
  EXPECT_GT(rounds, 0);
}

TEST(FutureStress, CancelRacesAddDoneCallback) {
  const auto n = std::max<std::int64_t>(200, stress_iters(2000));
  Budget budget(std::chrono::seconds(15));
  std::int64_t wrong = 0, rounds = 0;
  for (std::int64_t r = 0; r < n && !budget.exhausted(); ++r, ++rounds) {
    cf::Promise<int> p;
    auto f = p.get_future();
    std::atomic<int> calls{0};
    StartLine line;
    std::thread canceller([&] {
      line.arrive_and_wait();
      f.cancel();
    });
    line.arrive_and_wait();
    f.add_done_callback([&](cf::Future<int> d) {
      if (d.cancelled()) calls.fetch_add(1);
    });
    canceller.join();
    if (calls.load() != 1) ++wrong;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(rounds, 0);
}

TEST(FutureStress, CancelRacesRunOnPool) {
  const auto n = std::max<std::int64_t>(500, stress_iters(2000) * 2);
  Budget budget(std::chrono::seconds(15));
  cf::ThreadPoolExecutor pool(4);
  std::atomic<std::int64_t> ran{0};
  std::vector<cf::Future<std::int64_t>> fs;
  std::vector<bool> cancel_ok;
  fs.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n && !budget.exhausted(); ++i) {
    fs.push_back(pool.submit([&ran, i] {
      ran.fetch_add(1);
      return i;
    }));
    // Cancel the previous one: it may be pending, running or done.
    if (i > 0) cancel_ok.push_back(fs[static_cast<std::size_t>(i - 1)].cancel());
  }
  std::int64_t cancelled = 0, completed = 0, both = 0, neither = 0, wrong = 0, cancel_lied = 0;
  for (std::size_t i = 0; i < fs.size(); ++i) {
    auto& f = fs[i];
    bool finished = f.state()->wait(concur::core::deadline_after(60s));
    if (!finished) {
      ++neither;
      continue;
    }
    bool c = f.cancelled();
    bool has_value = false;
    if (!c) {
      try {
        has_value = f.result() == static_cast<std::int64_t>(i);
        if (!has_value) ++wrong;
      } catch (...) {
        ++wrong;
      }
    } else {
      try {
        (void)f.result();
        ++both;
      } catch (const concur::CancelledError&) {
      }
    }
    if (c)
      ++cancelled;
    else
      ++completed;
    if (i < cancel_ok.size() && cancel_ok[i] != c) ++cancel_lied;  // cancel() true <=> cancelled
  }
  pool.shutdown(true);
  EXPECT_EQ(neither, 0);
  EXPECT_EQ(both, 0);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(cancel_lied, 0);
  EXPECT_EQ(cancelled + completed, static_cast<std::int64_t>(fs.size()));
  EXPECT_EQ(ran.load(), completed);  // a cancelled task never ran
}

TEST(FutureStress, SetResultRacesSetExceptionAndCancel) {
  // Exactly one of three racing completions wins; the losers throw or return false.
  const auto n = std::max<std::int64_t>(200, stress_iters(2000));
  Budget budget(std::chrono::seconds(15));
  std::int64_t bad = 0, rounds = 0;
  for (std::int64_t r = 0; r < n && !budget.exhausted(); ++r, ++rounds) {
    cf::Promise<int> p;
    auto f = p.get_future();
    std::atomic<int> wins{0};
    std::atomic<int> go{0};
    auto wait_go = [&] {
      go.fetch_add(1);
      while (go.load() < 3) std::this_thread::yield();
    };
    std::thread a([&] {
      wait_go();
      try {
        p.set_result(1);
        wins.fetch_add(1);
      } catch (const concur::InvalidStateError&) {
      }
    });
    std::thread b([&] {
      wait_go();
      if (f.cancel()) wins.fetch_add(1);
    });
    wait_go();
    if (p.get_future().state()->try_set_exception(std::make_exception_ptr(std::runtime_error("e")))) wins.fetch_add(1);
    a.join();
    b.join();
    if (wins.load() != 1 || !f.done()) ++bad;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(rounds, 0);
}

TEST(FutureStress, WaitersRaceCompletion) {
  // result() from several threads, wait(), as_completed() — all see the completion.
  const auto n = std::max<std::int64_t>(100, stress_iters(2000) / 4);
  Budget budget(std::chrono::seconds(15));
  std::int64_t bad = 0, rounds = 0;
  for (std::int64_t r = 0; r < n && !budget.exhausted(); ++r, ++rounds) {
    std::vector<cf::Promise<int>> ps(3);
    std::vector<cf::Future<int>> fs;
    for (auto& p : ps) fs.push_back(p.get_future());
    std::atomic<int> ok{0};
    std::thread w1([&] {
      if (fs[0].result(30s) == 0) ok.fetch_add(1);
    });
    // wait() does not throw on timeout: a lost wake-up would show only as the full timeout.
    auto in_time = [](auto t0) { return std::chrono::steady_clock::now() - t0 < 20s; };
    std::thread w2([&] {
      auto t0 = std::chrono::steady_clock::now();
      auto res = cf::wait(fs, {.timeout = 30s});
      if (res.done.size() == 3 && in_time(t0)) ok.fetch_add(1);
    });
    std::thread w3([&] {
      int k = 0;
      try {
        for (const auto& f : cf::as_completed(fs, 30s)) k += 1 + f.result();
      } catch (const concur::TimeoutError&) {
        k = -1;
      }
      if (k == 6) ok.fetch_add(1);
    });
    std::thread w4([&] {
      auto t0 = std::chrono::steady_clock::now();
      auto res = cf::wait(fs, {.timeout = 30s, .return_when = cf::FIRST_COMPLETED});
      if (!res.done.empty() && in_time(t0)) ok.fetch_add(1);
    });
    for (int i = 0; i < 3; ++i) ps[static_cast<std::size_t>(i)].set_result(i);
    w1.join();
    w2.join();
    w3.join();
    w4.join();
    if (ok.load() != 4) ++bad;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(rounds, 0);
}

TEST(FutureStress, TimedWaitsRaceCompletion) {
  // A timed result() racing completion: either the value or TimeoutError, never a hang or both.
  const auto n = std::max<std::int64_t>(200, stress_iters(2000));
  Budget budget(std::chrono::seconds(15));
  std::int64_t bad = 0, rounds = 0;
  for (std::int64_t r = 0; r < n && !budget.exhausted(); ++r, ++rounds) {
    cf::Promise<int> p;
    auto f = p.get_future();
    std::thread setter([&] {
      if (r % 2) std::this_thread::sleep_for(std::chrono::microseconds(r % 50));
      p.set_result(7);
    });
    try {
      if (f.result(std::chrono::microseconds(r % 40)) != 7) ++bad;
    } catch (const concur::TimeoutError&) {
    }
    setter.join();
    if (f.result(30s) != 7) ++bad;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(rounds, 0);
}

TEST(FutureStress, AbandonedPromiseRacesWaiter) {
  const auto n = std::max<std::int64_t>(200, stress_iters(2000));
  Budget budget(std::chrono::seconds(15));
  std::int64_t bad = 0, rounds = 0;
  for (std::int64_t r = 0; r < n && !budget.exhausted(); ++r, ++rounds) {
    auto p = std::make_unique<cf::Promise<int>>();
    auto f = p->get_future();
    std::thread dropper([&] { p.reset(); });
    try {
      (void)f.result(30s);
      ++bad;
    } catch (const cf::BrokenPromise&) {
    } catch (...) {
      ++bad;
    }
    dropper.join();
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(rounds, 0);
}

TEST(FutureStress, ThenChainsRacingCompletion) {
  const auto n = std::max<std::int64_t>(200, stress_iters(2000));
  Budget budget(std::chrono::seconds(15));
  std::int64_t bad = 0, rounds = 0;
  for (std::int64_t r = 0; r < n && !budget.exhausted(); ++r, ++rounds) {
    cf::Promise<int> p;
    auto f = p.get_future();
    std::thread setter([&] { p.set_result(1); });
    auto g = f.then([](int v) { return v + 1; }).then([](int v) { return v * 10; });
    setter.join();
    if (g.result(30s) != 20) ++bad;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(rounds, 0);
}
