#include "timeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

namespace concur_tool {

namespace {

using nlohmann::json;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

/// "1.25 ms": a time on the axis or in a tooltip.
std::string format_us(double us) {
  if (us >= 1e6) return fmt("%.3g s", us / 1e6);
  if (us >= 1e3) return fmt("%.3g ms", us / 1e3);
  if (us <= 0) return "0";
  return fmt("%.3g us", us);
}

const char* colour_of(const std::string& category) {
  if (category == "ThreadPoolExecutor") return "#4e79a7";
  if (category == "asyncio") return "#d9480f";
  if (category == "asyncio.job") return "#f7b267";
  if (category == "multiprocessing.Pool" || category == "ProcessPoolExecutor") return "#59a14f";
  if (category == "serial") return "#e15759";
  if (category == "python") return "#b07aa1";
  if (category == "threading.Thread") return "#bab0ac";
  return "#76b7b2";
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // XML 1.0 allows no control characters but tab, newline and carriage return.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += ' ';
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

Timeline timeline_from_json(const std::string& json_text, LaneMode mode, std::string title) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("not JSON: ") + e.what());
  }
  const json* events = nullptr;
  if (doc.is_object() && doc.contains("traceEvents") && doc["traceEvents"].is_array()) {
    events = &doc["traceEvents"];
  } else if (doc.is_array()) {
    events = &doc;  // the JSON Array Format of the trace-event spec
  } else {
    throw std::runtime_error("not a Chrome trace: no traceEvents array");
  }

  std::map<std::pair<long long, long long>, std::string> thread_names;
  for (const auto& e : *events) {
    if (!e.is_object() || e.value("ph", "") != "M" || e.value("name", "") != "thread_name") continue;
    if (e.contains("args") && e["args"].is_object() && e["args"].contains("name") && e["args"]["name"].is_string()) {
      thread_names[{e.value("pid", 0LL), e.value("tid", 0LL)}] = e["args"]["name"].get<std::string>();
    }
  }

  struct Raw {
    double begin, end;
    std::string key, lane_name, label, category;
    bool background;
  };
  std::vector<Raw> raws;
  double t0 = INFINITY, t1 = -INFINITY;
  for (const auto& e : *events) {
    if (!e.is_object() || e.value("ph", "") != "X") continue;
    if (!e.contains("ts") || !e["ts"].is_number()) continue;
    const double ts = e["ts"].get<double>();
    const double dur = e.contains("dur") && e["dur"].is_number() ? std::max(0.0, e["dur"].get<double>()) : 0.0;
    const long long pid = e.value("pid", 0LL), tid = e.value("tid", 0LL);
    Raw r;
    r.begin = ts;
    r.end = ts + dur;
    r.category = e.value("cat", "");
    r.label = e.value("name", "");
    r.background = r.category == "threading.Thread";
    auto tn = thread_names.find({pid, tid});
    r.lane_name = tn != thread_names.end() ? tn->second : "pid " + std::to_string(pid) + " tid " + std::to_string(tid);
    r.key = std::to_string(pid) + "/" + std::to_string(tid);
    if (mode == LaneMode::task && e.contains("args") && e["args"].is_object() && e["args"].contains("task") &&
        e["args"]["task"].is_number()) {
      const auto task = e["args"]["task"].get<long long>();
      r.key += "/task" + std::to_string(task);
      r.lane_name = "Task-" + std::to_string(task) + " (" + r.lane_name + ")";
    }
    t0 = std::min(t0, r.begin);
    t1 = std::max(t1, r.end);
    raws.push_back(std::move(r));
  }

  Timeline t;
  t.title = std::move(title);
  if (raws.empty()) return t;
  t.span_us = t1 - t0;
  std::stable_sort(raws.begin(), raws.end(), [](const Raw& a, const Raw& b) { return a.begin < b.begin; });
  std::map<std::string, std::size_t> index;
  std::map<std::size_t, std::pair<double, double>> task_extent;  // task lanes: first begin, last end
  for (auto& r : raws) {
    auto [it, added] = index.try_emplace(r.key, t.lanes.size());
    if (added) t.lanes.push_back(Lane{r.lane_name, {}});
    const std::size_t li = it->second;
    t.lanes[li].bars.push_back(Bar{r.begin - t0, r.end - t0, r.label, r.category, r.background});
    if (r.key.find("/task") != std::string::npos) {
      auto [ext, fresh] = task_extent.try_emplace(li, r.begin - t0, r.end - t0);
      if (!fresh) ext->second.second = std::max(ext->second.second, r.end - t0);
    }
  }
  // An asyncio task's lane also shows its whole life (waiting included) as a thin line.
  for (const auto& [li, ext] : task_extent) {
    auto& bars = t.lanes[li].bars;
    bars.insert(bars.begin(), Bar{ext.first, ext.second, "task alive (steps and waits)", "asyncio", true});
  }
  return t;
}

