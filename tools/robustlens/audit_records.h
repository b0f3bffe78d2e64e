// Reading the audit's records (audit.json and the subcommands' JSON inside it):
// shared by the summary (audit_summary.cpp), the report (audit_report.cpp) and the report sections of the
// command files (report_sections.h).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace robustlens::cli {

/// Whether a finished step's record (the text of its audit_step.json) was made with what `record` holds:
/// the same arguments, inputs, data, build and record format (a record made before one of them was recorded
/// counts as made with another). A record that is not a JSON object matches nothing.
bool step_record_matches(const std::string& marker_text, const nlohmann::json& record);

/// The value at a path of keys and indices, or nullptr where any step is missing.
const nlohmann::json* find(const nlohmann::json& root, const std::vector<nlohmann::json>& path);
/// The number at that path, or nothing where it is missing or not a number.
std::optional<double> number(const nlohmann::json& root, const std::vector<nlohmann::json>& path);

/// A number as the summary shows it: format percent (1 decimal), fixed (3 decimals) or general (3 digits);
/// "—" for what is not a number.
std::string format_value(const nlohmann::json& value, const std::string& format);
/// A summary cell: the formatted value, with "≥" when the row marks it as a lower bound.
std::string summary_cell(const nlohmann::json& row, const nlohmann::json& column);

}  // namespace robustlens::cli
