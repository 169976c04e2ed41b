// `concur tour --report PATH`: one self-contained HTML file with a timeline per model per demo,
// checked as text and rendered in headless Chromium (every lane laid out, with a visible label);
// `concur tour --python`: Python's rows next to concur's.
#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "tool/tool_support.hpp"
#include <gtest/gtest.h>

using concur::test::count_of;
using concur::test::quote;
using concur::test::run_command;

namespace {

const char* kQuickTour = " tour --io-jobs 10 --io-delay-ms 2 --cpu-base 100000 --cpu-count 6 --no-progress";

/// The data-lane attributes of a file, in order (as written: XML-escaped).
std::vector<std::string> lane_attributes(const std::string& text) {
  std::vector<std::string> out;
  static const std::regex re("<g class=\"lane\" data-lane=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1].str());
  return out;
}

std::string find_chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (::access(c, X_OK) == 0) return c;
  return "";
}

class Report : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = concur::test::concur_binary();
    if (bin_.empty()) GTEST_SKIP() << "the concur program is not built (CLI11 missing)";
    ASSERT_FALSE(dir_.path().empty());
  }
  /// Runs the quick tour with --report; returns the report's text.
  std::string make_report() {
    report_ = dir_.path() / "report.html";
    auto r = run_command(quote(bin_) + kQuickTour + " --report " + quote(report_.string()));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Report with a timeline per model: "), std::string::npos) << r.output;
    return concur::test::read_file(report_);
  }
  std::string bin_;
  concur::test::TempDir dir_;
  std::filesystem::path report_;
};

TEST_F(Report, HasATimelinePerModelPerDemoAndNeedsNothingElse) {
  const std::string html = make_report();
  ASSERT_NE(html.find("</html>"), std::string::npos);
  // 5 CPU models + 4 I/O models, each with its timeline.
  EXPECT_EQ(count_of(html, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\""), 9u);
  EXPECT_EQ(count_of(html, "<section class=\"demo\">"), 2u);
  // Self-contained: no script, no external resource of any kind.
  for (const char* bad : {"<script", " src=", " href=", "url(", "@import", "<link"})
    EXPECT_EQ(html.find(bad), std::string::npos) << bad;
  const auto lanes = lane_attributes(html);
  const std::set<std::string> names(lanes.begin(), lanes.end());
  EXPECT_EQ(names.count("serial#0 worker 0"), 1u);
  EXPECT_EQ(names.count("download 1 (asyncio task)"), 1u);
  EXPECT_EQ(names.count("download 10 (asyncio task)"), 1u);
  EXPECT_EQ(names.count("sum 1 (asyncio task)"), 1u);  // the CPU demo's coroutines
  EXPECT_EQ(names.count("sum 6 (asyncio task)"), 1u);
  int pool_lanes = 0, thread_lanes = 0;
  for (const auto& n : lanes) {
    pool_lanes += n.rfind("Pool#", 0) == 0;
    thread_lanes += n.rfind("ThreadPoolExecutor-", 0) == 0;
  }
  EXPECT_GE(pool_lanes, 2);    // at least one worker process in each demo's Pool model
  EXPECT_GE(thread_lanes, 3);  // the CPU demo's two pools and the I/O demo's
  // The table has the issue's columns.
  for (const char* col : {"<th>model</th>", "<th>wall</th>", "<th>CPU</th>", "<th>speed-up</th>", "<th>peak mem</th>"})
    EXPECT_NE(html.find(col), std::string::npos) << col;
}

