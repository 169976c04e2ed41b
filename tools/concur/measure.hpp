#pragma once
// Wall-clock and CPU time of a piece of work, and the progress line shown while it runs.
#include <chrono>
#include <string>

namespace concur_tool {

/// What one run cost: wall-clock seconds and CPU seconds (user + system, every thread of the
/// process, from getrusage), so a pool's workers count too.
struct Measurement {
  double wall_s = 0;
  double cpu_s = 0;
  double peak_mb = 0;  // peak resident memory of this process during the run, plus its worker processes'
};

/// Peak resident memory (VmHWM) of a process in MB; 0 if unknown. pid 0: this process.
double peak_rss_mb(int pid = 0);
/// Adds a worker process's peak memory to the run being measured (call before it exits).
void note_worker_peak(int pid);

/// User + system CPU seconds used by the whole process so far.
double process_cpu_seconds();

/// Starts measuring when constructed; elapsed() gives the cost since then.
class Stopwatch {
 public:
  Stopwatch();
  [[nodiscard]] Measurement elapsed() const;

 private:
  std::chrono::steady_clock::time_point wall0_;
  double cpu0_;
  bool peak_reset_;  // this process's peak was reset at the start (Linux clear_refs)
};

/// One status line on stderr ("running ..."). On a terminal it is rewritten in place with '\r'
/// and erased by clear(); otherwise each update is its own line, so logs stay readable.
class Progress {
 public:
  explicit Progress(bool enabled = true);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress();
  void update(const std::string& line);
  void clear();

 private:
  bool enabled_;
  bool tty_;
  std::size_t shown_ = 0;  // characters on the current terminal line
};

}  // namespace concur_tool
