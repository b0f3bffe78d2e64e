// robustlens latent: the latent-code measures of the binary-encoding paper
// (binarity, same encoding, collapse, DeepFool robustness, misclassification
// detection) for one or more models, with a histogram chart of the latent units
// and a 2-D projection of z per model, and a comparison table.
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "report_sections.h"

#include "robustlens/analyses/latent.h"
#include "robustlens/analyses/ood_detection.h"
#include "robustlens/core/console.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/report/chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

namespace robustlens::cli {
namespace {

/// Units drawn in the histogram chart (a wide bottleneck has hundreds).
constexpr std::int64_t kHistogramUnits = 8;
constexpr std::int64_t kHistogramBins = 40;
/// Points in the projection chart (the first test images).
constexpr std::int64_t kProjectedPoints = 2000;

struct LatentCommand {
  CommonOptions common;
  LatentOptions latent;
  std::vector<std::string> models, names;
  std::int64_t train_samples = 0;
  bool save_latents = false;
  std::vector<std::string> ood;  ///< "held-out" or dataset specs
};

/// The --ood sets: the test images of the --exclude-classes ("held-out"), or the test split of a dataset spec;
/// --samples images of each, drawn with --seed.
std::vector<OodSet> load_ood_sets(const LatentCommand& command) {
  CommonOptions selection = command.common;
  selection.indices.clear();
  std::vector<OodSet> sets;
  for (const std::string& spec : command.ood) {
    if (spec == "held-out") {
      const Dataset held_out = load_held_out_classes(command.common, "test");
      sets.push_back({"held-out classes " + command.common.exclude_classes, select_data(held_out, selection)});
      continue;
    }
    CommonOptions other = selection;
    other.data = spec;
    other.exclude_classes.clear();
    sets.push_back({spec, select_data(load_data(other, "test"), other)});
  }
  return sets;
}

void print_ood(const std::vector<std::string>& names, const nlohmann::json& record) {
  console::print(
      "\nout-of-distribution detection (test images of the training classes against each set): AUROC / "
      "false-positive rate at 95%% true-positive rate\n%-14s %-40s %15s %15s %15s\n",
      "model", "set", "Mahalanobis", "ODIN", "max softmax");
  const auto cell = [](const nlohmann::json& quality) {
    return format_number(number_or_nan(quality["auroc"]), "%.3f", "—") + " / " +
           format_number(number_or_nan(quality["fpr_at_95_tpr"]), "%.3f", "—");
  };
  for (std::size_t m = 0; m < names.size(); ++m) {
    for (const nlohmann::json& set : record["models"][m]["ood"]) {
      console::print("%-14s %-40s %15s %15s %15s\n", names[m].c_str(),
                     set["set"].get<std::string>().substr(0, 40).c_str(), cell(set["mahalanobis"]).c_str(),
                     cell(set["odin"]).c_str(), cell(set["max_softmax"]).c_str());
    }
  }
}

/// The model's folder name (runs/latent/binenc/model.pt → binenc), unless names repeat; then model-1, model-2, ...
LineChart unit_histograms(const at::Tensor& latent, const std::string& name) {
  const at::Tensor z = latent.to(at::kDouble);
  const at::Tensor standardised = (z - z.mean(0)) / z.std(0, /*unbiased=*/false).clamp_min(1e-12);
  const std::int64_t units = std::min(kHistogramUnits, z.size(1));
  const double low = standardised.slice(1, 0, units).min().item<double>();
  const double high = std::max(low + 1e-9, standardised.slice(1, 0, units).max().item<double>());
  const double width = (high - low) / kHistogramBins;
  LineChart chart{"Latent units of " + name + " (test images)", "unit value, standardised", "fraction of images", {}};
  if (units < z.size(1))
    chart.note = "the first " + std::to_string(units) + " of " + std::to_string(z.size(1)) + " units";
  for (std::int64_t d = 0; d < units; ++d) {
    const at::Tensor counts =
        at::histc(standardised.select(1, d), kHistogramBins, low, high) / static_cast<double>(z.size(0));
    ChartSeries series{"unit " + std::to_string(d + 1), {}, {}, {}, {}, false};
    for (std::int64_t b = 0; b < kHistogramBins; ++b) {
      series.x.push_back(low + (static_cast<double>(b) + 0.5) * width);
      series.y.push_back(counts[b].item<double>());
    }
    chart.series.push_back(series);
  }
  return chart;
}

/// The first two principal components of the test latents, coloured by true class.
ScatterChart latent_projection(const at::Tensor& latent, const Dataset& test, const std::string& name) {
  const at::Tensor z = latent.to(at::kDouble), centred = z - z.mean(0);
  const auto [u, singular, vh] = at::linalg_svd(centred, /*full_matrices=*/false);
  const std::int64_t components = std::min<std::int64_t>(2, singular.size(0));
  const at::Tensor projected = centred.mm(vh.slice(0, 0, components).t());
  const double explained =
      (singular.slice(0, 0, components).pow(2).sum() / singular.pow(2).sum().clamp_min(1e-300)).item<double>();
  ScatterChart chart{"Latent code of " + name + ", principal components", "component 1", "component 2", {}, {}};
  std::ostringstream note;
  note.precision(3);
  note << "test images, coloured by class; the two components hold " << 100 * explained << "% of the variance";
  chart.note = note.str();
  const std::int64_t shown = std::min(kProjectedPoints, z.size(0));
  for (std::size_t c = 0; c < test.class_names.size(); ++c) chart.groups.push_back({test.class_names[c], {}, {}});
  for (std::int64_t i = 0; i < shown; ++i) {
    ScatterGroup& group = chart.groups[static_cast<std::size_t>(test.labels[i].item<std::int64_t>())];
    group.x.push_back(projected[i][0].item<double>());
    group.y.push_back(components > 1 ? projected[i][1].item<double>() : 0.0);
  }
  return chart;
}

struct Row {
  std::string name;
  const LatentResult* result;
};

const std::vector<std::string> kColumns{"model",
                                        "accuracy",
                                        "P",
                                        "same encoding",
                                        "separation",
                                        "separation median",
                                        "NC1",
                                        "within-class variance",
                                        "DeepFool r/x",
                                        "ensemble r/x",
                                        "AUROC Mahalanobis",
                                        "AUROC ODIN",
                                        "AUROC max softmax"};

std::vector<std::string> cells(const Row& row) {
  const LatentResult& r = *row.result;
  const auto number = [](double v, const char* format) { return format_number(v, format, "n/a"); };
  return {row.name,
          number(100 * r.test_accuracy, "%.2f%%"),
          std::to_string(r.latent_dim),
          number(r.test_encoding.same_encoding_fraction, "%.4f"),
          number(r.binarity.separation, "%.3g"),
          number(r.binarity.separation_median, "%.3g"),
          number(r.test_collapse.nc1, "%.3g"),
          number(r.test_collapse.within_class_variance, "%.3g"),
          number(r.robustness_ratio, "%.4f"),
          number(r.ensemble_ratio, "%.4f"),
          number(r.mahalanobis_auroc, "%.4f"),
          number(r.odin_auroc, "%.4f"),
          number(r.max_softmax_auroc, "%.4f")};
}

std::string markdown_table(const std::vector<Row>& rows) {
  std::ostringstream table;
  const auto line = [&](const std::vector<std::string>& values) {
    table << '|';
    for (const std::string& v : values) table << ' ' << v << " |";
    table << '\n';
  };
  line(kColumns);
  line(std::vector<std::string>(kColumns.size(), "---"));
  for (const Row& row : rows) line(cells(row));
  return table.str();
}

std::string csv_table(const std::vector<Row>& rows) {
  std::ostringstream table;
  const auto line = [&](const std::vector<std::string>& values) {
    for (std::size_t i = 0; i < values.size(); ++i) table << (i ? "," : "") << values[i];
    table << '\n';
  };
  line(kColumns);
  for (const Row& row : rows) line(cells(row));
  return table.str();
}

/// A model's charts (and with --save-latents its latent codes) into `folder`; the files go to `written`.
void write_model_outputs(const std::filesystem::path& folder, const std::string& name, const LatentResult& result,
                         const Dataset& train, const Dataset& test, bool save_latents,
                         std::vector<std::string>& written) {
  std::filesystem::create_directories(folder);
  write_svg((folder / "units.svg").string(), unit_histograms(result.test_latent, name));
  write_svg((folder / "projection.svg").string(), latent_projection(result.test_latent, test, name));
  written.push_back((folder / "units.svg").string());
  written.push_back((folder / "projection.svg").string());
  if (!save_latents) return;
  write_tensors((folder / "latents.pt").string(), {{"train_latent", result.train_latent},
                                                   {"train_labels", train.labels},
                                                   {"train_predicted", result.train_predicted},
                                                   {"test_latent", result.test_latent},
                                                   {"test_logits", result.test_logits},
                                                   {"test_labels", test.labels},
                                                   {"test_predicted", result.test_predicted}});
  written.push_back((folder / "latents.pt").string());
}

void print_comparison(const std::vector<Row>& rows, std::int64_t deepfool_images) {
  console::print("\n%s", markdown_table(rows).c_str());
  console::print(
      "(same encoding, NC1 and within-class variance: test images, predicted labels; separation: training "
      "latents; DeepFool and the ensemble: the first %lld test images, ensemble r/x the mean over those it "
      "fooled, 0 for a misclassified image; AUROC: detecting misclassified test images)\n",
      static_cast<long long>(deepfool_images));
  for (const Row& row : rows) {
    if (!row.result->ensemble_warning.empty())
      console::print("WARNING %s: %s\n", row.name.c_str(), row.result->ensemble_warning.c_str());
  }
}

nlohmann::json ood_json(Model& model, const Dataset& train, const Dataset& test, const std::vector<OodSet>& sets,
                        const LatentOptions& options) {
  nlohmann::json detections = nlohmann::json::array();
  for (const OodDetection& detection :
       detect_out_of_distribution(model, train, test, sets, options, terminal_progress()))
    detections.push_back(detection.to_json());
  return detections;
}

void run_latent(LatentCommand command) {
  CommonOptions& common = command.common;
  if (common.out.empty()) common.out = "runs/latent";
  LatentOptions options = command.latent.set_batch_size(common.batch_size);
  options.ensemble_options.set_clip(images_are_pixels(common));  // transformed images are not pixels in [0,1]
  options.check();
  RL_CHECK(!command.models.empty(), "--model: give at least one model");
  RL_CHECK(command.train_samples >= 0, "--train-samples must be >= 0 (0 = all), got ", command.train_samples);
  const std::vector<std::string> names = model_names(command.models, command.names);
  const at::Device device = start_run(common);
  std::vector<std::int64_t> test_indices;
  const Dataset test = select_data(load_data(common, "test"), common, &test_indices);
  CommonOptions train_selection = common;
  train_selection.samples = command.train_samples;
  train_selection.samples_given = command.train_samples > 0;
  train_selection.indices.clear();
  const Dataset train = select_data(load_data(common, "train"), train_selection);
  const std::vector<OodSet> ood_sets = load_ood_sets(command);

  const std::filesystem::path out(common.out);
  nlohmann::json record = run_record("latent", options.to_json(), common);
  record["train_data"] = train.summary();
  record["test_data"] = test.summary();
  record["test_indices"] = test_indices;
  record["models"] = nlohmann::json::array();
  std::vector<LatentResult> results;
  results.reserve(command.models.size());
  std::vector<std::string> written;
  for (std::size_t m = 0; m < command.models.size(); ++m) {
    CommonOptions model_options = common;
    model_options.model = command.models[m];
    auto model = load_model_for(model_options, test, device);
    console::print("%s (%s): latent measures on %lld training and %lld test images\n", names[m].c_str(),
                   command.models[m].c_str(), static_cast<long long>(train.size()),
                   static_cast<long long>(test.size()));
    results.push_back(analyse_latent(*model, train, test, options, terminal_progress()));
    const LatentResult& result = results.back();
    record["models"].push_back({{"name", names[m]}, {"model", model->info().to_json()}, {"result", result.to_json()}});
    if (!ood_sets.empty()) record["models"].back()["ood"] = ood_json(*model, train, test, ood_sets, options);
    write_model_outputs(out / names[m], names[m], result, train, test, command.save_latents, written);
    results.back().train_latent = at::Tensor();  // the largest; not needed any more
  }
  std::vector<Row> rows;
  for (std::size_t m = 0; m < results.size(); ++m) rows.push_back({names[m], &results[m]});
  write_json_file((out / "latent.json").string(), record);
  write_text_file((out / "comparison.md").string(), markdown_table(rows));
  write_text_file((out / "comparison.csv").string(), csv_table(rows));

  print_comparison(rows, std::min(options.deepfool_samples, test.size()));
  if (!ood_sets.empty()) print_ood(names, record);
  console::print("results in %s, %s, %s", (out / "latent.json").c_str(), (out / "comparison.md").c_str(),
                 (out / "comparison.csv").c_str());
  for (const std::string& file : written) console::print(", %s", file.c_str());
  console::print("\n");
}

}  // namespace

void add_latent_command(CLI::App& app) {
  auto command = std::make_shared<LatentCommand>();
  CLI::App* sub = app.add_subcommand(
      "latent",
      "Latent-code measures (binarity, same encoding, collapse, DeepFool robustness, misclassification AUROC)");
  sub->add_option("--model", command->models, "Model file(s) exposing a latent code; repeat to compare models")
      ->required();
  sub->add_option("--name", command->names,
                  "A name per --model for the table and folders (default: each model's folder name)");
  add_common_options(*sub, command->common, kData | kSamples | kBatchSize | kRuntime | kOut);
  sub->get_option("--samples")->description("Test images to measure (0 = all)");
  sub->get_option("--out")->description("Output folder (default runs/latent)");
  LatentOptions& l = command->latent;
  sub->add_option("--train-samples", command->train_samples,
                  "Training images for the binarity fits and the Mahalanobis Gaussians (0 = all)")
      ->capture_default_str();
  add_ensemble_options(*sub, l.ensemble, l.ensemble_options,
                       "DeepFool, FMN, PGD bisection, a long FMN on the images none fooled; DeepFool alone without it");
  sub->add_option("--deepfool-samples", l.deepfool_samples,
                  "DeepFool runs on the first this many test images (0 = skip)")
      ->check(kNonNegative)
      ->capture_default_str();
  add_deepfool_options(*sub, l.deepfool);
  sub->add_option("--ood", command->ood,
                  "Out-of-distribution sets to detect, repeatable: held-out (the test images of --exclude-classes) or "
                  "a dataset spec (its test split, e.g. fashion-mnist+corrupt:contrast:5); --samples images of each");
  sub->add_flag(
      "--save-latents", command->save_latents,
      "Also write OUT/NAME/latents.pt: latents, labels and predictions of the training and test images, and the "
      "test logits (torch.load gives a dict)");
  sub->add_option("--odin-temperature", l.odin_temperature, "ODIN: softmax temperature")
      ->check(kPositive)
      ->capture_default_str();
  sub->callback([command] { run_latent(*command); });
}

namespace {

using json = nlohmann::json;

/// This model's entry in the latent step's results, or nullptr.
const json* latent_entry(const json& audit, const std::string& name) {
  const json* models = find(audit, {"latent", "result", "models"});
  if (models == nullptr) return nullptr;
  for (const json& entry : *models) {
    if (entry.value("name", "") == name) return &entry["result"];
  }
  return nullptr;
}

std::optional<double> latent_number(const json& audit, const json& model, const std::vector<json>& path) {
  const json* result = latent_entry(audit, model["name"].get<std::string>());
  return result == nullptr ? std::nullopt : number(*result, path);
}

void latent_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Latent code (binary encoding)", "latent");
  report.paragraph(
      "The representation just before the output layer (the latent code z). With a narrow linear "
      "bottleneck and a growing penalty (BinEnc), each unit settles on two values, so every class gets "
      "one binary code: the same-encoding fraction approaches 1 and each unit's histogram has two "
      "separated peaks. Such codes go with larger DeepFool distances (relative to the image's norm) "
      "and with latent distances that tell misclassified images apart (AUROC).");
  ran_on(report, audit, "latent");  // every model's latent code is in the one latent step
  const json* models = find(audit, {"latent", "result", "models"});
  if (models == nullptr || models->empty()) return;
  std::vector<std::vector<std::string>> rows;
  for (const json& entry : *models) {
    const json& r = entry["result"];
    rows.push_back({entry["name"].get<std::string>(), std::to_string(r["latent_dim"].get<int>()),
                    format_value(r["test_accuracy"], "percent"),
                    format_value(r["encoding"]["test"]["same_encoding_fraction"], "fixed"),
                    std::to_string(r["encoding"]["test"]["distinct_codes"].get<long long>()),
                    format_value(r["binarity"]["separation_median"], "general"),
                    format_value(r["collapse"]["test"]["nc1"], "general"),
                    format_value(r["robustness"]["deepfool_ratio"], "general"),
                    format_value(r["robustness"].value("ensemble_ratio", json()), "general"),
                    format_value(r["reliability"]["mahalanobis_auroc"], "fixed"),
                    format_value(r["reliability"]["odin_auroc"], "fixed"),
                    format_value(r["reliability"]["max_softmax_auroc"], "fixed")});
  }
  report.table({"model", "P", "accuracy", "same encoding", "distinct codes", "separation (median)", "NC1",
                "DeepFool ‖r‖/‖x‖", "ensemble ‖r‖/‖x‖", "AUROC Mahalanobis", "AUROC ODIN", "AUROC max softmax"},
               rows,
               {"", "latent units", "on the test images measured", "share of test images with their class's code",
                "sign patterns among the test images", "two-Gaussian separation of each unit, median over units",
                "within-class over between-class scatter (0 = collapsed)", "mean DeepFool length relative to the image",
                "misclassification detection", "", ""});
  const std::filesystem::path folder = audit["latent"]["folder"].get<std::string>();
  std::vector<Figure> pictures;
  for (const json& entry : *models) {
    const std::string name = entry["name"];
    pictures.push_back({(folder / name / "units.svg").string(), name + ": histogram of each latent unit"});
    pictures.push_back(
        {(folder / name / "projection.svg").string(), name + ": z projected on two principal components"});
  }
  report.figures(pictures);
}

}  // namespace

Analysis latent_analysis() {
  Analysis analysis;
  analysis.name = "latent";
  analysis.result_file = "latent.json";
  analysis.add_command = add_latent_command;
  analysis.scope = AuditScope::kAllModels;
  analysis.needs = kLatentCode;
  analysis.quick_arguments = {"--samples", "1000", "--train-samples", "5000", "--deepfool-samples", "100"};
  analysis.record_format = 2;
  analysis.summary_columns = {
      {"same_encoding", "same encoding",
       "Share of test images whose latent sign pattern is their predicted class's most frequent one: 1 = a "
       "binary code per class (latent).",
       "fixed",
       [](const json& a, const json& m) {
         return latent_number(a, m, {"encoding", "test", "same_encoding_fraction"});
       }},
      {"mahalanobis_auroc", "error detection AUROC",
       "How well the Mahalanobis distance of the latent code tells misclassified test images from correct ones "
       "(0.5 = chance, 1 = perfect; latent).",
       "fixed",
       [](const json& a, const json& m) {
         return latent_number(a, m, {"reliability", "mahalanobis_auroc"});
       }},
  };
  analysis.report_section = latent_section;
  return analysis;
}

}  // namespace robustlens::cli
