// asyncio subprocesses: communicate (small, 1 MiB each way, stdout+stderr at once), the stream
// options (PIPE, STDOUT, DEVNULL, inherit), return codes (exit codes, negative signals),
// terminate/kill, a child killed mid-output, exec errors, cwd/env, cancel safety of wait() and
// communicate(), the pidfd-less polling fallback, a two-process pipeline through the parent.
// After each test: no leaked file descriptor, no child left (no zombie). Both backends.
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "aio_support.hpp"
#include <gtest/gtest.h>

#include "concur/asyncio.hpp"

namespace aio = concur::asyncio;
using namespace std::chrono_literals;

namespace {

using concur::test::open_fd_count;

/// Processes whose parent is this process (zombies included), from /proc.
int child_count() {
  int n = 0;
  const pid_t me = ::getpid();
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
      std::string line;
      if (!std::getline(f, line)) continue;
      auto close_paren = line.rfind(')');
      if (close_paren == std::string::npos) continue;
      char state = 0;
      int ppid = 0;
      if (std::sscanf(line.c_str() + close_paren + 1, " %c %d", &state, &ppid) == 2 && ppid == me) ++n;
    }
    ::closedir(d);
  }
  return n;
}

class SubprocessTest : public concur::test::BackendTest {
 protected:
  void SetUp() override { fds_before_ = open_fd_count(); }
  void TearDown() override {
    EXPECT_EQ(open_fd_count(), fds_before_) << "file descriptors leaked";
    EXPECT_EQ(child_count(), 0) << "a child process (or zombie) is left";
    int status = 0;
    errno = 0;
    pid_t r = ::waitpid(-1, &status, WNOHANG);
    EXPECT_TRUE(r == 0 || (r < 0 && errno == ECHILD)) << "waitpid(-1) reaped " << r;
  }
  int fds_before_ = 0;
};

aio::SubprocessOptions pipes(bool in, bool out, bool err) {
  aio::SubprocessOptions o;
  if (in) o.stdin_ = aio::PIPE;
  if (out) o.stdout_ = aio::PIPE;
  if (err) o.stderr_ = aio::PIPE;
  return o;
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  unsigned x = seed;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>('a' + (x >> 16) % 26);
  }
  return s;
}

struct Result {
  std::string out, err;
  int rc = -1000;
};

aio::Coro<Result> run_exec(std::string prog, std::vector<std::string> args, aio::SubprocessOptions o,
                           std::string input) {
  aio::Process p = co_await aio::create_subprocess_exec(std::move(prog), std::move(args), std::move(o));
  auto [out, err] = co_await p.communicate(std::move(input));
  Result r;
  r.out = out;
  r.err = err;
  r.rc = *p.returncode();
  EXPECT_EQ(co_await p.wait(), r.rc);
  co_return r;
}

aio::Coro<Result> run_shell(std::string cmd, aio::SubprocessOptions o, std::string input = {}) {
  aio::Process p = co_await aio::create_subprocess_shell(std::move(cmd), std::move(o));
  auto [out, err] = co_await p.communicate(std::move(input));
  Result r;
  r.out = out;
  r.err = err;
  r.rc = co_await p.wait();
  co_return r;
}

}  // namespace

TEST_P(SubprocessTest, CatEchoesThroughCommunicate) {
  Result r = run_main([] { return run_exec("cat", {}, pipes(true, true, false), "hello\nworld\n"); });
  EXPECT_EQ(r.out, "hello\nworld\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.rc, 0);
}

TEST_P(SubprocessTest, OneMebibyteEachWay) {
  const std::string input = pattern(1 << 20, 7);
  Result r = run_main([&] { return run_exec("cat", {}, pipes(true, true, false), input); });
  EXPECT_EQ(r.out.size(), input.size());
  EXPECT_TRUE(r.out == input);
  EXPECT_EQ(r.rc, 0);
}

TEST_P(SubprocessTest, LargeStdoutAndStderrAtOnceDoNotDeadlock) {
  // 1 MiB in through stdin and out through stdout while 1 MiB goes to stderr concurrently.
  const std::string input = pattern(1 << 20, 11);
  Result r = run_main([&] {
    return run_shell("head -c 1048576 /dev/zero | tr '\\0' e >&2 & cat; wait", pipes(true, true, true), input);
  });
  EXPECT_TRUE(r.out == input);
  EXPECT_EQ(r.err, std::string(1 << 20, 'e'));
  EXPECT_EQ(r.rc, 0);
}

TEST_P(SubprocessTest, StdoutAndStderrSeparately) {
  Result r = run_main([] { return run_shell("echo out; echo err >&2; exit 4", pipes(false, true, true)); });
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.rc, 4);
}

