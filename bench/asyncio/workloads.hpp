#pragma once
// The asyncio benchmark workloads, each for concur.asyncio and Boost.Asio (C++20 coroutines),
// shared by bench_loop.cpp (Google Benchmark) and compare_ratios.cpp (one table). Each function
// runs the workload once and returns the seconds it took. bench/compare/asyncio_bench.py does
// the same four in Python asyncio (and uvloop).
//
//   (a) tasks:      create N trivial tasks, then await each     (Python: create_task + await)
//   (b) switch:     two coroutines ping-pong through sleep(0)   (ns per switch; Asio: post)
//   (c) timers:     N timers (deadlines spread over N ns) scheduled and fired (Asio: steady_timer)
//   (d) threadsafe: another thread posts N callbacks            (call_soon_threadsafe; Asio: post)
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <concur/asyncio.hpp>

namespace bench_aio {

namespace aio = concur::asyncio;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(what);
}

// ---- concur ---------------------------------------------------------------------------------

inline aio::Coro<int> trivial(int i) { co_return i; }

inline aio::Coro<long> concur_tasks_main(int n) {
  std::vector<aio::Task<int>> ts;
  ts.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ts.push_back(aio::create_task(trivial(i)));
  long s = 0;
  for (auto& t : ts) s += co_await t;
  co_return s;
}

/// (a) seconds for N create_task + await.
inline double concur_tasks(int n) {
  aio::EventLoop loop;
  auto t0 = Clock::now();
  long s = loop.run_until_complete(concur_tasks_main(n));
  double took = seconds_since(t0);
  check(s == static_cast<long>(n) * (n - 1) / 2, "concur tasks: wrong sum");
  return took;
}

inline aio::Coro<void> concur_pinger(int n, long& counter) {
  for (int i = 0; i < n; ++i) {
    ++counter;
    co_await aio::sleep(std::chrono::seconds(0));
  }
}

inline aio::Coro<void> concur_switch_main(int n, long& counter) {
  aio::Task<void> a = aio::create_task(concur_pinger(n, counter));
  aio::Task<void> b = aio::create_task(concur_pinger(n, counter));
  co_await a;
  co_await b;
}

/// (b) seconds for 2*N switches (two coroutines, N sleep(0) each).
inline double concur_switch(int n) {
  aio::EventLoop loop;
  long counter = 0;
  auto t0 = Clock::now();
  loop.run_until_complete(concur_switch_main(n, counter));
  double took = seconds_since(t0);
  check(counter == 2L * n, "concur switch: wrong count");
  return took;
}

/// (c) seconds for N call_later timers (delays 0..N-1 ns) scheduled and fired.
inline double concur_timers(int n) {
  aio::EventLoop loop;
  int fired = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    loop.call_later(std::chrono::nanoseconds(i), [&fired, &loop, n] {
      if (++fired == n) loop.stop();
    });
  }
  loop.run_forever();
  double took = seconds_since(t0);
  check(fired == n, "concur timers: wrong count");
  return took;
}

/// (d) seconds for N call_soon_threadsafe calls from another thread, all run by the loop.
inline double concur_threadsafe(int n) {
  aio::EventLoop loop;
  int ran = 0;
  auto t0 = Clock::now();
  std::thread producer([&] {
    for (int i = 0; i < n; ++i) {
      loop.call_soon_threadsafe([&ran, &loop, n] {
        if (++ran == n) loop.stop();
      });
    }
  });
  loop.run_forever();
  double took = seconds_since(t0);
  producer.join();
  check(ran == n, "concur threadsafe: wrong count");
  return took;
}

// ---- Boost.Asio -----------------------------------------------------------------------------

inline asio::awaitable<void> asio_trivial(long& sum, int i) {
  sum += i;
  co_return;
}

/// (a) Asio: N co_spawn(..., detached) coroutines, run to completion.
inline double asio_tasks(int n) {
  asio::io_context ctx(1);
  long sum = 0;
  auto t0 = Clock::now();
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        for (int i = 0; i < n; ++i) asio::co_spawn(ex, asio_trivial(sum, i), asio::detached);
        co_return;
      },
      asio::detached);
  ctx.run();
  double took = seconds_since(t0);
  check(sum == static_cast<long>(n) * (n - 1) / 2, "asio tasks: wrong sum");
  return took;
}

/// (a') Asio: N x `co_await co_spawn(ex, f(), use_awaitable)` (create and await one at a time).
inline double asio_tasks_awaited(int n) {
  asio::io_context ctx(1);
  long sum = 0;
  auto t0 = Clock::now();
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        for (int i = 0; i < n; ++i) co_await asio::co_spawn(ex, asio_trivial(sum, i), asio::use_awaitable);
      },
      asio::detached);
  ctx.run();
  double took = seconds_since(t0);
  check(sum == static_cast<long>(n) * (n - 1) / 2, "asio awaited tasks: wrong sum");
  return took;
}

/// (a') concur: N x `co_await create_task(f())` (create and await one at a time).
inline aio::Coro<long> concur_tasks_awaited_main(int n) {
  long s = 0;
  for (int i = 0; i < n; ++i) s += co_await aio::create_task(trivial(i));
  co_return s;
}
inline double concur_tasks_awaited(int n) {
  aio::EventLoop loop;
  auto t0 = Clock::now();
  long s = loop.run_until_complete(concur_tasks_awaited_main(n));
  double took = seconds_since(t0);
  check(s == static_cast<long>(n) * (n - 1) / 2, "concur awaited tasks: wrong sum");
  return took;
}

inline asio::awaitable<void> asio_pinger(int n, long& counter) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < n; ++i) {
    ++counter;
    co_await asio::post(ex, asio::use_awaitable);
  }
}

/// (b) Asio: two coroutines yielding through post(use_awaitable).
inline double asio_switch(int n) {
  asio::io_context ctx(1);
  long counter = 0;
  auto t0 = Clock::now();
  asio::co_spawn(ctx, asio_pinger(n, counter), asio::detached);
  asio::co_spawn(ctx, asio_pinger(n, counter), asio::detached);
  ctx.run();
  double took = seconds_since(t0);
  check(counter == 2L * n, "asio switch: wrong count");
  return took;
}

/// (c) Asio: N steady_timers (expiries 0..N-1 ns ahead), async_wait each.
inline double asio_timers(int n) {
  asio::io_context ctx(1);
  int fired = 0;
  std::vector<asio::steady_timer> timers;
  timers.reserve(static_cast<std::size_t>(n));
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    timers.emplace_back(ctx, std::chrono::nanoseconds(i));
    timers.back().async_wait([&fired](const boost::system::error_code&) { ++fired; });
  }
  ctx.run();
  double took = seconds_since(t0);
  check(fired == n, "asio timers: wrong count");
  return took;
}

/// (d) Asio: another thread post()s N handlers to a running io_context.
inline double asio_threadsafe(int n) {
  asio::io_context ctx(1);
  auto guard = asio::make_work_guard(ctx);
  int ran = 0;
  auto t0 = Clock::now();
  std::thread producer([&] {
    for (int i = 0; i < n; ++i) {
      asio::post(ctx, [&ran, &guard, n] {
        if (++ran == n) guard.reset();
      });
    }
  });
  ctx.run();
  double took = seconds_since(t0);
  producer.join();
  check(ran == n, "asio threadsafe: wrong count");
  return took;
}

}  // namespace bench_aio
