// robustlens attack: clean accuracy, robust accuracy under PGD/FGSM per eps,
// DeepFool minimal-perturbation norms, and the minimal perturbation per sample
// over the attack ensemble; optionally the adversarial examples.
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "report_sections.h"

#include "robustlens/analyses/robustness.h"
#include "robustlens/core/console.h"
#include "robustlens/core/files.h"
#include "robustlens/data/image_folder.h"
#include "robustlens/report/images.h"
#include "robustlens/report/vega_lite.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>

namespace robustlens::cli {
namespace {

struct AttackCommand {
  CommonOptions common;
  RobustnessOptions robustness;
  std::string norm = "l2";
  bool no_deepfool = false;
  bool save_examples = false;
};

std::string robust_accuracy_csv(const RobustnessResult& result) {
  std::ostringstream csv;
  csv << "eps,robust_accuracy" << (result.minimal ? ",ensemble_robust_accuracy" : "") << "\n";
  for (std::size_t i = 0; i < result.eps.size(); ++i) {
    csv << result.eps[i] << ',' << result.robust_accuracy[i];
    if (result.minimal) csv << ',' << result.ensemble_robust_accuracy[i];
    csv << '\n';
  }
  return csv.str();
}

std::string deepfool_csv(const DeepFoolResult& d, const std::vector<std::int64_t>& indices) {
  std::ostringstream csv;
  csv << "index,norm,iterations,flipped,original_label,adversarial_label\n";
  for (std::int64_t i = 0; i < d.norms.size(0); ++i) {
    csv << indices[i] << ',' << d.norms[i].item<float>() << ',' << d.iterations[i].item<std::int64_t>() << ','
        << d.flipped[i].item<bool>() << ',' << d.original_labels[i].item<std::int64_t>() << ','
        << d.adversarial_labels[i].item<std::int64_t>() << '\n';
  }
  return csv.str();
}

std::string minimal_csv(const MinimalPerturbationResult& m, const std::vector<std::int64_t>& indices) {
  std::ostringstream csv;
  csv << "index,norm,found_by";
  for (const std::string& attack : m.attacks) csv << ',' << attack;
  csv << '\n';
  for (std::int64_t i = 0; i < m.norms.size(0); ++i) {
    const std::int64_t who = m.found_by[i].item<std::int64_t>();
    csv << indices[i] << ',' << m.norms[i].item<double>() << ','
        << (who < 0 ? "none" : m.attacks[static_cast<std::size_t>(who)]);
    for (std::size_t a = 0; a < m.attacks.size(); ++a)
      csv << ',' << m.per_attack_norms[i][static_cast<std::int64_t>(a)].item<double>();
    csv << '\n';
  }
  return csv.str();
}

/// Up to 8 rows: clean | adversarial at the largest eps | its perturbation | DeepFool's perturbation | the
/// ensemble's minimal perturbation (blank where a member did not run or, for the minimum, none was found).
void write_examples(const std::filesystem::path& out, const Dataset& data, const RobustnessResult& result) {
  std::map<std::string, at::Tensor> tensors{{"images", data.images}, {"labels", data.labels}};
  for (std::size_t e = 0; e < result.eps.size(); ++e) {
    tensors["adversarial_eps_" + std::to_string(e)] = result.adversarial_examples[e];
  }
  tensors["eps"] = at::tensor(result.eps, at::kDouble);
  if (result.deepfool.perturbations.defined()) tensors["deepfool_perturbations"] = result.deepfool.perturbations;
  if (result.minimal) tensors["minimal_perturbations"] = result.minimal->perturbations;
  write_tensors((out / "adversarial.pt").string(), tensors);

  std::vector<at::Tensor> tiles;
  const at::Tensor strongest = result.adversarial_examples.back();
  for (std::int64_t i = 0; i < std::min<std::int64_t>(8, data.size()); ++i) {
    tiles.push_back(to_rgb(data.images[i]));
    tiles.push_back(to_rgb(strongest[i]));
    const at::Tensor change = diverging_colormap((strongest[i] - data.images[i]).sum(0));
    tiles.push_back(change);
    const at::Tensor blank = at::ones_like(change);
    tiles.push_back(
        result.deepfool.perturbations.defined() ? diverging_colormap(result.deepfool.perturbations[i].sum(0)) : blank);
    const bool found = result.minimal && std::isfinite(result.minimal->norms[i].item<double>()) &&
                       result.minimal->norms[i].item<double>() > 0;
    tiles.push_back(found ? diverging_colormap(result.minimal->perturbations[i].to(at::kCPU).sum(0)) : blank);
  }
  write_png((out / "examples.png").string(), image_grid(tiles, 5, 4));
}

/// The ensemble's minimal perturbations: their quartiles, which attack found them, robust accuracy under the
/// ensemble and how far the single attack overestimates it.
void print_minimal(const RobustnessResult& result, const RobustnessOptions& options, const Dataset& data) {
  const MinimalPerturbationResult& m = *result.minimal;
  const std::int64_t correct =
      static_cast<std::int64_t>(std::llround(result.clean_accuracy * static_cast<double>(data.size())));
  console::print("minimal %s perturbation per image, the smallest any attack found (checked; 0 when misclassified):\n",
                 to_string(options.norm).c_str());
  console::print("  over the %lld correctly classified: median %.4g, quartiles %.4g-%.4g (inf: none found)\n",
                 static_cast<long long>(correct), result.minimal_quartiles_correct.median,
                 result.minimal_quartiles_correct.q1, result.minimal_quartiles_correct.q3);
  console::print("  found by:");
  const nlohmann::json counts = m.found_by_counts();
  for (const std::string& attack : m.attacks)
    console::print("  %s %lld", attack.c_str(), counts.at(attack).get<long long>());
  console::print("  none %lld", counts.at("none").get<long long>());
  console::print("\n  robust accuracy under the ensemble (no member fools the image within eps):");
  double largest_gap = 0, gap_eps = 0;
  for (std::size_t i = 0; i < result.eps.size(); ++i) {
    const double ensemble = result.ensemble_robust_accuracy[i];
    console::print("  eps %.4g: %.2f%%", result.eps[i], 100 * ensemble);
    if (result.robust_accuracy[i] - ensemble > largest_gap) {
      largest_gap = result.robust_accuracy[i] - ensemble;
      gap_eps = result.eps[i];
    }
  }
  console::print("\n");
  if (largest_gap > 0.05) {
    console::print("  %s overestimates robust accuracy by up to %.1f points (eps %.4g): read the ensemble's\n",
                   options.attack.c_str(), 100 * largest_gap, gap_eps);
  }
  if (m.deepfool_compared > 0) {
    console::print("  DeepFool above %.2gx the minimum on %.1f%% of %lld images\n",
                   options.ensemble_options.overestimate_factor, 100 * m.deepfool_overestimate_share,
                   static_cast<long long>(m.deepfool_compared));
  }
  if (!result.minimal_warning.empty()) console::print("WARNING: %s\n", result.minimal_warning.c_str());
}

void print_attack_result(const RobustnessResult& result, const RobustnessOptions& options, const Dataset& data) {
  console::print("clean accuracy %.2f%% on %lld images of %s\n", 100 * result.clean_accuracy,
                 static_cast<long long>(data.size()), data.name.c_str());
  console::print("robust accuracy (%s, %s%s):", options.attack.c_str(), to_string(options.norm).c_str(),
                 options.attack == "pgd" ? (", " + std::to_string(options.steps) + " steps").c_str() : "");
  for (std::size_t i = 0; i < result.eps.size(); ++i) {
    console::print("  eps %.4g: %.2f%%", result.eps[i], 100 * result.robust_accuracy[i]);
  }
  console::print("\n");
  if (options.deepfool) {
    const std::int64_t flipped = data.size() - result.deepfool_not_flipped;
    console::print(
        "DeepFool minimal L2 perturbation over the %lld/%lld flipped samples: median %.4g, quartiles %.4g-%.4g; "
        "mean %.2f iterations\n",
        static_cast<long long>(flipped), static_cast<long long>(data.size()), result.deepfool_quartiles.median,
        result.deepfool_quartiles.q1, result.deepfool_quartiles.q3, result.deepfool_mean_iterations);
  }
  if (result.minimal) print_minimal(result, options, data);
}

void run_attack(AttackCommand command) {
  CommonOptions& common = command.common;
  const AnalysisRun run = start_analysis(common, "attack");
  const Dataset& data = run.data;
  Model& model = *run.model;
  const RobustnessOptions options = command.robustness.set_norm(parse_norm(command.norm))
                                        .set_deepfool(!command.no_deepfool)
                                        .set_batch_size(common.batch_size)
                                        .set_seed(common.seed)
                                        .set_keep_examples(command.save_examples)
                                        .set_clip(images_are_pixels(common))
                                        .resolved();
  if (!options.clip) {
    console::print("--transform %s: the images are not pixels in [0,1], so the attacks do not clip to it\n",
                   common.transform.c_str());
  }
  const RobustnessResult result = analyse_robustness(model, data, options, terminal_progress());

  const std::filesystem::path out(common.out);
  nlohmann::json record = run.record("attack", options.to_json(), common);
  record.update(result.to_json());
  write_json_file((out / "attack.json").string(), record);
  write_text_file((out / "robust_accuracy.csv").string(), robust_accuracy_csv(result));
  if (options.deepfool) write_text_file((out / "deepfool.csv").string(), deepfool_csv(result.deepfool, run.indices));
  if (result.minimal)
    write_text_file((out / "minimal_perturbation.csv").string(), minimal_csv(*result.minimal, run.indices));
  if (command.save_examples) write_examples(out, data, result);

  print_attack_result(result, options, data);
  console::print("results in %s\n", (out / "attack.json").c_str());
}

}  // namespace

void add_attack_command(CLI::App& app) {
  auto command = std::make_shared<AttackCommand>();
  command->common.samples = 1000;
  CLI::App* sub = app.add_subcommand(
      "attack", "Robust accuracy under PGD/FGSM, DeepFool and the attack ensemble's minimal perturbations");
  add_common_options(*sub, command->common, kModel | kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  RobustnessOptions& r = command->robustness;
  sub->add_option("--attack", r.attack, "Attack for robust accuracy")
      ->check(CLI::IsMember({"pgd", "fgsm"}))
      ->capture_default_str();
  sub->add_option("--norm", command->norm, "Threat model")->check(CLI::IsMember({"l2", "linf"}))->capture_default_str();
  sub->add_option("--eps", r.eps,
                  "Radii, comma list in [0,1] pixel units (default: l2 0.25,0.5,1,2; linf 1,2,4,8 /255)")
      ->delimiter(',')
      ->check(kNonNegative);
  sub->add_option("--steps", r.steps, "PGD steps")->check(kPositive)->capture_default_str();
  sub->add_option("--step-size", r.step_size, "PGD step length (0 = 2.5·eps/steps)")
      ->check(kNonNegative)
      ->capture_default_str();
  sub->add_option("--restarts", r.restarts, "PGD random restarts")->check(kPositive)->capture_default_str();
  sub->add_flag("--no-deepfool", command->no_deepfool, "Skip the DeepFool minimal-perturbation measurement");
  add_ensemble_options(
      *sub, r.ensemble, r.ensemble_options,
      "DeepFool, FMN, the eps list's adversarials, PGD bisection, a long FMN on the images none fooled");
  add_deepfool_options(*sub, r.deepfool_options);
  sub->add_flag("--save-examples", command->save_examples,
                "Write OUT/adversarial.pt (torch.load) and OUT/examples.png");
  sub->callback([command] { run_attack(*command); });
}

namespace {

using json = nlohmann::json;

/// The robust accuracy at the eps nearest 0.5 (the middle of the default L2 radii): under the attack ensemble
/// when it ran, else the attack's own.
std::optional<double> robust_accuracy_at_half(const json& model) {
  const json* ensemble = find(model, {"analyses", "attack", "minimal_perturbation", "robust_accuracy"});
  const json* per_eps = ensemble != nullptr ? ensemble : find(model, {"analyses", "attack", "robust_accuracy"});
  if (per_eps == nullptr || per_eps->empty()) return std::nullopt;
  const json* best = &per_eps->front();
  for (const json& entry : *per_eps) {
    if (std::abs(entry["eps"].get<double>() - 0.5) < std::abs((*best)["eps"].get<double>() - 0.5)) best = &entry;
  }
  return (*best)["robust_accuracy"].get<double>();
}

/// A model's accuracy under the attack (solid) and under the ensemble (dashed), and its minimal-perturbation
/// quartiles, in its colour.
void add_attack_charts(const std::string& name, const json& record, int colour, LineChart& accuracy,
                       BarChart& deepfool) {
  ChartSeries series{name, {0.0}, {record["clean_accuracy"].get<double>()}, {}, {}, false, colour};
  for (const json& entry : record["robust_accuracy"]) {
    series.x.push_back(entry["eps"]);
    series.y.push_back(entry["robust_accuracy"]);
  }
  accuracy.series.push_back(series);
  if (const json* per_eps = find(record, {"minimal_perturbation", "robust_accuracy"})) {
    ChartSeries ensemble{name + " (ensemble)", {0.0}, {record["clean_accuracy"].get<double>()}, {}, {}, true, colour};
    for (const json& entry : *per_eps) {
      ensemble.x.push_back(entry["eps"]);
      ensemble.y.push_back(entry["robust_accuracy"]);
    }
    accuracy.series.push_back(ensemble);
  }
  // One bar series per model, in its colour: DeepFool's quartiles, then the ensemble's.
  const auto quartiles = [&](const std::vector<json>& path) {
    const json* q = find(record, path);
    return q == nullptr ? std::vector<double>(3, std::nan(""))
                        : numbers(json::array({(*q)["q1"], (*q)["median"], (*q)["q3"]}));
  };
  std::vector<double> bars = quartiles({"deepfool", "norms_of_flipped"});
  for (const double v : quartiles({"minimal_perturbation", "quartiles_of_correct"})) bars.push_back(v);
  deepfool.series.push_back({name, bars, colour});
}

void robustness_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Accuracy and robustness to attacks", "robustness");
  report.paragraph(
      "An adversarial attack looks for a small change of an image that changes the model's answer. "
      "Robust accuracy is the share of images still classified correctly when every image may be "
      "changed by up to ε (L2 length, pixels in [0,1]; ε = 0 is the clean accuracy): solid under "
      "PGD, dashed under the whole ensemble of attacks (no attack fools the image within ε), which "
      "the summary reports. DeepFool finds, "
      "for each image, a near-smallest change that flips the prediction: its length estimates the "
      "distance to the decision boundary. One attack can be fooled, so the minimum per image over an "
      "ensemble of attacks (DeepFool, PGD, FMN, PGD bisection, long FMN) is the distance the summary reports. "
      "Robust training moves the boundary away from the data.");
  const auto models = ran_on(report, audit, "attack");
  if (models.empty()) return;
  const json& options = (*models.front().record)["options"];
  LineChart accuracy{"Accuracy under attack", "ε (L2 length of the change)", "accuracy", {}};
  accuracy.note = options.value("attack", "pgd") + " " + options.value("norm", "l2") +
                  (options.contains("steps") ? ", " + std::to_string(options["steps"].get<int>()) + " steps" : "") +
                  "; " + std::to_string((*models.front().record)["data"].value("size", 0)) + " test images";
  BarChart deepfool{"Distance to the decision boundary",
                    "",
                    "L2 length of the smallest change found",
                    {"DF q1", "DF median", "DF q3", "ens. q1", "ens. median", "ens. q3"},
                    {},
                    "DF: DeepFool, over the images whose prediction flipped; ens.: the minimum per image over the "
                    "attack ensemble, over the correctly classified images"};
  std::string warnings;
  for (const auto& [name, record, colour] : models) {
    add_attack_charts(name, *record, colour, accuracy, deepfool);
    if (const json* warning = find(*record, {"minimal_perturbation", "gradient_masking_warning"});
        warning && warning->is_string()) {
      warnings += (warnings.empty() ? "" : " ") + name + ": " + warning->get<std::string>() + ".";
    }
  }
  std::vector<json> charts{vega_lite_spec(accuracy)};
  charts.push_back(vega_lite_spec(deepfool));
  charts_side_by_side(report, charts);
  if (!warnings.empty()) report.html("<p class=\"skipped\">" + html_escape(warnings) + "</p>");
  report.paragraph(
      "Each row: the image, its adversarial version at the largest ε, that change (red +, blue −), "
      "the change DeepFool found and the smallest change the ensemble found (blank: the image was "
      "already misclassified, or no attack flipped it).");
  model_figures(report, audit, "attack", "examples.png",
                "image | attacked | its change | DeepFool's change | the ensemble's minimal change");
}

}  // namespace

Analysis attack_analysis() {
  Analysis analysis;
  analysis.name = "attack";
  analysis.result_file = "attack.json";
  analysis.add_command = add_attack_command;
  analysis.audit_arguments = {"--save-examples"};
  analysis.quick_arguments = {"--samples", "200"};
  analysis.record_format = 3;
  analysis.summary_columns = {
      {"robust_accuracy", "robust accuracy, L2 ε≈0.5",
       "Accuracy when an attacker may move each image by an L2 distance of 0.5 ([0,1] pixels): the share of images "
       "classified correctly that no attack of the ensemble (PGD, DeepFool, FMN, PGD bisection, long FMN) fools within "
       "0.5, "
       "which is at most PGD's alone; the report charts both (attack).",
       "percent", [](const json&, const json& m) { return robust_accuracy_at_half(m); }},
      {"minimal_perturbation", "minimal perturbation",
       "Median L2 length of the smallest change that alters the answer on a correctly classified image: the "
       "minimum per image over an attack ensemble (DeepFool, the smallest fooling ε's PGD adversarial, FMN, PGD "
       "bisection, a long FMN on the images none fooled; each checked), "
       "which a stronger attack cannot lower the way it lowers DeepFool's alone. Larger: the decision boundary is "
       "farther from the data (attack; the report shows DeepFool's beside it).",
       "general",
       [](const json&, const json& m) {
         return number(m, {"analyses", "attack", "minimal_perturbation", "quartiles_of_correct", "median"});
       }},
  };
  analysis.report_section = robustness_section;
  return analysis;
}

}  // namespace robustlens::cli