TEST_P(SubprocessTest, StderrToStdout) {
  Result r = run_main([] {
    aio::SubprocessOptions o = pipes(false, true, false);
    o.stderr_ = aio::STDOUT;
    return run_shell("echo one; echo two >&2; echo three", o);
  });
  EXPECT_EQ(r.out, "one\ntwo\nthree\n");
  EXPECT_EQ(r.err, "");
}

TEST_P(SubprocessTest, Devnull) {
  Result r = run_main([] {
    aio::SubprocessOptions o = pipes(false, false, true);
    o.stdout_ = aio::DEVNULL;
    return run_shell("echo hidden; echo shown >&2", o);
  });
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "shown\n");
  Result r2 = run_main([] {
    aio::SubprocessOptions o = pipes(false, true, false);
    o.stdin_ = aio::DEVNULL;
    return run_exec("cat", {}, o, "");
  });
  EXPECT_EQ(r2.out, "");
  EXPECT_EQ(r2.rc, 0);
}

TEST_P(SubprocessTest, ReturnCodesForExitAndSignals) {
  run_main([]() -> aio::Coro<void> {
    const std::vector<std::string> none;
    const aio::SubprocessOptions inherit;
    EXPECT_EQ((co_await run_exec("true", none, inherit, "")).rc, 0);
    EXPECT_EQ((co_await run_exec("false", none, inherit, "")).rc, 1);
    EXPECT_EQ((co_await run_shell("exit 42", inherit)).rc, 42);
    EXPECT_EQ((co_await run_shell("kill -TERM $$", inherit)).rc, -SIGTERM);
    EXPECT_EQ((co_await run_shell("kill -KILL $$", inherit)).rc, -SIGKILL);
    EXPECT_EQ((co_await run_shell("kill -USR1 $$", inherit)).rc, -SIGUSR1);
  });
}

