// concur: the command-line program of the concur library.
//
//   concur tour [--io-jobs N] [--io-delay-ms N] [--cpu-base N] ...   Python's concurrency options, measured
//
// Subcommands live in their own files (tour.cpp today); main.cpp only declares the command line.
#include <exception>
#include <iostream>

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
      "         later modules add processes (multiprocessing) and green threads (gevent).\n",
      "concur"};
  app.require_subcommand(0, 1);

  concur_tool::TourOptions tour;
  bool no_progress = false;
  CLI::App* tour_cmd = app.add_subcommand(
      "tour", "Python's concurrency options, measured: CPU-bound and I/O-bound demos, serial vs thread pools");
  tour_cmd->footer(
      "Runs the examples of a Python concurrency tutorial with concur and measures them:\n"
      "  1. CPU-bound: sum(i*i for i in range(n)) for the 20 numbers 5,000,000..5,000,019, serially,\n"
      "     on ThreadPoolExecutor() (Python's default workers), on ThreadPoolExecutor(2), and on\n"
      "     multiprocessing.Pool() (worker processes, the tutorial's answer for CPython).\n"
      "     In CPython, threads cannot speed this up (the GIL); here they can.\n"
      "  2. I/O-bound: the tutorial's 160 downloads, over HTTP from a loopback web server that\n"
      "     answers after 20 ms (half the pages 10 KB, half tiny; --url downloads real sites\n"
      "     instead): serially with one Session, on ThreadPoolExecutor(5).map with a thread-local\n"
      "     Session each, as the tutorial's max_workers=5, on Pool(5).map (processes), and as 160\n"
      "     asyncio tasks sharing one ClientSession on one event loop (one thread), as the\n"
      "     tutorial's aiohttp version.\n"
      "Prints per demo a table (model, wall time, CPU time from getrusage, speed-up over serial)\n"
      "(CPU time includes the worker processes') and a verdict drawn from the measurements. A\n"
      "progress line goes to stderr. A later module adds green-thread (gevent) models.\n"
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
  std::cout << app.help();
  return 0;
}
