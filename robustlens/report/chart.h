// Line charts as standalone SVG files (axes, ticks, labels, legend, shaded
// bands): readable in any browser and embeddable in the HTML report.
#pragma once

#include <string>
#include <vector>

namespace robustlens {

struct ChartSeries {
  std::string name;
  std::vector<double> x, y;
  /// Optional shaded band (e.g. quartiles), same length as x.
  std::vector<double> band_low, band_high;
  bool dashed = false;
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
};

std::string render_svg(const LineChart& chart);
/// Renders and writes atomically.
void write_svg(const std::string& path, const LineChart& chart);

}  // namespace robustlens
