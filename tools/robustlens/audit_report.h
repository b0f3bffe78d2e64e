// The audit's summary (audit_summary.cpp) and HTML report (audit_report.cpp),
// made from audit.json alone (so the report shows exactly the numbers the JSON
// holds, which are those the subcommands wrote; audit_records.h reads them).
#pragma once

#include "robustlens/report/html_report.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace robustlens::cli {

/// {"columns": [{"key", "title", "note", "format"}], "rows": [{"model", "values": {key: number or null}}]}:
/// one row per model, the headline figure of each analysis, null where it did not run.
nlohmann::json audit_summary(const nlohmann::json& audit);

/// Per model, what its training differs in from the most similar other model's: [{"model", "compared_with"
/// (null when either has no training record), "differences": [{"option", "value", "compared_value"}]}]. An
/// option is a path into the training options (train_log.json's "options": architecture and recipe); objects
/// of different "kind" (e.g. two objectives) differ as a whole. Fewest differences wins; ties go to the earlier model.
nlohmann::json training_comparisons(const nlohmann::json& audit);

/// Those comparisons as lines for the terminal and the report ("pgd-l2 differs from standard in ...").
std::vector<std::string> comparison_lines(const nlohmann::json& comparisons);

/// The summary as an aligned plain-text table for the terminal.
std::string summary_text(const nlohmann::json& summary);

/// The whole report page.
std::string render_audit_report(const nlohmann::json& audit, const WebAssets& assets);

}  // namespace robustlens::cli
