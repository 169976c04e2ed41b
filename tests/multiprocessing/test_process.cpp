// mp::Process (spawned: this test binary started again), exit codes (negative for a signal),
// join with a timeout, terminate/kill, names, active_children, daemon flag; Pipe/Connection:
// objects and bytes both ways, poll, EOF, a closed peer, maxlength, big messages; the worker
// entry's error for a binary mismatch; no zombies.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "multiprocessing/fork_support.hpp"
#include <gtest/gtest.h>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;
using concur::test::read_file;
using namespace std::chrono_literals;

namespace {

void exit_with(int code) { ::_exit(code); }
void sleep_then_exit(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
void throws(std::string message) { throw std::runtime_error(message); }
void report_name(std::string path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) ::_exit(3);
  std::fprintf(f, "%s %d", mp::current_process().name.c_str(), static_cast<int>(::getpid()));
  std::fclose(f);
}

bool no_children_left() {
  siginfo_t info{};
  int r = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  return r != 0 && errno == ECHILD;
}

/// The children of this process now, with their names (for failure messages).
std::string children() {
  std::string out;
  const std::string me = std::to_string(::getpid());
  FILE* f = ::popen(("ps -o pid=,stat=,comm= --ppid " + me).c_str(), "r");
  if (f == nullptr) return "?";
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) out += line;
  ::pclose(f);
  return out;
}

/// Waits (at most 20 s) until `pid` has exited, without reaping it.
void wait_exited(pid_t pid) {
  for (int i = 0; i < 2000; ++i) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) return;
    std::this_thread::sleep_for(10ms);
  }
}

}  // namespace

TEST(Process, RunsTheTargetAndReportsTheExitCode) {
  mp::Process ok(sleep_then_exit, 10);
  EXPECT_FALSE(ok.pid());
  EXPECT_FALSE(ok.exitcode());
  ok.start();
  ASSERT_TRUE(ok.pid());
  EXPECT_NE(*ok.pid(), ::getpid());
  ok.join();
  EXPECT_EQ(ok.exitcode(), 0);
  EXPECT_FALSE(ok.is_alive());
  EXPECT_THROW(ok.start(), std::logic_error);

  mp::Process seven(exit_with, 7);
  seven.start();
  seven.join();
  EXPECT_EQ(seven.exitcode(), 7);

  mp::Process bad(throws, std::string("boom"));  // an exception: printed, exit code 1 (as Python)
  bad.start();
  bad.join();
  EXPECT_EQ(bad.exitcode(), 1);
  EXPECT_TRUE(no_children_left());
}

