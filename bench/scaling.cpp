// Scaling from 1 to N workers, every contender in the same run (for machines with many cores;
// the 2-core CI machine runs it only as a smoke test).
//
//   (a) fib      fork-join fib(n) with nested submits, serial below 12
//                concur ThreadPoolExecutor(w)  vs  TBB task_arena(w) + task_group
//   (b) burn     map of a CPU-bound function (~0.3 ms each) over 64*w_max items
//                concur ThreadPoolExecutor(w).map  vs  TBB parallel_for  vs  Asio thread_pool(w)
//   (c) tiny     200,000 tiny tasks submitted from one thread, a future each, all awaited
//                concur  vs  TBB task_group (no futures)  vs  Asio thread_pool + std::promise
//   (d) loops    w event loops, one per thread, each creating and awaiting 200,000 tasks
//                concur EventLoop  vs  Asio io_context (co_spawn)
//   (e) procs    multiprocessing Pool(w).map of the same CPU-bound function, 64*w_max items
//
// For each w the table gives wall time and the speed-up over w = 1 of the same contender.
//
//   bench_scaling [--workers 1,2,4,8,16] [--fib N] [--reps R] [--no-procs]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "asyncio/workloads.hpp"
#include "futures/workloads.hpp"

#include <concur/multiprocessing.hpp>

namespace {

using Clock = std::chrono::steady_clock;
namespace cf = concur::futures;
namespace mp = concur::multiprocessing;

/// About 0.3 ms of integer work that the compiler cannot fold away.
long burn(int seed) {
  std::uint64_t x = static_cast<std::uint64_t>(seed) * 2654435761u + 1;
  long s = 0;
  for (int k = 0; k < 400'000; ++k) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s += static_cast<long>(x & 0xff);
  }
  return s;
}

/// Sum of pool.map(burn, seeds): the same for a thread pool and a process pool.
template <class Pool>
long map_sum(Pool& pool, const std::vector<int>& seeds) {
  long s = 0;
  for (long r : pool.map(burn, seeds)) s += r;
  return s;
}

struct Args {
  std::vector<int> workers{1, 2, 4, 8, 16};
  int fib = 32;
  int reps = 3;
  int tiny = 200'000;
  int loop_tasks = 200'000;
  bool procs = true;
};

double best_s(int reps, const std::function<long()>& fn, long& checksum) {
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    long c = fn();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r > 0 && c != checksum) {
      std::fprintf(stderr, "checksum changed between repetitions\n");
      std::exit(1);
    }
    checksum = c;
    if (s < best) best = s;
  }
  return best;
}

/// Results: workload -> contender -> workers -> seconds.
std::map<std::string, std::map<std::string, std::map<int, double>>> g_results;
std::vector<std::string> g_order;

void record(const std::string& workload, const std::string& who, int w, double s) {
  if (g_results.find(workload) == g_results.end()) g_order.push_back(workload);
  g_results[workload][who][w] = s;
}

