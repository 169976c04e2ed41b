// One quick run of the futures workloads (see workloads.hpp) for every contender, printed as a
// table with the ratios concur / TBB and concur / Asio (below 1.00: concur is faster).
//
//   ./build/release/bench/bench_futures_ratios [--tasks N] [--map-items N] [--fib N] [--reps R] [--idle-ms MS]
//   [--machine]
//
// Each timing is the best of R repetitions (default 3), which keeps the table readable on a
// busy machine. The idle-CPU row runs first, before TBB has started any worker thread.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "workloads.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int tasks = 200'000;
  int map_items = 1'000'000;
  int fib = 30;
  int reps = 3;
  int idle_ms = 1000;
  bool machine = false;  // also print "RESULT <key> <value>" lines (bench/compare/run_compare.sh reads them)
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](int& out) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      out = std::atoi(argv[++i]);
    };
    if (!std::strcmp(argv[i], "--tasks"))
      next(a.tasks);
    else if (!std::strcmp(argv[i], "--map-items"))
      next(a.map_items);
    else if (!std::strcmp(argv[i], "--fib"))
      next(a.fib);
    else if (!std::strcmp(argv[i], "--reps"))
      next(a.reps);
    else if (!std::strcmp(argv[i], "--idle-ms"))
      next(a.idle_ms);
    else if (!std::strcmp(argv[i], "--machine"))
      a.machine = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--tasks N] [--map-items N] [--fib N] [--reps R] [--idle-ms MS] [--machine]\n"
                   "Runs tiny tasks, map, fork-join fib and idle-CPU once per contender "
                   "(concur, TBB, Boost.Asio; 2 workers each) and prints ratios.\n",
                   argv[0]);
      std::exit(std::strcmp(argv[i], "--help") && std::strcmp(argv[i], "-h") ? 2 : 0);
    }
  }
  if (a.reps < 1) a.reps = 1;
  return a;
}

/// Best wall time of `reps` runs of `fn`, in ns; aborts if a checksum is wrong.
double best_ns(int reps, long want, const char* what, const std::function<long()>& fn) {
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    const long got = fn();
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    if (got != want) {
      std::fprintf(stderr, "%s: wrong checksum %ld (want %ld)\n", what, got, want);
      std::exit(1);
    }
    if (ns < best) best = ns;
  }
  return best;
}

void rule() { std::puts(std::string(108, '-').c_str()); }

std::string ratio(double a, std::optional<double> b) {
  if (!b || *b <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", a / *b);
  return buf;
}

std::string num(std::optional<double> v, const char* fmt) {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, *v);
  return buf;
}

struct Row {
  std::string workload, unit;
  double concur;
  std::optional<double> tbb, asio;
  const char* fmt = "%.1f";
};

