// robustlens upi: universal perturbations of interpretations (UPI-Grad,
// UPI-PCA) against a gradient-based explanation, with their baselines, per eps.
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "report_sections.h"

#include "robustlens/analyses/upi.h"
#include "robustlens/core/console.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/random.h"
#include "robustlens/data/image_folder.h"
#include "robustlens/report/chart.h"
#include "robustlens/report/images.h"
#include "robustlens/report/vega_lite.h"

#include <algorithm>
#include <filesystem>
#include <memory>

namespace robustlens::cli {
namespace {

struct UpiCommand {
  CommonOptions common;
  UpiOptions upi;
  std::string explainer = "saliency";
  bool logit = false;
  std::string attack_split = "train";
  std::int64_t attack_samples = 1000;
};

const std::vector<std::string> kUniversal{"upi-grad", "upi-pca", "classification-uap", "universal-random"};
const std::vector<std::string> kAll{"upi-grad",         "upi-pca",          "classification-uap",
                                    "universal-random", "per-image-random", "per-image-attack"};

/// A model's map dissimilarity against eps, one line per method (the baselines dashed, the random ones with
/// ± one standard deviation over draws): the subcommand's dissimilarity.svg and the report's chart.
LineChart upi_chart(const std::string& name, const nlohmann::json& record) {
  LineChart chart{name + ": map dissimilarity", "ε (L2 length of the perturbation)", "dissimilarity of maps", {}};
  // Records of older versions may lack the summary or the floor: "—" then.
  const auto value = [&](const std::vector<nlohmann::json>& path, const std::string& format) {
    const nlohmann::json* found = find(record, path);
    return format_value(found != nullptr ? *found : nlohmann::json(), format);
  };
  chart.note = record["options"]["attribution"].value("method", "") + " maps, " +
               std::to_string(record.value("test_images", 0)) +
               " test images; dashed: baselines, shaded: ± one standard deviation over draws; summary at ε " +
               value({"summary", "eps"}, "general") + ", floor (random noise, ε " + value({"floor", "eps"}, "general") +
               ") " + value({"floor", "metrics", "universal-random", "dissimilarity"}, "fixed");
  for (const std::string& method : kAll) {
    ChartSeries series{method, {}, {}, {}, {}, method.rfind("upi-", 0) != 0};
    for (const nlohmann::json& entry : record["per_eps"]) {
      const nlohmann::json* metrics = find(entry, {"metrics", method});
      if (metrics == nullptr) continue;
      series.x.push_back(entry["eps"]);
      series.y.push_back((*metrics)["dissimilarity"]);
      if (const nlohmann::json* spread = find(*metrics, {"spread", "dissimilarity"})) {
        series.band_low.push_back((*metrics)["dissimilarity"].get<double>() - spread->get<double>());
        series.band_high.push_back((*metrics)["dissimilarity"].get<double>() + spread->get<double>());
      }
    }
    if (!series.x.empty()) chart.series.push_back(series);
  }
  return chart;
}

/// Rows: eps; columns: the universal perturbations (channel sum, blue − / red +).
void write_perturbation_grid(const std::filesystem::path& path, const UpiResult& result) {
  std::vector<at::Tensor> tiles;
  std::int64_t columns = 0;
  for (const auto& by_name : result.perturbations) {
    columns = static_cast<std::int64_t>(by_name.size());
    for (const std::string& name : kUniversal) {
      if (by_name.count(name)) tiles.push_back(diverging_colormap(by_name.at(name).sum(0)));
    }
  }
  write_png(path.string(), image_grid(tiles, columns, tiles.front().size(-1) < 64 ? 4 : 1));
}

/// The random stream of the map figure (derive_seed of --seed).
constexpr std::uint64_t kFigureStream = 41;

/// Up to 6 test images at the largest eps: image | its map | the map under each universal perturbation.
void write_map_figure(const std::filesystem::path& path, Model& model, const Dataset& test, const UpiResult& result,
                      const UpiOptions& options) {
  const Dataset shown = correctly_classified(model, test.subset([&] {
    std::vector<std::int64_t> first;
    for (std::int64_t i = 0; i < std::min<std::int64_t>(32, test.size()); ++i) first.push_back(i);
    return first;
  }()),
                                             options.batch_size);
  const std::int64_t rows = std::min<std::int64_t>(6, shown.size());
  if (rows == 0) return;
  const at::Tensor x = shown.images.slice(0, 0, rows).to(model.device()),
                   y = shown.labels.slice(0, 0, rows).to(model.device());
  const at::Generator generator = make_generator(derive_seed(options.seed, kFigureStream));  // SmoothGrad's noise
  std::vector<at::Tensor> columns{interpretation_maps(model, x, y, options.attribution, generator).to(at::kCPU)};
  const auto& strongest = result.perturbations.back();
  for (const std::string& name : kUniversal) {
    if (!strongest.count(name)) continue;
    const at::Tensor moved = x + strongest.at(name).to(model.device()).unsqueeze(0);
    columns.push_back(
        interpretation_maps(model, options.clip ? moved.clamp(0, 1) : moved, y, options.attribution, generator)
            .to(at::kCPU));
  }
  std::vector<at::Tensor> tiles;
  for (std::int64_t i = 0; i < rows; ++i) {
    tiles.push_back(to_rgb(shown.images[i]));
    for (const at::Tensor& maps : columns) tiles.push_back(heat_colormap(maps[i]));
  }
  write_png(path.string(), image_grid(tiles, static_cast<std::int64_t>(columns.size()) + 1, x.size(-1) < 64 ? 3 : 1));
}

/// The images the universal perturbations are built on (--attack-split, --attack-samples): never the test images.
Dataset attack_data(const UpiCommand& command, const AnalysisRun& run, std::vector<std::int64_t>& indices) {
  const CommonOptions& common = command.common;
  CommonOptions attack_selection = common;
  attack_selection.samples = command.attack_samples;
  attack_selection.samples_given = false;
  attack_selection.indices.clear();
  attack_selection.seed = common.seed + 1;  // a different draw when both splits are the same
  Dataset attack = select_data(load_data(common, command.attack_split), attack_selection, &indices);
  RL_CHECK(command.attack_split != common.split ||
               std::none_of(indices.begin(), indices.end(),
                            [&](std::int64_t i) {
                              return std::find(run.indices.begin(), run.indices.end(), i) != run.indices.end();
                            }),
           "--attack-split and --split are both '", common.split,
           "' and their samples overlap; the test images must be unseen");
  return attack;
}

void print_metric_rows(const std::map<std::string, UpiMetrics>& metrics) {
  for (const std::string& name : kAll) {
    if (!metrics.count(name)) continue;
    const UpiMetrics& m = metrics.at(name);
    console::print("  %-24s %14.4f %17.4f %11.3f %9.3f %12.1f%%", name.c_str(), m.dissimilarity,
                   m.dissimilarity_unchanged, m.topk_intersection, m.spearman, 100 * m.fooling_rate);
    if (m.draws > 1)
      console::print("   (%lld draws, sd %.4f)", static_cast<long long>(m.draws), m.dissimilarity_spread);
    console::print("\n");
  }
}

void print_metric_header(const std::string& label) {
  console::print("%-26s %7s %17s %11s %9s %13s\n", label.c_str(), "dissimilarity", "of unchanged", "top-k kept",
                 "spearman", "fooling rate");
}

void print_upi_result(const UpiResult& result, const UpiCommand& command) {
  console::print(
      "UPI against %s maps: attack on %lld correctly classified %s images, scored on %lld unseen test images (top-k "
      "%lld)\n",
      command.explainer.c_str(), static_cast<long long>(result.attack_images), command.attack_split.c_str(),
      static_cast<long long>(result.test_images), static_cast<long long>(result.top_k));
  for (std::size_t e = 0; e < result.eps.size(); ++e) {
    print_metric_header("eps " + format_number(result.eps[e]) + (e == result.summary_index ? " (summary)" : ""));
    print_metric_rows(result.metrics[e]);
  }
  print_metric_header("floor: eps " + format_number(result.floor_eps));
  print_metric_rows(result.floor);
  const UpiMetrics& summary = result.metrics[result.summary_index].at(result.summary_method);
  const UpiMetrics& random = result.metrics[result.summary_index].at("universal-random");
  console::print(
      "summary at eps %.4g (%s): %s changes the maps of the unchanged predictions by %.4f (random noise %.4f ± %.4f, "
      "floor %.4f) and fools %.1f%% <- summary\n",
      result.summary_eps, result.summary_eps_source.c_str(),
      result.summary_method == "upi-grad" ? "UPI-Grad" : "UPI-PCA", summary.dissimilarity_unchanged,
      random.dissimilarity_unchanged, random.dissimilarity_unchanged_spread,
      result.floor.at("universal-random").dissimilarity, 100 * summary.fooling_rate);
}

void run_upi(UpiCommand command) {
  CommonOptions& common = command.common;
  const UpiOptions options =
      command.upi
          .set_attribution(command.upi.attribution.set_method(parse_attribution_method(command.explainer))
                               .set_softmax(!command.logit))
          .set_batch_size(common.batch_size)
          .set_seed(common.seed);
  options.check();
  RL_CHECK(command.attack_samples >= 1, "--attack-samples must be >= 1, got ", command.attack_samples);
  const AnalysisRun run = start_analysis(common, "upi");
  std::vector<std::int64_t> attack_indices;
  const Dataset attack = attack_data(command, run, attack_indices);
  const UpiResult result = analyse_upi(*run.model, attack, run.data, options, terminal_progress());

  const std::filesystem::path out(common.out);
  nlohmann::json options_json = options.to_json();
  options_json.update({{"explainer", command.explainer},
                       {"attack_split", command.attack_split},
                       {"attack_samples", command.attack_samples}});
  nlohmann::json record = run.record("upi", options_json, common);
  record["attack_indices"] = attack_indices;
  record["scored_on"] = "correctly classified images only (attack and test)";
  record.update(result.to_json());
  write_json_file((out / "upi.json").string(), record);
  std::map<std::string, at::Tensor> tensors{{"eps", at::tensor(result.eps, at::kDouble)}};
  for (std::size_t e = 0; e < result.eps.size(); ++e) {
    for (const auto& [name, delta] : result.perturbations[e]) tensors[name + "_eps_" + std::to_string(e)] = delta;
  }
  write_tensors((out / "perturbations.pt").string(), tensors);
  write_perturbation_grid(out / "perturbations.png", result);
  write_svg((out / "dissimilarity.svg").string(), upi_chart(model_names({common.model}, {}).front(), record));
  write_map_figure(out / "maps.png", *run.model, run.data, result, options);
  print_upi_result(result, command);
  console::print("results in %s, %s, %s, %s, %s\n", (out / "upi.json").c_str(), (out / "dissimilarity.svg").c_str(),
                 (out / "perturbations.pt").c_str(), (out / "perturbations.png").c_str(), (out / "maps.png").c_str());
}

}  // namespace

void add_upi_command(CLI::App& app) {
  auto command = std::make_shared<UpiCommand>();
  command->common.samples = 500;
  // Double backprop keeps large graphs: above 32 MiB per block glibc maps fresh
  // pages on every pass (ResNet at batch 128 ran 5× slower than at 32).
  command->common.batch_size = 32;
  CLI::App* sub =
      app.add_subcommand("upi", "Universal perturbations of interpretations (UPI-Grad, UPI-PCA) and their baselines");
  add_common_options(*sub, command->common, kModel | kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  UpiOptions& u = command->upi;
  add_attribution_options(*sub, u.attribution, command->explainer, "--explainer");
  sub->add_flag("--logit", command->logit,
                "Explain the logit instead of the softmax probability (ReLU logit maps are piecewise constant)");
  sub->add_option("--method", u.method, "Universal method(s)")
      ->check(CLI::IsMember({"grad", "pca", "both"}))
      ->capture_default_str();
  sub->add_option("--eps", u.eps, "L2 radii, comma list in [0,1] pixel units")->delimiter(',')->capture_default_str();
  sub->add_option("--attack-split", command->attack_split, "Split the perturbation is built on")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  sub->add_option("--attack-samples", command->attack_samples, "Attack images drawn from --attack-split")
      ->capture_default_str();
  sub->add_option("--passes", u.passes, "UPI-Grad: passes over the attack images")->capture_default_str();
  sub->add_option("--step-fraction", u.step_fraction, "UPI-Grad: first step as a fraction of eps (then /sqrt(1+pass))")
      ->capture_default_str();
  sub->add_option("--pca-noise", u.pca_noise, "UPI-PCA: L2 norm of the noise each attack image is moved by")
      ->capture_default_str();
  sub->add_option("--per-image-steps", u.per_image_steps, "Per-image map attack (baseline): steps")
      ->capture_default_str();
  sub->add_option("--uap-passes", u.uap_passes,
                  "Classification baseline: passes of the universal adversarial perturbation (0 = skip it)")
      ->check(kNonNegative)
      ->capture_default_str();
  sub->add_option(
         "--summary-eps", u.summary_eps,
         "Radius of the summary (joins --eps); 0 = the median minimal perturbation of the correctly classified "
         "test images (attack ensemble, L2)")
      ->capture_default_str();
  sub->add_option("--floor-eps", u.floor_eps, "Radius of the floor: random noise near eps = 0")->capture_default_str();
  sub->add_option("--random-draws", u.random_draws,
                  "Draws of each random baseline, averaged (spread: their standard deviation)")
      ->capture_default_str();
  sub->add_option("--surrogate-beta", u.surrogate_beta,
                  "softplus beta of a smooth surrogate for the attack gradients of a ReLU built-in model (0 = off)")
      ->capture_default_str();
  sub->add_option("--top-k", u.top_k, "Top-k intersection: k (0 = 1000·HW/224², at least 10)")->capture_default_str();
  sub->add_flag("--clip", u.clip, "Keep perturbed images in [0,1]");
  sub->callback([command] { run_upi(*command); });
}

namespace {

using json = nlohmann::json;

/// A metric of the UPI step's summary (at the model's median minimal perturbation) for one perturbation;
/// "upi": the summary's method (summary.method: UPI-Grad's, or UPI-PCA's when only that ran), never chosen
/// by which value is a number: a null (e.g. no unchanged prediction left) must not switch the column.
std::optional<double> upi_summary(const json& model, const std::string& method, const std::string& metric) {
  if (method == "upi") {
    const json* chosen = find(model, {"analyses", "upi", "summary", "method"});
    if (chosen != nullptr && chosen->is_string()) return upi_summary(model, chosen->get<std::string>(), metric);
    // Records written before summary.method: UPI-Grad's when it ran.
    const bool grad_ran = find(model, {"analyses", "upi", "summary", "metrics", "upi-grad"}) != nullptr;
    return upi_summary(model, grad_ran ? "upi-grad" : "upi-pca", metric);
  }
  return number(model, {"analyses", "upi", "summary", "metrics", method, metric});
}

/// A model's row of the report's UPI table: each method's map change and fooling rate at the summary's eps.
std::vector<std::string> upi_table_row(const std::string& name, const json& record) {
  const json* summary = find(record, {"summary", "metrics"});
  if (summary == nullptr) return {name, "— (a record without a summary: rerun the audit)", "", "", "", "", ""};
  const auto cell = [&](const std::string& method, const std::string& metric, const std::string& format) {
    const json* m = find(*summary, {method});
    if (m == nullptr) return std::string("—");
    std::string text = format_value((*m)[metric], format);
    if (const json* spread = find(*m, {"spread", metric}); spread != nullptr && spread->is_number()) {
      text += " ± " + format_value(*spread, format);
    }
    return text;
  };
  const auto changed = [&](const std::string& method) {
    return cell(method, "dissimilarity_unchanged", "fixed") + " / " + cell(method, "fooling_rate", "percent");
  };
  const json* floor = find(record, {"floor", "metrics", "universal-random", "dissimilarity"});
  return {name,
          format_value(record["summary"]["eps"], "general"),
          changed("upi-grad"),
          changed("upi-pca"),
          cell("universal-random", "dissimilarity_unchanged", "fixed"),
          changed("per-image-attack"),
          floor != nullptr
              ? format_value(*floor, "fixed") + " (ε " + format_value(record["floor"]["eps"], "general") + ")"
              : "—"};
}

void upi_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Universal perturbations of interpretations (UPI)", "upi");
  report.paragraph(
      "Can one small perturbation, built on some images, change the explanations of most other "
      "images? UPI-Grad and UPI-PCA build such a universal perturbation against the attribution maps "
      "of training images and score it on unseen test images: the dissimilarity says how much the maps "
      "change (0 = not at all), compared with random noise of the same size (universal or per image, "
      "averaged over draws) and with an attack that sees each test image (an upper reference). Far "
      "above random noise means the explanations can be steered without access to the image explained. "
      "A perturbation that also flips the answer changes the map for that reason too, so the summary "
      "is read at the model's median minimal perturbation, over the images whose answer stayed, beside "
      "the fooling rate and the floor: the change that random noise of length 0.001 already causes.");
  const auto models = ran_on(report, audit, "upi");
  if (models.empty()) return;
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, record, colour] : models) rows.push_back(upi_table_row(name, *record));
  report.table(
      {"model", "summary ε", "UPI-Grad: map change / fooling rate", "UPI-PCA: map change / fooling rate",
       "random noise (mean ± sd over draws)", "per-image attack: map change / fooling rate", "floor (random noise, ε)"},
      rows,
      {"",
       "The L2 length of every perturbation in this table: by default the median of the minimal perturbations "
       "that the attack ensemble finds on the correctly classified test images UPI is scored on, or "
       "upi --summary-eps (upi.json's summary.eps_source says which).",
       "Map change over the images whose prediction did not change / share whose prediction changed.", "", "",
       "An attack that sees each test image: an upper reference.",
       "Random noise of a tiny length (upi --floor-eps, default 0.001): the change any perturbation causes."});
  std::vector<json> charts;
  for (const auto& [name, record, colour] : models) charts.push_back(vega_lite_spec(upi_chart(name, *record)));
  charts_side_by_side(report, charts);
  model_figures(report, audit, "upi", "maps.png", "maps before and after the universal perturbations");
  model_figures(report, audit, "upi", "perturbations.png", "the universal perturbations");
}

}  // namespace

