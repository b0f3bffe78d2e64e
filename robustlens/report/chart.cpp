#include "robustlens/report/chart.h"

#include "robustlens/core/error.h"
#include "robustlens/core/files.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace robustlens {
namespace {

constexpr double kWidth = 720, kHeight = 420, kLeft = 70, kRight = 20, kTop = 40, kBottom = 55;
const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr std::size_t kColourCount = sizeof(kColours) / sizeof(kColours[0]);

std::string dash_attribute(const char* pattern) {
  return *pattern == '\0' ? std::string() : std::string(" stroke-dasharray=\"") + pattern + "\"";
}

/// About five round tick values covering [low, high].
std::vector<double> ticks(double low, double high) {
  const double span = high - low, raw = span / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = magnitude * (raw / magnitude < 1.5 ? 1 : raw / magnitude < 3 ? 2 : raw / magnitude < 7 ? 5 : 10);
  std::vector<double> values;
  for (double v = std::ceil(low / step) * step; v <= high + 1e-9 * span; v += step) {
    values.push_back(std::abs(v) < 1e-9 * span ? 0.0 : v);  // no "-0" label
  }
  return values;
}

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

/// The legend goes to the upper corner the data leave free: the right one when
/// the data are higher in the left third than in the right third. Points are
/// (x in [0,1], y).
bool legend_goes_right(const std::vector<std::pair<double, double>>& points) {
  double left_top = -std::numeric_limits<double>::infinity(), right_top = left_top;
  for (const auto& [where, y] : points) {
    if (!std::isfinite(y)) continue;
    if (where <= 1.0 / 3) left_top = std::max(left_top, y);
    if (where >= 2.0 / 3) right_top = std::max(right_top, y);
  }
  return left_top > right_top;
}

struct LegendEntry {
  std::string name;
  const char* colour;
  bool square = false;
  const char* dash = "";  ///< SVG dash pattern of a line's entry
};

/// Legends of more entries than this go below the plot, where they hide no data; smaller ones go in the upper
/// corner the data leave free.
constexpr std::size_t kCornerLegendEntries = 3;
/// A generous width of one character at 12 px (sans-serif), for laying text out without measuring it.
constexpr double kCharWidth = 7;
constexpr double kLineHeight = 18;

/// Lines of at most `width` characters, broken after "; " where possible, else at spaces.
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::string rest = text;
  while (rest.size() > width) {
    std::size_t cut = rest.rfind("; ", width);
    if (cut == std::string::npos || cut == 0) cut = rest.rfind(' ', width);
    if (cut == std::string::npos || cut == 0) cut = width;
    lines.push_back(rest.substr(0, cut + (rest.compare(cut, 1, ";") == 0 ? 1 : 0)));
    rest = rest.substr(std::min(rest.size(), rest.find_first_not_of("; ", cut)));
  }
  if (!rest.empty()) lines.push_back(rest);
  return lines;
}