void print(const Row& r) {
  std::printf("%-40s %-8s %10s %12s %12s %11s %11s\n", r.workload.c_str(), r.unit.c_str(), num(r.concur, r.fmt).c_str(),
              num(r.tbb, r.fmt).c_str(), num(r.asio, r.fmt).c_str(), ratio(r.concur, r.tbb).c_str(),
              ratio(r.concur, r.asio).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  using bench::kWorkers;
  const auto idle = std::chrono::milliseconds(a.idle_ms);

  std::fprintf(stderr, "bench_futures_ratios: %d workers each, best of %d; measuring...\n", kWorkers, a.reps);

  // (d) first: nothing else has run yet.
  const double idle_concur = bench::concur_idle_cpu_ms(idle);
  const double idle_asio = bench::asio_idle_cpu_ms(idle);
  const double idle_tbb = bench::tbb_idle_cpu_ms(idle);

  // (a) tiny tasks
  double tiny_concur = 0, tiny_tbb = 0, tiny_asio = 0;
  {
    const long want = bench::tiny_checksum(a.tasks);
    {
      bench::cf::ThreadPoolExecutor pool(kWorkers);
      tiny_concur = best_ns(a.reps, want, "concur tiny", [&] { return bench::concur_tiny_tasks(pool, a.tasks); });
    }
    {
      tbb::task_arena arena(kWorkers);
      tiny_tbb = best_ns(a.reps, want, "tbb tiny", [&] { return bench::tbb_tiny_tasks(arena, a.tasks); });
    }
    {
      boost::asio::thread_pool pool(kWorkers);
      tiny_asio = best_ns(a.reps, want, "asio tiny", [&] { return bench::asio_tiny_tasks(pool, a.tasks); });
    }
  }

  // (b) map
  double map_concur = 0, map_tbb = 0;
  const auto xs = bench::iota_ints(a.map_items);
  const std::size_t chunk = bench::map_chunksize(xs.size());
  {
    const long want = bench::square_checksum(a.map_items);
    {
      bench::cf::ThreadPoolExecutor pool(kWorkers);
      map_concur = best_ns(a.reps, want, "concur map", [&] { return bench::concur_map(pool, xs, chunk); });
    }
    {
      tbb::task_arena arena(kWorkers);
      map_tbb = best_ns(a.reps, want, "tbb map", [&] { return bench::tbb_map(arena, xs); });
    }
  }

  // (c) fork-join fib
  double fib_concur = 0, fib_tbb = 0, fib_serial = 0;
  {
    volatile int vn = a.fib;  // keep n a run-time value
    const int n = vn;
    const long want = bench::fib_serial(n);
    fib_serial = best_ns(a.reps, want, "serial fib", [&] { return bench::fib_serial(n); });
    {
      bench::cf::ThreadPoolExecutor pool(kWorkers);
      fib_concur = best_ns(a.reps, want, "concur fib", [&] { return bench::concur_fib(pool, n, bench::kFibCutoff); });
    }
    {
      tbb::task_arena arena(kWorkers);
      fib_tbb = best_ns(a.reps, want, "tbb fib", [&] { return bench::tbb_fib(arena, n, bench::kFibCutoff); });
    }
  }

  char title[128];
  rule();
  std::printf("concur futures vs TBB vs Boost.Asio   (%d workers each; time = best of %d; ratio < 1: concur faster)\n",
              kWorkers, a.reps);
  rule();
  std::printf("%-40s %-8s %10s %12s %12s %11s %11s\n", "workload", "unit", "concur", "TBB", "Asio", "concur/TBB",
              "concur/Asio");
  rule();
  std::snprintf(title, sizeof title, "(a) %d tiny tasks, future each", a.tasks);
  print({title, "ns/task", tiny_concur / a.tasks, tiny_tbb / a.tasks, tiny_asio / a.tasks});
  std::snprintf(title, sizeof title, "(b) map x*x, %d items, chunk %zu", a.map_items, chunk);
  print({title, "ns/item", map_concur / a.map_items, map_tbb / a.map_items, std::nullopt, "%.2f"});
  std::snprintf(title, sizeof title, "(c) fib(%d) fork-join, cutoff %d", a.fib, bench::kFibCutoff);
  print({title, "ms", fib_concur / 1e6, fib_tbb / 1e6, std::nullopt, "%.2f"});
  std::snprintf(title, sizeof title, "(d) idle pool, CPU during %d ms", a.idle_ms);
  {
    // Ratios of near-zero CPU times mean nothing; print the values only.
    std::printf("%-40s %-8s %10.2f %12.2f %12.2f %11s %11s\n", title, "CPU ms", idle_concur, idle_tbb, idle_asio, "-",
                "-");
  }
  rule();
  std::printf("fib(%d) serial: %.2f ms -> speed-up on %d workers: concur %.2fx, TBB %.2fx\n", a.fib, fib_serial / 1e6,
              kWorkers, fib_serial / fib_concur, fib_serial / fib_tbb);
  std::printf(
      "notes: TBB tasks have no futures (results go to slots); TBB's arena counts the waiting main thread\n"
      "       as one of its 2 slots; Asio gets a std::promise/std::future per task; map has no Asio peer.\n");
  if (a.machine) {
    std::printf("RESULT concur_tiny_ns_per_task %.1f\n", tiny_concur / a.tasks);
    std::printf("RESULT tbb_tiny_ns_per_task %.1f\n", tiny_tbb / a.tasks);
    std::printf("RESULT asio_tiny_ns_per_task %.1f\n", tiny_asio / a.tasks);
    std::printf("RESULT concur_map_ns_per_item %.2f\n", map_concur / a.map_items);
    std::printf("RESULT tbb_map_ns_per_item %.2f\n", map_tbb / a.map_items);
    std::printf("RESULT concur_fib_ms %.2f\n", fib_concur / 1e6);
    std::printf("RESULT tbb_fib_ms %.2f\n", fib_tbb / 1e6);
    std::printf("RESULT concur_idle_cpu_ms %.2f\n", idle_concur);
  }
  return 0;
}
