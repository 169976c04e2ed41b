// Chrome trace-event JSON from concur::trace: valid JSON (parsed with nlohmann_json), one
// complete event per record, names escaped, every lane named; the asyncio loop, threading.Thread,
// multiprocessing.Pool record their work; CONCUR_TRACE=<file> writes the file at exit (child process).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "concur/asyncio.hpp"
#include "concur/core/trace.hpp"
#include "concur/futures.hpp"
#include "concur/multiprocessing.hpp"
#include "concur/threading.hpp"

extern char** environ;

namespace trace = concur::trace;
namespace aio = concur::asyncio;
namespace cf = concur::futures;
namespace mp = concur::multiprocessing;
using nlohmann::json;

namespace {

std::vector<json> complete_events(const json& doc, const std::string& cat) {
  std::vector<json> out;
  for (const auto& e : doc.at("traceEvents"))
    if (e.at("ph") == "X" && e.at("cat") == cat) out.push_back(e);
  return out;
}

std::map<std::pair<long, long>, std::string> lane_names(const json& doc) {
  std::map<std::pair<long, long>, std::string> out;
  for (const auto& e : doc.at("traceEvents"))
    if (e.at("ph") == "M" && e.at("name") == "thread_name")
      out[{e.at("pid").get<long>(), e.at("tid").get<long>()}] = e.at("args").at("name").get<std::string>();
  return out;
}

aio::Coro<int> sleeper(int i) {
  co_await aio::sleep(std::chrono::milliseconds(1));
  co_await aio::sleep(std::chrono::milliseconds(1));
  co_return i;
}

int square(int x) { return x * x; }

TEST(TraceJson, EventsAreValidJsonWithLanesAndTimes) {
  trace::clear();
  trace::Event a;
  a.begin_ns = 1'500;
  a.end_ns = 4'750;
  a.task_id = 7;
  a.pid = 11;
  a.tid = 12;
  a.source = "TestSource";
  a.source_id = 3;
  a.worker = 2;
  trace::Event b = a;
  b.tid = 13;
  b.parent_task = 99;
  b.source = "asyncio";
  const json doc = json::parse(trace::to_json({a, b}));
  auto xs = complete_events(doc, "TestSource");
  ASSERT_EQ(xs.size(), 1u);
  EXPECT_EQ(xs[0].at("name"), "TestSource");
  EXPECT_DOUBLE_EQ(xs[0].at("ts").get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(xs[0].at("dur").get<double>(), 3.25);
  EXPECT_EQ(xs[0].at("pid"), 11);
  EXPECT_EQ(xs[0].at("tid"), 12);
  EXPECT_EQ(xs[0].at("args").at("worker"), 2);
  EXPECT_EQ(xs[0].at("args").at("source_id"), 3);
  auto steps = complete_events(doc, "asyncio");
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].at("name"), "Task-99");
  EXPECT_EQ(steps[0].at("args").at("task"), 99);
  auto lanes = lane_names(doc);
  EXPECT_EQ(lanes.size(), 2u);
  EXPECT_EQ(lanes.count({11, 12}), 1u);
  EXPECT_EQ(lanes.count({11, 13}), 1u);
  // An empty trace is valid too.
  EXPECT_TRUE(json::parse(trace::to_json({})).at("traceEvents").empty());
}

TEST(TraceJson, LaneNamesAreEscaped) {
  const std::string nasty = std::string("a \"quoted\" \\ name\n\t\x01 caf\xc3\xa9 bad\xff\xc0 end");
  trace::name_lane(21, 22, nasty);
  trace::Event e;
  e.pid = 21;
  e.tid = 22;
  e.source = "Escape\"Test";
  e.end_ns = 1;
  std::string text = trace::to_json({e});
  json doc;
  ASSERT_NO_THROW(doc = json::parse(text)) << text;
  const std::string got = lane_names(doc).at({21, 22});
  EXPECT_EQ(got, std::string("a \"quoted\" \\ name\n\t\x01 caf\xc3\xa9 bad\xef\xbf\xbd\xef\xbf\xbd end"));
  EXPECT_EQ(complete_events(doc, "Escape\"Test").size(), 1u);
}

