// The audit's summary and HTML report, made from audit.json alone (so the
// report shows exactly the numbers the JSON holds, which are those the
// subcommands wrote).
#pragma once

#include "robustlens/report/html_report.h"

#include <nlohmann/json.hpp>

#include <string>

namespace robustlens::cli {

/// {"columns": [{"key", "title", "note", "format"}], "rows": [{"model", "values": {key: number or null}}]}:
/// one row per model, the headline figure of each analysis, null where it did not run.
nlohmann::json audit_summary(const nlohmann::json& audit);

/// The summary as an aligned plain-text table for the terminal.
std::string summary_text(const nlohmann::json& summary);

/// The whole report page.
std::string render_audit_report(const nlohmann::json& audit, const WebAssets& assets);

}  // namespace robustlens::cli