/// The shared frame of every chart kind: background, title, note, y grid with tick labels, axes and axis labels,
/// and the legend. The y range always includes 0. Below the plot come the legend when it has many entries (two
/// to a row when the names fit, else one), then the note when it is too long for the line above the plot.
class Frame {
 public:
  Frame(std::ostringstream& svg, const std::string& title, const std::string& note, double y_low, double y_high,
        const std::vector<std::string>& legend_names)
      : svg_(svg) {
    RL_CHECK(std::isfinite(y_low) && std::isfinite(y_high), "chart '", title, "' has no finite values");
    y_low_ = std::min(0.0, y_low);
    y_high_ = std::max(0.0, y_high);
    if (y_high_ == y_low_) y_high_ = y_low_ + 1;
    const double margin = 0.05 * (y_high_ - y_low_);
    if (y_high_ > 0) y_high_ += margin;
    if (y_low_ < 0) y_low_ -= margin;

    const double plot_width = kWidth - kLeft - kRight;
    std::size_t longest_name = 0;
    for (const std::string& name : legend_names) longest_name = std::max(longest_name, name.size());
    legend_below_ = legend_names.size() > kCornerLegendEntries;
    legend_columns_ = 30 + kCharWidth * static_cast<double>(longest_name) <= plot_width / 2 ? 2 : 1;
    const std::size_t legend_rows = legend_below_ ? (legend_names.size() + legend_columns_ - 1) / legend_columns_ : 0;
    const auto characters_across = [](double width) { return static_cast<std::size_t>(width / kCharWidth); };
    const bool note_above = kCharWidth * static_cast<double>(note.size()) <= plot_width;
    note_lines_ = note_above || note.empty() ? std::vector<std::string>{} : wrap(note, characters_across(plot_width));
    note_above_ = note_above ? note : "";
    legend_top_ = kHeight + 6;
    note_top_ = legend_top_ + kLineHeight * static_cast<double>(legend_rows);
    const double height = legend_rows + note_lines_.size() > 0
                              ? note_top_ + kLineHeight * static_cast<double>(note_lines_.size())
                              : kHeight;

    svg_.precision(5);
    svg_ << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << height
         << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
         << "<text x=\"" << kWidth / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << escape(title)
         << "</text>\n";
    if (!note_above_.empty()) {
      svg_ << "<text x=\"" << kWidth - kRight << "\" y=\"" << kTop - 4 << "\" text-anchor=\"end\">"
           << escape(note_above_) << "</text>\n";
    }
    for (std::size_t i = 0; i < note_lines_.size(); ++i) {
      svg_ << "<text x=\"" << kLeft << "\" y=\"" << note_top_ + kLineHeight * static_cast<double>(i) + 4
           << "\" fill=\"#444\">" << escape(note_lines_[i]) << "</text>\n";
    }
    for (const double v : ticks(y_low_, y_high_)) {
      svg_ << "<line x1=\"" << kLeft << "\" x2=\"" << kWidth - kRight << "\" y1=\"" << py(v) << "\" y2=\"" << py(v)
           << "\" stroke=\"#e5e5e5\"/><text x=\"" << kLeft - 6 << "\" y=\"" << py(v) + 4 << "\" text-anchor=\"end\">"
           << v << "</text>\n";
    }
  }

  double py(double y) const {
    return kHeight - kBottom - (y - y_low_) / (y_high_ - y_low_) * (kHeight - kTop - kBottom);
  }

  /// Axes (the horizontal one at y = 0), axis labels, closing tag.
  std::string finish(const std::string& x_label, const std::string& y_label) {
    svg_ << "<line x1=\"" << kLeft << "\" x2=\"" << kWidth - kRight << "\" y1=\"" << py(0) << "\" y2=\"" << py(0)
         << "\" stroke=\"black\"/><line x1=\"" << kLeft << "\" x2=\"" << kLeft << "\" y1=\"" << kTop << "\" y2=\""
         << kHeight - kBottom << "\" stroke=\"black\"/>\n"
         << "<text x=\"" << (kLeft + kWidth - kRight) / 2 << "\" y=\"" << kHeight - 12 << "\" text-anchor=\"middle\">"
         << escape(x_label) << "</text>\n<text transform=\"translate(18," << (kTop + kHeight - kBottom) / 2
         << ") rotate(-90)\" text-anchor=\"middle\">" << escape(y_label) << "</text>\n</svg>\n";
    return svg_.str();
  }

