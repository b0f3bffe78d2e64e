#include "robustlens/core/error.h"
#include "robustlens/report/chart.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

namespace robustlens {
namespace {

std::size_t count(const std::string& text, const std::string& fragment) {
  std::size_t n = 0;
  for (auto at = text.find(fragment); at != std::string::npos; at = text.find(fragment, at + 1)) ++n;
  return n;
}

TEST(BarChart, OneBarPerValueWithItsValueAndNegativeBarsBelowTheAxis) {
  const BarChart chart{
      "psi", "band", "share", {"0", "1", "2"}, {{"a", {0.5, -0.25, 0.25}}, {"b", {0.1, 0.2, 0.3}}}, "score 0.3"};
  const std::string svg = render_svg(chart);
  EXPECT_EQ(count(svg, "<rect x="), 6u + 2u);  // bars + two legend squares
  EXPECT_NE(svg.find("<title>a, 1: -0.25</title>"), std::string::npos);
  EXPECT_NE(svg.find("score 0.3"), std::string::npos);
  // Heights are proportional to |value|: bar a/0 is twice bar a/1.
  std::regex bar("y=\"([0-9.]+)\" width=\"[0-9.]+\" height=\"([0-9.]+)\" fill=\"#1f77b4\"><title>a, ");
  std::vector<double> tops, heights;
  for (std::sregex_iterator it(svg.begin(), svg.end(), bar), end; it != end; ++it) {
    tops.push_back(std::stod((*it)[1]));
    heights.push_back(std::stod((*it)[2]));
  }
  ASSERT_EQ(heights.size(), 3u);
  EXPECT_NEAR(heights[0], 2 * heights[1], 1e-2);
  EXPECT_NEAR(tops[1], tops[0] + heights[0], 1e-2);  // the negative bar hangs from the zero line
  EXPECT_THROW(render_svg(BarChart{"bad", "", "", {"0", "1"}, {{"a", {1.0}}}, ""}), Error);
}

TEST(LineChart, NegativeValuesStayInsideThePlot) {
  const std::string svg = render_svg(LineChart{"snr", "band", "dB", {{"s", {0, 1, 2}, {-5, -10, -20}, {}, {}, false}}});
  std::smatch points;
  ASSERT_TRUE(std::regex_search(svg, points, std::regex("<polyline[^>]*points=\"([^\"]+)\"")));
  std::istringstream pairs(points[1].str());
  for (std::string pair; pairs >> pair;) {
    const double y = std::stod(pair.substr(pair.find(',') + 1));
    EXPECT_GT(y, 40.0) << pair;                 // below the title area
    EXPECT_LT(y, 420.0 - 55.0 + 1e-9) << pair;  // above the x tick labels
  }
  EXPECT_EQ(svg.find(">-0<"), std::string::npos);
}

TEST(LineChart, LogAxisSpacesDecadesEquallyAndLeavesOutNonPositiveX) {
  LineChart chart{"curve", "s", "change", {{"s", {0, 0.01, 0.1, 1, 10}, {0, 1, 2, 3, 4}, {}, {}, false}}};
  chart.log_x = true;
  const std::string svg = render_svg(chart);
  std::smatch points;
  ASSERT_TRUE(std::regex_search(svg, points, std::regex("<polyline[^>]*points=\"([^\"]+)\"")));
  std::istringstream pairs(points[1].str());
  std::vector<double> xs;
  for (std::string pair; pairs >> pair;) xs.push_back(std::stod(pair.substr(0, pair.find(','))));
  ASSERT_EQ(xs.size(), 4u);  // x = 0 has no place on a log axis
  EXPECT_NEAR(xs[1] - xs[0], xs[2] - xs[1], 1e-2);
  EXPECT_NEAR(xs[3] - xs[2], xs[2] - xs[1], 1e-2);
  for (const char* tick : {">0.01<", ">0.1<", ">1<", ">10<"}) EXPECT_NE(svg.find(tick), std::string::npos) << tick;
}

TEST(LineChart, AManySeriesLegendGoesBelowThePlotWhereItHidesNoData) {
  LineChart chart{"many", "x", "y", {}};
  for (int k = 0; k < 5; ++k)
    chart.series.push_back({"series " + std::to_string(k), {0, 1}, {1.0 * k, 2.0}, {}, {}, false});
  const std::string svg = render_svg(chart);
  std::smatch height;
  ASSERT_TRUE(std::regex_search(svg, height, std::regex("<svg [^>]*height=\"([0-9.]+)\"")));
  EXPECT_GT(std::stod(height[1].str()), 420.0);  // taller by the legend's rows
  std::smatch label;
  ASSERT_TRUE(std::regex_search(svg, label, std::regex("<text x=\"[0-9.]+\" y=\"([0-9.]+)\">series 4<")));
  EXPECT_GT(std::stod(label[1].str()), 420.0);  // below the plot and its axis label
  // Three series keep the legend in a corner of the plot.
  chart.series.resize(3);
  const std::string corner = render_svg(chart);
  ASSERT_TRUE(std::regex_search(corner, height, std::regex("<svg [^>]*height=\"([0-9.]+)\"")));
  EXPECT_EQ(std::stod(height[1].str()), 420.0);
}

TEST(LineChart, LongLegendNamesTakeARowEachAndALongNoteIsWrappedInsideTheChart) {
  // A sweep's chart: names of 60 characters overlapped the next column when two shared a row, and a note of
  // 150 characters, right-aligned above the plot, ran off the chart's left edge.
  LineChart chart{"sweep", "x", "y", {}};
  for (int k = 0; k < 4; ++k) {
    chart.series.push_back({"off-manifold first-order sensitivity, distractor halves " + std::to_string(k),
                            {0, 1},
                            {1.0, 2.0},
                            {},
                            {},
                            false});
  }
  chart.note =
      "regimes from the first-order sensitivities on the distractor halves; rel. = relative to the weakest model; "
      "Spearman(alignment, off-manifold robustness) 0.6305 [0.1205, 0.9788]";
  const std::string svg = render_svg(chart);
  std::vector<double> legend_x, legend_y;
  const std::regex entry("<text x=\"([0-9.]+)\" y=\"([0-9.]+)\">off-manifold");
  for (std::sregex_iterator it(svg.begin(), svg.end(), entry), end; it != end; ++it) {
    legend_x.push_back(std::stod((*it)[1]));
    legend_y.push_back(std::stod((*it)[2]));
  }
  ASSERT_EQ(legend_x.size(), 4u);
  for (std::size_t k = 1; k < 4; ++k) {
    EXPECT_EQ(legend_x[k], legend_x[0]) << k;  // one column
    EXPECT_GT(legend_y[k], legend_y[k - 1]) << k;
  }
  // The note: every piece of it, each line left-aligned within the chart and under the legend.
  std::string text;
  double last_line_y = 0;
  const std::regex note_line("<text x=\"([0-9.]+)\" y=\"([0-9.]+)\" fill=\"#444\">([^<]*)<");
  for (std::sregex_iterator it(svg.begin(), svg.end(), note_line), end; it != end; ++it) {
    EXPECT_GE(std::stod((*it)[1]), 0.0);
    EXPECT_LE(7.0 * static_cast<double>((*it)[3].length()), 720.0 - std::stod((*it)[1]));
    last_line_y = std::stod((*it)[2]);
    EXPECT_GT(last_line_y, legend_y.back());
    text += (*it)[3].str() + " ";
  }
  EXPECT_NE(text.find("regimes from the first-order"), std::string::npos) << text;
  EXPECT_NE(text.find("[0.1205, 0.9788]"), std::string::npos) << text;
  std::smatch height;
  ASSERT_TRUE(std::regex_search(svg, height, std::regex("<svg [^>]*height=\"([0-9.]+)\"")));
  EXPECT_GT(std::stod(height[1].str()), last_line_y);
  // A short note stays on the line above the plot.
  chart.note = "rel. = relative to the weakest model";
  EXPECT_NE(render_svg(chart).find("text-anchor=\"end\">rel. = relative"), std::string::npos);
}

TEST(ScatterChart, OnePointPerValueColouredByGroupAtItsPosition) {
  const ScatterChart chart{"projection", "pc 1", "pc 2", {{"a", {0, 1}, {0, 1}}, {"b", {0.5}, {-1}}}, ""};
  const std::string svg = render_svg(chart);
  EXPECT_EQ(count(svg, "<circle "), 3u);
  EXPECT_EQ(count(svg, "<g fill=\"#1f77b4\""), 1u);
  EXPECT_EQ(count(svg, "<g fill=\"#d62728\""), 1u);
  std::regex circle("cx=\"([0-9.]+)\" cy=\"([0-9.]+)\"");
  std::vector<double> xs, ys;
  for (std::sregex_iterator it(svg.begin(), svg.end(), circle), end; it != end; ++it) {
    xs.push_back(std::stod((*it)[1]));
    ys.push_back(std::stod((*it)[2]));
  }
  ASSERT_EQ(xs.size(), 3u);
  EXPECT_NEAR(xs[2], (xs[0] + xs[1]) / 2, 1e-2);  // x = 0.5 halfway between 0 and 1
  EXPECT_LT(ys[1], ys[0]);                        // y = 1 above y = 0
  EXPECT_GT(ys[2], ys[0]);                        // y = -1 below
  EXPECT_THROW(render_svg(ScatterChart{"bad", "", "", {{"a", {1.0}, {}}}, ""}), Error);
}

}  // namespace
}  // namespace robustlens
