#include "measure.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

namespace concur_tool {

double process_cpu_seconds() {
  // This process and its reaped children (the worker processes of a process-pool model).
  rusage self{}, kids{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return s(self.ru_utime) + s(self.ru_stime) + s(kids.ru_utime) + s(kids.ru_stime);
}

namespace {
std::atomic<double> g_worker_peaks_mb{0};

/// Resets this process's peak resident memory to the current one (Linux 4.0+: "5" > clear_refs).
bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return (std::fclose(f) == 0) && ok;
}
}  // namespace

double peak_rss_mb(int pid) {
  const std::string path = pid == 0 ? "/proc/self/status" : "/proc/" + std::to_string(pid) + "/status";
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return 0;
  char line[256];
  double kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmHWM: %lf kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb / 1024.0;
}

void note_worker_peak(int pid) {
  const double mb = peak_rss_mb(pid);
  double cur = g_worker_peaks_mb.load();
  while (!g_worker_peaks_mb.compare_exchange_weak(cur, cur + mb)) {
  }
}

Stopwatch::Stopwatch()
    : wall0_(std::chrono::steady_clock::now()), cpu0_(process_cpu_seconds()), peak_reset_(reset_peak_rss()) {
  g_worker_peaks_mb.store(0);
}

Measurement Stopwatch::elapsed() const {
  Measurement m{std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0_).count(),
                process_cpu_seconds() - cpu0_, 0};
  // Without clear_refs the peak is the program's so far (an upper bound).
  m.peak_mb = peak_rss_mb() + g_worker_peaks_mb.load();
  (void)peak_reset_;
  return m;
}

Progress::Progress(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() { clear(); }

void Progress::update(const std::string& line) {
  if (!enabled_) return;
  if (tty_) {
    // Pad with spaces to wipe the tail of a longer previous line.
    const std::size_t pad = shown_ > line.size() ? shown_ - line.size() : 0;
    std::fprintf(stderr, "\r%s%*s\r%s", line.c_str(), static_cast<int>(pad), "", line.c_str());
    shown_ = line.size();
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::clear() {
  if (!enabled_ || !tty_ || shown_ == 0) return;
  std::fprintf(stderr, "\r%*s\r", static_cast<int>(shown_), "");
  std::fflush(stderr);
  shown_ = 0;
}

}  // namespace concur_tool
