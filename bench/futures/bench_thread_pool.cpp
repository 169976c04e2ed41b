// concur::futures::ThreadPoolExecutor against TBB and Boost.Asio, same run, same 2 workers.
//
//   (a) Tiny/*       1e6 tiny tasks submitted from the main thread, a future each (TBB: none),
//                    every result awaited                                 -> time_per_task
//   (b) Map/*        map x*x over 1e6 ints, chunksize 1e6/16 (TBB: parallel_for) -> time_per_item
//   (c) Fib/*        fork-join fib(30) with nested submits, serial below n <= 12 -> time
//   (d) IdleCpu/*    CPU ms the process burns during 1 s with an idle 2-worker pool (goal 0)
//
// Run:  ./build/release/bench/bench_futures [--benchmark_filter=Tiny]
// Notes on fairness are in workloads.hpp. The idle-CPU cases run first, before any TBB worker
// of an earlier case could still be spinning.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "workloads.hpp"
#include <benchmark/benchmark.h>

namespace {

using namespace std::chrono_literals;

constexpr int kTinyTasks = 1'000'000;
constexpr int kMapItems = 1'000'000;
constexpr int kFibN = 30;

void check(long got, long want, const char* what) {
  if (got != want) {
    std::fprintf(stderr, "%s: wrong checksum %ld (want %ld)\n", what, got, want);
    std::abort();
  }
}

/// Time per item, from benchmark's own per-iteration time: (items * iterations / time) inverted,
/// in seconds, which the console prints with an SI prefix ("245.3ns").
void per_item_counter(benchmark::State& state, const char* name, long items_per_iteration) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * items_per_iteration);
  state.counters[name] =
      benchmark::Counter(static_cast<double>(items_per_iteration),
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// ---- (d) idle CPU ---------------------------------------------------------------------------

template <double (*Measure)(std::chrono::milliseconds)>
void IdleCpu(benchmark::State& state) {
  double ms = 0;
  for (auto _ : state) ms = Measure(1000ms);
  state.counters["idle_cpu_ms"] = ms;
}
BENCHMARK(IdleCpu<bench::concur_idle_cpu_ms>)
    ->Name("IdleCpu/concur")
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(IdleCpu<bench::asio_idle_cpu_ms>)
    ->Name("IdleCpu/asio")
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(IdleCpu<bench::tbb_idle_cpu_ms>)
    ->Name("IdleCpu/tbb")
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- (a) tiny tasks -------------------------------------------------------------------------

void Tiny_concur(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  bench::cf::ThreadPoolExecutor pool(bench::kWorkers);
  for (auto _ : state) check(bench::concur_tiny_tasks(pool, n), bench::tiny_checksum(n), "concur tiny");
  per_item_counter(state, "time_per_task", n);
}
void Tiny_tbb(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  tbb::task_arena arena(bench::kWorkers);
  for (auto _ : state) check(bench::tbb_tiny_tasks(arena, n), bench::tiny_checksum(n), "tbb tiny");
  per_item_counter(state, "time_per_task", n);
}
void Tiny_asio(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  boost::asio::thread_pool pool(bench::kWorkers);
  for (auto _ : state) check(bench::asio_tiny_tasks(pool, n), bench::tiny_checksum(n), "asio tiny");
  per_item_counter(state, "time_per_task", n);
}
BENCHMARK(Tiny_concur)
    ->Name("Tiny/concur_submit_result")
    ->Arg(kTinyTasks)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(Tiny_tbb)->Name("Tiny/tbb_task_group")->Arg(kTinyTasks)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Tiny_asio)->Name("Tiny/asio_post_promise")->Arg(kTinyTasks)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- (b) map --------------------------------------------------------------------------------

void Map_concur(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto xs = bench::iota_ints(n);
  const std::size_t chunk = bench::map_chunksize(xs.size());
  bench::cf::ThreadPoolExecutor pool(bench::kWorkers);
  for (auto _ : state) check(bench::concur_map(pool, xs, chunk), bench::square_checksum(n), "concur map");
  state.counters["chunksize"] = static_cast<double>(chunk);
  per_item_counter(state, "time_per_item", n);
}
void Map_tbb(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto xs = bench::iota_ints(n);
  tbb::task_arena arena(bench::kWorkers);
  for (auto _ : state) check(bench::tbb_map(arena, xs), bench::square_checksum(n), "tbb map");
  per_item_counter(state, "time_per_item", n);
}
BENCHMARK(Map_concur)->Name("Map/concur_map_chunked")->Arg(kMapItems)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Map_tbb)->Name("Map/tbb_parallel_for")->Arg(kMapItems)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- (c) fork-join fib ----------------------------------------------------------------------

void Fib_serial(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(bench::fib_serial(n));
}
void Fib_concur(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  bench::cf::ThreadPoolExecutor pool(bench::kWorkers);
  const long want = bench::fib_serial(n);
  for (auto _ : state) check(bench::concur_fib(pool, n, bench::kFibCutoff), want, "concur fib");
}
void Fib_tbb(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  tbb::task_arena arena(bench::kWorkers);
  const long want = bench::fib_serial(n);
  for (auto _ : state) check(bench::tbb_fib(arena, n, bench::kFibCutoff), want, "tbb fib");
}
BENCHMARK(Fib_serial)->Name("Fib/serial")->Arg(kFibN)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Fib_concur)->Name("Fib/concur_nested_submit")->Arg(kFibN)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Fib_tbb)->Name("Fib/tbb_task_group")->Arg(kFibN)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
