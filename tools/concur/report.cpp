#include "report.hpp"

#include "timeline.hpp"

namespace concur_tool {

std::string render_report(const std::string& heading, const std::string& intro, const std::vector<ReportDemo>& demos) {
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" + xml_escape(heading) +
       "</title>\n<style>\n"
       "body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}\n"
       "h1{font-size:22px}h2{font-size:17px;margin-top:36px}h3{font-size:14px;margin:18px 0 4px}\n"
       "code{background:#f2f2f2;padding:1px 4px}\n"
       "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #ddd}\n"
       "th{text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
       "p.note{font-size:13px}.legend span{display:inline-block;margin-right:14px;font-size:12px}\n"
       ".legend i{display:inline-block;width:12px;height:10px;margin-right:4px}\n"
       "svg.timeline{display:block;border:1px solid #ddd;margin-bottom:8px}\n"
       "</style></head><body>\n";
  h += "<h1>" + xml_escape(heading) + "</h1>\n<p>" + xml_escape(intro) + "</p>\n";
  h += "<p class=\"legend\"><span><i style=\"background:#e15759\"></i>serial job</span>"
       "<span><i style=\"background:#4e79a7\"></i>ThreadPoolExecutor task</span>"
       "<span><i style=\"background:#59a14f\"></i>Pool call (in a worker process)</span>"
       "<span><i style=\"background:#d9480f\"></i>asyncio step (the loop's thread busy)</span>"
       "<span><i style=\"background:#f7b267\"></i>asyncio task (its whole life, waits included)</span>"
       "<span><i style=\"background:#b07aa1\"></i>Python job</span></p>\n";
  for (const auto& d : demos) {
    h += "<section class=\"demo\">\n<h2>" + xml_escape(d.title) + "</h2>\n<p>python: <code>" + xml_escape(d.python) +
         "</code></p>\n<table><tr>";
    for (const auto& c : d.columns) h += "<th>" + xml_escape(c) + "</th>";
    h += "</tr>\n";
    for (const auto& r : d.rows) {
      h += "<tr>";
      for (std::size_t i = 0; i < r.size(); ++i)
        h += (i == 0 ? "<td>" : "<td class=\"num\">") + xml_escape(r[i]) + "</td>";
      h += "</tr>\n";
    }
    h += "</table>\n";
    for (const auto& n : d.notes) h += "<p class=\"note\">" + xml_escape(n) + "</p>\n";
    for (const auto& [name, svg] : d.timelines) {
      h += "<h3>" + xml_escape(name) + "</h3>\n" + svg;
    }
    h += "</section>\n";
  }
  h += "<p class=\"note\">Drawn from the run's own trace (concur::trace); any program writes one with "
       "<code>CONCUR_TRACE=trace.json ./program</code> and draws it with <code>concur trace trace.json --svg "
       "out.svg</code>.</p>\n</body></html>\n";
  return h;
}

}  // namespace concur_tool
