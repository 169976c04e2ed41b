#pragma once
// A plain-text table: a header row, a rule, then rows; columns sized to their widest cell.
#include <ostream>
#include <string>
#include <vector>

namespace concur_tool {

class Table {
 public:
  enum class Align { left, right };
  struct Column {
    std::string header;
    Align align = Align::left;
  };

  explicit Table(std::vector<Column> columns);
  /// A row with one cell per column (missing cells are empty, extra cells are dropped).
  void add_row(std::vector<std::string> cells);
  /// Writes the table, each line prefixed by `indent`.
  void print(std::ostream& out, const std::string& indent = "  ") const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

/// "1.234 s" / "12.3 ms" / "45 us": a duration in seconds with a readable unit.
std::string format_seconds(double s);
/// "1.93x".
std::string format_ratio(double r);

}  // namespace concur_tool
