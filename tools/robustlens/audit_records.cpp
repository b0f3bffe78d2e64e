#include "audit_records.h"

#include "common.h"

namespace robustlens::cli {

using nlohmann::json;

bool step_record_matches(const std::string& marker_text, const json& record) {
  const json finished = json::parse(marker_text, nullptr, /*allow_exceptions=*/false);
  if (!finished.is_object()) return false;
  const auto field = [&](const char* key, const json& fallback) {
    return finished.contains(key) ? finished[key] : fallback;
  };
  return field("arguments", nullptr) == record.at("arguments") && field("inputs", nullptr) == record.at("inputs") &&
         field("data", nullptr) == record.at("data") && field("build", nullptr) == record.at("build") &&
         field("record_format", 1) == record.at("record_format");
}

const json* find(const json& root, const std::vector<json>& path) {
  const json* at = &root;
  for (const json& key : path) {
    if (key.is_string() && at->is_object() && at->contains(key.get<std::string>())) {
      at = &(*at)[key.get<std::string>()];
    } else if (key.is_number_integer() && at->is_array() && key.get<std::size_t>() < at->size()) {
      at = &(*at)[key.get<std::size_t>()];
    } else {
      return nullptr;
    }
  }
  return at;
}
std::optional<double> number(const json& root, const std::vector<json>& path) {
  const json* value = find(root, path);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  return value->get<double>();
}

std::string format_value(const json& value, const std::string& format) {
  if (!value.is_number()) return "—";
  const double v = value.get<double>();
  if (format == "percent") return format_number(100 * v, "%.1f%%");
  return format_number(v, format == "fixed" ? "%.3f" : "%.3g");
}

std::string summary_cell(const json& row, const json& column) {
  const std::string key = column["key"].get<std::string>();
  const bool bound = row.contains("lower_bounds") && row["lower_bounds"].value(key, false);
  return (bound ? "≥" : "") + format_value(row["values"][key], column["format"]);
}

}  // namespace robustlens::cli
