#pragma once
// The futures workloads, written once for every contender, shared by bench_thread_pool.cpp
// (Google Benchmark) and compare_ratios.cpp (one quick run, a table of ratios).
//
// Every contender gets the same 2 worker slots:
//   concur  futures::ThreadPoolExecutor(2)          2 worker threads; the main thread submits
//                                                    and blocks in result()
//   TBB     tbb::task_arena(2) + task_group/parallel_for
//                                                    2 slots; by TBB's design the thread that
//                                                    calls execute()/wait() fills one of them
//                                                    (the waiter works), so 1 TBB worker + main
//   Asio    boost::asio::thread_pool(2) + post + std::promise/std::future per task
//                                                    2 worker threads; main submits and blocks
//
// Each workload returns a checksum that the caller checks, so nothing can be optimised away.
#include <sys/resource.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <numeric>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <concur/futures.hpp>

namespace bench {

namespace cf = concur::futures;

inline constexpr int kWorkers = 2;
/// fork-join fib: below this n the recursion is serial (the same cutoff for every contender),
/// so the benchmark measures the scheduler, not the function call overhead.
inline constexpr int kFibCutoff = 12;

// ---- the task bodies ------------------------------------------------------------------------

inline int tiny(int x) noexcept { return x + 1; }
inline long square(int x) noexcept { return static_cast<long>(x) * x; }
inline long fib_serial(int n) noexcept { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

/// sum of tiny(i) for i in [0, n): the checksum every tiny-task workload must return.
inline long tiny_checksum(int n) noexcept { return static_cast<long>(n) * (n + 1) / 2; }
/// sum of i*i for i in [0, n).
inline long square_checksum(int n) noexcept {
  const long m = n;
  return (m - 1) * m * (2 * m - 1) / 6;
}

inline std::vector<int> iota_ints(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// ---- (a) n tiny tasks submitted from the main thread, a future each, every result awaited ---

inline long concur_tiny_tasks(cf::ThreadPoolExecutor& pool, int n) {
  std::vector<cf::Future<int>> fs;
  fs.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) fs.push_back(pool.submit(tiny, i));
  long sum = 0;
  for (auto& f : fs) sum += f.result();
  return sum;
}

/// TBB has no futures: each task writes its result into a slot; task_group::wait awaits all.
inline long tbb_tiny_tasks(tbb::task_arena& arena, int n) {
  std::vector<int> out(static_cast<std::size_t>(n));
  arena.execute([&] {
    tbb::task_group tg;
    for (int i = 0; i < n; ++i) tg.run([&out, i] { out[static_cast<std::size_t>(i)] = tiny(i); });
    tg.wait();
  });
  return std::accumulate(out.begin(), out.end(), 0L);
}

inline long asio_tiny_tasks(boost::asio::thread_pool& pool, int n) {
  std::vector<std::future<int>> fs;
  fs.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    std::promise<int> p;
    fs.push_back(p.get_future());
    boost::asio::post(pool, [p = std::move(p), i]() mutable { p.set_value(tiny(i)); });
  }
  long sum = 0;
  for (auto& f : fs) sum += f.get();
  return sum;
}

// ---- (b) map a trivial function over n ints ------------------------------------------------

/// Python's default chunksize is 1; for a trivial function one chunk per worker-and-a-bit is
/// what makes map cheap. The benchmark uses n / (2 * 8): 16 chunks, 8 per worker.
inline std::size_t map_chunksize(std::size_t n) { return n / (kWorkers * 8) == 0 ? 1 : n / (kWorkers * 8); }

inline long concur_map(cf::ThreadPoolExecutor& pool, const std::vector<int>& xs, std::size_t chunksize) {
  long sum = 0;
  for (long r : pool.map(square, xs, {.chunksize = chunksize})) sum += r;
  return sum;
}

inline long tbb_map(tbb::task_arena& arena, const std::vector<int>& xs) {
  std::vector<long> out(xs.size());
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, xs.size()), [&](const tbb::blocked_range<std::size_t>& r) {
      for (std::size_t i = r.begin(); i != r.end(); ++i) out[i] = square(xs[i]);
    });
  });
  return std::accumulate(out.begin(), out.end(), 0L);
}

// ---- (c) fork-join fib with nested submits -------------------------------------------------

/// fib(n-1) is submitted to the pool, fib(n-2) computed here, then the future is awaited:
/// on a worker, result() runs queued tasks meanwhile (help-while-waiting), as TBB's wait does.
inline long concur_fib_rec(cf::ThreadPoolExecutor& pool, int n, int cutoff) {
  if (n <= cutoff) return fib_serial(n);
  auto f = pool.submit([&pool, n, cutoff] { return concur_fib_rec(pool, n - 1, cutoff); });
  const long b = concur_fib_rec(pool, n - 2, cutoff);
  return f.result() + b;
}
inline long concur_fib(cf::ThreadPoolExecutor& pool, int n, int cutoff) {
  return pool.submit([&pool, n, cutoff] { return concur_fib_rec(pool, n, cutoff); }).result();
}

inline long tbb_fib_rec(int n, int cutoff) {
  if (n <= cutoff) return fib_serial(n);
  long a = 0;
  tbb::task_group tg;
  tg.run([&a, n, cutoff] { a = tbb_fib_rec(n - 1, cutoff); });
  const long b = tbb_fib_rec(n - 2, cutoff);
  tg.wait();
  return a + b;
}
inline long tbb_fib(tbb::task_arena& arena, int n, int cutoff) {
  long r = 0;
  arena.execute([&] { r = tbb_fib_rec(n, cutoff); });
  return r;
}

// ---- (d) CPU used by an idle pool ----------------------------------------------------------

/// User + system CPU time of the whole process so far, in milliseconds.
inline double process_cpu_ms() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e3 + static_cast<double>(tv.tv_usec) / 1e3;
  };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

/// CPU milliseconds the process burns while the main thread sleeps for `idle`.
inline double cpu_ms_while_sleeping(std::chrono::milliseconds idle) {
  const double c0 = process_cpu_ms();
  std::this_thread::sleep_for(idle);
  return process_cpu_ms() - c0;
}

/// A fresh ThreadPoolExecutor(2) runs one task, then sits idle.
inline double concur_idle_cpu_ms(std::chrono::milliseconds idle) {
  cf::ThreadPoolExecutor pool(kWorkers);
  if (pool.submit(tiny, 1).result() != 2) return -1;
  return cpu_ms_while_sleeping(idle);
}

/// A fresh task_arena(2) runs one small parallel_for, then sits idle. (TBB's worker threads
/// belong to a process-wide market, not to the arena; they spin a while before sleeping.)
inline double tbb_idle_cpu_ms(std::chrono::milliseconds idle) {
  tbb::task_arena arena(kWorkers);
  std::vector<long> out(1024);
  arena.execute([&] {
    tbb::parallel_for(std::size_t{0}, out.size(), [&](std::size_t i) { out[i] = square(static_cast<int>(i)); });
  });
  if (out[3] != 9) return -1;
  return cpu_ms_while_sleeping(idle);
}

/// A fresh asio::thread_pool(2) runs one task, then sits idle.
inline double asio_idle_cpu_ms(std::chrono::milliseconds idle) {
  boost::asio::thread_pool pool(kWorkers);
  std::promise<int> p;
  auto f = p.get_future();
  boost::asio::post(pool, [&p] { p.set_value(tiny(1)); });
  if (f.get() != 2) return -1;
  const double ms = cpu_ms_while_sleeping(idle);
  pool.join();
  return ms;
}

}  // namespace bench
