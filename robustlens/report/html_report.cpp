#include "robustlens/report/html_report.h"

#include "robustlens/core/error.h"
#include "robustlens/core/files.h"

#include <cstdlib>
#include <filesystem>

#ifndef ROBUSTLENS_WEB_ASSETS_DIR
#define ROBUSTLENS_WEB_ASSETS_DIR ""
#endif

namespace robustlens {
namespace {

/// Text placed inside a <script> element must not close it early: "</" becomes
/// "<\/", the same text inside a JSON or JavaScript string. `closing` is "</"
/// for JSON (every occurrence is in a string) and "</script" for scripts.
std::string script_safe(std::string text, const std::string& closing) {
  for (std::size_t at = text.find(closing); at != std::string::npos; at = text.find(closing, at + 2)) {
    text.insert(at + 1, "\\");
  }
  return text;
}

const char* kStyle = R"css(
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 22px; margin-top: 40px; padding-top: 12px; border-top: 1px solid #ddd; }
h3 { font-size: 17px; margin-top: 24px; }
p, li { max-width: 860px; }
.lead { color: #555; }
nav ol { columns: 2; max-width: 700px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 9px; text-align: right; }
th { background: #f2f2f2; text-align: center; }
th[title] { text-decoration: underline dotted; cursor: help; }
td:first-child, th:first-child { text-align: left; }
.chart { margin: 12px 0 20px; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 8px 0; }
figure img { image-rendering: pixelated; max-width: 100%; border: 1px solid #eee; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: #555; max-width: 560px; }
.note { background: #f6f8fa; border-left: 4px solid #8aa; padding: 8px 12px; max-width: 860px; }
.skipped { color: #8a5a00; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
pre { background: #f6f8fa; padding: 8px 12px; overflow-x: auto; white-space: pre-wrap; }
#render-status { display: none; }
)css";

// Draws every chart, then records what was drawn: the number of marks in each
// chart's SVG (0 = an empty chart) and every script error.
const char* kRenderScript = R"js(
(async function () {
  const status = { charts: 0, rendered: 0, marks: [], errors: [] };
  window.addEventListener('error', (e) => status.errors.push(String(e.message)));
  window.addEventListener('unhandledrejection', (e) => status.errors.push(String(e.reason)));
  const specs = JSON.parse(document.getElementById('chart-specs').textContent);
  status.charts = specs.length;
  for (let i = 0; i < specs.length; ++i) {
    try {
      await vegaEmbed('#chart-' + i, specs[i],
                      { renderer: 'svg', actions: { export: true, source: false, compiled: false, editor: false } });
      const marks = document.querySelectorAll('#chart-' + i + ' svg .role-mark > *').length;
      status.marks.push(marks);
      if (marks > 0) status.rendered += 1;
    } catch (error) {
      status.marks.push(0);
      status.errors.push('chart ' + i + ': ' + error);
    }
  }
  const element = document.getElementById('render-status');
  element.textContent = JSON.stringify(status);
  element.setAttribute('data-done', 'true');
})();
)js";

std::string read_asset(const std::filesystem::path& folder, const std::string& package, const std::string& file,
                       nlohmann::json& versions) {
  const std::filesystem::path path = folder / package / "build" / file;
  RL_CHECK(std::filesystem::is_regular_file(path), "the HTML report needs ", path.string(), " (npm package ", package,
           "): run scripts/setup.sh, which installs it with npm, or point "
           "ROBUSTLENS_WEB_ASSETS at a node_modules folder holding vega, vega-lite and vega-embed");
  versions[package] = read_json_file((folder / package / "package.json").string()).value("version", "unknown");
  return read_text_file(path.string());
}

}  // namespace

WebAssets load_web_assets() {
  const char* from_environment = std::getenv("ROBUSTLENS_WEB_ASSETS");
  const std::filesystem::path folder =
      from_environment != nullptr && *from_environment != '\0' ? from_environment : ROBUSTLENS_WEB_ASSETS_DIR;
  WebAssets assets;
  assets.vega = read_asset(folder, "vega", "vega.min.js", assets.versions);
  assets.vega_lite = read_asset(folder, "vega-lite", "vega-lite.min.js", assets.versions);
  assets.vega_embed = read_asset(folder, "vega-embed", "vega-embed.min.js", assets.versions);
  return assets;
}

std::string html_escape(const std::string& text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&#39;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

std::string base64_encode(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string encoded;
  encoded.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t group = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      group = (group << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      encoded += k <= n ? alphabet[(group >> (18 - 6 * k)) & 63u] : '=';
    }
  }
  return encoded;
}

HtmlReport::HtmlReport(std::string title) : title_(std::move(title)) {}

HtmlReport& HtmlReport::html(const std::string& markup) {
  body_ += markup;
  body_ += '\n';
  return *this;
}

HtmlReport& HtmlReport::heading(int level, const std::string& text, const std::string& id) {
  RL_CHECK(level >= 1 && level <= 6, "heading level must be 1..6, got ", level);
  const std::string tag = "h" + std::to_string(level);
  body_ +=
      "<" + tag + (id.empty() ? "" : " id=\"" + html_escape(id) + "\"") + ">" + html_escape(text) + "</" + tag + ">\n";
  if (level == 2 && !id.empty()) contents_.emplace_back(id, text);
  return *this;
}

HtmlReport& HtmlReport::paragraph(const std::string& text) { return html("<p>" + html_escape(text) + "</p>"); }

HtmlReport& HtmlReport::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                              const std::vector<std::string>& header_notes) {
  std::string markup = "<table>\n<thead><tr>";
  for (std::size_t c = 0; c < header.size(); ++c) {
    const bool noted = c < header_notes.size() && !header_notes[c].empty();
    markup += "<th" + (noted ? " title=\"" + html_escape(header_notes[c]) + "\"" : std::string()) + ">" +
              html_escape(header[c]) + "</th>";
  }
  markup += "</tr></thead>\n<tbody>\n";
  for (const std::vector<std::string>& row : rows) {
    RL_CHECK(row.size() == header.size(), "report table row has ", row.size(), " cells but the header has ",
             header.size());
    markup += "<tr>";
    for (const std::string& cell : row) markup += "<td>" + html_escape(cell) + "</td>";
    markup += "</tr>\n";
  }
  return html(markup + "</tbody></table>");
}

HtmlReport& HtmlReport::chart(const nlohmann::json& vega_lite_spec) {
  body_ += "<div class=\"chart\" id=\"chart-" + std::to_string(charts_.size()) + "\"></div>\n";
  charts_.push_back(vega_lite_spec);
  return *this;
}

HtmlReport& HtmlReport::figures(const std::vector<Figure>& pictures) {
  std::string markup = "<div class=\"figures\">\n";
  for (const Figure& figure : pictures) {
    const std::string extension = std::filesystem::path(figure.path).extension().string();
    const std::string content = read_text_file(figure.path);
    markup += "<figure>";
    if (extension == ".png") {
      markup += "<img alt=\"" + html_escape(figure.caption) + "\" src=\"data:image/png;base64," +
                base64_encode(content) + "\">";
    } else {
      RL_CHECK(extension == ".svg", "report figure '", figure.path, "': expected a .png or .svg file");
      const std::size_t svg_start = content.find("<svg");
      RL_CHECK(svg_start != std::string::npos, "report figure '", figure.path, "' holds no <svg> element");
      markup += content.substr(svg_start);
    }
    markup += "<figcaption>" + html_escape(figure.caption) + "</figcaption></figure>\n";
  }
  return html(markup + "</div>");
}

std::string HtmlReport::render(const WebAssets& assets) const {
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
      html_escape(title_) + "</title>\n<style>" + kStyle + "</style>\n";
  page += "<script>" + script_safe(assets.vega, "</script") + "</script>\n";
  page += "<script>" + script_safe(assets.vega_lite, "</script") + "</script>\n";
  page += "<script>" + script_safe(assets.vega_embed, "</script") + "</script>\n</head>\n<body>\n<main>\n";
  page += "<h1>" + html_escape(title_) + "</h1>\n";
  if (!contents_.empty()) {
    page += "<nav><ol>\n";
    for (const auto& [id, text] : contents_)
      page += "<li><a href=\"#" + html_escape(id) + "\">" + html_escape(text) + "</a></li>\n";
    page += "</ol></nav>\n";
  }
  page += body_;
  page += "<pre id=\"render-status\" data-done=\"false\"></pre>\n</main>\n";
  page += "<script type=\"application/json\" id=\"chart-specs\">" + script_safe(nlohmann::json(charts_).dump(), "</") +
          "</script>\n";
  page += std::string("<script>") + kRenderScript + "</script>\n</body>\n</html>\n";
  return page;
}

}  // namespace robustlens