  /// The legend, where the frame laid it out: below the plot, or in the top-left corner or, with `right`, the
  /// top-right one. Each entry is a line (solid, dashed or dotted) or a filled square.
  void legend(const std::vector<LegendEntry>& entries, bool right) {
    for (std::size_t k = 0; k < entries.size(); ++k) {
      const LegendEntry& entry = entries[k];
      const double row = static_cast<double>(legend_below_ ? k / legend_columns_ : k);
      const double y = (legend_below_ ? legend_top_ : kTop + 8) + kLineHeight * row;
      const double column_width = (kWidth - kLeft - kRight) / static_cast<double>(legend_columns_);
      const double x = legend_below_ ? kLeft + column_width * static_cast<double>(k % legend_columns_)
                       : right       ? kWidth - kRight - 230
                                     : kLeft + 12;
      if (entry.square) {
        svg_ << "<rect x=\"" << x + 6 << "\" y=\"" << y - 6 << "\" width=\"12\" height=\"12\" fill=\"" << entry.colour
             << "\"/>";
      } else {
        svg_ << "<line x1=\"" << x << "\" x2=\"" << x + 24 << "\" y1=\"" << y << "\" y2=\"" << y << "\" stroke=\""
             << entry.colour << "\" stroke-width=\"2\"" << dash_attribute(entry.dash) << "/>";
      }
      svg_ << "<text x=\"" << x + 30 << "\" y=\"" << y + 4 << "\">" << escape(entry.name) << "</text>\n";
    }
  }

 private:
  std::ostringstream& svg_;
  double y_low_ = 0, y_high_ = 1;
  bool legend_below_ = false;
  std::size_t legend_columns_ = 2;
  double legend_top_ = 0, note_top_ = 0;
  std::string note_above_;
  std::vector<std::string> note_lines_;
};

}  // namespace

const char* palette_colour(int index) {
  return kColours[static_cast<std::size_t>(index < 0 ? 0 : index) % kColourCount];
}

const char* series_colour(int colour, std::size_t place) {
  return colour >= 0 ? palette_colour(colour) : kColours[place % kColourCount];
}

const char* dash_pattern(bool dashed, bool dotted) { return dotted ? "2,3" : dashed ? "6,4" : ""; }

std::string render_svg(const LineChart& chart) {
  // Positions along x are log10(x) on a log axis; NaN marks a point left out.
  const auto along = [&](double x) {
    if (!chart.log_x) return x;
    return x > 0 ? std::log10(x) : std::numeric_limits<double>::quiet_NaN();
  };
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low, y_low = x_low, y_high = -x_low;
  for (const ChartSeries& s : chart.series) {
    RL_CHECK(s.x.size() == s.y.size(), "chart series '", s.name, "' has ", s.x.size(), " x values but ", s.y.size(),
             " y values");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || !std::isfinite(along(s.x[i]))) continue;
      x_low = std::min(x_low, along(s.x[i]));
      x_high = std::max(x_high, along(s.x[i]));
      y_low = std::min({y_low, s.y[i], s.band_low.empty() ? s.y[i] : s.band_low[i]});
      y_high = std::max({y_high, s.y[i], s.band_high.empty() ? s.y[i] : s.band_high[i]});
    }
  }
  std::ostringstream svg;
  std::vector<std::string> names;
  for (const ChartSeries& s : chart.series) names.push_back(s.name);
  Frame frame(svg, chart.title, chart.note, y_low, y_high, names);
  if (x_high == x_low) x_high = x_low + 1;
  const auto px = [&](double x) { return kLeft + (along(x) - x_low) / (x_high - x_low) * (kWidth - kLeft - kRight); };
  const auto shown = [&](const ChartSeries& s, std::size_t i) {
    return std::isfinite(s.y[i]) && std::isfinite(along(s.x[i]));
  };
  std::vector<std::pair<double, double>> points;
  for (const ChartSeries& s : chart.series) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (shown(s, i)) points.emplace_back((along(s.x[i]) - x_low) / (x_high - x_low), s.y[i]);
    }
  }
  std::vector<double> x_ticks;
  if (chart.log_x) {
    for (double decade = std::ceil(x_low - 1e-9); decade <= x_high + 1e-9; ++decade)
      x_ticks.push_back(std::pow(10.0, decade));
  } else {
    x_ticks = ticks(x_low, x_high);
  }
  const char* const region_fills[] = {"#f3f3f3", "#e3eef9", "#fbe9e9"};
  for (std::size_t r = 0; r < chart.regions.size(); ++r) {
    const ChartRegion& region = chart.regions[r];
    const double left = std::max(kLeft, px(region.x_low)), right = std::min(kWidth - kRight, px(region.x_high));
    if (!(right > left)) continue;
    svg << "<rect x=\"" << left << "\" y=\"" << kTop << "\" width=\"" << right - left << "\" height=\""
        << kHeight - kTop - kBottom << "\" fill=\"" << region_fills[r % 3] << "\" fill-opacity=\"0.6\"/><text x=\""
        << (left + right) / 2 << "\" y=\"" << kHeight - kBottom - 6 << "\" text-anchor=\"middle\" fill=\"#555\">"
        << escape(region.label) << "</text>\n";
  }
  for (const double v : x_ticks) {
    svg << "<text x=\"" << px(v) << "\" y=\"" << kHeight - kBottom + 18 << "\" text-anchor=\"middle\">" << v
        << "</text>\n";
  }
  std::vector<LegendEntry> legend;
  for (std::size_t k = 0; k < chart.series.size(); ++k) {
    const ChartSeries& s = chart.series[k];
    const char* colour = series_colour(s.colour, k);
    if (!s.band_low.empty()) {
      svg << "<polygon fill=\"" << colour << "\" fill-opacity=\"0.18\" stroke=\"none\" points=\"";
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (shown(s, i)) svg << px(s.x[i]) << ',' << frame.py(s.band_high[i]) << ' ';
      }
      for (std::size_t i = s.x.size(); i-- > 0;) {
        if (shown(s, i)) svg << px(s.x[i]) << ',' << frame.py(s.band_low[i]) << ' ';
      }
      svg << "\"/>\n";
    }
    svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\""
        << dash_attribute(dash_pattern(s.dashed, s.dotted)) << " points=\"";
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (shown(s, i)) svg << px(s.x[i]) << ',' << frame.py(s.y[i]) << ' ';
    }
    svg << "\"/>\n";
    legend.push_back({s.name, colour, false, dash_pattern(s.dashed, s.dotted)});
  }
  frame.legend(legend, legend_goes_right(points));
  return frame.finish(chart.x_label, chart.y_label);
}

