#pragma once
// `concur tour`: the examples of a Python concurrency tutorial, run with concur's equivalents
// and measured — wall time, CPU time and speed-up over the serial version, per model.
//
// A *demo* is one workload (CPU-bound sums, I/O-bound waits). A *model* is one way of running
// it (serial, ThreadPoolExecutor(n), ...). Every model of a demo must produce the same checksum
// as the first model (the serial one); the table shows each model's cost and a verdict line
// sums the demo up from the measurements.
//
// Adding a model (e.g. green threads, when they land): append a Model to the demo in tour.cpp
// (cpu_bound_demo / io_bound_demo), and its Python counterpart, of the same kind, to
// py/tour_demos.py. Adding a demo: write a function returning a Demo and list it in tour_demos().
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "measure.hpp"
#include "timeline.hpp"

namespace concur_tool {

struct TourOptions {
  long cpu_base = 5'000'000;  // CPU demo: sum(i*i for i in range(n)) for n = base .. base+count-1
  int cpu_count = 20;
  int io_jobs = 160;  // I/O demo: this many jobs, each waiting io_delay_ms
  int io_delay_ms = 20;
  int io_workers = 5;              // ThreadPoolExecutor(max_workers=5), as the tutorial
  std::vector<std::string> urls;   // I/O demo: download these (round robin) instead of the loopback sites
  std::vector<std::string> demos;  // keys to run ("cpu", "io"); empty: all
  bool progress = true;
  std::string report;   // --report: write the HTML report (tables + timelines) here
  bool python = false;  // --python: also run Python's versions of the demos
};

/// One way of running a demo's workload. `run` returns a checksum of the results.
struct Model {
  std::string name;
  std::function<std::string()> run;
  std::string kind;          // its Python counterpart's kind (--python): "serial", "threads", "processes", "asyncio"
  std::string trace_source;  // the trace events that are its jobs (--report), e.g. "ThreadPoolExecutor"
  bool task_lanes = false;   // --report: a lane per asyncio task rather than per thread
};

struct ModelResult {
  std::string name;
  Measurement cost;
  double speedup = 0;  // first model's wall time / this one's
  std::string checksum;
  std::string kind;                    // as Model::kind
  bool python = false;                 // a row of Python's own run (--python)
  std::shared_ptr<Timeline> timeline;  // --report: its lanes and bars
};

struct Demo {
  std::string key;            // for --demo
  std::string title;          // "CPU-bound: ..."
  std::string python;         // the Python the demo translates
  std::vector<Model> models;  // the first one is the serial baseline
  /// Optional, run once untimed before the first model (warms caches and the CPU clock).
  std::function<void()> warmup;
  /// --python: the arguments of tools/concur/py/tour_demos.py for this demo (after the warm-up).
  std::function<std::vector<std::string>()> python_args;
  /// One line drawn from the results (in model order).
  std::function<std::string(const std::vector<ModelResult>&)> verdict;
};

Demo cpu_bound_demo(const TourOptions& o);
Demo io_bound_demo(const TourOptions& o);
std::vector<Demo> tour_demos(const TourOptions& o);

/// Runs the selected demos, printing a table and a verdict for each to `out`.
/// Returns 0, or 1 if a model's results differed from the serial ones.
int run_tour(const TourOptions& o, std::ostream& out);

}  // namespace concur_tool
