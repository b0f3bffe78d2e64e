// The audit's summary: one row per model, one headline figure per analysis (the columns are declared with
// their analyses, analysis_registry.h), and how the models' training differs.
#include "analysis_registry.h"
#include "audit_records.h"
#include "audit_report.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

namespace robustlens::cli {
namespace {

using nlohmann::json;

/// Appends to `out` where a and b differ, recursing into objects of the same kind.
void collect_differences(const json& a, const json& b, const std::string& path, json& out) {
  if (a.is_object() && b.is_object() && a.value("kind", json()) == b.value("kind", json())) {
    std::set<std::string> keys;
    for (const auto& [key, value] : a.items()) keys.insert(key);
    for (const auto& [key, value] : b.items()) keys.insert(key);
    for (const std::string& key : keys) {
      collect_differences(a.value(key, json()), b.value(key, json()), path.empty() ? key : path + "." + key, out);
    }
  } else if (a != b) {
    out.push_back({{"option", path}, {"value", a}, {"compared_value", b}});
  }
}

}  // namespace

json training_comparisons(const json& audit) {
  json comparisons = json::array();
  const json& models = audit["models"];
  for (const json& model : models) {
    json best = {{"model", model["name"]}, {"compared_with", nullptr}, {"differences", json::array()}};
    const json training = model.value("training", json());
    for (const json& other : models) {
      const json other_training = other.value("training", json());
      if (&other == &model || !training.is_object() || !other_training.is_object()) continue;
      json differences = json::array();
      collect_differences(training, other_training, "", differences);
      if (best["compared_with"].is_null() || differences.size() < best["differences"].size()) {
        best["compared_with"] = other["name"];
        best["differences"] = differences;
      }
    }
    comparisons.push_back(best);
  }
  return comparisons;
}

std::vector<std::string> comparison_lines(const json& comparisons) {
  std::vector<std::string> lines;
  for (const json& c : comparisons) {
    const std::string name = c["model"].get<std::string>();
    if (c["compared_with"].is_null()) {
      lines.push_back(name +
                      ": no training record to compare (train_log.json beside the model, written by robustlens train)");
      continue;
    }
    std::string line = name + " differs from " + c["compared_with"].get<std::string>() + " in ";
    if (c["differences"].empty()) line += "nothing";
    for (std::size_t i = 0; i < c["differences"].size(); ++i) {
      const json& d = c["differences"][i];
      const auto shown = [](const json& v) { return v.is_null() ? std::string("(none)") : v.dump(); };
      line += (i == 0 ? "" : "; ") + d["option"].get<std::string>() + " " + shown(d["value"]) + " (" +
              shown(d["compared_value"]) + ")";
    }
    lines.push_back(line);
  }
  return lines;
}

json audit_summary(const json& audit) {
  json summary = {{"columns", json::array()}, {"rows", json::array()}};
  std::vector<const SummaryColumn*> columns;
  for (const Analysis& analysis : analysis_registry()) {
    for (const SummaryColumn& column : analysis.summary_columns) columns.push_back(&column);
  }
  for (const SummaryColumn* column : columns) {
    summary["columns"].push_back(
        {{"key", column->key}, {"title", column->title}, {"note", column->note}, {"format", column->format}});
  }
  for (const json& model : audit["models"]) {
    json values = json::object(), lower_bounds = json::object();
    for (const SummaryColumn* column_entry : columns) {
      const SummaryColumn& column = *column_entry;
      const std::optional<double> value = column.value(audit, model);
      values[column.key] = value && std::isfinite(*value) ? json(*value) : json(nullptr);
      if (column.lower_bound && column.lower_bound(audit, model)) lower_bounds[column.key] = true;
    }
    summary["rows"].push_back({{"model", model["name"]}, {"values", values}, {"lower_bounds", lower_bounds}});
  }
  return summary;
}

std::string summary_text(const json& summary) {
  std::vector<std::vector<std::string>> table{{"model"}};
  for (const json& column : summary["columns"]) table[0].push_back(column["title"]);
  for (const json& row : summary["rows"]) {
    table.push_back({row["model"]});
    for (const json& column : summary["columns"]) {
      table.back().push_back(summary_cell(row, column));
    }
  }
  // Display width in characters (UTF-8 continuation bytes do not count).
  const auto width = [](const std::string& s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  };
  std::vector<std::size_t> widths(table[0].size(), 0);
  for (const auto& row : table) {
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], width(row[c]));
  }
  std::string text;
  for (const auto& row : table) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::string padding(widths[c] - width(row[c]), ' ');
      text += c == 0 ? row[c] + padding : "  " + padding + row[c];
    }
    text += "\n";
  }
  return text;
}

}  // namespace robustlens::cli
