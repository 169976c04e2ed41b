// One quick run of the asyncio workloads (workloads.hpp) for concur.asyncio and Boost.Asio,
// printed as a table of ns per operation and the ratio concur / Asio (below 1.00: concur is
// faster). Each figure is the best of R repetitions (default 3).
//
//   ./build/release/bench/bench_asyncio_ratios [--tasks N] [--switches N] [--timers N] [--posts N]
//   [--reps R] [--machine]
//
// --machine also prints "RESULT <key> <ns_per_op>" lines for bench/compare/run_compare.sh-style
// scripts. bench/compare/asyncio_bench.py prints the Python (asyncio, uvloop) side.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <string>

#include "workloads.hpp"

namespace {

struct Args {
  int tasks = 1'000'000;
  int switches = 1'000'000;  // per coroutine
  int timers = 100'000;
  int posts = 1'000'000;
  int reps = 3;
  bool machine = false;
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
    if (!std::strcmp(argv[i], "--tasks")) {
      next(a.tasks);
    } else if (!std::strcmp(argv[i], "--switches")) {
      next(a.switches);
    } else if (!std::strcmp(argv[i], "--timers")) {
      next(a.timers);
    } else if (!std::strcmp(argv[i], "--posts")) {
      next(a.posts);
    } else if (!std::strcmp(argv[i], "--reps")) {
      next(a.reps);
    } else if (!std::strcmp(argv[i], "--machine")) {
      a.machine = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--tasks N] [--switches N] [--timers N] [--posts N] [--reps R] [--machine]\n"
                   "Runs the asyncio workloads for concur and Boost.Asio and prints ns/op and ratios.\n",
                   argv[0]);
      std::exit(2);
    }
  }
  a.reps = std::max(1, a.reps);
  return a;
}

/// Best-of-R nanoseconds per op.
double best_ns(double (*f)(int), int n, double ops, int reps) {
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < reps; ++r) best = std::min(best, f(n));
  return best * 1e9 / ops;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args a = parse(argc, argv);
  struct Row {
    const char* key;
    std::string what;
    double (*concur)(int);
    double (*asio)(int);
    const char* asio_what;
    int n;
    double ops;
  };
  const Row rows[] = {
      {"tasks", "(a) create_task + await, " + std::to_string(a.tasks) + " tasks", bench_aio::concur_tasks,
       bench_aio::asio_tasks, "co_spawn detached", a.tasks, static_cast<double>(a.tasks)},
      {"tasks_one_by_one", "(a') co_await create_task(f()), one at a time", bench_aio::concur_tasks_awaited,
       bench_aio::asio_tasks_awaited, "co_await co_spawn(use_awaitable)", a.tasks, static_cast<double>(a.tasks)},
      {"switch", "(b) two coroutines, sleep(0) switch", bench_aio::concur_switch, bench_aio::asio_switch,
       "co_await post(use_awaitable)", a.switches, 2.0 * a.switches},
      {"timers", "(c) " + std::to_string(a.timers) + " timers scheduled + fired", bench_aio::concur_timers,
       bench_aio::asio_timers, "steady_timer async_wait", a.timers, static_cast<double>(a.timers)},
      {"threadsafe", "(d) call_soon_threadsafe from another thread", bench_aio::concur_threadsafe,
       bench_aio::asio_threadsafe, "post from another thread", a.posts, static_cast<double>(a.posts)},
  };
  std::printf("concur.asyncio vs Boost.Asio %d.%d.%d (C++20 coroutines), one loop thread, best of %d\n\n",
              BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100, a.reps);
  std::printf("%-48s %12s %12s %8s   %s\n", "workload", "concur ns/op", "Asio ns/op", "ratio", "Asio form");
  std::printf("%s\n", std::string(120, '-').c_str());
  for (const Row& r : rows) {
    double c = best_ns(r.concur, r.n, r.ops, a.reps);
    double s = best_ns(r.asio, r.n, r.ops, a.reps);
    std::printf("%-48s %12.1f %12.1f %7.2fx   %s\n", r.what.c_str(), c, s, c / s, r.asio_what);
    if (a.machine) {
      std::printf("RESULT concur_%s_ns %.2f\n", r.key, c);
      std::printf("RESULT asio_%s_ns %.2f\n", r.key, s);
    }
  }
  {
    concur::asyncio::EventLoop loop;
    std::printf("\n(concur backend: %s; ratio = concur / Asio, below 1.00x concur is faster)\n", loop.backend_name());
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_asyncio_ratios: %s\n", e.what());
  return 1;
}