Analysis upi_analysis() {
  Analysis analysis;
  analysis.name = "upi";
  analysis.result_file = "upi.json";
  analysis.add_command = add_upi_command;
  analysis.quick_arguments = {"--samples", "100", "--attack-samples", "200"};
  analysis.record_format = 2;
  analysis.summary_columns = {
      {"upi", "UPI map change",
       "Mean dissimilarity of the explanation maps of unseen test images after one universal perturbation "
       "(UPI-Grad) as long as the model's median minimal perturbation, over the images whose prediction it did "
       "not change; 0 = unchanged (upi).",
       "fixed", [](const json&, const json& m) { return upi_summary(m, "upi", "dissimilarity_unchanged"); }},
      {"upi_fooling", "UPI fooling rate",
       "Share of those test images whose prediction the same universal perturbation changes (upi).", "percent",
       [](const json&, const json& m) { return upi_summary(m, "upi", "fooling_rate"); }},
      {"upi_random", "random noise map change",
       "The map change of random universal noise of the same length, over the same images, averaged over draws "
       "(the report shows their spread): the baseline of the UPI column (upi).",
       "fixed",
       [](const json&, const json& m) { return upi_summary(m, "universal-random", "dissimilarity_unchanged"); }},
      {"upi_floor", "map change floor",
       "The map change of random noise of length 0.001: what any perturbation at all does to the maps (on "
       "max-pooling networks, ties on the black background), part of both columns before it (upi).",
       "fixed",
       [](const json&, const json& m) {
         return number(m, {"analyses", "upi", "floor", "metrics", "universal-random", "dissimilarity"});
       }},
  };
  analysis.report_section = upi_section;
  return analysis;
}

}  // namespace robustlens::cli
