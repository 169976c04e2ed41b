// Google Benchmark: the asyncio workloads (workloads.hpp) for concur.asyncio and Boost.Asio.
// Times are manual (the whole workload, loop start-up included); items/s gives the per-op rate.
//
//   ./build/release/bench/bench_asyncio [--benchmark_filter=Timers]
#include "workloads.hpp"
#include <benchmark/benchmark.h>

namespace {

template <double (*F)(int)>
void run(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) state.SetIterationTime(F(n));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// (b) counts switches: two coroutines, n yields each.
template <double (*F)(int)>
void run_switch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) state.SetIterationTime(F(n));
  state.SetItemsProcessed(state.iterations() * state.range(0) * 2);
}

}  // namespace

// (a) create_task + await of 1e6 trivial tasks.
BENCHMARK(run<bench_aio::concur_tasks>)
    ->Name("Tasks/concur")
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(run<bench_aio::asio_tasks>)
    ->Name("Tasks/asio_co_spawn_detached")
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(run<bench_aio::concur_tasks_awaited>)
    ->Name("TasksOneByOne/concur")
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(run<bench_aio::asio_tasks_awaited>)
    ->Name("TasksOneByOne/asio_co_spawn_use_awaitable")
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
// (b) two coroutines switching through sleep(0) / post.
BENCHMARK(run_switch<bench_aio::concur_switch>)
    ->Name("Switch/concur_sleep0")
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(run_switch<bench_aio::asio_switch>)
    ->Name("Switch/asio_post")
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
// (c) 1e5 timers scheduled and fired.
BENCHMARK(run<bench_aio::concur_timers>)
    ->Name("Timers/concur_call_later")
    ->Arg(100'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(run<bench_aio::asio_timers>)
    ->Name("Timers/asio_steady_timer")
    ->Arg(100'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
// (d) call_soon_threadsafe throughput from another thread.
BENCHMARK(run<bench_aio::concur_threadsafe>)
    ->Name("Threadsafe/concur_call_soon_threadsafe")
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(run<bench_aio::asio_threadsafe>)
    ->Name("Threadsafe/asio_post")
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
