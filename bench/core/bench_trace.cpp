// What tracing costs: ThreadPoolExecutor(2) submitting no-op tasks (and asyncio tasks on one
// loop), with concur::trace compiled in but off, and on. Prints ns per task for both and the
// ratio. Rounds alternate off/on; the best round of each counts (a 2-core machine is noisy).
// Then the cost of one instrumented spot (a trace::Span) with tracing off and on.
//
//   bench_trace [tasks-per-round=200000] [rounds=5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "concur/asyncio.hpp"
#include "concur/core/trace.hpp"
#include "concur/futures.hpp"

namespace aio = concur::asyncio;
namespace cf = concur::futures;
namespace trace = concur::trace;

namespace {

double pool_round(int tasks) {
  cf::ThreadPoolExecutor pool(2);
  std::vector<cf::Future<void>> fs;
  fs.reserve(static_cast<std::size_t>(tasks));
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < tasks; ++i) fs.push_back(pool.submit([] {}));
  for (auto& f : fs) f.result();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / tasks;
}

aio::Coro<void> noop() { co_return; }

double asyncio_round(int tasks) {
  auto amain = [tasks]() -> aio::Coro<void> {
    std::vector<aio::Task<void>> ts;
    ts.reserve(static_cast<std::size_t>(tasks));
    for (int i = 0; i < tasks; ++i) ts.push_back(aio::create_task(noop()));
    for (auto& t : ts) co_await t;
  };
  auto t0 = std::chrono::steady_clock::now();
  aio::run(amain());
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / tasks;
}

void compare(const char* what, double (*round)(int), int tasks, int rounds) {
  double off = 1e300, on = 1e300;
  for (int r = 0; r < rounds; ++r) {
    trace::disable();
    off = std::min(off, round(tasks));
    trace::enable();
    on = std::min(on, round(tasks));
    trace::disable();
    trace::clear();
  }
  std::printf("%-44s off %7.1f ns/task   on %7.1f ns/task   on/off %.2fx (+%.1f ns)\n", what, off, on, on / off,
              on - off);
}

/// What an instrumented spot costs while tracing is off: a Span's check, nothing else.
void span_cost() {
  constexpr int n = 50'000'000;
  for (bool on : {false, true}) {
    if (on) trace::enable();
    const int iters = on ? n / 50 : n;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) {
      trace::Span s("bench", 0, 0);
      asm volatile("" ::: "memory");
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / iters;
    trace::disable();
    trace::clear();
    std::printf("%-44s %7.2f ns\n", on ? "one trace::Span, tracing on" : "one trace::Span, tracing off", ns);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int tasks = argc > 1 ? std::atoi(argv[1]) : 200'000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  compare("ThreadPoolExecutor(2).submit(no-op) + result", pool_round, tasks, rounds);
  compare("asyncio: create_task(no-op) + await", asyncio_round, tasks, rounds);
  span_cost();
}