TEST(Process, JoinTimeoutTerminateAndKill) {
  mp::Process p(sleep_then_exit, 10000);
  p.start();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.join(100ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 90ms);
  EXPECT_TRUE(p.is_alive());
  EXPECT_EQ(mp::active_children(), std::vector<pid_t>{*p.pid()});
  p.terminate();
  EXPECT_TRUE(p.join(5s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  mp::Process k(sleep_then_exit, 10000);
  k.start();
  k.kill();
  k.join();
  EXPECT_EQ(k.exitcode(), -SIGKILL);
  EXPECT_TRUE(mp::active_children().empty());
  EXPECT_TRUE(no_children_left());
}

TEST(Process, NamesAndCurrentProcess) {
  EXPECT_EQ(mp::current_process().name, "MainProcess");
  EXPECT_EQ(mp::current_process().pid, ::getpid());
  std::string path = "/tmp/concur-mp-name-" + std::to_string(::getpid());
  mp::Process p(report_name, path);
  EXPECT_EQ(p.name().rfind("Process-", 0), 0u);
  p.set_name("worker-a");
  p.set_daemon(true);
  EXPECT_TRUE(p.daemon());
  p.start();
  EXPECT_THROW(p.set_daemon(false), std::logic_error);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(read_file(path), "worker-a " + std::to_string(*p.pid()));
  std::remove(path.c_str());
}

TEST(Process, AProcessDestroyedAfterItEndedLeavesNoZombie) {
  {
    mp::Process p(sleep_then_exit, 1);
    p.start();
    wait_exited(*p.pid());  // ended, not joined: the destructor reaps it
  }
  EXPECT_TRUE(no_children_left()) << children();
}

TEST(Pipe, ObjectsAndBytesBothWays) {
  auto [a, b] = mp::Pipe();
  a.send(std::string("hi"));
  EXPECT_TRUE(b.poll(1s));
  EXPECT_EQ(b.recv<std::string>(), "hi");
  b.send(std::vector<int>{1, 2, 3});
  EXPECT_EQ(a.recv<std::vector<int>>(), (std::vector<int>{1, 2, 3}));
  a.send_bytes("raw");
  EXPECT_EQ(b.recv_bytes(), "raw");
  a.send_bytes("");
  EXPECT_EQ(b.recv_bytes(), "");
  EXPECT_FALSE(b.poll());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(b.poll(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 40ms);
  a.send_bytes(std::string(100, 'x'));
  EXPECT_THROW((void)b.recv_bytes(10), concur::OSError);  // over maxlength
}

TEST(Pipe, BigMessagesAcrossAProcess) {
  auto [a, b] = mp::Pipe();
  const std::string big(8 << 20, 'b');
  pid_t pid = ::fork();
  if (pid == 0) {  // echo one message back, then exit
    a.close();
    std::string m = b.recv_bytes();
    b.send_bytes(m);
    ::_exit(0);
  }
  b.close();
  std::thread sender([&] { a.send_bytes(big); });
  std::string back = a.recv_bytes();
  sender.join();
  EXPECT_EQ(back.size(), big.size());
  EXPECT_EQ(back, big);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(Pipe, EofAndAClosedPeerAreClearErrors) {
  auto [a, b] = mp::Pipe();
  a.close();
  EXPECT_TRUE(b.poll(1s));  // EOF is readable
  EXPECT_THROW((void)b.recv<int>(), mp::EOFError);
  EXPECT_THROW(b.send(1), concur::BrokenPipeError);
  EXPECT_THROW(a.send(1), std::logic_error);  // this end is closed
  auto [r, w] = mp::Pipe(false);
  EXPECT_TRUE(r.readable());
  EXPECT_FALSE(r.writable());
  w.send(5);
  EXPECT_EQ(r.recv<int>(), 5);
  EXPECT_THROW(r.send(1), std::logic_error);
  EXPECT_THROW((void)w.recv<int>(), std::logic_error);
}

TEST(Pipe, AMessageCutShortIsEofError) {
  auto [a, b] = mp::Pipe();
  // A length prefix promising 100 bytes, 3 bytes, then EOF.
  unsigned char hdr[8] = {100, 0, 0, 0, 0, 0, 0, 0};
  ASSERT_EQ(::write(a.fileno(), hdr, 8), 8);
  ASSERT_EQ(::write(a.fileno(), "abc", 3), 3);
  a.close();
  try {
    (void)b.recv_bytes();
    ADD_FAILURE();
  } catch (const mp::EOFError& e) {
    EXPECT_NE(std::string(e.what()).find("3 of 100"), std::string::npos) << e.what();
  }
}

TEST(CodeIdentity, UnknownBuildIdIsACodeMismatch) {
  mp::detail::CodeRef ref = mp::detail::code_ref(reinterpret_cast<const void*>(&exit_with));
  EXPECT_FALSE(ref.build_id.empty());
  EXPECT_EQ(mp::detail::resolve(ref), reinterpret_cast<const void*>(&exit_with));
  ref.build_id = "00ff";
  EXPECT_THROW((void)mp::detail::resolve(ref), mp::CodeMismatchError);
}

TEST(Process, OutlivesTheThreadThatStartedIt) {
  // Dying with the parent means the parent process, not the thread that called start().
  std::unique_ptr<mp::Process> p;
  std::thread([&p] {
    p = std::make_unique<mp::Process>(sleep_then_exit, 300);
    p->start();
  }).join();
  ASSERT_TRUE(p->join(10s));
  EXPECT_EQ(p->exitcode(), 0);
}

namespace {
int times_two(int x) { return 2 * x; }
int crash_if_three(int x) {
  if (x == 3) ::_exit(9);
  return x;
}
struct StartMethodGuard {
  ~StartMethodGuard() { mp::set_start_method("spawn"); }
};
}  // namespace

TEST(StartMethod, ForkRunsProcessesAndPoolsToo) {
  EXPECT_EQ(mp::get_start_method(), "spawn");
  EXPECT_EQ(mp::get_all_start_methods(), (std::vector<std::string>{"spawn", "fork", "forkserver"}));
  EXPECT_THROW(mp::set_start_method("teleport"), std::invalid_argument);
  StartMethodGuard restore;
  mp::set_start_method("fork");
  EXPECT_EQ(mp::get_start_method(), "fork");
  mp::Process p(exit_with, 5);
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 5);
  {
    mp::Pool pool(2);
    EXPECT_EQ(pool.map(times_two, std::vector<int>{1, 2, 3}), (std::vector<int>{2, 4, 6}));
    auto bad = pool.apply_async(crash_if_three, 3);
    EXPECT_THROW((void)bad.get(10s), mp::BrokenProcessPool);
    EXPECT_EQ(pool.apply(crash_if_three, 4), 4);
  }
  EXPECT_TRUE(no_children_left()) << children();
}
