#include "robustlens/report/chart.h"

#include "robustlens/core/error.h"
#include "robustlens/report/files.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace robustlens {
namespace {

constexpr double kWidth = 720, kHeight = 420, kLeft = 70, kRight = 20, kTop = 40, kBottom = 55;
const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

/// About five round tick values covering [low, high].
std::vector<double> ticks(double low, double high) {
  const double span = high - low, raw = span / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = magnitude * (raw / magnitude < 1.5 ? 1 : raw / magnitude < 3 ? 2 : raw / magnitude < 7 ? 5 : 10);
  std::vector<double> values;
  for (double v = std::ceil(low / step) * step; v <= high + 1e-9 * span; v += step) values.push_back(v);
  return values;
}

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

}  // namespace

std::string render_svg(const LineChart& chart) {
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low, y_low = 0, y_high = -x_low;
  for (const ChartSeries& s : chart.series) {
    RL_CHECK(s.x.size() == s.y.size(), "chart series '", s.name, "' has ", s.x.size(), " x values but ", s.y.size(), " y values");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x_low = std::min(x_low, s.x[i]);
      x_high = std::max(x_high, s.x[i]);
      y_low = std::min(y_low, s.y[i]);
      y_high = std::max({y_high, s.y[i], s.band_high.empty() ? s.y[i] : s.band_high[i]});
    }
  }
  RL_CHECK(std::isfinite(x_low) && std::isfinite(y_high), "chart '", chart.title, "' has no finite points");
  if (x_high == x_low) x_high = x_low + 1;
  if (y_high == y_low) y_high = y_low + 1;
  y_high *= 1.05;
  const auto px = [&](double x) { return kLeft + (x - x_low) / (x_high - x_low) * (kWidth - kLeft - kRight); };
  const auto py = [&](double y) { return kHeight - kBottom - (y - y_low) / (y_high - y_low) * (kHeight - kTop - kBottom); };

  std::ostringstream svg;
  svg.precision(5);
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kWidth / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << escape(chart.title) << "</text>\n";
  for (const double v : ticks(y_low, y_high)) {
    svg << "<line x1=\"" << kLeft << "\" x2=\"" << kWidth - kRight << "\" y1=\"" << py(v) << "\" y2=\"" << py(v)
        << "\" stroke=\"#e5e5e5\"/><text x=\"" << kLeft - 6 << "\" y=\"" << py(v) + 4 << "\" text-anchor=\"end\">" << v << "</text>\n";
  }
  for (const double v : ticks(x_low, x_high)) {
    svg << "<text x=\"" << px(v) << "\" y=\"" << kHeight - kBottom + 18 << "\" text-anchor=\"middle\">" << v << "</text>\n";
  }
  svg << "<line x1=\"" << kLeft << "\" x2=\"" << kWidth - kRight << "\" y1=\"" << kHeight - kBottom << "\" y2=\""
      << kHeight - kBottom << "\" stroke=\"black\"/><line x1=\"" << kLeft << "\" x2=\"" << kLeft << "\" y1=\"" << kTop
      << "\" y2=\"" << kHeight - kBottom << "\" stroke=\"black\"/>\n"
      << "<text x=\"" << (kLeft + kWidth - kRight) / 2 << "\" y=\"" << kHeight - 12 << "\" text-anchor=\"middle\">"
      << escape(chart.x_label) << "</text>\n<text transform=\"translate(18," << (kTop + kHeight - kBottom) / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << escape(chart.y_label) << "</text>\n";
  for (std::size_t k = 0; k < chart.series.size(); ++k) {
    const ChartSeries& s = chart.series[k];
    const char* colour = kColours[k % 6];
    if (!s.band_low.empty()) {
      svg << "<polygon fill=\"" << colour << "\" fill-opacity=\"0.18\" stroke=\"none\" points=\"";
      for (std::size_t i = 0; i < s.x.size(); ++i) svg << px(s.x[i]) << ',' << py(s.band_high[i]) << ' ';
      for (std::size_t i = s.x.size(); i-- > 0;) svg << px(s.x[i]) << ',' << py(s.band_low[i]) << ' ';
      svg << "\"/>\n";
    }
    svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"6,4\"" : "")
        << " points=\"";
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (std::isfinite(s.y[i])) svg << px(s.x[i]) << ',' << py(s.y[i]) << ' ';
    }
    svg << "\"/>\n<line x1=\"" << kLeft + 12 << "\" x2=\"" << kLeft + 36 << "\" y1=\"" << kTop + 8 + 18 * k << "\" y2=\""
        << kTop + 8 + 18 * k << "\" stroke=\"" << colour << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"6,4\"" : "")
        << "/><text x=\"" << kLeft + 42 << "\" y=\"" << kTop + 12 + 18 * k << "\">" << escape(s.name) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

void write_svg(const std::string& path, const LineChart& chart) { write_text_file(path, render_svg(chart)); }

}  // namespace robustlens
