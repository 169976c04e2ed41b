#include "tour.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "loopback_sites.hpp"  // examples/http: the seed's two sites as a loopback web app
#include "report.hpp"
#include "table.hpp"
#include "timeline.hpp"
#include <nlohmann/json.hpp>

#include <concur/asyncio.hpp>
#include <concur/core/trace.hpp>
#include <concur/futures.hpp>
#include <concur/http.hpp>
#include <concur/multiprocessing.hpp>
#include <concur/threading.hpp>

namespace concur_tool {

namespace cf = concur::futures;
namespace aio = concur::asyncio;
namespace http = concur::http;
namespace mp = concur::multiprocessing;
namespace trace = concur::trace;

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

// ---- timelines ------------------------------------------------------------------------------

/// While tracing, one asyncio job's whole life (from its first step to its end, waits included)
/// as one bar on a lane of its own ("download 7 (asyncio task)"), as the seeds draw them: the loop's lane shows
/// the steps, when the one thread was actually busy.
class JobSpan {
 public:
  JobSpan(const char* label, int index) : label_(label), index_(index), active_(trace::enabled()) {
    if (active_) begin_ = trace::now_ns();
  }
  JobSpan(const JobSpan&) = delete;
  JobSpan& operator=(const JobSpan&) = delete;
  ~JobSpan() {
    if (!active_) return;
    trace::Event e;
    e.begin_ns = begin_;
    e.end_ns = trace::now_ns();
    e.task_id = trace::next_task_id();
    e.pid = static_cast<std::uint32_t>(::getpid());
    e.tid = kLaneBase + static_cast<std::uint32_t>(index_);  // a lane per job, not a real thread
    e.source = "asyncio.job";
    e.worker = static_cast<std::uint32_t>(index_);
    trace::name_lane(e.pid, e.tid, std::string(label_) + " " + std::to_string(index_ + 1) + " (asyncio task)");
    trace::record(e);
  }

 private:
  static constexpr std::uint32_t kLaneBase = 0x70000000;  // above any Linux thread id (pid_max <= 2^22)
  const char* label_;
  int index_;
  bool active_;
  std::uint64_t begin_ = 0;
};

// ---- verdict helpers ------------------------------------------------------------------------

const ModelResult& fastest_parallel(const std::vector<ModelResult>& rs) {
  auto it = std::max_element(rs.begin() + 1, rs.end(),
                             [](const ModelResult& a, const ModelResult& b) { return a.speedup < b.speedup; });
  return *it;
}

unsigned cpus() { return std::max(1u, std::thread::hardware_concurrency()); }

/// The first result of model kind `kind` ("threads", "asyncio", ...), or null.
const ModelResult* counterpart(const std::vector<ModelResult>& rs, const std::string& kind) {
  for (const auto& r : rs)
    if (r.kind == kind) return &r;
  return nullptr;
}

}  // namespace

// ---- demo 1: CPU-bound ----------------------------------------------------------------------

