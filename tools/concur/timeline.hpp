#pragma once
// Timelines: one lane per thread / worker process / asyncio task, one bar per job, a time axis,
// drawn as self-contained SVG (no script, no external CSS or fonts). `concur trace --svg` and
// the tour's --report both draw with this, from Chrome trace-event JSON as concur::trace writes it.
#include <cstddef>
#include <string>
#include <vector>

namespace concur_tool {

struct Bar {
  double begin_us = 0;  // since the timeline's start
  double end_us = 0;
  std::string label;        // tooltip: what ran
  std::string category;     // picks the colour ("ThreadPoolExecutor", "asyncio", ...)
  bool background = false;  // a lifetime (a thread's run, an asyncio task from first to last step): a thin line
};

struct Lane {
  std::string name;
  std::vector<Bar> bars;
};

struct Timeline {
  std::string title;
  std::vector<Lane> lanes;  // in order of their first bar
  double span_us = 0;       // from the first begin to the last end
};

/// How events become lanes: one per (process, thread), or asyncio steps split into one lane per
/// task (an asyncio task is a lane, its steps the bars; other events stay per thread).
enum class LaneMode { thread, task };

/// Lanes from Chrome trace-event JSON text: complete ("X") events become bars, thread_name
/// metadata names the lanes. Times are made relative to the first event. Throws
/// std::runtime_error on text that is not such JSON.
Timeline timeline_from_json(const std::string& json_text, LaneMode mode = LaneMode::thread, std::string title = "");

struct SvgOptions {
  int width = 960;        // pixels, labels included
  int label_width = 240;  // the lane-name column
  int max_lane_height = 18;
  int max_plot_height = 720;  // lanes shrink (to 5 px) to fit many of them
  double scale_us = 0;        // if longer than the timeline: the axis spans this (timelines drawn to one scale)
};

/// The timeline as one <svg> element (embeddable in HTML, or a file of its own). Every lane is a
/// <g class="lane" data-lane="NAME"> with a visible label; bars that would overlap on screen are
/// merged, so the size is bounded by lanes x width, not by the number of events.
std::string render_svg(const Timeline& t, const SvgOptions& o = {});

/// Text escaped for XML/HTML content and attribute values.
std::string xml_escape(const std::string& s);

}  // namespace concur_tool
