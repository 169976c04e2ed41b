#pragma once
// Shared by the asyncio tests: the backends to run each loop test with, and an unraisable hook
// that records what it is given.
#include <dirent.h>

#include <chrono>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "concur/asyncio.hpp"
#include "concur/core/error.hpp"

namespace concur::test {

/// Open file descriptors of this process (the networking tests check none leak).
inline int open_fd_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n - 1;  // the directory stream itself
}

/// ASSERT_* cannot be used in a coroutine (it returns); this one co_returns from a Coro<void>.
#define CO_ASSERT_EQ(a, b)        \
  do {                            \
    EXPECT_EQ(a, b);              \
    if (!((a) == (b))) co_return; \
  } while (0)

/// Yields to the loop `n` times, then returns `v`: completion order set by iteration counts.
inline concur::asyncio::Coro<int> yields(int n, int v) {
  using namespace std::chrono_literals;
  for (int i = 0; i < n; ++i) co_await concur::asyncio::sleep(0s);
  co_return v;
}

/// Lets every ready task run until it blocks again.
inline concur::asyncio::Coro<void> settle(int rounds = 5) {
  using namespace std::chrono_literals;
  for (int i = 0; i < rounds; ++i) co_await concur::asyncio::sleep(0s);
}

/// Both readiness backends; "io_uring" falls back to epoll where it is unavailable.
inline const std::vector<std::string>& loop_backends() {
  static const std::vector<std::string> b{"epoll", "io_uring"};
  return b;
}

inline std::string backend_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

/// A test run once per backend: run_main(f) runs the coroutine f() on a new loop of GetParam().
class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  template <class F>
  auto run_main(F&& f) {
    return concur::asyncio::run(f(), concur::asyncio::LoopOptions{.backend = GetParam()});
  }
};

/// Records every report_unraisable() call while alive (restores the default hook after).
class UnraisableRecorder {
 public:
  UnraisableRecorder() {
    std::lock_guard g(m());
    entries().clear();
    concur::set_unraisable_hook(&UnraisableRecorder::hook);
  }
  ~UnraisableRecorder() { concur::set_unraisable_hook(nullptr); }
  UnraisableRecorder(const UnraisableRecorder&) = delete;
  UnraisableRecorder& operator=(const UnraisableRecorder&) = delete;

  struct Entry {
    std::string context;
    std::string what;
  };
  std::vector<Entry> get() const {
    std::lock_guard g(m());
    return entries();
  }
  std::size_t count() const { return get().size(); }

 private:
  static std::mutex& m() {
    static std::mutex mu;
    return mu;
  }
  static std::vector<Entry>& entries() {
    static std::vector<Entry> e;
    return e;
  }
  static void hook(const std::string& context, const std::exception_ptr& e) {
    std::string what;
    try {
      if (e) std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
      what = "?";
    }
    std::lock_guard g(m());
    entries().push_back({context, what});
  }
};

}  // namespace concur::test
