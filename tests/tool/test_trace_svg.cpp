// `concur trace TRACE.json --svg OUT.svg`: every lane of a trace becomes a lane of the SVG (names
// escaped), asyncio tasks become lanes with --lanes task, bad input fails cleanly, and a
// CONCUR_TRACE file written by a child process (the concur program itself) draws.
#include <map>
#include <set>
#include <string>

#include "tool/tool_support.hpp"
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "concur/asyncio.hpp"
#include "concur/core/trace.hpp"
#include "concur/futures.hpp"
#include "concur/multiprocessing.hpp"
#include "concur/threading.hpp"

namespace trace = concur::trace;
namespace aio = concur::asyncio;
namespace cf = concur::futures;
namespace mp = concur::multiprocessing;
using concur::test::count_of;
using concur::test::quote;
using concur::test::run_command;
using concur::test::xml_text;
using nlohmann::json;

namespace {

int twice(int x) { return 2 * x; }

aio::Coro<int> napper(int i) {
  co_await aio::sleep(std::chrono::milliseconds(1));
  co_return i;
}

/// Records a little of everything and returns the trace as JSON text.
std::string sample_trace() {
  trace::clear();
  trace::enable();
  {
    cf::ThreadPoolExecutor pool(3);
    std::vector<cf::Future<int>> fs;
    for (int i = 0; i < 12; ++i) fs.push_back(pool.submit([i] { return i; }));
    for (auto& f : fs) (void)f.result();
  }
  auto amain = []() -> aio::Coro<int> {
    std::vector<aio::Task<int>> ts;
    for (int i = 0; i < 3; ++i) ts.push_back(aio::create_task(napper(i)));
    auto rs = co_await aio::gather(std::move(ts));
    co_return static_cast<int>(rs.size());
  };
  (void)aio::run(amain());
  {
    mp::Pool pool(2);
    (void)pool.map(twice, std::vector<int>{1, 2, 3, 4}, 1);
  }
  concur::threading::Thread t({.name = "odd <name> & \"quotes\""}, [] {});
  t.start();
  t.join();
  trace::disable();
  std::string text = trace::to_json(trace::collect());
  trace::clear();
  return text;
}

/// Lane names of a trace that have at least one complete event.
std::set<std::string> lanes_with_events(const json& doc) {
  std::map<std::pair<long, long>, std::string> names;
  for (const auto& e : doc.at("traceEvents"))
    if (e.at("ph") == "M" && e.at("name") == "thread_name")
      names[{e.at("pid").get<long>(), e.at("tid").get<long>()}] = e.at("args").at("name").get<std::string>();
  std::set<std::string> out;
  for (const auto& e : doc.at("traceEvents"))
    if (e.at("ph") == "X") out.insert(names.at({e.at("pid").get<long>(), e.at("tid").get<long>()}));
  return out;
}

class TraceSvg : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = concur::test::concur_binary();
    if (bin_.empty()) GTEST_SKIP() << "the concur program is not built (CLI11 missing)";
    ASSERT_FALSE(dir_.path().empty());
  }
  std::string bin_;
  concur::test::TempDir dir_;
};

TEST_F(TraceSvg, EveryLaneOfTheTraceIsDrawn) {
  const std::string text = sample_trace();
  const auto in = dir_.path() / "trace.json";
  const auto out = dir_.path() / "out.svg";
  {
    std::ofstream f(in);
    f << text;
  }
  auto r = run_command(quote(bin_) + " trace " + quote(in.string()) + " --svg " + quote(out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string svg = concur::test::read_file(out);
  ASSERT_EQ(svg.rfind("<svg", 0), 0u) << svg.substr(0, 200);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  const auto lanes = lanes_with_events(json::parse(text));
  // ThreadPoolExecutor workers (threads), the loop's thread, 2 worker processes, the odd thread.
  EXPECT_GE(lanes.size(), 5u);
  EXPECT_EQ(count_of(svg, "<g class=\"lane\""), lanes.size());
  for (const auto& name : lanes) EXPECT_EQ(count_of(svg, "data-lane=\"" + xml_text(name) + "\""), 1u) << name;
  EXPECT_EQ(count_of(svg, "data-lane=\"odd &lt;name&gt; &amp; &quot;quotes&quot;\""), 1u);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
}

TEST_F(TraceSvg, TaskLanesSplitAsyncioTasks) {
  const auto in = dir_.path() / "trace.json";
  const auto out = dir_.path() / "tasks.svg";
  {
    std::ofstream f(in);
    f << sample_trace();
  }
  auto r = run_command(quote(bin_) + " trace " + quote(in.string()) + " --svg " + quote(out.string()) +
                       " --lanes task --title 'tasks & lanes'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string svg = concur::test::read_file(out);
  // The main task and its three children, each a lane of its own.
  EXPECT_EQ(count_of(svg, "data-lane=\"Task-"), 4u);
  EXPECT_NE(svg.find("tasks &amp; lanes"), std::string::npos);
}

TEST_F(TraceSvg, BadInputFailsWithAMessage) {
  const auto in = dir_.path() / "bad.json";
  {
    std::ofstream f(in);
    f << "{\"traceEvents\": [ {\"ph\": ";
  }
  auto r =
      run_command(quote(bin_) + " trace " + quote(in.string()) + " --svg " + quote((dir_.path() / "x.svg").string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("concur trace: not JSON"), std::string::npos) << r.output;
  r = run_command(quote(bin_) + " trace " + quote((dir_.path() / "missing.json").string()) + " --svg " +
                  quote((dir_.path() / "x.svg").string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot read"), std::string::npos) << r.output;
}

TEST_F(TraceSvg, ConcurTraceEnvironmentRoundTrip) {
  // A child process (the concur program, a plain concur user) records because of CONCUR_TRACE
  // alone and writes the file at exit; the file draws.
  const auto file = dir_.path() / "tour.json";
  auto r = run_command("env CONCUR_TRACE=" + quote(file.string()) + " " + quote(bin_) +
                       " tour --demo io --io-jobs 6 --io-delay-ms 1 --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json doc = json::parse(concur::test::read_file(file));
  std::map<std::string, int> per_cat;
  for (const auto& e : doc.at("traceEvents"))
    if (e.at("ph") == "X") per_cat[e.at("cat").get<std::string>()]++;
  EXPECT_EQ(per_cat["ThreadPoolExecutor"], 6);    // ThreadPoolExecutor(5).map: one task per download
  EXPECT_EQ(per_cat["multiprocessing.Pool"], 6);  // Pool(5).map with chunksize 1
  EXPECT_EQ(per_cat["serial"], 6);
  EXPECT_GT(per_cat["asyncio"], 6);
  const auto svg_path = dir_.path() / "tour.svg";
  r = run_command(quote(bin_) + " trace " + quote(file.string()) + " --svg " + quote(svg_path.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string svg = concur::test::read_file(svg_path);
  EXPECT_EQ(count_of(svg, "<g class=\"lane\""), lanes_with_events(doc).size());
}

}  // namespace
