// What the audit report's sections share (each section lives in the file of its subcommand, see
// analysis_registry.h): the models an analysis ran on, the pictures its steps wrote, charts side by side, one
// colour per model across the whole report.
#pragma once

#include "audit_records.h"

#include "robustlens/report/chart.h"
#include "robustlens/report/html_report.h"

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace robustlens::cli {

/// A model that ran an analysis: its name, its record, and its colour (the model's index in the audit, so
/// that one model has one colour in every chart of the report; its variants differ by line style).
struct ModelRecord {
  std::string name;
  const nlohmann::json* record = nullptr;
  int colour = 0;
};

/// The models that ran `analysis`, with their records.
std::vector<ModelRecord> models_with(const nlohmann::json& audit, const std::string& analysis);
/// A paragraph saying which models an analysis was not run on, and why; returns those it ran on.
std::vector<ModelRecord> ran_on(HtmlReport& report, const nlohmann::json& audit, const std::string& analysis);

/// One picture per model that ran `analysis` (those whose file exists), side by side.
void model_figures(HtmlReport& report, const nlohmann::json& audit, const std::string& analysis,
                   const std::string& file, const std::string& caption);
void charts_side_by_side(HtmlReport& report, const std::vector<nlohmann::json>& specs);

/// The numbers of a JSON array (NaN for what is not a number).
std::vector<double> numbers(const nlohmann::json& array);

}  // namespace robustlens::cli