TEST_P(SubprocessTest, ManyConcurrentChildren) {
  std::vector<int> codes = run_main([]() -> aio::Coro<std::vector<int>> {
    std::vector<aio::Coro<Result>> runs;
    const aio::SubprocessOptions inherit;
    for (int i = 0; i < 20; ++i) runs.push_back(run_shell("exit " + std::to_string(i), inherit));
    std::vector<Result> rs = co_await aio::gather(std::move(runs));
    std::vector<int> out;
    for (auto& r : rs) out.push_back(r.rc);
    co_return out;
  });
  ASSERT_EQ(codes.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(codes[static_cast<std::size_t>(i)], i);
}

aio::Coro<int> stop_sleeper(bool use_kill) {
  std::vector<std::string> args{"30"};
  aio::Process p = co_await aio::create_subprocess_exec("sleep", args);
  EXPECT_GT(p.pid(), 0);
  EXPECT_FALSE(p.returncode().has_value());
  co_await aio::sleep(20ms);
  EXPECT_FALSE(p.returncode().has_value());
  if (use_kill) {
    p.kill();
  } else {
    p.terminate();
  }
  int rc = co_await p.wait();
  EXPECT_EQ(p.returncode(), rc);
  p.send_signal(SIGKILL);  // after the reap: nothing (the pid may be someone else's)
  co_return rc;
}

TEST_P(SubprocessTest, TerminateAndKillASleeper) {
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_main([] { return stop_sleeper(false); }), -SIGTERM);
  EXPECT_EQ(run_main([] { return stop_sleeper(true); }), -SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

aio::Coro<void> killed_mid_output() {
  std::vector<std::string> args;
  aio::Process p = co_await aio::create_subprocess_exec("yes", args, pipes(false, true, false));
  std::string first = co_await p.stdout_().readexactly(64 * 1024);
  EXPECT_EQ(first.substr(0, 4), "y\ny\n");
  p.kill();
  std::string rest = co_await p.stdout_().read();  // up to EOF: no error
  EXPECT_TRUE(p.stdout_().at_eof());
  EXPECT_EQ(rest.find_first_not_of("y\n"), std::string::npos);
  EXPECT_EQ(co_await p.wait(), -SIGKILL);
  EXPECT_EQ(co_await p.stdout_().read(), "");
}

TEST_P(SubprocessTest, KilledMidOutputReaderSeesEof) {
  run_main([] { return killed_mid_output(); });
}

aio::Coro<void> exec_errors() {
  std::vector<std::string> none;
  try {
    (void)co_await aio::create_subprocess_exec("concur-no-such-program", none);
    ADD_FAILURE() << "expected OSError";
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.errno_code(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("concur-no-such-program"), std::string::npos) << e.what();
  }
  try {
    (void)co_await aio::create_subprocess_exec("/nonexistent/dir/prog", none, pipes(true, true, true));
    ADD_FAILURE() << "expected OSError";
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.errno_code(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/prog"), std::string::npos) << e.what();
  }
  try {
    (void)co_await aio::create_subprocess_exec("/etc/passwd", none, pipes(true, true, false));
    ADD_FAILURE() << "expected OSError";
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.errno_code(), EACCES);
  }
  try {
    aio::SubprocessOptions o;
    o.cwd = "/nonexistent-cwd-for-concur";
    (void)co_await aio::create_subprocess_exec("true", none, o);
    ADD_FAILURE() << "expected OSError";
  } catch (const concur::OSError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-cwd-for-concur"), std::string::npos) << e.what();
  }
  aio::SubprocessOptions bad;
  bad.stdout_ = aio::STDOUT;
  EXPECT_THROW((void)co_await aio::create_subprocess_exec("true", none, bad), std::invalid_argument);
}

TEST_P(SubprocessTest, ExecOfAMissingProgramRaises) {
  run_main([] { return exec_errors(); });
}

TEST_P(SubprocessTest, CwdAndEnv) {
  char tmpl[] = "/tmp/concur-subprocess-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  char* real = ::realpath(tmpl, nullptr);
  std::string real_dir = real;
  ::free(real);
  Result r = run_main([&] {
    aio::SubprocessOptions o = pipes(false, true, false);
    o.cwd = dir;
    return run_exec("pwd", {"-P"}, o, "");
  });
  EXPECT_EQ(r.out, real_dir + "\n");
  Result r2 = run_main([] {
    aio::SubprocessOptions o = pipes(false, true, false);
    o.env = std::vector<std::string>{"FOO=bar baz", "PATH=/usr/bin:/bin"};
    return run_shell("echo \"$FOO\"; echo \"${HOME-unset}\"", o);
  });
  EXPECT_EQ(r2.out, "bar baz\nunset\n");
  // No PATH in env: the default path (/bin:/usr/bin) still finds sh.
  Result r3 = run_main([] {
    aio::SubprocessOptions o = pipes(false, true, false);
    o.env = std::vector<std::string>{"X=1"};
    return run_exec("sh", {"-c", "echo $X"}, o, "");
  });
  EXPECT_EQ(r3.out, "1\n");
  ::rmdir(dir.c_str());
}

aio::Coro<void> wait_cancelled_then_again() {
  std::vector<std::string> args{"30"};
  aio::Process p = co_await aio::create_subprocess_exec("sleep", args);
  EXPECT_THROW((void)co_await aio::wait_for(p.wait(), 50ms), concur::TimeoutError);
  EXPECT_FALSE(p.returncode().has_value());
  EXPECT_EQ(::kill(p.pid(), 0), 0);  // still running
  aio::Task<int> waiter = aio::create_task(p.wait());
  co_await aio::sleep(10ms);
  waiter.cancel();
  EXPECT_THROW((void)co_await waiter, concur::CancelledError);
  p.kill();
  EXPECT_EQ(co_await p.wait(), -SIGKILL);
  EXPECT_EQ(co_await p.wait(), -SIGKILL);
}

TEST_P(SubprocessTest, WaitCancelledThenAwaitedAgain) {
  run_main([] { return wait_cancelled_then_again(); });
}

aio::Coro<void> communicate_cancelled() {
  aio::Process p = co_await aio::create_subprocess_shell("echo start; read line; echo got $line; exec sleep 30",
                                                         pipes(true, true, false));
  // communicate() times out (the child sleeps): the child runs on and nothing is lost.
  EXPECT_THROW((void)co_await aio::wait_for(p.communicate("ping\n"), 300ms), concur::TimeoutError);
  EXPECT_FALSE(p.returncode().has_value());
  EXPECT_EQ(co_await p.stdout_().readline(), "start\n");
  EXPECT_EQ(co_await p.stdout_().readline(), "got ping\n");
  p.terminate();
  auto [out, err] = co_await p.communicate();
  EXPECT_EQ(out, "");
  EXPECT_EQ(err, "");
  EXPECT_EQ(p.returncode(), -SIGTERM);
}

TEST_P(SubprocessTest, CommunicateCancelledLeavesTheProcessUsable) {
  run_main([] { return communicate_cancelled(); });
}

aio::Coro<void> drop_handles(std::vector<int>* pids) {
  for (int i = 0; i < 10; ++i) {
    aio::Process p = co_await aio::create_subprocess_shell("exit 3", pipes(false, true, false));
    pids->push_back(p.pid());
  }  // every handle dropped before the child exits
  // The loop still reaps them: wait until no child is left.
  for (int i = 0; i < 500 && child_count() > 0; ++i) co_await aio::sleep(10ms);
  EXPECT_EQ(child_count(), 0);
}

TEST_P(SubprocessTest, NoZombiesWhenHandlesAreDroppedEarly) {
  std::vector<int> pids;
  run_main([&] { return drop_handles(&pids); });
  EXPECT_EQ(pids.size(), 10u);
}

aio::Coro<int> leave_running() {
  std::vector<std::string> args{"30"};
  aio::Process p = co_await aio::create_subprocess_exec("sleep", args, pipes(true, true, true));
  co_return p.pid();
}

TEST_P(SubprocessTest, LoopCloseKillsAndReapsARunningChild) {
  int pid = run_main([] { return leave_running(); });
  EXPECT_GT(pid, 0);
  EXPECT_EQ(child_count(), 0);
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

aio::Coro<void> pump(aio::StreamReader from, aio::StreamWriter to) {
  for (;;) {
    std::string chunk = co_await from.read(4096);
    if (chunk.empty()) break;
    to.write(chunk);
    co_await to.drain();
  }
  to.close();
}

aio::Coro<void> feed(aio::StreamWriter w, std::string input) {
  w.write(input);
  co_await w.drain();
  w.close();
}

aio::Coro<std::string> two_stage_pipeline(std::string input) {
  // tr a-z A-Z | sort, the first stage's output fed to the second through this process.
  std::vector<std::string> tr_args{"a-z", "A-Z"};
  aio::Process tr = co_await aio::create_subprocess_exec("tr", tr_args, pipes(true, true, false));
  std::vector<std::string> sort_args;
  aio::SubprocessOptions so = pipes(true, true, false);
  so.env = std::vector<std::string>{"LC_ALL=C", "PATH=/usr/bin:/bin"};
  aio::Process sort = co_await aio::create_subprocess_exec("sort", sort_args, so);
  aio::Task<void> feeding = aio::create_task(feed(tr.stdin_(), std::move(input)));
  aio::Task<void> between = aio::create_task(pump(tr.stdout_(), sort.stdin_()));
  // Not sort.communicate(): that would close sort's stdin, which the pump writes to.
  std::string sorted = co_await sort.stdout_().read();
  co_await between;
  co_await feeding;
  EXPECT_EQ(co_await tr.wait(), 0);
  EXPECT_EQ(co_await sort.wait(), 0);
  co_return sorted;
}

TEST_P(SubprocessTest, PipelineOfTwoProcessesThroughTheParent) {
  std::string input;
  std::vector<std::string> lines;
  for (int i = 999; i >= 0; --i) {
    std::string l = "line" + std::to_string(i % 10) + "-" + std::to_string(i);
    input += l + "\n";
    for (auto& c : l) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    lines.push_back(l);
  }
  std::sort(lines.begin(), lines.end());
  std::string expected;
  for (auto& l : lines) expected += l + "\n";
  std::string got = run_main([&] { return two_stage_pipeline(input); });
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << got.substr(0, 200);
}

aio::Coro<void> streaming_lines() {
  aio::Process p =
      co_await aio::create_subprocess_shell("for i in 1 2 3; do echo line $i; done; exit 7", pipes(false, true, false));
  std::vector<std::string> lines;
  for (;;) {
    std::string l = co_await p.stdout_().readline();
    if (l.empty()) break;
    lines.push_back(l);
  }
  EXPECT_EQ(lines, (std::vector<std::string>{"line 1\n", "line 2\n", "line 3\n"}));
  EXPECT_EQ(co_await p.wait(), 7);
  EXPECT_THROW((void)p.stdin_(), std::logic_error);
  EXPECT_FALSE(p.has_stderr());
}

TEST_P(SubprocessTest, ReadlineFromStdoutAndShell) {
  run_main([] { return streaming_lines(); });
  Result r = run_main([] { return run_shell("echo $((6 * 7))", pipes(false, true, false)); });
  EXPECT_EQ(r.out, "42\n");
}

aio::Coro<void> child_exits_without_reading_stdin() {
  // The child never reads: communicate's input meets a broken pipe, which is not an error.
  aio::Process p = co_await aio::create_subprocess_shell("exec 0<&-; echo done", pipes(true, true, false));
  auto [out, err] = co_await p.communicate(std::string(4 << 20, 'x'));
  EXPECT_EQ(out, "done\n");
  EXPECT_EQ(p.returncode(), 0);
}

TEST_P(SubprocessTest, ChildThatDoesNotReadItsInput) {
  run_main([] { return child_exits_without_reading_stdin(); });
}

aio::Coro<void> write_to_an_exited_child() {
  std::vector<std::string> none;
  aio::Process p = co_await aio::create_subprocess_exec("true", none, pipes(true, false, false));
  EXPECT_EQ(co_await p.wait(), 0);
  p.stdin_().write(std::string(1 << 20, 'x'));
  EXPECT_THROW(co_await aio::wait_for(p.stdin_().drain(), 5s), concur::ConnectionError);
  p.stdin_().close();
}

TEST_P(SubprocessTest, WritingToAnExitedChildIsABrokenPipe) {
  run_main([] { return write_to_an_exited_child(); });
}

TEST_P(SubprocessTest, PollingFallbackWithoutPidfd) {
  aio::detail::set_use_pidfd(false);
  Result r = run_main([] { return run_exec("cat", {}, pipes(true, true, false), "polled\n"); });
  EXPECT_EQ(r.out, "polled\n");
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(run_main([] { return stop_sleeper(true); }), -SIGKILL);
  std::vector<int> pids;
  run_main([&] { return drop_handles(&pids); });
  int pid = run_main([] { return leave_running(); });
  EXPECT_GT(pid, 0);
  aio::detail::set_use_pidfd(true);
}

INSTANTIATE_TEST_SUITE_P(Backends, SubprocessTest, ::testing::ValuesIn(concur::test::loop_backends()),
                         concur::test::backend_param_name);