std::string render_svg(const Timeline& t, const SvgOptions& o) {
  const std::size_t n = t.lanes.size();
  const int top = 26, axis = 30, right = 12;
  const int lane_h = n == 0
                         ? o.max_lane_height
                         : std::clamp(static_cast<int>(o.max_plot_height / static_cast<int>(n)), 5, o.max_lane_height);
  const int plot_h = static_cast<int>(n) * lane_h;
  const int height = top + std::max(plot_h, lane_h) + axis;
  const double x0 = o.label_width, x1 = o.width - right;
  const double span = std::max({t.span_us, o.scale_us, 1.0});
  auto px = [&](double us) { return x0 + us / span * (x1 - x0); };
  const int font = std::clamp(lane_h - 3, 5, 11);

  std::string s;
  s.reserve(4096 + n * 512);
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"" + std::to_string(o.width) +
       "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(o.width) + " " +
       std::to_string(height) + "\" font-family=\"sans-serif\" data-lanes=\"" + std::to_string(n) + "\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  s += "<text x=\"6\" y=\"17\" font-size=\"13\" font-weight=\"bold\">" + xml_escape(t.title) + "</text>\n";
  s += "<text x=\"" + fmt("%.1f", x1) + "\" y=\"17\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">" +
       std::to_string(n) + (n == 1 ? " lane" : " lanes") + ", " + format_us(t.span_us) +
       (o.scale_us > t.span_us ? " (axis shared with the other timelines)" : "") + "</text>\n";
  if (n == 0) {
    s += "<text x=\"" + fmt("%.1f", x0) + "\" y=\"" + std::to_string(top + 13) +
         "\" font-size=\"11\" fill=\"#777\">(no events recorded)</text>\n";
  }

  // Time axis: about 8 ticks at 1, 2 or 5 times a power of ten.
  const double raw_step = span / 8;
  const double mag = std::pow(10.0, std::floor(std::log10(raw_step)));
  const double step = raw_step / mag < 2 ? 2 * mag : raw_step / mag < 5 ? 5 * mag : 10 * mag;
  const int axis_y = top + std::max(plot_h, lane_h);
  s += "<g class=\"axis\" font-size=\"10\" fill=\"#555\" stroke=\"#ddd\">\n";
  for (double v = 0; v <= span * 1.0001; v += step) {
    const std::string x = fmt("%.1f", px(v));
    s += "<line x1=\"" + x + "\" y1=\"" + std::to_string(top) + "\" x2=\"" + x + "\" y2=\"" +
         std::to_string(axis_y + 4) + "\"/><text x=\"" + x + "\" y=\"" + std::to_string(axis_y + 16) +
         "\" text-anchor=\"middle\" stroke=\"none\">" + format_us(v) + "</text>\n";
  }
  s += "</g>\n";

  for (std::size_t i = 0; i < n; ++i) {
    const Lane& lane = t.lanes[i];
    const int y = top + static_cast<int>(i) * lane_h;
    const std::string name = xml_escape(lane.name);
    s += "<g class=\"lane\" data-lane=\"" + name + "\">";
    s += "<title>" + name + "</title>";
    if (i % 2 == 0) {
      s += "<rect x=\"0\" y=\"" + std::to_string(y) + "\" width=\"" + std::to_string(o.width) + "\" height=\"" +
           std::to_string(lane_h) + "\" fill=\"#f4f4f6\"/>";
    }
    std::string shown = lane.name;
    const std::size_t max_chars =
        static_cast<std::size_t>(std::max(8, (o.label_width - 8) * 2 / std::max(font, 1) - 1));
    if (shown.size() > max_chars) shown = shown.substr(0, max_chars - 3) + "...";
    s += "<text class=\"lane-label\" x=\"4\" y=\"" + fmt("%.1f", y + lane_h / 2.0 + font * 0.36) + "\" font-size=\"" +
         std::to_string(font) + "\">" + xml_escape(shown) + "</text>\n";

    // Bars, background lines first; neighbours closer than half a pixel merge into one rect.
    for (int pass = 0; pass < 2; ++pass) {
      const bool bg = pass == 0;
      std::vector<const Bar*> bars;
      for (const Bar& b : lane.bars)
        if (b.background == bg) bars.push_back(&b);
      std::sort(bars.begin(), bars.end(), [](const Bar* a, const Bar* b) { return a->begin_us < b->begin_us; });
      const double bh = bg ? std::max(1.0, lane_h * 0.18) : std::max(2.0, lane_h - 4.0);
      const double by = y + (lane_h - bh) / 2;
      for (std::size_t k = 0; k < bars.size();) {
        double b0 = bars[k]->begin_us, b1 = bars[k]->end_us;
        std::size_t m = k + 1;
        // Merge neighbours that touch on screen while one of them is too thin to see (< 2 px):
        // wide bars stay apart (a white edge shows where one job ends and the next begins).
        while (m < bars.size() && px(bars[m]->begin_us) <= px(b1) + 0.5 && bars[m]->category == bars[k]->category &&
               (bg || px(b1) - px(b0) < 2 || px(bars[m]->end_us) - px(bars[m]->begin_us) < 2)) {
          b1 = std::max(b1, bars[m]->end_us);
          ++m;
        }
        const double w = std::max(bg ? 1.0 : 0.8, px(b1) - px(b0));
        std::string tip = m - k == 1 ? bars[k]->label : std::to_string(m - k) + " x " + bars[k]->label;
        tip += ": " + format_us(b0) + " - " + format_us(b1);
        s += "<rect class=\"" + std::string(bg ? "life" : "bar") + "\" x=\"" + fmt("%.2f", px(b0)) + "\" y=\"" +
             fmt("%.1f", by) + "\" width=\"" + fmt("%.2f", w) + "\" height=\"" + fmt("%.1f", bh) + "\" fill=\"" +
             colour_of(bars[k]->category) + "\"" +
             (bg ? " opacity=\"0.55\"" : " stroke=\"#fff\" stroke-width=\"0.5\"") + "><title>" + xml_escape(tip) +
             "</title></rect>";
        k = m;
      }
    }
    s += "</g>\n";
  }
  s += "</svg>\n";
  return s;
}

}  // namespace concur_tool