Demo cpu_bound_demo(const TourOptions& o) {
  Demo d;
  d.key = "cpu";
  d.title = "CPU-bound: sum(i*i for i in range(n)) for n in " + std::to_string(o.cpu_base) + ".." +
            std::to_string(o.cpu_base + o.cpu_count - 1);
  d.python = "with Pool() as pool: pool.map(cpu_bound, nums)   # CPython: processes, because of the GIL";
  const auto nums = cpu_numbers(o);

  d.models.push_back({"serial (for loop)",
                      [nums] {
                        std::vector<u128> sums;
                        for (long n : nums) {
                          trace::Span job("serial", 0, 0);
                          sums.push_back(cpu_bound(n));
                        }
                        return cpu_checksum(nums, sums);
                      },
                      "serial", "serial"});
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
  d.models.push_back({"ThreadPoolExecutor() [" + std::to_string(dflt) + " workers]", threads(std::nullopt),
                      "threads-default", "ThreadPoolExecutor"});
  d.models.push_back({"ThreadPoolExecutor(2)", threads(2), "threads", "ThreadPoolExecutor"});
  // The seed's own answer for CPython: processes. Here they work too (a worker is this program
  // started again), at the cost of starting them and copying arguments and results.
  d.models.push_back({"multiprocessing.Pool() [" + std::to_string(mp::cpu_count()) + " processes]",
                      [nums] {
                        mp::Pool pool;
                        std::vector<u128> sums;
                        for (const Sum128& s : pool.map(cpu_bound_parts, nums)) sums.push_back(s.value());
                        for (pid_t pid : pool.pids()) note_worker_peak(pid);
                        return cpu_checksum(nums, sums);
                      },
                      "processes", "multiprocessing.Pool"});
  // asyncio: a coroutine per number, gathered on one loop. Nothing in them awaits, so they take
  // turns on the loop's one thread: the seeds' point that asyncio is for waiting, not computing.
  //   async def cpu_task(n): return cpu_bound(n)
  //   await asyncio.gather(*[cpu_task(n) for n in nums])
  d.models.push_back({"asyncio: gather of coroutines (1 thread)",
                      [nums] {
                        auto amain = [&nums]() -> aio::Coro<std::vector<u128>> {
                          auto cpu_task = [](long n, int i) -> aio::Coro<u128> {
                            JobSpan job("sum", i);  // --report: a lane per task
                            co_return cpu_bound(n);
                          };
                          std::vector<aio::Task<u128>> tasks;
                          tasks.reserve(nums.size());
                          for (long n : nums)
                            tasks.push_back(aio::create_task(cpu_task(n, static_cast<int>(tasks.size()))));
                          co_return co_await aio::gather(std::move(tasks));
                        };
                        return cpu_checksum(nums, aio::run(amain()));
                      },
                      "asyncio", "asyncio"});
  d.python_args = [o] {
    return std::vector<std::string>{"cpu", "--base", std::to_string(o.cpu_base), "--count",
                                    std::to_string(o.cpu_count)};
  };

  auto threads_verdict = [](const std::vector<ModelResult>& rs) {
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
  d.verdict = [threads_verdict](const std::vector<ModelResult>& rs) {
    std::string v = threads_verdict(rs);
    if (const ModelResult* aio = counterpart(rs, "asyncio")) {
      v += " asyncio ran at " + format_ratio(aio->speedup) +
           " of serial speed: its coroutines take turns on one thread (asyncio is for waiting, not computing).";
    }
    return v;
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

  d.models.push_back({"serial (one requests-style Session)",
                      [sites] {
                        http::Session session;
                        std::size_t bytes = 0;
                        for (const auto& url : sites->urls) {
                          trace::Span job("serial", 0, 0);
                          bytes += session.get(url).content().size();
                        }
                        return std::to_string(bytes);
                      },
                      "serial", "serial"});
  const int workers = o.io_workers;
  d.models.push_back({"ThreadPoolExecutor(" + std::to_string(workers) + ").map + thread-local Session",
                      [sites, workers] {
                        auto download_site = [](const std::string& url) {
                          static concur::threading::local<http::Session> loc;  // threading.local()
                          return loc.get().get(url).content().size();
                        };
                        std::size_t bytes = 0;
                        cf::ThreadPoolExecutor pool(workers);
                        for (std::size_t n : pool.map(download_site, sites->urls)) bytes += n;
                        return std::to_string(bytes);
                      },
                      "threads", "ThreadPoolExecutor"});

  d.models.push_back({"multiprocessing.Pool(" + std::to_string(workers) + ").map + a Session per process",
                      [sites, workers] {
                        std::size_t bytes = 0;
                        mp::Pool pool(workers);
                        for (std::size_t n : pool.map(download_in_process, sites->urls, 1)) bytes += n;
                        for (pid_t pid : pool.pids()) note_worker_peak(pid);
                        return std::to_string(bytes);
                      },
                      "processes", "multiprocessing.Pool"});

  // asyncio: one task per download, all gathered on one loop (one thread), one ClientSession.
  //   async with ClientSession() as s: await gather(*[create_task(download_site(s, u)) for u in sites])
  const std::string asyncio_name = "asyncio: ClientSession + gather (1 thread)";
  d.models.push_back({asyncio_name,
                      [sites] {
                        auto amain = [&]() -> aio::Coro<std::size_t> {
                          http::ClientSession session;
                          auto download_site = [&session](std::string url, int i) -> aio::Coro<std::size_t> {
                            JobSpan job("download", i);  // --report: the download's whole life, waits included
                            http::ClientResponse resp = co_await session.get(std::move(url));
                            std::string body = co_await resp.read();
                            co_return body.size();
                          };
                          std::vector<aio::Task<std::size_t>> tasks;
                          tasks.reserve(sites->urls.size());
                          for (const auto& u : sites->urls)
                            tasks.push_back(aio::create_task(download_site(u, static_cast<int>(tasks.size()))));
                          std::vector<std::size_t> rs = co_await aio::gather(std::move(tasks));
                          co_await session.close();
                          std::size_t bytes = 0;
                          for (std::size_t r : rs) bytes += r;
                          co_return bytes;
                        };
                        return std::to_string(aio::run(amain()));
                      },
                      "asyncio", "asyncio"});
  d.python_args = [sites, o] {
    std::vector<std::string> a{"io", "--workers", std::to_string(o.io_workers), "--jobs", std::to_string(o.io_jobs)};
    std::vector<std::string> distinct;
    for (const auto& u : sites->urls)
      if (std::find(distinct.begin(), distinct.end(), u) == distinct.end()) distinct.push_back(u);
    a.insert(a.end(), distinct.begin(), distinct.end());
    return a;
  };

  const int ideal_threads = std::max(1, std::min(o.io_workers, o.io_jobs));
  const int ideal_asyncio = std::max(1, o.io_jobs);
  d.verdict = [ideal_threads, ideal_asyncio, asyncio_name](const std::vector<ModelResult>& rs) {
    const ModelResult& best = fastest_parallel(rs);
    const bool asyncio_best = best.name == asyncio_name;
    std::string v = "I/O-bound: " + best.name + " was " + format_ratio(best.speedup) + " faster than serial (ideal " +
                    std::to_string(asyncio_best ? ideal_asyncio : ideal_threads) + "x: that many waits overlap";
    v += asyncio_best ? " on one thread" : "";
    v += ")";
    // The seeds' comparison: the event loop against the thread pool.
    const ModelResult* pool = counterpart(rs, "threads");
    if (asyncio_best && pool != nullptr && best.cost.wall_s > 0) {
      v += " and " + format_ratio(pool->cost.wall_s / best.cost.wall_s) + " faster than " + pool->name;
    }
    v += "; CPU time stayed " + format_seconds(best.cost.cpu_s) + " - ";
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

namespace {

std::string format_mb(double mb) {
  char buf[32];
  std::snprintf(buf, sizeof buf, mb >= 100 ? "%.0f MB" : "%.1f MB", mb);
  return buf;
}

/// The timeline of one model's run, from the trace events recorded while it ran.
std::shared_ptr<Timeline> model_timeline(const Model& m, const std::vector<trace::Event>& events,
                                         std::uint32_t main_tid) {
  std::vector<trace::Event> mine;
  for (const auto& e : events) {
    const bool job = m.trace_source == "asyncio" && std::string_view(e.source) == "asyncio.job";
    if (m.trace_source != e.source && !job) continue;
    // asyncio: the model's own loop (on this thread), not the loopback server's or a Session's.
    if (m.trace_source == e.source && m.trace_source == "asyncio" && e.tid != main_tid) continue;
    mine.push_back(e);
  }
  return std::make_shared<Timeline>(
      timeline_from_json(trace::to_json(mine), m.task_lanes ? LaneMode::task : LaneMode::thread, m.name));
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// tools/concur/py/tour_demos.py, run with the Python that has aiohttp and requests.
std::string python_command(const std::vector<std::string>& args) {
  std::string python = "python3";
  if (const char* p = std::getenv("CONCUR_PYTHON"); p && *p) {
    python = p;
  } else if (::access("/usr/bin/python3", X_OK) == 0) {
    python = "/usr/bin/python3";  // Debian's, with python3-aiohttp (a pyenv python3 first in PATH may lack it)
  }
  std::string script = CONCUR_TOUR_PY;
  if (const char* p = std::getenv("CONCUR_TOUR_PY"); p && *p) script = p;
  std::string cmd = shell_quote(python) + " " + shell_quote(script);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return cmd;
}

/// Runs Python's versions of a demo: one row per model, with its timeline when `svg`.
std::vector<ModelResult> run_python(const std::vector<std::string>& args, bool svg, std::string& error) {
  std::vector<ModelResult> out;
  const std::string cmd = python_command(args);
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    error = "cannot run " + cmd;
    return out;
  }
  std::string text;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  const int status = ::pclose(p);
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] != '{') continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    ModelResult r;
    r.name = j.value("name", "python");
    r.kind = j.value("kind", "");
    r.python = true;
    r.cost.wall_s = j.value("wall_s", 0.0);
    r.cost.cpu_s = j.value("cpu_s", 0.0);
    r.cost.peak_mb = j.value("peak_kb", 0.0) / 1024.0;
    r.checksum = j.value("checksum", "");
    if (svg && j.contains("events") && j["events"].is_array()) {
      auto tl = std::make_shared<Timeline>();
      Timeline& t = *tl;
      t.title = r.name;
      double t0 = 1e300, t1 = 0;
      for (const auto& e : j["events"]) {
        t0 = std::min(t0, e.at(1).get<double>() / 1e3);
        t1 = std::max(t1, e.at(2).get<double>() / 1e3);
      }
      std::map<std::string, std::size_t> index;
      for (const auto& e : j["events"]) {
        const std::string lane = e.at(0).get<std::string>();
        auto [it, added] = index.try_emplace(lane, t.lanes.size());
        if (added) t.lanes.push_back(Lane{lane, {}});
        t.lanes[it->second].bars.push_back(
            Bar{e.at(1).get<double>() / 1e3 - t0, e.at(2).get<double>() / 1e3 - t0, "job", "python", false});
      }
      t.span_us = t1 > t0 ? t1 - t0 : 0;
      r.timeline = std::move(tl);
    }
    out.push_back(std::move(r));
  }
  if (out.empty() || status != 0) {
    error = "Python's run failed (exit status " + std::to_string(status) + "): " + cmd;
  }
  return out;
}

/// "concur vs Python" line: each model kind's ratio of wall times.
std::string python_verdict(const std::string& key, const std::vector<ModelResult>& mine,
                           const std::vector<ModelResult>& py) {
  std::string v = "vs Python (CPython " +
                  std::string(key == "cpu" ? "pays the GIL and the interpreter" : "runs the same waits") + "): ";
  bool first = true;
  for (const auto& p : py) {
    const ModelResult* c = counterpart(mine, p.kind);
    if (c == nullptr || c->cost.wall_s <= 0) continue;
    v += (first ? "" : ", ") + p.kind + " " + format_ratio(p.cost.wall_s / c->cost.wall_s);
    first = false;
  }
  v += " faster with concur (Python's wall time / concur's).";
  if (key == "cpu") {
    const ModelResult* ps = counterpart(py, "serial");
    const ModelResult* pt = counterpart(py, "threads");
    if (ps && pt && pt->cost.wall_s > 0) {
      v += " CPython's threads ran at " + format_ratio(ps->cost.wall_s / pt->cost.wall_s) + " its serial speed";
      if (const ModelResult* ct = counterpart(mine, "threads")) v += ", concur's at " + format_ratio(ct->speedup);
      v += " (the GIL lets one CPython thread compute at a time).";
    }
  }
  return v;
}

}  // namespace

int run_tour(const TourOptions& o, std::ostream& out) {
  auto demos = tour_demos(o);
  for (const auto& key : o.demos) {
    if (std::none_of(demos.begin(), demos.end(), [&](const Demo& d) { return d.key == key; }))
      throw std::invalid_argument("unknown demo '" + key + "' (known: cpu, io)");
  }
  const std::string heading = "concur tour - the options of a Python concurrency tutorial, run natively and measured";
  const std::string machine = "(" + std::to_string(cpus()) + " CPUs; ThreadPoolExecutor() defaults to " +
                              std::to_string(cf::default_max_workers()) +
                              " workers = min(32, cpu_count + 4), as Python)";
  out << heading << "\n" << machine << "\n";
  out.flush();

  const bool report = !o.report.empty();
  const bool traced_before = trace::enabled();  // CONCUR_TRACE: the whole run is traced anyway
  const std::uint32_t main_tid = trace::current_tid();
  std::vector<ReportDemo> report_demos;
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
      if (report) {
        if (!traced_before) trace::clear();
        trace::enable();
      }
      const std::uint64_t from_ns = trace::now_ns();
      Stopwatch sw;
      std::string sum = m.run();
      ModelResult r{m.name, sw.elapsed(), 0, std::move(sum), m.kind, false, nullptr};
      if (report) {
        if (!traced_before) trace::disable();
        std::vector<trace::Event> evs = trace::collect();
        std::erase_if(evs, [from_ns](const trace::Event& e) { return e.begin_ns < from_ns; });
        r.timeline = model_timeline(m, evs, main_tid);
      }
      results.push_back(std::move(r));
    }
    std::vector<ModelResult> py;
    std::string py_error;
    if (o.python && demo.python_args) {
      progress.update("[" + demo.key + "] running Python's versions (python3 " + CONCUR_TOUR_PY_NAME + ") ...");
      py = run_python(demo.python_args(), report, py_error);
    }
    progress.clear();

    const double base = results.front().cost.wall_s;
    std::vector<Table::Column> cols{{"model"},
                                    {"wall", Table::Align::right},
                                    {"CPU", Table::Align::right},
                                    {"speed-up", Table::Align::right},
                                    {"peak mem", Table::Align::right}};
    if (!py.empty()) cols.push_back({"vs Python", Table::Align::right});
    Table table(cols);
    ReportDemo rd;
    rd.title = std::to_string(number) + ". " + demo.title;
    rd.python = demo.python;
    for (const auto& c : cols) rd.columns.push_back(c.header);
    auto add = [&](ModelResult& r) {
      r.speedup = r.cost.wall_s > 0 ? base / r.cost.wall_s : 0;
      std::vector<std::string> row{r.name, format_seconds(r.cost.wall_s), format_seconds(r.cost.cpu_s),
                                   format_ratio(r.speedup), format_mb(r.cost.peak_mb)};
      if (!py.empty()) {
        const ModelResult* p = r.python ? nullptr : counterpart(py, r.kind);
        row.push_back(p && r.cost.wall_s > 0 ? format_ratio(p->cost.wall_s / r.cost.wall_s) : "");
      }
      table.add_row(row);
      rd.rows.push_back(std::move(row));
    };
    for (auto& r : results) add(r);
    for (auto& r : py) add(r);
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
    for (const auto& r : py) {
      if (r.checksum != results.front().checksum) {
        rd.notes.push_back("note: " + r.name + " gave " + r.checksum);
        out << "   note: " << r.name << " gave a different answer (" << r.checksum << ")\n";
      }
    }
    if (same) {
      out << "   (every model gave the same answer: " << results.front().checksum << ")\n";
      rd.notes.push_back("Every model gave the same answer: " + results.front().checksum + ".");
    }
    if (results.size() > 1) {
      const std::string v = demo.verdict(results);
      out << "   " << v << "\n";
      rd.notes.push_back(v);
    }
    if (!py.empty()) {
      const std::string v = python_verdict(demo.key, results, py);
      out << "   " << v << "\n";
      rd.notes.push_back(v);
    }
    if (!py_error.empty()) {
      out << "   python: " << py_error << "\n";
      rd.notes.push_back(py_error);
    }
    out << "   (peak mem: the resident memory this run reached, worker processes' added)\n";
    out.flush();
    if (report) {
      // One time scale per demo, so that the pictures compare as the wall times do.
      SvgOptions so;
      for (const auto* rs : {&results, &py})
        for (const auto& r : *rs)
          if (r.timeline) so.scale_us = std::max(so.scale_us, r.timeline->span_us);
      for (const auto* rs : {&results, &py})
        for (const auto& r : *rs)
          if (r.timeline) rd.timelines.emplace_back(r.name, render_svg(*r.timeline, so));
      report_demos.push_back(std::move(rd));
    }
  }
  if (report) {
    std::ofstream f(o.report, std::ios::binary);
    f << render_report(heading, machine, report_demos);
    f.close();
    if (!f) throw std::runtime_error("cannot write the report to " + o.report);
    out << "\nReport with a timeline per model: " << o.report << "\n";
  }
  out << "\nLater modules add green-thread models to these demos.\n";
  return status;
}

}  // namespace concur_tool
