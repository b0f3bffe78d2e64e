// The charts of report/chart.h as Vega-Lite specifications: the same chart data
// the SVG renderer draws, drawn interactively in the HTML report (tooltips on
// every point and bar, a click on the legend highlights one series, export as
// PNG/SVG from the chart's menu).
#pragma once

#include "robustlens/report/chart.h"

#include <nlohmann/json.hpp>

namespace robustlens {

/// Lines with points, shaded bands, dashed series, a log x axis and shaded regions as in render_svg.
nlohmann::json vega_lite_spec(const LineChart& chart);
/// Grouped bars, categories in the given order.
nlohmann::json vega_lite_spec(const BarChart& chart);
/// Points coloured by group.
nlohmann::json vega_lite_spec(const ScatterChart& chart);

}  // namespace robustlens