void check_same(const char* what, long a, long b) {
  if (a != b) {
    std::fprintf(stderr, "%s: checksums differ (%ld vs %ld)\n", what, a, b);
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    std::string arg = argv[i];
    if (arg == "--workers") {
      a.workers.clear();
      std::string list = next();
      for (std::size_t p = 0; p < list.size();) {
        std::size_t q = list.find(',', p);
        a.workers.push_back(std::atoi(list.substr(p, q - p).c_str()));
        p = q == std::string::npos ? list.size() : q + 1;
      }
    } else if (arg == "--fib") {
      a.fib = std::atoi(next().c_str());
    } else if (arg == "--reps") {
      a.reps = std::atoi(next().c_str());
    } else if (arg == "--tiny") {
      a.tiny = std::atoi(next().c_str());
    } else if (arg == "--loop-tasks") {
      a.loop_tasks = std::atoi(next().c_str());
    } else if (arg == "--no-procs") {
      a.procs = false;
    } else {
      std::printf("usage: %s [--workers 1,2,4] [--fib N] [--reps R] [--tiny N] [--loop-tasks N] [--no-procs]\n",
                  argv[0]);
      return arg == "--help" ? 0 : 2;
    }
  }
  int wmax = 1;
  for (int w : a.workers) wmax = std::max(wmax, w);
  const int burn_items = 64 * wmax;
  std::vector<int> seeds(static_cast<std::size_t>(burn_items));
  for (int i = 0; i < burn_items; ++i) seeds[static_cast<std::size_t>(i)] = i;
  std::fprintf(stderr, "bench_scaling: %u hardware threads, workers", std::thread::hardware_concurrency());
  for (int w : a.workers) std::fprintf(stderr, " %d", w);
  std::fprintf(stderr, "; best of %d\n", a.reps);

  long fib_sum = 0, burn_sum = 0, tiny_sum = 0;
  for (int w : a.workers) {
    std::fprintf(stderr, "  %d workers...\n", w);
    long c = 0;
    // (a) fib
    {
      cf::ThreadPoolExecutor pool(w);
      record("fib", "concur", w,
             best_s(
                 a.reps, [&] { return bench::concur_fib(pool, a.fib, bench::kFibCutoff); }, c));
      fib_sum = c;
    }
    {
      tbb::task_arena arena(w);
      record("fib", "TBB", w,
             best_s(
                 a.reps, [&] { return bench::tbb_fib(arena, a.fib, bench::kFibCutoff); }, c));
      check_same("fib", c, fib_sum);
    }
    // (b) burn
    {
      cf::ThreadPoolExecutor pool(w);
      record("burn", "concur", w,
             best_s(
                 a.reps, [&] { return map_sum(pool, seeds); }, c));
      burn_sum = c;
    }
    {
      tbb::task_arena arena(w);
      record("burn", "TBB", w,
             best_s(
                 a.reps,
                 [&] {
                   std::vector<long> out(seeds.size());
                   arena.execute([&] {
                     tbb::parallel_for(std::size_t{0}, seeds.size(), [&](std::size_t i) { out[i] = burn(seeds[i]); });
                   });
                   return std::accumulate(out.begin(), out.end(), 0L);
                 },
                 c));
      check_same("burn", c, burn_sum);
    }
    {
      boost::asio::thread_pool pool(static_cast<std::size_t>(w));
      record("burn", "Asio", w,
             best_s(
                 a.reps,
                 [&] {
                   std::vector<std::future<long>> fs;
                   for (int s : seeds) {
                     std::promise<long> p;
                     fs.push_back(p.get_future());
                     boost::asio::post(pool, [p = std::move(p), s]() mutable { p.set_value(burn(s)); });
                   }
                   long sum = 0;
                   for (auto& f : fs) sum += f.get();
                   return sum;
                 },
                 c));
      check_same("burn", c, burn_sum);
    }
    // (c) tiny
    {
      cf::ThreadPoolExecutor pool(w);
      record("tiny", "concur", w,
             best_s(
                 a.reps, [&] { return bench::concur_tiny_tasks(pool, a.tiny); }, c));
      tiny_sum = c;
    }
    {
      tbb::task_arena arena(w);
      record("tiny", "TBB", w,
             best_s(
                 a.reps, [&] { return bench::tbb_tiny_tasks(arena, a.tiny); }, c));
      check_same("tiny", c, tiny_sum);
    }
    {
      boost::asio::thread_pool pool(static_cast<std::size_t>(w));
      record("tiny", "Asio", w,
             best_s(
                 a.reps, [&] { return bench::asio_tiny_tasks(pool, a.tiny); }, c));
      check_same("tiny", c, tiny_sum);
    }
    // (d) loops: w independent loops on w threads, wall time until all are done
    auto loops = [&](auto one) {
      return best_s(
          a.reps,
          [&] {
            std::vector<std::thread> ts;
            for (int i = 0; i < w; ++i) ts.emplace_back([&] { one(a.loop_tasks); });
            for (auto& t : ts) t.join();
            return 0L;
          },
          c);
    };
    record("loops", "concur", w, loops([](int n) { bench_aio::concur_tasks(n); }));
    record("loops", "Asio", w, loops([](int n) { bench_aio::asio_tasks(n); }));
    // (e) processes
    if (a.procs) {
      mp::Pool pool(w);
      pool.map(burn, std::vector<int>(static_cast<std::size_t>(w), 1), 1);  // start every worker
      record("procs", "concur Pool", w,
             best_s(
                 a.reps, [&] { return map_sum(pool, seeds); }, c));
      check_same("procs", c, burn_sum);
    }
  }

  std::printf("Scaling on %u hardware threads: wall time (best of %d) and speed-up over 1 worker\n",
              std::thread::hardware_concurrency(), a.reps);
  std::printf(
      "(loops: w loops each doing the same work, so perfect scaling keeps the time flat;\n"
      " its speed-up column is w * t(1) / t(w), the aggregate throughput gain)\n\n");
  std::printf("%-8s %-12s", "workload", "contender");
  for (int w : a.workers) std::printf(" %16s", (std::to_string(w) + " workers").c_str());
  std::printf("\n");
  for (const auto& wl : g_order) {
    for (const auto& [who, by_w] : g_results[wl]) {
      std::printf("%-8s %-12s", wl.c_str(), who.c_str());
      double t1 = by_w.count(1) ? by_w.at(1) : 0;
      for (int w : a.workers) {
        double t = by_w.at(w);
        double speedup = t1 > 0 ? (wl == "loops" ? w * t1 / t : t1 / t) : 0;
        char cell[64];
        std::snprintf(cell, sizeof cell, "%7.1fms %5.1fx", t * 1e3, speedup);
        std::printf(" %16s", cell);
      }
      std::printf("\n");
    }
  }
  return 0;
}
