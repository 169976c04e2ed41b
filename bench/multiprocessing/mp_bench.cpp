// multiprocessing, issue #6's benchmark, every figure from one run, 2 worker processes:
//
//   (a) Pool.map of a no-op over 20,000 items, chunksize 1
//   (b) Pool.map of a no-op over 200,000 items, default chunking
//   (c) ProcessPoolExecutor: submit 20,000 no-ops, then wait for every result
//   (d) Pipe: 1 MiB messages between two processes, vs a raw pipe (write/read) doing the same
//       (the best of three passes each, alternating)
//
// (a)-(c) against Python's multiprocessing / concurrent.futures running the same workload
// (bench/compare/mp_bench.py, a separate process), as time per task and the ratio. Each is the
// best of three runs after an untimed one, on both sides.
//
//   bench_mp [--scale S] [--python PATH] [--no-python] [--only a|b|c|d]
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <concur/multiprocessing.hpp>

namespace mp = concur::multiprocessing;
namespace cf = concur::futures;
using Clock = std::chrono::steady_clock;

namespace {

int noop(int x) { return x; }

/// The best of `reps` timed runs, after one untimed run (both sides, here and in
/// mp_bench.py: the first run of a workload pays for the memory its buffers first touch).
template <class F>
double best_of(int reps, F f) {
  f();
  double best = 1e100;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

std::vector<int> range(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

/// Bytes per second moving `count` messages of `size` bytes from a child to this process.
double raw_pipe_rate(std::size_t size, int count) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return 0;
  ::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  std::string msg(size, 'r');
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    for (int i = 0; i < count; ++i) {
      std::size_t off = 0;
      while (off < size) {
        ssize_t w = ::write(p[1], msg.data() + off, size - off);
        if (w <= 0) ::_exit(1);
        off += static_cast<std::size_t>(w);
      }
    }
    ::_exit(0);
  }
  ::close(p[1]);
  std::string buf(size, '\0');
  for (int i = 0; i < count; ++i) {
    std::size_t off = 0;
    while (off < size) {
      ssize_t r = ::read(p[0], buf.data() + off, size - off);
      if (r <= 0) break;
      off += static_cast<std::size_t>(r);
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(p[0]);
  ::waitpid(pid, nullptr, 0);
  return static_cast<double>(size) * count / secs;
}

double mp_pipe_rate(std::size_t size, int count) {
  auto [a, b] = mp::Pipe(false);
  std::string msg(size, 'p');
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    a.close();
    for (int i = 0; i < count; ++i) b.send_bytes(msg);
    ::_exit(0);
  }
  b.close();
  for (int i = 0; i < count; ++i) (void)a.recv_bytes();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  ::waitpid(pid, nullptr, 0);
  return static_cast<double>(size) * count / secs;
}

}  // namespace

int main(int argc, char** argv) {
  double scale = 1.0;
  std::string python = "/usr/bin/python3";
  bool with_python = true;
  std::string only;  // "a", "b", "c" or "d": that workload only (for profiling)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--scale" && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else if (a == "--python" && i + 1 < argc) {
      python = argv[++i];
    } else if (a == "--no-python") {
      with_python = false;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::printf("usage: %s [--scale S] [--python PATH] [--no-python] [--only a|b|c|d]\n", argv[0]);
      return a == "--help" ? 0 : 2;
    }
  }
  const int n_a = static_cast<int>(20000 * scale), n_b = static_cast<int>(200000 * scale),
            n_c = static_cast<int>(20000 * scale);
  std::map<char, double> us;  // microseconds per task
  auto want = [&](char k) { return only.empty() || only.find(k) != std::string::npos; };
  if (want('a') || want('b')) {
    mp::Pool pool(2);
    (void)pool.map(noop, range(100));  // workers up
    auto xs = range(n_a);
    if (want('a')) us['a'] = best_of(3, [&] { (void)pool.map(noop, xs, 1); }) / n_a * 1e6;
    auto ys = range(n_b);
    if (want('b')) us['b'] = best_of(3, [&] { (void)pool.map(noop, ys); }) / n_b * 1e6;
  }
  if (want('c')) {
    cf::ProcessPoolExecutor ex(cf::ProcessPoolOptions{.max_workers = 2});
    (void)ex.submit(noop, 0).result();
    us['c'] = best_of(3,
                      [&] {
                        std::vector<cf::Future<int>> fs;
                        fs.reserve(static_cast<std::size_t>(n_c));
                        for (int i = 0; i < n_c; ++i) fs.push_back(ex.submit(noop, i));
                        for (auto& f : fs) (void)f.result();
                      }) /
              n_c * 1e6;
  }
  const std::size_t mib = 1 << 20;
  const int msgs = static_cast<int>(256 * scale) + 1;
  // Best of three each, alternating: one pass is only some tens of milliseconds, and either
  // side can lose one to the machine.
  double raw = 0, ours = 0;
  for (int rep = 0; rep < 3 && want('d'); ++rep) {
    raw = std::max(raw, raw_pipe_rate(mib, msgs));
    ours = std::max(ours, mp_pipe_rate(mib, msgs));
  }

  std::map<char, double> py;
  if (with_python && ::access(python.c_str(), X_OK) == 0) {
    std::string cmd = python + " " + CONCUR_SOURCE_DIR + "/bench/compare/mp_bench.py " + std::to_string(scale);
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
      char key = 0;
      double v = 0;
      while (std::fscanf(f, " %c %lf", &key, &v) == 2) py[key] = v;
      ::pclose(f);
    }
  }
  std::printf("multiprocessing, 2 worker processes, same run (time per task; lower is better)\n\n");
  std::printf("  %-58s %12s %12s %10s\n", "workload", "concur", "Python", "speed-up");
  const char* names[] = {"(a) Pool.map no-op x20000, chunksize=1", "(b) Pool.map no-op x200000, default chunking",
                         "(c) ProcessPoolExecutor submit+result x20000"};
  for (char k : {'a', 'b', 'c'}) {
    if (us.count(k) == 0) continue;
    std::printf("  %-58s %9.3f us", names[k - 'a'], us[k]);
    if (py.count(k) != 0) {
      std::printf(" %9.3f us %9.1fx\n", py[k], py[k] / us[k]);
    } else {
      std::printf(" %12s\n", "n/a");
    }
  }
  if (want('d'))
    std::printf("\n  (d) 1 MiB messages between two processes: mp::Pipe %.0f MB/s, raw pipe %.0f MB/s: %.0f%%\n",
                ours / 1e6, raw / 1e6, 100.0 * ours / raw);
  return 0;
}
