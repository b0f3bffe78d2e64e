// The analyses the audit runs, each declared once, in the file of its subcommand (eval_command.cpp declares
// eval_analysis(), ...): its name, its result file, how the audit runs it (per model or over all models, what
// it needs, the options it adds and those --quick adds), its columns of the summary table and its section of
// the HTML report. The subcommands the audit can run, its steps, --skip, --quick, the summary and the report's
// sections all derive from analysis_registry(); docs/audit.md#adding-an-analysis says how to add one.
#pragma once

#include "robustlens/report/html_report.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace robustlens::cli {

/// A headline number of the audit's summary table: one column, one value per model.
struct SummaryColumn {
  std::string key, title, note;
  std::string format;  ///< percent, fixed (3 decimals) or general (3 digits)
  /// The model's value from audit.json (`model` is its entry in audit["models"]); nothing where it did not run.
  std::function<std::optional<double>(const nlohmann::json& audit, const nlohmann::json& model)> value;
  /// Whether the value is only a lower bound (shown as "≥"); empty: never.
  std::function<bool(const nlohmann::json& audit, const nlohmann::json& model)> lower_bound = {};
};

/// How the audit runs an analysis.
enum class AuditScope {
  kPerModel,    ///< one step per model, into OUT/models/NAME/ANALYSIS (audit["models"][m]["analyses"][name])
  kAllModels,   ///< one step over every model that can run it, into OUT/NAME (audit[name])
  kGenerative,  ///< a model of the data the others use (--fit-generative), into OUT/generative/NAME
};

/// What an analysis takes besides a model and the data, or what a generative step provides.
enum Requirement : unsigned {
  kNoRequirement = 0,
  kVaeIfAny = 1,    ///< --vae when there is one (the analysis runs without it)
  kDenoiser = 2,    ///< --denoiser (the analysis is skipped without one)
  kLatentCode = 4,  ///< a model with a latent code (others are skipped)
};

struct Analysis {
  std::string name;         ///< the subcommand; the --skip name, folder and key in audit.json
  std::string result_file;  ///< the JSON it writes into --out
  void (*add_command)(CLI::App& app) = nullptr;
  AuditScope scope = AuditScope::kPerModel;
  unsigned needs = kNoRequirement;  ///< for kGenerative: what it provides
  std::string model_file;           ///< kGenerative: the model it writes into --out (vae.pt)
  /// Options the audit always adds, and those --quick adds (sample counts are capped by the split's size).
  std::vector<std::string> audit_arguments, quick_arguments;
  /// Raised when the summary or the report needs a field that older records lack, so that an upgraded
  /// robustlens runs those steps again instead of showing "—"; markers written before versions existed count as 1.
  int record_format = 1;
  std::vector<SummaryColumn> summary_columns;
  /// Its section of the HTML report, from audit.json; empty: none.
  std::function<void(HtmlReport& report, const nlohmann::json& audit)> report_section;
};

Analysis train_vae_analysis();
Analysis train_denoiser_analysis();
Analysis eval_analysis();
Analysis attack_analysis();
Analysis explain_analysis();
Analysis margins_analysis();
Analysis spectral_analysis();
Analysis upi_analysis();
Analysis manifold_analysis();
Analysis align_analysis();
Analysis latent_analysis();

/// Every analysis above, in the order of the audit's steps, the summary's columns and the report's sections.
const std::vector<Analysis>& analysis_registry();
/// The entry of `name`; an Error names the analyses there are.
const Analysis& registered_analysis(const std::string& name);
/// The names of the analyses --skip accepts (all but the generative steps), comma-separated.
std::string skippable_analyses();

}  // namespace robustlens::cli