TEST_F(Report, RendersInHeadlessChromiumWithEveryLane) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    if (std::getenv("CI") != nullptr) FAIL() << "chromium is not installed (tools/setup-debian.sh installs it)";
    GTEST_SKIP() << "chromium is not installed";
  }
  const std::string html = make_report();
  const auto expected = lane_attributes(html);
  ASSERT_FALSE(expected.empty());
  // A test page (the report itself has no script) loads the report in a frame and lists every
  // lane with whether its group and its label were laid out with a non-empty box.
  const auto check = dir_.path() / "check.html";
  {
    std::ofstream f(check);
    f << "<!DOCTYPE html><html><body><iframe id=\"f\" src=\"report.html\" width=\"1100\" height=\"900\"></iframe>"
         "<pre id=\"out\">pending</pre><script>\n"
         "document.getElementById('f').onload = () => {\n"
         "  const d = document.getElementById('f').contentDocument;\n"
         "  const rows = [...d.querySelectorAll('g.lane')].map(g => {\n"
         "    const b = g.getBBox(), t = g.querySelector('text.lane-label').getBBox();\n"
         "    return (b.width > 0 && b.height > 0 && t.width > 0 && t.height > 0 ? 'LANE-OK ' : 'LANE-BAD ') +\n"
         "           g.getAttribute('data-lane');\n"
         "  });\n"
         "  document.getElementById('out').textContent = 'SVGS ' + d.querySelectorAll('svg.timeline').length +\n"
         "      '\\n' + rows.join('\\n') + '\\nRENDER-DONE';\n"
         "};\n</script></body></html>\n";
  }
  const auto profile = dir_.path() / "chromium-profile";
  auto r = run_command(quote(chromium) +
                           " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"
                           " --allow-file-access-from-files --virtual-time-budget=20000 --user-data-dir=" +
                           quote(profile.string()) + " --dump-dom " + quote("file://" + check.string()),
                       120);
  ASSERT_EQ(r.exit_code, 0) << r.output.substr(0, 4000);
  // What the page's script wrote into <pre id="out"> (the script's own text is in the dump too).
  const std::size_t from = r.output.find("<pre id=\"out\">"), to = r.output.find("RENDER-DONE</pre>");
  ASSERT_TRUE(from != std::string::npos && to != std::string::npos && from < to) << r.output.substr(0, 4000);
  const std::string out = r.output.substr(from, to - from);
  EXPECT_NE(out.find("SVGS 9\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("LANE-BAD"), std::string::npos) << out;
  // Every lane of the file is in the rendered DOM. The DOM dump escapes text as HTML does; lane
  // names here have no characters it would escape differently from the attribute.
  std::multiset<std::string> rendered;
  static const std::regex re("LANE-OK ([^\n]*)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it)
    rendered.insert((*it)[1].str());
  EXPECT_EQ(rendered.size(), expected.size());
  for (const auto& name : expected)
    EXPECT_EQ(rendered.count(name), std::count(expected.begin(), expected.end(), name)) << name;
}

TEST_F(Report, PrintsATablePerDemoAVerdictAndProgress) {
  // The progress line goes to stderr, which run_command captures too.
  auto r = run_command(quote(bin_) + " tour --io-jobs 20 --io-delay-ms 20 --cpu-base 100000 --cpu-count 6", 120);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string& out = r.output;
  for (const char* progress : {"[cpu 1/5] running serial (for loop)", "[io 4/4] running asyncio"})
    EXPECT_NE(out.find(progress), std::string::npos) << progress << "\n" << out;
  EXPECT_EQ(count_of(out, "   model "), 2u) << out;
  for (const char* col : {"wall", "CPU", "speed-up", "peak mem"}) EXPECT_NE(out.find(col), std::string::npos) << col;
  for (const char* row :
       {"serial (for loop)", "ThreadPoolExecutor(2)", "multiprocessing.Pool()", "serial (one requests-style Session)",
        "ThreadPoolExecutor(5).map + thread-local Session", "asyncio: gather of coroutines (1 thread)",
        "multiprocessing.Pool(5).map", "asyncio: ClientSession + gather (1 thread)"})
    EXPECT_NE(out.find("   " + std::string(row)), std::string::npos) << row << "\n" << out;
  EXPECT_EQ(count_of(out, "(every model gave the same answer: "), 2u) << out;
  EXPECT_EQ(count_of(out, "\n   CPU-bound: "), 1u) << out;
  EXPECT_TRUE(
      std::regex_search(out, std::regex(R"(asyncio ran at [0-9.]+x of serial speed: its coroutines take turns)")))
      << out;
  // The I/O verdict names the fastest model; when it is the event loop, it compares it with the
  // thread pool as the seeds do ("asyncio was N x faster than threads").
  const auto at = out.find("\n   I/O-bound: ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string verdict = out.substr(at, out.find('\n', at + 1) - at);
  if (verdict.find("I/O-bound: asyncio") != std::string::npos) {
    EXPECT_TRUE(std::regex_search(verdict, std::regex(R"(\) and [0-9.]+x faster than ThreadPoolExecutor\(5\))")))
        << verdict;
  } else {
    EXPECT_NE(verdict.find("waiting threads use no CPU"), std::string::npos) << verdict;
  }
}

TEST_F(Report, UnreachableSitesAndAnUnwritableReportFailWithAMessage) {
  auto refused = run_command(quote(bin_) + " tour --demo io --io-jobs 3 --url http://127.0.0.1:1/ --no-progress");
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("concur tour: cannot connect to 127.0.0.1:1"), std::string::npos) << refused.output;
  auto scheme = run_command(quote(bin_) + " tour --demo io --url ftp://example.org/ --no-progress");
  EXPECT_EQ(scheme.exit_code, 1) << scheme.output;
  EXPECT_NE(scheme.output.find("invalid URL 'ftp://example.org/'"), std::string::npos) << scheme.output;
  // A full disk: the measurements are still printed, then the report's failure, and the exit code says so.
  auto full =
      run_command(quote(bin_) + " tour --demo cpu --cpu-base 1000 --cpu-count 4 --no-progress --report /dev/full");
  EXPECT_EQ(full.exit_code, 1) << full.output;
  EXPECT_NE(full.output.find("serial (for loop)"), std::string::npos) << full.output;
  EXPECT_NE(full.output.find("concur tour: cannot write the report to /dev/full"), std::string::npos) << full.output;
}

TEST_F(Report, PythonRowsSitBesideConcurs) {
  if (::access("/usr/bin/python3", X_OK) != 0 ||
      run_command("/usr/bin/python3 -c 'import aiohttp, requests'").exit_code != 0) {
    if (std::getenv("CI") != nullptr) FAIL() << "/usr/bin/python3 with aiohttp and requests is needed";
    GTEST_SKIP() << "/usr/bin/python3 lacks aiohttp or requests";
  }
  auto r = run_command(
      quote(bin_) + " tour --io-jobs 8 --io-delay-ms 2 --cpu-base 20000 --cpu-count 4 --no-progress --python", 120);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "vs Python (CPython "), 2u) << r.output;
  for (const char* row : {"python: serial (for loop)", "python: ThreadPoolExecutor(2) (the GIL)",
                          "python: multiprocessing.Pool()", "python: asyncio: gather of coroutines (1 thread)",
                          "python: serial (one requests.Session)", "python: ThreadPoolExecutor(5)",
                          "python: multiprocessing.Pool(5)", "python: asyncio + aiohttp.ClientSession + gather"})
    EXPECT_NE(r.output.find(row), std::string::npos) << row << "\n" << r.output;
  // In both demos, every model kind has the ratio to its Python counterpart.
  const std::regex ratios(R"(vs Python \(CPython [^)]*\): serial [0-9.]+x, threads [0-9.]+x, processes [0-9.]+x, )"
                          R"(asyncio [0-9.]+x faster with concur)");
  EXPECT_EQ(std::distance(std::sregex_iterator(r.output.begin(), r.output.end(), ratios), std::sregex_iterator()), 2)
      << r.output;
  EXPECT_EQ(r.output.find("gave a different answer"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Python's run failed"), std::string::npos) << r.output;
}

}  // namespace
