#include "robustlens/report/vega_lite.h"

#include <cmath>

namespace robustlens {
namespace {

constexpr int kWidth = 470;
constexpr int kHeight = 300;

/// A number for the data table; NaN and infinities (not JSON) become null, which Vega-Lite leaves out.
nlohmann::json number(double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr); }

nlohmann::json frame(const std::string& title, const std::string& note) {
  nlohmann::json spec = {{"$schema", "https://vega.github.io/schema/vega-lite/v6.json"},
                         {"width", kWidth},
                         {"height", kHeight},
                         {"title", {{"text", title}, {"anchor", "start"}}}};
  if (!note.empty()) spec["title"]["subtitle"] = note;
  return spec;
}

/// A click on a legend entry keeps that series at full opacity and fades the others.
nlohmann::json legend_highlight(const std::string& field) {
  return {{"name", "highlight"}, {"select", {{"type", "point"}, {"fields", {field}}}}, {"bind", "legend"}};
}
nlohmann::json highlighted_opacity(double selected, double faded) {
  return {{"condition", {{"param", "highlight"}, {"value", selected}}}, {"value", faded}};
}

}  // namespace

nlohmann::json vega_lite_spec(const LineChart& chart) {
  nlohmann::json values = nlohmann::json::array();
  std::vector<std::string> order, colours;
  bool any_band = false;
  for (const ChartSeries& series : chart.series) {
    order.push_back(series.name);
    colours.push_back(series_colour(series.colour, colours.size()));
    const char* style = series.dotted ? "dotted" : series.dashed ? "dashed" : "solid";
    for (std::size_t i = 0; i < series.x.size(); ++i) {
      if (chart.log_x && !(series.x[i] > 0)) continue;  // as the SVG chart: no x <= 0 on a log axis
      nlohmann::json row = {
          {"series", series.name}, {"x", number(series.x[i])}, {"y", number(series.y[i])}, {"style", style}};
      if (i < series.band_low.size() && i < series.band_high.size()) {
        row["low"] = number(series.band_low[i]);
        row["high"] = number(series.band_high[i]);
        any_band = true;
      }
      values.push_back(row);
    }
  }
  const nlohmann::json x_scale = chart.log_x ? nlohmann::json{{"type", "log"}} : nlohmann::json{{"zero", false}};
  const nlohmann::json x = {{"field", "x"}, {"type", "quantitative"}, {"title", chart.x_label}, {"scale", x_scale}};
  const nlohmann::json color = {
      {"field", "series"},
      {"type", "nominal"},
      {"title", nullptr},
      {"sort", order},
      {"scale", {{"domain", order}, {"range", colours}}},
      // Full opacity: a band's faint fill must not fade the series' legend symbol.
      {"legend", {{"orient", "bottom"}, {"columns", 2}, {"labelLimit", 360}, {"symbolOpacity", 1}}}};
  nlohmann::json layers = nlohmann::json::array();
  if (!chart.regions.empty()) {
    nlohmann::json regions = nlohmann::json::array();
    for (const ChartRegion& r : chart.regions)
      regions.push_back({{"x", r.x_low}, {"x2", r.x_high}, {"label", r.label}});
    const nlohmann::json region_x = {{"field", "x"}, {"type", "quantitative"}, {"scale", x_scale}};
    layers.push_back({{"data", {{"values", regions}}},
                      {"mark", {{"type", "rect"}, {"color", "#888"}, {"opacity", 0.08}}},
                      {"encoding", {{"x", region_x}, {"x2", {{"field", "x2"}}}, {"tooltip", {{"field", "label"}}}}}});
    layers.push_back(
        {{"data", {{"values", regions}}},
         {"mark", {{"type", "text"}, {"dy", -6}, {"baseline", "bottom"}, {"fontSize", 10}, {"color", "#555"}}},
         {"encoding", {{"x", region_x}, {"y", {{"value", kHeight}}}, {"text", {{"field", "label"}}}}}});
  }
  if (any_band) {
    layers.push_back({{"mark", {{"type", "area"}}},
                      {"encoding",
                       {{"x", x},
                        {"y", {{"field", "low"}, {"type", "quantitative"}}},
                        {"y2", {{"field", "high"}}},
                        {"color", color},
                        {"opacity", highlighted_opacity(0.18, 0.03)}}}});
  }
  layers.push_back(
      {{"params", {legend_highlight("series")}},
       {"mark", {{"type", "line"}, {"point", true}, {"strokeWidth", 2}}},
       {"encoding",
        {{"x", x},
         {"y", {{"field", "y"}, {"type", "quantitative"}, {"title", chart.y_label}, {"scale", {{"zero", false}}}}},
         {"color", color},
         {"strokeDash",
          {{"field", "style"},
           {"type", "nominal"},
           {"legend", nullptr},
           {"scale", {{"domain", {"solid", "dashed", "dotted"}}, {"range", {{1, 0}, {6, 4}, {2, 3}}}}}}},
         {"opacity", highlighted_opacity(1, 0.15)},
         {"tooltip",
          {{{"field", "series"}, {"title", "series"}},
           {{"field", "x"}, {"title", chart.x_label}, {"format", ".4~g"}},
           {{"field", "y"}, {"title", chart.y_label}, {"format", ".4~g"}}}}}}});
  nlohmann::json spec = frame(chart.title, chart.note);
  spec["data"] = {{"values", values}};
  spec["layer"] = layers;
  return spec;
}

