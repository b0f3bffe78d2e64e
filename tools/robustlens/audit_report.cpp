// The audit's HTML report: the summary, each analysis's section (declared with the analysis,
// analysis_registry.h) in the registry's order, and how the numbers were made.
#include "audit_report.h"
#include "analysis_registry.h"
#include "audit_records.h"

namespace robustlens::cli {
namespace {

using nlohmann::json;

void summary_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Summary", "summary");
  report.paragraph(
      "One row per model, one headline figure per analysis; hover over a column title for what it "
      "measures. The sections below explain each analysis and show its charts.");
  std::vector<std::string> header{"model"}, notes{""};
  for (const json& column : audit["summary"]["columns"]) {
    header.push_back(column["title"]);
    notes.push_back(column["note"]);
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& row : audit["summary"]["rows"]) {
    std::vector<std::string> cells{row["model"].get<std::string>()};
    for (const json& column : audit["summary"]["columns"]) {
      cells.push_back(summary_cell(row, column));
    }
    rows.push_back(cells);
  }
  report.table(header, rows, notes);
  if (const json* comparisons = find(audit, {"comparisons"}); comparisons != nullptr && !comparisons->empty()) {
    report.paragraph(
        "A difference between two rows is only attributable to what their training differs in. Each "
        "model against the most similar other one (its training options, from the train_log.json "
        "beside the model; in brackets the other model's value):");
    std::string list = "<ul>";
    for (const std::string& line : comparison_lines(*comparisons)) list += "<li>" + html_escape(line) + "</li>";
    report.html(list + "</ul>");
  }
  std::string legend = "<ul>";
  for (const json& column : audit["summary"]["columns"]) {
    legend += "<li><b>" + html_escape(column["title"].get<std::string>()) +
              "</b>: " + html_escape(column["note"].get<std::string>()) + "</li>";
  }
  report.html(legend + "</ul>");
}

void reproduce_section(HtmlReport& report, const json& audit) {
  report.heading(2, "How these numbers were made", "reproduce");
  report.paragraph(
      "Each analysis ran as the robustlens subcommand below, with the same options and seed; run "
      "one alone to get the same numbers. Every number of this page is in audit.json, beside the "
      "options, the seed and the library versions.");
  std::string commands;
  const json generative = audit.value("generative", json::object());
  for (const auto& [step, entry] : generative.items()) {
    commands += entry["command"].get<std::string>() + "\n";
  }
  for (const json& model : audit["models"]) {
    for (const auto& [analysis, line] : model["commands"].items()) commands += line.get<std::string>() + "\n";
  }
  for (const Analysis& analysis : analysis_registry()) {  // the steps over all models
    if (analysis.scope != AuditScope::kAllModels) continue;
    if (const json* line = find(audit, {analysis.name, "command"})) commands += line->get<std::string>() + "\n";
  }
  report.html("<pre>" + html_escape(commands) + "</pre>");
  report.html(
      "<pre>" +
      html_escape(
          json({{"seed", audit["seed"]}, {"options", audit["options"]}, {"versions", audit["versions"]}}).dump(2)) +
      "</pre>");
}

}  // namespace

std::string render_audit_report(const json& audit, const WebAssets& assets) {
  const std::string data = audit["data"].value("name", "the data");
  HtmlReport report("robustlens audit: " + std::to_string(audit["models"].size()) + " model" +
                    (audit["models"].size() == 1 ? "" : "s") + " on " + data);
  std::string names;
  for (const json& model : audit["models"]) {
    names +=
        (names.empty() ? "" : ", ") + model["name"].get<std::string>() + " (" + model["file"].get<std::string>() + ")";
  }
  report.html("<p class=\"lead\">Models: " + html_escape(names) + ". Data: " + html_escape(data) + ", seed " +
              html_escape(audit["seed"].dump()) +
              (audit["options"].value("quick", false) ? ", quick audit (fewer samples)" : "") +
              ". Written by robustlens " + html_escape(audit["versions"].value("robustlens", "")) + ".</p>");
  summary_section(report, audit);
  for (const Analysis& analysis : analysis_registry()) {
    if (analysis.report_section) analysis.report_section(report, audit);
  }
  reproduce_section(report, audit);
  return report.render(assets);
}

}  // namespace robustlens::cli