TEST(TraceJson, AsyncioStepsShareTheirTaskId) {
  trace::clear();
  trace::enable();
  std::set<std::string> names;  // the sleepers' get_name(): Python's Task-N, as in the trace
  auto amain = [&names]() -> aio::Coro<int> {
    std::vector<aio::Task<int>> ts;
    for (int i = 0; i < 4; ++i) ts.push_back(aio::create_task(sleeper(i)));
    for (const auto& t : ts) names.insert(t.get_name());
    auto rs = co_await aio::gather(std::move(ts));
    co_return static_cast<int>(rs.size());
  };
  EXPECT_EQ(aio::run(amain()), 4);
  trace::disable();
  const json doc = json::parse(trace::to_json(trace::collect()));
  std::map<long, int> steps_per_task;
  std::set<std::string> traced_names;
  for (const auto& e : complete_events(doc, "asyncio")) {
    EXPECT_EQ(e.at("tid").get<long>(), static_cast<long>(trace::current_tid()));  // the loop ran here
    steps_per_task[e.at("args").at("task").get<long>()]++;
    traced_names.insert(e.at("name").get<std::string>());
  }
  for (const auto& n : names) EXPECT_EQ(traced_names.count(n), 1u) << n;
  // main + 4 sleepers; each sleeper steps 3 times (start, after each sleep).
  EXPECT_EQ(steps_per_task.size(), 5u);
  int threes = 0;
  for (auto& [task, n] : steps_per_task) threes += n == 3;
  EXPECT_EQ(threes, 4);
  trace::clear();
}

TEST(TraceJson, ThreadRunIsOneNamedLane) {
  trace::clear();
  trace::enable();
  concur::threading::Thread t({.name = "worker \"one\""},
                              [] { std::this_thread::sleep_for(std::chrono::milliseconds(1)); });
  t.start();
  t.join();
  trace::disable();
  const json doc = json::parse(trace::to_json(trace::collect()));
  auto runs = complete_events(doc, "threading.Thread");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_GE(runs[0].at("dur").get<double>(), 1000.0);
  auto lanes = lane_names(doc);
  EXPECT_EQ(lanes.at({runs[0].at("pid").get<long>(), runs[0].at("tid").get<long>()}), "worker \"one\"");
  trace::clear();
}

TEST(TraceJson, PoolCallsAreTimedInTheirWorkerProcesses) {
  trace::clear();
  trace::enable();
  const auto t0 = trace::now_ns();
  std::vector<pid_t> pids;
  {
    mp::Pool pool(2);
    std::vector<int> xs{1, 2, 3, 4, 5, 6, 7, 8};
    auto ys = pool.map(square, xs, 1);
    ASSERT_EQ(ys.size(), 8u);
    pids = pool.pids();
  }
  const auto t1 = trace::now_ns();
  trace::disable();
  const json doc = json::parse(trace::to_json(trace::collect()));
  auto calls = complete_events(doc, "multiprocessing.Pool");
  EXPECT_EQ(calls.size(), 8u);
  auto lanes = lane_names(doc);
  for (const auto& e : calls) {
    const long pid = e.at("pid").get<long>();
    EXPECT_NE(pid, static_cast<long>(::getpid()));
    EXPECT_EQ(e.at("tid").get<long>(), pid);  // one lane per worker process
    EXPECT_NE(lanes.at({pid, pid}).find("Pool#"), std::string::npos);
    // The worker's clock is the parent's: its calls fall inside the parent's window.
    EXPECT_GE(e.at("ts").get<double>() * 1000, static_cast<double>(t0) - 1000);
    EXPECT_LE((e.at("ts").get<double>() + e.at("dur").get<double>()) * 1000, static_cast<double>(t1) + 1000);
  }
  trace::clear();
}

