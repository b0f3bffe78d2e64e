#include "report_sections.h"

#include <cmath>
#include <filesystem>

namespace robustlens::cli {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<ModelRecord> models_with(const json& audit, const std::string& analysis) {
  std::vector<ModelRecord> found;
  int index = 0;
  for (const json& model : audit["models"]) {
    const json* record = find(model, {"analyses", analysis});
    if (record != nullptr) found.push_back({model["name"].get<std::string>(), record, index});
    ++index;
  }
  return found;
}

std::vector<ModelRecord> ran_on(HtmlReport& report, const json& audit, const std::string& analysis) {
  for (const json& model : audit["models"]) {
    const json* why = find(model, {"skipped", analysis});
    if (why != nullptr) {
      report.html("<p class=\"skipped\">Not run on " + html_escape(model["name"].get<std::string>()) + ": " +
                  html_escape(why->get<std::string>()) + ".</p>");
    }
  }
  return models_with(audit, analysis);
}

void model_figures(HtmlReport& report, const json& audit, const std::string& analysis, const std::string& file,
                   const std::string& caption) {
  std::vector<Figure> pictures;
  for (const json& model : audit["models"]) {
    const json* folder = find(model, {"folders", analysis});
    if (folder == nullptr) continue;
    const fs::path path = fs::path(folder->get<std::string>()) / file;
    if (fs::exists(path)) pictures.push_back({path.string(), model["name"].get<std::string>() + ": " + caption});
  }
  if (!pictures.empty()) report.figures(pictures);
}

void charts_side_by_side(HtmlReport& report, const std::vector<json>& specs) {
  report.html("<div class=\"figures\">");
  for (const json& spec : specs) report.chart(spec);
  report.html("</div>");
}

std::vector<double> numbers(const json& array) {
  std::vector<double> values;
  for (const json& v : array) values.push_back(v.is_number() ? v.get<double>() : std::nan(""));
  return values;
}

}  // namespace robustlens::cli
