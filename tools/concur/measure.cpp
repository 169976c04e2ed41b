#include "measure.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

namespace concur_tool {

double process_cpu_seconds() {
  // This process and its reaped children (the worker processes of a process-pool model).
  rusage self{}, kids{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return s(self.ru_utime) + s(self.ru_stime) + s(kids.ru_utime) + s(kids.ru_stime);
}

Stopwatch::Stopwatch() : wall0_(std::chrono::steady_clock::now()), cpu0_(process_cpu_seconds()) {}

Measurement Stopwatch::elapsed() const {
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0_).count(),
          process_cpu_seconds() - cpu0_};
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
