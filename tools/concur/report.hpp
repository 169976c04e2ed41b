#pragma once
// `concur tour --report PATH`: one self-contained HTML file (inline CSS and SVG, no script, no
// network) with each demo's table, verdict and a timeline per model.
#include <string>
#include <utility>
#include <vector>

namespace concur_tool {

struct ReportDemo {
  std::string title;
  std::string python;  // the Python the demo translates
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;                              // verdicts and remarks, one line each
  std::vector<std::pair<std::string, std::string>> timelines;  // model name, <svg> from render_svg
};

/// The whole HTML document.
std::string render_report(const std::string& heading, const std::string& intro, const std::vector<ReportDemo>& demos);

}  // namespace concur_tool
