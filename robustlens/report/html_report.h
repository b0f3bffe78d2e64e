// A self-contained HTML report: headings, text, tables, Vega-Lite charts and
// pictures in one file that works offline. Vega, Vega-Lite and vega-embed
// (npm packages, installed by scripts/setup.sh) are inlined, PNG files become
// data URIs and SVG files are inlined. Once the page has drawn its charts it
// writes {"charts", "rendered", "marks", "errors"} as JSON into the element
// #render-status, which the headless-browser test reads.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace robustlens {

/// The scripts the report inlines and their versions.
struct WebAssets {
  std::string vega, vega_lite, vega_embed;
  nlohmann::json versions;  ///< {"vega": "6.2.0", ...}
};

/// Reads the scripts from the folder $ROBUSTLENS_WEB_ASSETS (a node_modules
/// folder) or else the one scripts/setup.sh fills at build time. A missing
/// file is an Error that names it and says how to install the packages.
WebAssets load_web_assets();

/// A picture file shown with a caption: PNG (inlined as a data URI) or SVG (inlined).
struct Figure {
  std::string path;
  std::string caption;
};

std::string html_escape(const std::string& text);
std::string base64_encode(const std::string& bytes);

class HtmlReport {
 public:
  explicit HtmlReport(std::string title);

  /// Markup written as given (the caller escapes what it takes from data).
  HtmlReport& html(const std::string& markup);
  /// <hN id=...>text</hN>; level 2 headings also enter the table of contents.
  HtmlReport& heading(int level, const std::string& text, const std::string& id = "");
  /// A paragraph of plain text (escaped).
  HtmlReport& paragraph(const std::string& text);
  /// A table of plain-text cells; header_notes (optional, one per column) become tooltips.
  HtmlReport& table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                    const std::vector<std::string>& header_notes = {});
  /// A Vega-Lite chart (report/vega_lite.h makes them from the chart structs).
  HtmlReport& chart(const nlohmann::json& vega_lite_spec);
  /// Pictures side by side, wrapping on narrow screens. Missing files are an Error.
  HtmlReport& figures(const std::vector<Figure>& pictures);

  std::size_t chart_count() const { return charts_.size(); }
  /// The whole page.
  std::string render(const WebAssets& assets) const;

 private:
  std::string title_;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> contents_;  ///< id, heading
  std::vector<nlohmann::json> charts_;
};

}  // namespace robustlens
