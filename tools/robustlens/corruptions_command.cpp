// robustlens corruptions: accuracy under common corruptions (data/corruptions.h) for one or more models, the
// corruption errors (mCE) against a baseline model, and, with --spectral-samples, I-ASIDE's validation: the
// rank correlation of the spectral robustness score with the accuracy under corruptions across the models.
#include "commands.h"
#include "common.h"

#include "robustlens/analyses/corruption_robustness.h"
#include "robustlens/analyses/spectral_importance.h"
#include "robustlens/core/console.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/core/random.h"
#include "robustlens/report/chart.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <sstream>

namespace robustlens::cli {
namespace {

using json = nlohmann::json;

struct CorruptionsCommand {
  CommonOptions common;
  std::vector<std::string> models, names;
  std::string baseline;
  std::int64_t spectral_samples = 0;
  std::int64_t spectral_bands = SpectralImportanceOptions().bands;
  CorruptionRobustnessOptions options;
};

/// Mean accuracy over the corruptions at each severity, severity 0 the clean images: one line per model.
LineChart corruption_accuracy_chart(const json& record) {
  LineChart chart{"Accuracy under common corruptions", "severity (0: clean)", "mean accuracy over the corruptions", {}};
  const std::vector<int> severities = record["options"]["severities"];
  int colour = 0;
  for (const json& model : record["models"]) {
    ChartSeries series;
    series.name = model["name"];
    series.x = {0};
    series.y = {model["clean_accuracy"].get<double>()};
    for (std::size_t s = 0; s < severities.size(); ++s) {
      double total = 0;
      for (const auto& [name, accuracies] : model["accuracy"].items()) total += accuracies[s].get<double>();
      series.x.push_back(severities[s]);
      series.y.push_back(total / static_cast<double>(model["accuracy"].size()));
    }
    series.colour = colour++;
    chart.series.push_back(series);
  }
  return chart;
}

/// Corruption error per corruption against the baseline, one bar per model (0 where it is undefined).
BarChart corruption_error_chart(const json& record) {
  BarChart chart{"Corruption error relative to " + record["baseline"].get<std::string>(),
                 "corruption",
                 "CE (baseline = 1)",
                 record["options"]["corruptions"],
                 {},
                 ""};
  int colour = 0;
  for (const json& model : record["models"]) {
    BarSeries series{model["name"], {}, colour++};
    for (const std::string& name : chart.categories) {
      const json& value = model["errors"]["per_corruption"][name]["corruption_error"];
      series.values.push_back(value.is_number() ? value.get<double>() : 0.0);
    }
    chart.series.push_back(series);
  }
  return chart;
}

/// Each model's signed spectral score against its accuracy drop under corruptions, the correlation in the note.
ScatterChart spectral_chart(const json& record) {
  ScatterChart chart{"Spectral robustness score and the drop under corruptions",
                     "signed spectral score",
                     "clean accuracy − mean accuracy under corruptions",
                     {},
                     ""};
  for (const json& model : record["models"]) {
    chart.groups.push_back({model["name"],
                            {model["spectral"]["signed_score"].get<double>()},
                            {model["clean_accuracy"].get<double>() - model["mean_corrupted_accuracy"].get<double>()}});
  }
  const json& correlation = record["spectral_validation"]["correlation"];
  if (!correlation.is_null()) {
    const json& drop = correlation["drop"]["signed_score"];
    chart.note = "Spearman " + format_number(number_or_nan(drop["spearman"]), "%+.3f", "undefined") +
                 ", 95% bootstrap interval [" + format_number(number_or_nan(drop["interval"][0]), "%+.3f", "?") + ", " +
                 format_number(number_or_nan(drop["interval"][1]), "%+.3f", "?") + "]";
  }
  return chart;
}

std::string accuracy_csv(const json& record) {
  std::ostringstream csv;
  csv << "model,corruption,severity,accuracy\n";
  const std::vector<int> severities = record["options"]["severities"];
  const std::vector<std::string> corruptions = record["options"]["corruptions"];
  for (const json& model : record["models"]) {
    csv << model["name"].get<std::string>() << ",none,0," << model["clean_accuracy"].get<double>() << '\n';
    for (const std::string& name : corruptions) {
      for (std::size_t s = 0; s < severities.size(); ++s) {
        csv << model["name"].get<std::string>() << ',' << name << ',' << severities[s] << ','
            << model["accuracy"][name][s].get<double>() << '\n';
      }
    }
  }
  return csv.str();
}

/// I-ASIDE's scores of every model (default options, the first `samples` images) and their correlation with the
/// accuracy under corruptions; fewer than 3 models: the scores and why there is no correlation.
json spectral_validation(const std::vector<Model*>& models, const Dataset& data,
                         const std::vector<CorruptionAccuracy>& accuracy, const CorruptionsCommand& command,
                         json& model_records) {
  const SpectralImportanceOptions options =
      SpectralImportanceOptions().set_bands(command.spectral_bands).set_seed(command.common.seed);
  std::vector<std::int64_t> first(static_cast<std::size_t>(std::min(command.spectral_samples, data.size())));
  for (std::size_t i = 0; i < first.size(); ++i) first[i] = static_cast<std::int64_t>(i);
  const Dataset images = data.subset(first);
  std::vector<double> signed_scores, scores;
  for (std::size_t m = 0; m < models.size(); ++m) {
    console::print("%s: spectral importance on %lld images\n", model_records[m]["name"].get<std::string>().c_str(),
                   static_cast<long long>(images.size()));
    const SpectralImportanceResult result =
        analyse_spectral_importance(*models[m], images, options, terminal_progress());
    signed_scores.push_back(result.overall.signed_score);
    scores.push_back(result.overall.score);
    model_records[m]["spectral"] = {{"score", result.overall.score}, {"signed_score", result.overall.signed_score}};
  }
  json validation = {{"options", options.to_json()},
                     {"images", images.size()},
                     {"measure",
                      "Spearman's rank correlation of each score with the mean accuracy under corruptions "
                      "and with its drop from the clean accuracy"}};
  if (models.size() < 3) {
    validation["correlation"] = nullptr;
    validation["why_not"] = "a rank correlation needs at least 3 models";
  } else {
    validation["correlation"] =
        spectral_corruption_correlation(signed_scores, scores, accuracy, derive_seed(command.common.seed, 1)).to_json();
  }
  return validation;
}

json model_record(const std::string& name, Model& model, const CorruptionAccuracy& accuracy,
                  const CorruptionAccuracy& baseline, const CorruptionRobustnessOptions& options) {
  json per_corruption = json::object();
  for (std::size_t c = 0; c < options.corruptions.size(); ++c)
    per_corruption[options.corruptions[c]] = accuracy.corrupted[c];
  return {{"name", name},
          {"model", model.info().to_json()},
          {"clean_accuracy", accuracy.clean},
          {"mean_corrupted_accuracy", accuracy.mean_corrupted()},
          {"accuracy", per_corruption},
          {"errors", corruption_errors(accuracy, baseline).to_json(options.corruptions)}};
}

void print_correlation(const json& validation) {
  if (validation["correlation"].is_null()) {
    console::print("no score–corruption correlation: %s\n", validation["why_not"].get<std::string>().c_str());
    return;
  }
  for (const auto& [target, what] : {std::pair{"accuracy", "the accuracy under corruptions"},
                                     std::pair{"drop", "its drop from the clean accuracy"}}) {
    for (const char* key : {"signed_score", "unsigned_score"}) {
      const json& correlation = validation["correlation"][target][key];
      console::print("Spearman of the %s with %s: %s, 95%% bootstrap interval [%s, %s]\n", key, what,
                     format_number(number_or_nan(correlation["spearman"]), "%+.3f", "undefined").c_str(),
                     format_number(number_or_nan(correlation["interval"][0]), "%+.3f", "?").c_str(),
                     format_number(number_or_nan(correlation["interval"][1]), "%+.3f", "?").c_str());
    }
  }
}

void print_table(const json& record) {
  const bool spectral = record.contains("spectral_validation");
  console::print("\n%-16s %9s %10s %8s %9s%s\n", "model", "clean", "corrupted", "mCE", "rel. mCE",
                 spectral ? "  spectral score (signed)" : "");
  for (const json& model : record["models"]) {
    const json& errors = model["errors"];
    console::print("%-16s %8.2f%% %9.2f%% %8s %9s", model["name"].get<std::string>().c_str(),
                   100 * model["clean_accuracy"].get<double>(), 100 * model["mean_corrupted_accuracy"].get<double>(),
                   format_number(number_or_nan(errors["mean_corruption_error"]), "%.3f", "—").c_str(),
                   format_number(number_or_nan(errors["relative_mean_corruption_error"]), "%.3f", "—").c_str());
    if (spectral) {
      console::print("  %.3f (%+.3f)", model["spectral"]["score"].get<double>(),
                     model["spectral"]["signed_score"].get<double>());
    }
    console::print("\n");
  }
  console::print(
      "(%lld images; CE and mCE against %s as ImageNet-C defines them; — where a corruption's term is "
      "undefined: the baseline makes no error under it, or (relative) loses no accuracy)\n",
      record["data"]["size"].get<long long>(), record["baseline"].get<std::string>().c_str());
  if (spectral) print_correlation(record["spectral_validation"]);
}

void run_corruptions(CorruptionsCommand command) {
  CommonOptions& common = command.common;
  if (common.out.empty()) common.out = "runs/corruptions";
  CorruptionRobustnessOptions options = command.options.set_batch_size(common.batch_size).set_seed(common.seed);
  options.check();
  RL_CHECK(images_are_pixels(common), "--transform: corruptions act on pixels in [0,1], so --transform must be none");
  const std::vector<std::string> names = model_names(command.models, command.names);
  const std::string baseline = command.baseline.empty() ? names.front() : command.baseline;
  const auto baseline_index = static_cast<std::size_t>(std::find(names.begin(), names.end(), baseline) - names.begin());
  RL_CHECK(baseline_index < names.size(), "--baseline: '", baseline, "' names no model (the models are ",
           json(names).dump(), ")");
  const at::Device device = start_run(common);
  std::vector<std::int64_t> indices;
  const Dataset data = select_data(load_data(common, common.split), common, &indices);
  std::vector<std::unique_ptr<Model>> loaded;
  std::vector<Model*> models;
  for (const std::string& path : command.models) {
    CommonOptions model_options = common;
    model_options.model = path;
    loaded.push_back(load_model_for(model_options, data, device));
    models.push_back(loaded.back().get());
  }
  console::print("%zu model(s): accuracy on %lld images under %zu corruptions × %zu severities\n", models.size(),
                 static_cast<long long>(data.size()), options.corruptions.size(), options.severities.size());
  const std::vector<CorruptionAccuracy> accuracy =
      measure_corruption_accuracy(models, data, options, terminal_progress());

  json record = run_record("corruptions", options.to_json(), common);
  record["data"] = data.summary();
  record["indices"] = indices;
  record["baseline"] = baseline;
  record["models"] = json::array();
  for (std::size_t m = 0; m < models.size(); ++m) {
    record["models"].push_back(model_record(names[m], *models[m], accuracy[m], accuracy[baseline_index], options));
  }
  if (command.spectral_samples > 0) {
    record["spectral_validation"] = spectral_validation(models, data, accuracy, command, record["models"]);
  }
  const std::filesystem::path out(common.out);
  write_json_file((out / "corruptions.json").string(), record);
  write_text_file((out / "corruptions.csv").string(), accuracy_csv(record));
  write_svg((out / "accuracy.svg").string(), corruption_accuracy_chart(record));
  write_svg((out / "errors.svg").string(), corruption_error_chart(record));
  if (record.contains("spectral_validation")) write_svg((out / "spectral.svg").string(), spectral_chart(record));
  print_table(record);
  console::print("results in %s, %s, %s, %s%s\n", (out / "corruptions.json").c_str(), (out / "corruptions.csv").c_str(),
                 (out / "accuracy.svg").c_str(), (out / "errors.svg").c_str(),
                 record.contains("spectral_validation") ? (", " + (out / "spectral.svg").string()).c_str() : "");
}

}  // namespace

void add_corruptions_command(CLI::App& app) {
  auto command = std::make_shared<CorruptionsCommand>();
  CLI::App* sub =
      app.add_subcommand("corruptions",
                         "Accuracy under common corruptions (ImageNet-C style), mCE against a baseline model, and the "
                         "spectral score's correlation with it across models");
  sub->add_option("--model", command->models, "Model file(s); repeat to compare models")->required();
  sub->add_option("--name", command->names, "A name per --model for the table (default: each model's folder name)");
  sub->add_option("--baseline", command->baseline,
                  "The model (by name) the corruption errors are relative to (default: the first)");
  add_common_options(*sub, command->common, kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  sub->get_option("--out")->description("Output folder (default runs/corruptions)");
  sub->add_option("--corruptions", command->options.corruptions, "Corruptions, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--severities", command->options.severities, "Severities 1..5, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--spectral-samples", command->spectral_samples,
                  "Also I-ASIDE's spectral robustness score of every model on the first this many images, and its "
                  "Spearman correlation with the accuracy under corruptions across models (0 = skip)")
      ->check(kNonNegative)
      ->capture_default_str();
  sub->add_option("--spectral-bands", command->spectral_bands, "Fourier bands M of the spectral score (2^M coalitions)")
      ->check(kPositive)
      ->capture_default_str();
  sub->callback([command] { run_corruptions(*command); });
}

}  // namespace robustlens::cli