std::string render_svg(const BarChart& chart) {
  RL_CHECK(!chart.categories.empty() && !chart.series.empty(), "bar chart '", chart.title, "' has no bars");
  double y_low = std::numeric_limits<double>::infinity(), y_high = -y_low;
  for (const BarSeries& s : chart.series) {
    RL_CHECK(s.values.size() == chart.categories.size(), "bar series '", s.name, "' has ", s.values.size(),
             " values for ", chart.categories.size(), " categories");
    for (const double v : s.values) {
      if (!std::isfinite(v)) continue;
      y_low = std::min(y_low, v);
      y_high = std::max(y_high, v);
    }
  }
  std::ostringstream svg;
  std::vector<std::string> names;
  for (const BarSeries& s : chart.series) names.push_back(s.name);
  // A single unnamed series needs no legend.
  if (names.size() == 1 && names[0].empty()) names.clear();
  Frame frame(svg, chart.title, chart.note, y_low, y_high, names);
  std::vector<std::pair<double, double>> points;
  const double last = std::max<double>(1, static_cast<double>(chart.categories.size()) - 1);
  for (const BarSeries& s : chart.series) {
    for (std::size_t c = 0; c < s.values.size(); ++c) points.emplace_back(static_cast<double>(c) / last, s.values[c]);
  }
  const double group = (kWidth - kLeft - kRight) / static_cast<double>(chart.categories.size());
  const double bar = 0.8 * group / static_cast<double>(chart.series.size());
  for (std::size_t c = 0; c < chart.categories.size(); ++c) {
    svg << "<text x=\"" << kLeft + group * (static_cast<double>(c) + 0.5) << "\" y=\"" << kHeight - kBottom + 18
        << "\" text-anchor=\"middle\">" << escape(chart.categories[c]) << "</text>\n";
  }
  std::vector<LegendEntry> legend;
  for (std::size_t k = 0; k < chart.series.size(); ++k) {
    const char* colour = series_colour(chart.series[k].colour, k);
    for (std::size_t c = 0; c < chart.categories.size(); ++c) {
      const double v = chart.series[k].values[c];
      if (!std::isfinite(v)) continue;
      svg << "<rect x=\"" << kLeft + group * (static_cast<double>(c) + 0.1) + bar * static_cast<double>(k) << "\" y=\""
          << std::min(frame.py(v), frame.py(0)) << "\" width=\"" << bar << "\" height=\""
          << std::abs(frame.py(v) - frame.py(0)) << "\" fill=\"" << colour << "\"><title>"
          << escape(chart.series[k].name) << ", " << escape(chart.categories[c]) << ": " << v << "</title></rect>\n";
    }
    if (chart.series.size() > 1 || !chart.series[k].name.empty())
      legend.push_back({chart.series[k].name, colour, true});
  }
  frame.legend(legend, legend_goes_right(points));
  return frame.finish(chart.x_label, chart.y_label);
}

