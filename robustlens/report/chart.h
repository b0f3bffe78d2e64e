// Line, bar and scatter charts as standalone SVG files (axes, ticks, labels, legend,
// shaded bands): readable in any browser and embeddable in the HTML report.
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
  /// The palette index of its colour; -1: its place among the chart's series. A chart of several models gives
  /// each model's series that model's index, so that one model has one colour in every chart and its
  /// variants differ by line style (dashed, dotted).
  int colour = -1;
  /// Dotted rather than solid or dashed.
  bool dotted = false;
};

/// A shaded range of x drawn behind the series, its label along the bottom.
struct ChartRegion {
  double x_low = 0, x_high = 0;
  std::string label;
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  /// Logarithmic x axis with decade ticks; points with x <= 0 are left out.
  bool log_x = false;
  std::vector<ChartRegion> regions = {};
  std::string note = {};  ///< a line under the title (e.g. what "rel." means)
};

struct BarSeries {
  std::string name;
  std::vector<double> values;  ///< one per category
  int colour = -1;             ///< as ChartSeries::colour
};

/// Grouped bars: one group per category, one bar per series.
struct BarChart {
  std::string title, x_label, y_label;
  std::vector<std::string> categories;
  std::vector<BarSeries> series;
  std::string note;  ///< a line under the title (e.g. a summary score)
};

struct ScatterGroup {
  std::string name;
  std::vector<double> x, y;
};
/// Points coloured by group (ten colours, then they repeat), e.g. a 2-D projection coloured by class.
struct ScatterChart {
  std::string title, x_label, y_label;
  std::vector<ScatterGroup> groups;
  std::string note;  ///< a line under the title
};

/// The palette's colour `index` (ten colours, then they repeat), in SVG and Vega-Lite alike.
const char* palette_colour(int index);
/// The colour of the series at `place` (its own colour index when it has one).
const char* series_colour(int colour, std::size_t place);
/// The SVG dash pattern of a line style ("" for solid).
const char* dash_pattern(bool dashed, bool dotted);

std::string render_svg(const LineChart& chart);
std::string render_svg(const BarChart& chart);
std::string render_svg(const ScatterChart& chart);
/// Renders and writes atomically.
void write_svg(const std::string& path, const LineChart& chart);
void write_svg(const std::string& path, const BarChart& chart);
void write_svg(const std::string& path, const ScatterChart& chart);

}  // namespace robustlens