nlohmann::json vega_lite_spec(const BarChart& chart) {
  nlohmann::json values = nlohmann::json::array();
  std::vector<std::string> order, colours;
  for (const BarSeries& series : chart.series) {
    order.push_back(series.name);
    colours.push_back(series_colour(series.colour, colours.size()));
    for (std::size_t c = 0; c < series.values.size() && c < chart.categories.size(); ++c) {
      values.push_back(
          {{"category", chart.categories[c]}, {"series", series.name}, {"value", number(series.values[c])}});
    }
  }
  nlohmann::json spec = frame(chart.title, chart.note);
  spec["data"] = {{"values", values}};
  spec["params"] = {legend_highlight("series")};
  spec["mark"] = {{"type", "bar"}};
  spec["encoding"] = {{"x",
                       {{"field", "category"},
                        {"type", "nominal"},
                        {"title", chart.x_label},
                        {"sort", chart.categories},
                        {"axis", {{"labelAngle", 0}}}}},
                      {"xOffset", {{"field", "series"}, {"sort", order}}},
                      {"y", {{"field", "value"}, {"type", "quantitative"}, {"title", chart.y_label}}},
                      {"color",
                       {{"field", "series"},
                        {"type", "nominal"},
                        {"title", nullptr},
                        {"sort", order},
                        {"scale", {{"domain", order}, {"range", colours}}},
                        {"legend", {{"orient", "bottom"}, {"labelLimit", 360}}}}},
                      {"opacity", highlighted_opacity(1, 0.25)},
                      {"tooltip",
                       {{{"field", "series"}},
                        {{"field", "category"}, {"title", chart.x_label}},
                        {{"field", "value"}, {"title", chart.y_label}, {"format", ".4~g"}}}}};
  return spec;
}

nlohmann::json vega_lite_spec(const ScatterChart& chart) {
  nlohmann::json values = nlohmann::json::array();
  std::vector<std::string> order;
  for (const ScatterGroup& group : chart.groups) {
    order.push_back(group.name);
    for (std::size_t i = 0; i < group.x.size(); ++i) {
      values.push_back({{"group", group.name}, {"x", number(group.x[i])}, {"y", number(group.y[i])}});
    }
  }
  nlohmann::json spec = frame(chart.title, chart.note);
  spec["data"] = {{"values", values}};
  spec["params"] = {legend_highlight("group")};
  spec["mark"] = {{"type", "circle"}, {"size", 14}};
  spec["encoding"] = {
      {"x", {{"field", "x"}, {"type", "quantitative"}, {"title", chart.x_label}, {"scale", {{"zero", false}}}}},
      {"y", {{"field", "y"}, {"type", "quantitative"}, {"title", chart.y_label}, {"scale", {{"zero", false}}}}},
      {"color",
       {{"field", "group"},
        {"type", "nominal"},
        {"title", nullptr},
        {"sort", order},
        {"legend", {{"orient", "right"}}}}},
      {"opacity", highlighted_opacity(1, 0.05)},
      {"tooltip", {{{"field", "group"}}, {{"field", "x"}, {"format", ".3~g"}}, {{"field", "y"}, {"format", ".3~g"}}}}};
  return spec;
}

}  // namespace robustlens