std::string render_svg(const ScatterChart& chart) {
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low, y_low = x_low, y_high = -x_low;
  for (const ScatterGroup& g : chart.groups) {
    RL_CHECK(g.x.size() == g.y.size(), "scatter group '", g.name, "' has ", g.x.size(), " x values but ", g.y.size(),
             " y values");
    for (std::size_t i = 0; i < g.x.size(); ++i) {
      if (!std::isfinite(g.x[i]) || !std::isfinite(g.y[i])) continue;
      x_low = std::min(x_low, g.x[i]);
      x_high = std::max(x_high, g.x[i]);
      y_low = std::min(y_low, g.y[i]);
      y_high = std::max(y_high, g.y[i]);
    }
  }
  std::ostringstream svg;
  std::vector<std::string> names;
  for (const ScatterGroup& g : chart.groups) names.push_back(g.name);
  Frame frame(svg, chart.title, chart.note, y_low, y_high, names);
  if (x_high == x_low) x_high = x_low + 1;
  const double margin = 0.03 * (x_high - x_low);
  x_low -= margin;
  x_high += margin;
  const auto px = [&](double x) { return kLeft + (x - x_low) / (x_high - x_low) * (kWidth - kLeft - kRight); };
  for (const double v : ticks(x_low, x_high)) {
    svg << "<text x=\"" << px(v) << "\" y=\"" << kHeight - kBottom + 18 << "\" text-anchor=\"middle\">" << v
        << "</text>\n";
  }
  std::vector<LegendEntry> legend;
  std::vector<std::pair<double, double>> points;
  for (std::size_t k = 0; k < chart.groups.size(); ++k) {
    const ScatterGroup& g = chart.groups[k];
    const char* colour = kColours[k % kColourCount];
    svg << "<g fill=\"" << colour << "\" fill-opacity=\"0.6\"><title>" << escape(g.name) << "</title>";
    for (std::size_t i = 0; i < g.x.size(); ++i) {
      if (!std::isfinite(g.x[i]) || !std::isfinite(g.y[i])) continue;
      svg << "<circle cx=\"" << px(g.x[i]) << "\" cy=\"" << frame.py(g.y[i]) << "\" r=\"2\"/>";
      points.emplace_back((g.x[i] - x_low) / (x_high - x_low), g.y[i]);
    }
    svg << "</g>\n";
    legend.push_back({g.name, colour, true});
  }
  frame.legend(legend, legend_goes_right(points));
  return frame.finish(chart.x_label, chart.y_label);
}

void write_svg(const std::string& path, const LineChart& chart) { write_text_file(path, render_svg(chart)); }
void write_svg(const std::string& path, const BarChart& chart) { write_text_file(path, render_svg(chart)); }
void write_svg(const std::string& path, const ScatterChart& chart) { write_text_file(path, render_svg(chart)); }

}  // namespace robustlens
