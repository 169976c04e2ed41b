// concur: the command-line program of the concur library.
//
//   concur tour [--io-jobs N] [--io-delay-ms N] [--cpu-base N] [--report PATH] [--python] ...
//                                        Python's concurrency options, measured
//   concur trace TRACE.json --svg OUT.svg   the timeline of a CONCUR_TRACE file, as SVG
//
// Subcommands live in their own files (tour.cpp, timeline.cpp); main.cpp only declares the command line.
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "timeline.hpp"
#include "tour.hpp"
#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{
      "concur - Python's concurrency modules (threading, queue, concurrent.futures, ...) for C++20.\n"
      "\n"
      "Subcommands:\n"
      "  tour   run the examples of a Python concurrency tutorial (a CPU-bound sum of squares and\n"
      "         I/O-bound waits) serially and on thread pools, and print wall time, CPU time and\n"
      "         speed-up per model. Today's models: serial, ThreadPoolExecutor and (I/O) asyncio;\n"
      "         later modules add processes (multiprocessing) and green threads (gevent).\n"
      "  trace  draw the timeline of a trace (CONCUR_TRACE=trace.json ./program writes one) as SVG.\n",
      "concur"};
  app.require_subcommand(0, 1);

  concur_tool::TourOptions tour;
  bool no_progress = false;
  CLI::App* tour_cmd = app.add_subcommand(
      "tour", "Python's concurrency options, measured: CPU-bound and I/O-bound demos, serial vs thread pools");
  tour_cmd->footer(
      "Runs the examples of a Python concurrency tutorial with concur and measures them:\n"
      "  1. CPU-bound: sum(i*i for i in range(n)) for the 20 numbers 5,000,000..5,000,019, serially,\n"
      "     on ThreadPoolExecutor() (Python's default workers), on ThreadPoolExecutor(2), on\n"
      "     multiprocessing.Pool() (worker processes, the tutorial's answer for CPython), and as\n"
      "     20 asyncio coroutines gathered on one loop (they take turns: asyncio does not compute\n"
      "     in parallel). In CPython, threads cannot speed this up (the GIL); here they can.\n"
      "  2. I/O-bound: the tutorial's 160 downloads, over HTTP from a loopback web server that\n"
      "     answers after 20 ms (half the pages 10 KB, half tiny; --url downloads real sites\n"
      "     instead): serially with one Session, on ThreadPoolExecutor(5).map with a thread-local\n"
      "     Session each, as the tutorial's max_workers=5, on Pool(5).map (processes), and as 160\n"
      "     asyncio tasks sharing one ClientSession on one event loop (one thread), as the\n"
      "     tutorial's aiohttp version.\n"
      "Prints per demo a table (model, wall time, CPU time from getrusage, speed-up over serial,\n"
      "peak resident memory; CPU time and memory include the worker processes') and a verdict drawn\n"
      "from the measurements. A progress line goes to stderr. --report PATH also writes one\n"
      "self-contained HTML file with a timeline per model (a lane per thread, process or asyncio\n"
      "task, a bar per job), drawn from the run's own trace. --python runs the same demos with\n"
      "CPython's threading, asyncio/aiohttp and multiprocessing (tools/concur/py/tour_demos.py,\n"
      "/usr/bin/python3 or $CONCUR_PYTHON) against the same loopback server and adds their rows\n"
      "and a 'vs Python' ratio. A later module adds green-thread (gevent) models.\n"
      "\n"
      "Quick run: concur tour --io-jobs 20 --io-delay-ms 2 --cpu-base 200000");
  tour_cmd->add_option("--cpu-base", tour.cpu_base, "CPU demo: first n of sum(i*i for i in range(n))")
      ->capture_default_str()
      ->check(CLI::Range(0L, 4'000'000'000L));
  tour_cmd->add_option("--cpu-count", tour.cpu_count, "CPU demo: how many numbers (n = base, base+1, ...)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000));
  tour_cmd->add_option("--io-jobs", tour.io_jobs, "I/O demo: number of downloads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  tour_cmd
      ->add_option("--io-delay-ms", tour.io_delay_ms,
                   "I/O demo: how long the loopback server waits before each answer, in ms")
      ->capture_default_str()
      ->check(CLI::Range(0, 60'000));
  tour_cmd->add_option("--io-workers", tour.io_workers, "I/O demo: ThreadPoolExecutor(max_workers)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  tour_cmd->add_option("--url", tour.urls,
                       "I/O demo: download these URLs (round robin, repeatable) instead of the loopback sites");
  tour_cmd->add_option("--demo", tour.demos, "run only these demos (cpu, io); default: all")
      ->check(CLI::IsMember({"cpu", "io"}));
  tour_cmd->add_flag("--no-progress", no_progress, "do not show the progress line on stderr");

  tour_cmd->add_option("--report", tour.report,
                       "also write one self-contained HTML file with the tables and a timeline per model per demo");
  tour_cmd->add_flag("--python", tour.python,
                     "also run the demos with Python's threading, asyncio/aiohttp and multiprocessing "
                     "(python3 with aiohttp; $CONCUR_PYTHON overrides) and compare");

  std::string trace_in, trace_svg, trace_lanes = "thread", trace_title;
  CLI::App* trace_cmd = app.add_subcommand("trace", "draw a trace file's timeline (one lane per thread/process/task)");
  trace_cmd->footer(
      "Any program using concur records its tasks (every executor, event loop and pool) when run as\n"
      "  CONCUR_TRACE=trace.json ./program\n"
      "and writes Chrome trace-event JSON at exit (open it in https://ui.perfetto.dev or chrome://tracing).\n"
      "This draws the same timeline as `concur tour --report`, as a self-contained SVG.");
  trace_cmd->add_option("trace", trace_in, "the trace file (Chrome trace-event JSON)")->required();
  trace_cmd->add_option("--svg", trace_svg, "write the timeline here as SVG")->required();
  trace_cmd->add_option("--lanes", trace_lanes, "one lane per thread, or per asyncio task")
      ->capture_default_str()
      ->check(CLI::IsMember({"thread", "task"}));
  trace_cmd->add_option("--title", trace_title, "title above the timeline (default: the trace file's name)");

  CLI11_PARSE(app, argc, argv);

  if (app.got_subcommand(tour_cmd)) {
    tour.progress = !no_progress;
    try {
      return concur_tool::run_tour(tour, std::cout);
    } catch (const std::exception& e) {
      std::cerr << "concur tour: " << e.what() << "\n";
      return 1;
    }
  }
  if (app.got_subcommand(trace_cmd)) {
    try {
      std::ifstream in(trace_in, std::ios::binary);
      if (!in) throw std::runtime_error("cannot read " + trace_in);
      std::ostringstream text;
      text << in.rdbuf();
      auto timeline = concur_tool::timeline_from_json(
          text.str(), trace_lanes == "task" ? concur_tool::LaneMode::task : concur_tool::LaneMode::thread,
          trace_title.empty() ? trace_in : trace_title);
      std::ofstream out(trace_svg, std::ios::binary);
      out << concur_tool::render_svg(timeline);
      out.close();
      if (!out) throw std::runtime_error("cannot write " + trace_svg);
      std::cout << trace_svg << ": " << timeline.lanes.size() << " lanes\n";
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "concur trace: " << e.what() << "\n";
      return 1;
    }
  }
  std::cout << app.help();
  return 0;
}