TEST(TraceJson, ProcessPoolExecutorCallsAreRecordedToo) {
  trace::clear();
  trace::enable();
  {
    cf::ProcessPoolExecutor ex(cf::ProcessPoolOptions{.max_workers = 1});
    std::vector<cf::Future<int>> fs;
    for (int i = 0; i < 3; ++i) fs.push_back(ex.submit(square, i));
    for (auto& f : fs) (void)f.result();
  }
  trace::disable();
  const json doc = json::parse(trace::to_json(trace::collect()));
  auto calls = complete_events(doc, "ProcessPoolExecutor");  // its own category, on the Pool's engine
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_TRUE(complete_events(doc, "multiprocessing.Pool").empty());
  const long pid = calls[0].at("pid").get<long>();
  EXPECT_NE(pid, static_cast<long>(::getpid()));
  EXPECT_EQ(lane_names(doc).at({pid, pid}).rfind("ProcessPoolExecutor#", 0), 0u);
  trace::clear();
}

TEST(TraceJson, PoolWorkersStartedByTheForkServerAreTimedToo) {
  mp::set_start_method("forkserver");
  trace::clear();
  trace::enable();
  {
    mp::Pool pool(1);
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}, 1).size(), 3u);
  }
  trace::disable();
  mp::set_start_method("spawn");
  const json doc = json::parse(trace::to_json(trace::collect()));
  EXPECT_EQ(complete_events(doc, "multiprocessing.Pool").size(), 3u);
  trace::clear();
}

// Helper run in a child process by the test below (skipped when run directly).
TEST(TraceJson, EnvChildHelper) {
  if (std::getenv("CONCUR_TRACE_TEST_CHILD") == nullptr)
    GTEST_SKIP() << "runs only as TraceJson.EnvWritesTheFileAtExit's child";
  ASSERT_TRUE(trace::enabled());
  {
    cf::ThreadPoolExecutor pool(2);
    for (int i = 0; i < 10; ++i) pool.submit([] {});
  }
  aio::run(sleeper(1));
  mp::Pool pool(1);
  (void)pool.map(square, std::vector<int>{1, 2, 3}, 1);
}

TEST(TraceJson, EnvWritesTheFileAtExit) {
  const auto path =
      std::filesystem::temp_directory_path() / ("concur_trace_env_" + std::to_string(::getpid()) + ".json");
  std::filesystem::remove(path);
  // posix_spawn, not fork: this process has threads (earlier tests' pools).
  std::vector<std::string> env_store{"CONCUR_TRACE=" + path.string(), "CONCUR_TRACE_TEST_CHILD=1"};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "CONCUR_TRACE", 12) != 0) envp.push_back(*e);
  for (auto& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string filter = "--gtest_filter=TraceJson.EnvChildHelper";
  char* argv[] = {const_cast<char*>("test_trace_json"), filter.data(), nullptr};
  pid_t child = -1;
  ASSERT_EQ(::posix_spawn(&child, "/proc/self/exe", nullptr, nullptr, argv, envp.data()), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  std::ifstream in(path);
  ASSERT_TRUE(in) << "no trace file at " << path;
  json doc;
  ASSERT_NO_THROW(doc = json::parse(in));
  std::filesystem::remove(path);
  EXPECT_EQ(complete_events(doc, "ThreadPoolExecutor").size(), 10u);
  EXPECT_EQ(complete_events(doc, "asyncio").size(), 3u);
  EXPECT_EQ(complete_events(doc, "multiprocessing.Pool").size(), 3u);
  // Every lane that has events is named.
  auto lanes = lane_names(doc);
  for (const auto& e : doc.at("traceEvents"))
    if (e.at("ph") == "X") {
      EXPECT_EQ(lanes.count({e.at("pid").get<long>(), e.at("tid").get<long>()}), 1u);
    }
}

}  // namespace
