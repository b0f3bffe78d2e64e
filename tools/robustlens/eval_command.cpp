// robustlens eval: clean accuracy of a model on a dataset split.
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "report_sections.h"

#include "robustlens/core/console.h"
#include "robustlens/core/files.h"
#include "robustlens/models/accuracy.h"

#include <filesystem>
#include <memory>
#include <sstream>

namespace robustlens::cli {
namespace {

struct EvalCommand {
  CommonOptions common;
  bool save_logits = false;
};

std::string logits_csv(const at::Tensor& logits) {
  std::ostringstream csv;
  csv.precision(9);
  const auto rows = logits.accessor<float, 2>();
  for (std::int64_t i = 0; i < logits.size(0); ++i) {
    for (std::int64_t k = 0; k < logits.size(1); ++k) csv << (k ? "," : "") << rows[i][k];
    csv << '\n';
  }
  return csv.str();
}

void run_eval(const EvalCommand& command) {
  CommonOptions common = command.common;
  const AnalysisRun run = start_analysis(common, "eval");
  const Dataset& data = run.data;
  const AccuracyOptions options = AccuracyOptions().set_batch_size(common.batch_size);
  const AccuracyResult result = evaluate_accuracy(*run.model, data, options, terminal_progress());

  nlohmann::json record = run.record("eval", options.to_json(), common);
  record.update(result.to_json(data.class_names));
  const std::filesystem::path out(common.out);
  write_json_file((out / "eval.json").string(), record);
  if (command.save_logits) write_text_file((out / "logits.csv").string(), logits_csv(result.logits));
  console::print("accuracy %.2f%% on %lld images of %s (mean cross-entropy %.4f); results in %s\n",
                 100 * result.accuracy, static_cast<long long>(data.size()), data.name.c_str(), result.mean_loss,
                 (out / "eval.json").c_str());
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto command = std::make_shared<EvalCommand>();
  CLI::App* sub = app.add_subcommand("eval", "Clean accuracy of a model on a dataset split");
  add_common_options(*sub, command->common, kModel | kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  sub->add_flag("--save-logits", command->save_logits, "Also write OUT/logits.csv (one row of K logits per image)");
  sub->callback([command] { run_eval(*command); });
}

namespace {

using json = nlohmann::json;

}  // namespace

Analysis eval_analysis() {
  Analysis analysis;
  analysis.name = "eval";
  analysis.result_file = "eval.json";
  analysis.add_command = add_eval_command;
  analysis.quick_arguments = {"--samples", "2000"};
  analysis.summary_columns = {
      {"accuracy", "accuracy", "Share of the test images classified correctly (eval).", "percent",
       [](const json&, const json& m) {
         return number(m, {"analyses", "eval", "accuracy"});
       }},
  };
  return analysis;
}

}  // namespace robustlens::cli
