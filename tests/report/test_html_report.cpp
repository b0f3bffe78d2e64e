// The HTML report's building blocks: base64 (RFC 4648 vectors), escaping, a page
// whose embedded data cannot close its <script> early, pictures, and the
// Vega-Lite specifications made from the chart structs.
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/data/image_folder.h"
#include "robustlens/report/html_report.h"
#include "robustlens/report/vega_lite.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <cmath>

namespace robustlens {
namespace {

std::size_t count(const std::string& text, const std::string& fragment) {
  std::size_t n = 0;
  for (std::size_t at = text.find(fragment); at != std::string::npos; at = text.find(fragment, at + 1)) ++n;
  return n;
}

TEST(HtmlReport, Base64MatchesTheRfc4648TestVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
}

TEST(HtmlReport, EscapesMarkupInText) {
  EXPECT_EQ(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
}

TEST(HtmlReport, EmbeddedDataCannotCloseItsScriptAndParsesBack) {
  HtmlReport report("title <1>");
  const nlohmann::json spec = {{"mark", "bar"}, {"data", {{"values", {{{"label", "</script><script>alert(1)"}}}}}}};
  report.heading(2, "Section & more", "section").paragraph("a < b").chart(spec).chart({{"mark", "line"}});
  const std::string page = report.render({"var vega = 1;", "var vegaLite = 2;", "var vegaEmbed = 3;", {}});
  // Three library scripts, the chart data and the drawing script: five elements, five closing tags.
  EXPECT_EQ(count(page, "</script>"), 5u);
  EXPECT_NE(page.find("<title>title &lt;1&gt;</title>"), std::string::npos);
  EXPECT_NE(page.find("<a href=\"#section\">Section &amp; more</a>"), std::string::npos);  // table of contents
  EXPECT_NE(page.find("<p>a &lt; b</p>"), std::string::npos);
  EXPECT_NE(page.find("id=\"chart-1\""), std::string::npos);
  const std::string open = "<script type=\"application/json\" id=\"chart-specs\">";
  const std::size_t start = page.find(open) + open.size();
  const nlohmann::json specs = nlohmann::json::parse(page.substr(start, page.find("</script>", start) - start));
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0], spec);
}

TEST(HtmlReport, InlinesPicturesAndRejectsWhatItCannotShow) {
  testing::TemporaryDirectory folder;
  write_png(folder.file("dot.png"), at::ones({1, 2, 2}));
  write_text_file(folder.file("plot.svg"), "<?xml version=\"1.0\"?>\n<svg width=\"1\"></svg>\n");
  HtmlReport report("pictures");
  report.figures({{folder.file("dot.png"), "a dot"}, {folder.file("plot.svg"), "a plot"}});
  const std::string page = report.render({});
  EXPECT_NE(page.find("src=\"data:image/png;base64," + base64_encode(read_text_file(folder.file("dot.png"))) + "\""),
            std::string::npos);
  EXPECT_NE(page.find("<figure><svg width=\"1\"></svg>"), std::string::npos);
  EXPECT_EQ(page.find("<?xml"), std::string::npos);
  testing::expect_error([&] { report.figures({{folder.file("missing.png"), ""}}); }, "missing.png");
  write_text_file(folder.file("notes.txt"), "text");
  testing::expect_error([&] { report.figures({{folder.file("notes.txt"), ""}}); }, "expected a .png or .svg");
  testing::expect_error([&] { report.table({"a", "b"}, {{"1"}}); }, "1 cells but the header has 2");
}

TEST(HtmlReport, MissingScriptsNameTheFileAndTheFix) {
  testing::TemporaryDirectory empty;
  setenv("ROBUSTLENS_WEB_ASSETS", empty.path().c_str(), 1);
  testing::expect_error([] { load_web_assets(); }, "vega.min.js");
  unsetenv("ROBUSTLENS_WEB_ASSETS");
}

TEST(VegaLite, LineChartKeepsEveryPointBandAndDash) {
  LineChart chart{"t", "x", "y", {}};
  chart.series.push_back({"solid", {1, 2, 3}, {0.1, std::nan(""), 0.3}, {0.0, 0.1, 0.2}, {0.2, 0.3, 0.4}, false});
  chart.series.push_back({"dashed", {0, 10}, {1, 2}, {}, {}, true, 3});
  chart.log_x = true;
  chart.regions.push_back({1, 2, "region"});
  const nlohmann::json spec = vega_lite_spec(chart);
  const nlohmann::json& values = spec.at("data").at("values");
  ASSERT_EQ(values.size(), 4u);  // x = 0 has no place on a log axis
  EXPECT_EQ(values[0].at("low"), 0.0);
  EXPECT_TRUE(values[1].at("y").is_null());  // NaN is no JSON number
  EXPECT_EQ(values[3].at("x"), 10.0);
  EXPECT_EQ(values[3].at("style"), "dashed");
  // Colours: the first series its place's, the second its own palette index (one model, one colour).
  const nlohmann::json& colour = spec.at("layer").back().at("encoding").at("color").at("scale");
  EXPECT_EQ(colour.at("domain"), nlohmann::json({"solid", "dashed"}));
  EXPECT_EQ(colour.at("range"), nlohmann::json({palette_colour(0), palette_colour(3)}));
  std::vector<std::string> marks;
  for (const nlohmann::json& layer : spec.at("layer")) {
    marks.push_back(layer.at("mark").is_string() ? layer.at("mark").get<std::string>()
                                                 : layer.at("mark").at("type").get<std::string>());
  }
  EXPECT_EQ(marks, (std::vector<std::string>{"rect", "text", "area", "line"}));
  EXPECT_EQ(spec.at("layer").back().at("encoding").at("x").at("scale").at("type"), "log");
}

TEST(VegaLite, BarChartHasOneValuePerCategoryAndSeries) {
  const BarChart chart{"t", "band", "psi", {"0", "1", "2"}, {{"a", {0.5, 0.3, 0.2}}, {"b", {0.1, 0.2, 0.7}}}, "note"};
  const nlohmann::json spec = vega_lite_spec(chart);
  const nlohmann::json& values = spec.at("data").at("values");
  ASSERT_EQ(values.size(), 6u);
  EXPECT_EQ(values[5], (nlohmann::json{{"category", "2"}, {"series", "b"}, {"value", 0.7}}));
  EXPECT_EQ(spec.at("encoding").at("x").at("sort"), nlohmann::json({"0", "1", "2"}));
  EXPECT_EQ(spec.at("title").at("subtitle"), "note");
}

}  // namespace
}  // namespace robustlens
