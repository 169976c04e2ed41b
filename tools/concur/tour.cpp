#include "tour.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "loopback_sites.hpp"  // examples/http: the seed's two sites as a loopback web app
#include "table.hpp"

#include <concur/asyncio.hpp>
#include <concur/futures.hpp>
#include <concur/http.hpp>
#include <concur/multiprocessing.hpp>
#include <concur/threading.hpp>

namespace concur_tool {

namespace cf = concur::futures;
namespace aio = concur::asyncio;
namespace http = concur::http;
namespace mp = concur::multiprocessing;

namespace {

// ---- the workloads --------------------------------------------------------------------------

// Python's ints never overflow and sum(i*i for i in range(5000000)) is about 4.2e19, beyond
// int64: accumulate in 128 bits so the answers are Python's, digit for digit.
__extension__ typedef unsigned __int128 u128;

/// The tutorial's `cpu_bound(num)`: `sum(i*i for i in range(num))`, one multiply-add per step.
/// The empty asm hides `i` from the optimiser, so GCC/Clang can neither replace the loop by
/// its closed form nor vectorise it: the work done is the work Python does, step by step.
u128 cpu_bound(long n) {
  u128 s = 0;
  for (long i = 0; i < n; ++i) {
    long v = i;
#if defined(__GNUC__)
    asm volatile("" : "+r"(v));
#endif
    s += static_cast<unsigned long>(v) * static_cast<unsigned long>(v);
  }
  return s;
}

/// A u128 as two halves: what crosses a process boundary (a trivially copyable aggregate).
struct Sum128 {
  unsigned long long hi, lo;
  [[nodiscard]] u128 value() const { return (static_cast<u128>(hi) << 64) | lo; }
};
Sum128 cpu_bound_parts(long n) {
  u128 s = cpu_bound(n);
  return Sum128{static_cast<unsigned long long>(s >> 64), static_cast<unsigned long long>(s)};
}

/// (n-1) n (2n-1) / 6: what cpu_bound(n) must return.
u128 cpu_bound_expected(long n) {
  if (n <= 0) return 0;
  const u128 m = static_cast<u128>(n);
  return (m - 1) * m * (2 * m - 1) / 6;
}

std::string to_string(u128 v) {
  if (v == 0) return "0";
  std::string s;
  while (v) {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  return s;
}

std::vector<long> cpu_numbers(const TourOptions& o) {
  std::vector<long> nums;
  for (int x = 0; x < o.cpu_count; ++x) nums.push_back(o.cpu_base + x);  // [5000000+x for x in range(20)]
  return nums;
}

/// Checksum of the CPU demo: every sum, checked against the closed form, then added up.
std::string cpu_checksum(const std::vector<long>& nums, const std::vector<u128>& sums) {
  u128 total = 0;
  for (std::size_t i = 0; i < nums.size(); ++i) {
    if (sums[i] != cpu_bound_expected(nums[i])) return "mismatch at n=" + std::to_string(nums[i]);
    total += sums[i];
  }
  return to_string(total);
}

// ---- verdict helpers ------------------------------------------------------------------------

const ModelResult& fastest_parallel(const std::vector<ModelResult>& rs) {
  auto it = std::max_element(rs.begin() + 1, rs.end(),
                             [](const ModelResult& a, const ModelResult& b) { return a.speedup < b.speedup; });
  return *it;
}

unsigned cpus() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace

// ---- demo 1: CPU-bound ----------------------------------------------------------------------

Demo cpu_bound_demo(const TourOptions& o) {
  Demo d;
  d.key = "cpu";
  d.title = "CPU-bound: sum(i*i for i in range(n)) for n in " + std::to_string(o.cpu_base) + ".." +
            std::to_string(o.cpu_base + o.cpu_count - 1);
  d.python = "with Pool() as pool: pool.map(cpu_bound, nums)   # CPython: processes, because of the GIL";
  const auto nums = cpu_numbers(o);

  d.models.push_back({"serial (for loop)", [nums] {
                        std::vector<u128> sums;
                        for (long n : nums) sums.push_back(cpu_bound(n));
                        return cpu_checksum(nums, sums);
                      }});
  d.warmup = [base = o.cpu_base] {
    volatile unsigned long sink = static_cast<unsigned long>(cpu_bound(base / 4));
    (void)sink;
  };
  const int dflt = cf::default_max_workers();
  auto threads = [nums](std::optional<int> workers) {
    return [nums, workers] {
      cf::ThreadPoolExecutor pool({.max_workers = workers});
      std::vector<u128> sums;
      for (u128 s : pool.map(cpu_bound, nums)) sums.push_back(s);
      return cpu_checksum(nums, sums);
    };
  };
  d.models.push_back({"ThreadPoolExecutor() [" + std::to_string(dflt) + " workers]", threads(std::nullopt)});
  d.models.push_back({"ThreadPoolExecutor(2)", threads(2)});
  // The seed's own answer for CPython: processes. Here they work too (a worker is this program
  // started again), at the cost of starting them and copying arguments and results.
  d.models.push_back({"multiprocessing.Pool() [" + std::to_string(mp::cpu_count()) + " processes]", [nums] {
                        mp::Pool pool;
                        std::vector<u128> sums;
                        for (const Sum128& s : pool.map(cpu_bound_parts, nums)) sums.push_back(s.value());
                        return cpu_checksum(nums, sums);
                      }});

  d.verdict = [](const std::vector<ModelResult>& rs) {
    const ModelResult& best = fastest_parallel(rs);
    const unsigned n = cpus();
    if (best.speedup >= 1.2) {
      return "CPU-bound: " + best.name + " was " + format_ratio(best.speedup) +
             " faster than serial - no GIL, so threads compute on " + std::to_string(n) +
             " cores at once (CPython threads would not speed this up; it needs processes).";
    }
    if (n <= 1) {
      return std::string("CPU-bound: only 1 CPU here, so threads cannot beat serial (") + format_ratio(best.speedup) +
             "); with more cores they would - there is no GIL.";
    }
    if (rs.front().cost.wall_s < 0.01) {
      return "CPU-bound: the work (" + format_seconds(rs.front().cost.wall_s) +
             " serially) is too small to pay for starting a pool; try a larger --cpu-base.";
    }
    // CPU time / wall time of the pool run: how many cores the threads actually got.
    const double cores_used = best.cost.wall_s > 0 ? best.cost.cpu_s / best.cost.wall_s : 0;
    char got[32];
    std::snprintf(got, sizeof got, "%.1f", cores_used);
    return "CPU-bound: threads reached only " + format_ratio(best.speedup) + " of serial speed: they got " + got +
           " of " + std::to_string(n) +
           " CPUs (CPU time / wall time) - the machine is busy; on idle cores they scale (there is no GIL).";
  };
  return d;
}

// ---- demo 2: I/O-bound ----------------------------------------------------------------------

/// download_site for the process model: runs in a worker process, with one Session there.
std::size_t download_in_process(std::string url) {
  static http::Session session;
  return session.get(url).content().size();
}

Demo io_bound_demo(const TourOptions& o) {
  Demo d;
  d.key = "io";
  const bool real = !o.urls.empty();
  d.title = "I/O-bound: " + std::to_string(o.io_jobs) + " HTTP downloads" +
            (real ? " of " + std::to_string(o.urls.size()) + " URL(s) given with --url"
                  : " from a loopback web server (answers after " + std::to_string(o.io_delay_ms) +
                        " ms, standing in for the internet; half the pages 10 KB, half tiny)");
  d.python =
      "with ThreadPoolExecutor(max_workers=" + std::to_string(o.io_workers) + ") as ex: ex.map(download_site, sites)";

  // The sites: the seed's two, alternating, served by concur's web server on a thread of its
  // own for as long as the demo lives (started by the warm-up, not timed); or the user's URLs.
  struct Sites {
    std::unique_ptr<LoopbackSites> net;
    std::vector<std::string> urls;
  };
  auto sites = std::make_shared<Sites>();
  d.warmup = [sites, o, real] {
    std::vector<std::string> pool = o.urls;
    if (!real) {
      sites->net = std::make_unique<LoopbackSites>(std::chrono::milliseconds(o.io_delay_ms));
      pool = {sites->net->jython(), sites->net->dice()};
    }
    sites->urls.clear();
    for (int i = 0; i < o.io_jobs; ++i) sites->urls.push_back(pool[static_cast<std::size_t>(i) % pool.size()]);
    http::Session warm;
    for (const auto& u : pool) (void)warm.get(u);
  };

  d.models.push_back({"serial (one requests-style Session)", [sites] {
                        http::Session session;
                        std::size_t bytes = 0;
                        for (const auto& url : sites->urls) bytes += session.get(url).content().size();
                        return std::to_string(bytes);
                      }});
  const int workers = o.io_workers;
  d.models.push_back(
      {"ThreadPoolExecutor(" + std::to_string(workers) + ").map + thread-local Session", [sites, workers] {
         auto download_site = [](const std::string& url) {
           static concur::threading::local<http::Session> loc;  // threading.local()
           return loc.get().get(url).content().size();
         };
         std::size_t bytes = 0;
         cf::ThreadPoolExecutor pool(workers);
         for (std::size_t n : pool.map(download_site, sites->urls)) bytes += n;
         return std::to_string(bytes);
       }});

  d.models.push_back(
      {"multiprocessing.Pool(" + std::to_string(workers) + ").map + a Session per process", [sites, workers] {
         std::size_t bytes = 0;
         mp::Pool pool(workers);
         for (std::size_t n : pool.map(download_in_process, sites->urls, 1)) bytes += n;
         return std::to_string(bytes);
       }});

  // asyncio: one task per download, all gathered on one loop (one thread), one ClientSession.
  //   async with ClientSession() as s: await gather(*[create_task(download_site(s, u)) for u in sites])
  const std::string asyncio_name = "asyncio: ClientSession + gather (1 thread)";
  d.models.push_back({asyncio_name, [sites] {
                        auto amain = [&]() -> aio::Coro<std::size_t> {
                          http::ClientSession session;
                          auto download_site = [&session](std::string url) -> aio::Coro<std::size_t> {
                            http::ClientResponse resp = co_await session.get(std::move(url));
                            std::string body = co_await resp.read();
                            co_return body.size();
                          };
                          std::vector<aio::Task<std::size_t>> tasks;
                          tasks.reserve(sites->urls.size());
                          for (const auto& u : sites->urls) tasks.push_back(aio::create_task(download_site(u)));
                          std::vector<std::size_t> rs = co_await aio::gather(std::move(tasks));
                          co_await session.close();
                          std::size_t bytes = 0;
                          for (std::size_t r : rs) bytes += r;
                          co_return bytes;
                        };
                        return std::to_string(aio::run(amain()));
                      }});

  const int ideal_threads = std::max(1, std::min(o.io_workers, o.io_jobs));
  const int ideal_asyncio = std::max(1, o.io_jobs);
  d.verdict = [ideal_threads, ideal_asyncio, asyncio_name](const std::vector<ModelResult>& rs) {
    const ModelResult& best = fastest_parallel(rs);
    const bool asyncio_best = best.name == asyncio_name;
    std::string v = "I/O-bound: " + best.name + " was " + format_ratio(best.speedup) + " faster than serial (ideal " +
                    std::to_string(asyncio_best ? ideal_asyncio : ideal_threads) + "x: that many waits overlap";
    v += asyncio_best ? " on one thread" : "";
    v += "); CPU time stayed " + format_seconds(best.cost.cpu_s) + " - ";
    if (asyncio_best) {
      v += "a waiting task is a few hundred bytes, not a thread, so every job waits at once (the pool overlaps only " +
           std::to_string(ideal_threads) + ").";
    } else {
      v += "waiting threads use no CPU.";
    }
    return v;
  };
  return d;
}

std::vector<Demo> tour_demos(const TourOptions& o) { return {cpu_bound_demo(o), io_bound_demo(o)}; }

// ---- running --------------------------------------------------------------------------------

int run_tour(const TourOptions& o, std::ostream& out) {
  auto demos = tour_demos(o);
  for (const auto& key : o.demos) {
    if (std::none_of(demos.begin(), demos.end(), [&](const Demo& d) { return d.key == key; }))
      throw std::invalid_argument("unknown demo '" + key + "' (known: cpu, io)");
  }
  out << "concur tour - the options of a Python concurrency tutorial, run natively and measured\n"
      << "(" << cpus() << " CPUs; ThreadPoolExecutor() defaults to " << cf::default_max_workers()
      << " workers = min(32, cpu_count + 4), as Python)\n";
  out.flush();

  int status = 0;
  int number = 0;
  Progress progress(o.progress);
  for (const Demo& demo : demos) {
    if (!o.demos.empty() && std::find(o.demos.begin(), o.demos.end(), demo.key) == o.demos.end()) continue;
    ++number;
    std::vector<ModelResult> results;
    if (demo.warmup) {
      progress.update("[" + demo.key + "] warming up ...");
      demo.warmup();
    }
    for (std::size_t i = 0; i < demo.models.size(); ++i) {
      const Model& m = demo.models[i];
      progress.update("[" + demo.key + " " + std::to_string(i + 1) + "/" + std::to_string(demo.models.size()) +
                      "] running " + m.name + " ...");
      Stopwatch sw;
      std::string sum = m.run();
      ModelResult r{m.name, sw.elapsed(), 0, std::move(sum)};
      results.push_back(std::move(r));
    }
    progress.clear();

    const double base = results.front().cost.wall_s;
    Table table(
        {{"model"}, {"wall", Table::Align::right}, {"CPU", Table::Align::right}, {"speed-up", Table::Align::right}});
    for (auto& r : results) {
      r.speedup = r.cost.wall_s > 0 ? base / r.cost.wall_s : 0;
      table.add_row({r.name, format_seconds(r.cost.wall_s), format_seconds(r.cost.cpu_s), format_ratio(r.speedup)});
    }
    out << "\n" << number << ". " << demo.title << "\n   python: " << demo.python << "\n\n";
    table.print(out, "   ");
    bool same = true;
    for (const auto& r : results) {
      if (r.checksum != results.front().checksum || r.checksum.rfind("mismatch", 0) == 0) {
        out << "   error: " << r.name << " gave a different answer (" << r.checksum << " vs "
            << results.front().checksum << ")\n";
        same = false;
        status = 1;
      }
    }
    if (same) out << "   (every model gave the same answer: " << results.front().checksum << ")\n";
    if (results.size() > 1) out << "   " << demo.verdict(results) << "\n";
    out.flush();
  }
  out << "\nLater modules add green-thread models to these demos.\n";
  return status;
}

}  // namespace concur_tool
