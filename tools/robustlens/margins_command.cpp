// robustlens margins: distance to the decision boundary inside each DCT
// subspace (Hold me tight!), as JSON, CSV and an SVG chart.
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "report_sections.h"

#include "robustlens/analyses/margins.h"
#include "robustlens/core/console.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/report/chart.h"
#include "robustlens/report/vega_lite.h"
#include "robustlens/spectral/dct.h"

#include <filesystem>
#include <memory>
#include <sstream>

namespace robustlens::cli {
namespace {

struct MarginsCommand {
  CommonOptions common;
  MarginOptions margins;
  std::string subspaces = "auto";
  bool no_full_space = false;
};

std::string margins_csv(const MarginResult& result) {
  std::ostringstream csv;
  csv << "subspace,first_coefficient,median,q1,q3,not_flipped,mean_iterations,median_with_lower_bounds,"
         "median_is_lower_bound\n";
  const auto line = [&](const std::string& name, const std::string& first, const SubspaceMargins& s) {
    csv << name << ',' << first << ',' << s.quartiles.median << ',' << s.quartiles.q1 << ',' << s.quartiles.q3 << ','
        << s.not_flipped << ',' << s.mean_iterations << ',' << s.with_lower_bounds.quartiles.median << ','
        << s.with_lower_bounds.median_is_lower_bound << '\n';
  };
  for (std::size_t t = 0; t < result.per_subspace.size(); ++t) {
    line(std::to_string(t), std::to_string(static_cast<std::int64_t>(t) * result.subspaces.step),
         result.per_subspace[t]);
  }
  if (result.full_space.margins.defined()) line("full", "", result.full_space);
  if (result.full_space_minimum.minimal.norms.defined()) {
    const Quartiles& q = result.full_space_minimum.quartiles;
    csv << "full-ensemble,," << q.median << ',' << q.q1 << ',' << q.q3 << ','
        << result.full_space_minimum.minimal.norms.isinf().sum().item<std::int64_t>() << ",,,\n";
  }
  return csv.str();
}

using json = nlohmann::json;

/// A margins record's subspace entry with the samples that did not flip counted at the norm reached,
/// computed from its per-sample arrays (so that records written before the lower bounds existed read the same).
std::optional<MarginsWithLowerBounds> bounded_margins(const json* subspace) {
  if (subspace == nullptr || !subspace->contains("margins") || !subspace->contains("flipped")) return std::nullopt;
  const std::vector<double> margins = (*subspace)["margins"].get<std::vector<double>>();
  std::vector<std::int64_t> flipped;
  for (const json& f : (*subspace)["flipped"])
    flipped.push_back(f.is_boolean() ? f.get<bool>() : f.get<std::int64_t>() != 0);
  if (margins.empty() || margins.size() != flipped.size()) return std::nullopt;
  return margins_with_lower_bounds(at::tensor(margins, at::kDouble), at::tensor(flipped, at::kLong).to(at::kBool));
}

/// A model's median margin per DCT subspace with its quartiles; says in `bounds` how many (image, subspace)
/// pairs did not flip and which medians are therefore only lower bounds.
ChartSeries subspace_margins(const std::string& name, const json& record, int colour, std::string& bounds) {
  ChartSeries series{name, {}, {}, {}, {}, false, colour};
  std::vector<std::string> bounded_subspaces;
  std::int64_t not_flipped = 0, pairs = 0;
  for (const json& subspace : record["per_subspace"]) {
    series.x.push_back(subspace["index"]);
    const auto bounded = bounded_margins(&subspace);
    series.y.push_back(bounded ? bounded->quartiles.median : std::nan(""));
    series.band_low.push_back(bounded ? bounded->quartiles.q1 : std::nan(""));
    series.band_high.push_back(bounded ? bounded->quartiles.q3 : std::nan(""));
    if (bounded && bounded->median_is_lower_bound) {
      bounded_subspaces.push_back(std::to_string(subspace["index"].get<int>()));
    }
    not_flipped += subspace.value("not_flipped", 0);
    pairs += static_cast<std::int64_t>(subspace["margins"].size());
  }
  bounds += (bounds.empty() ? "" : "; ") + name + ": " + std::to_string(not_flipped) + " of " + std::to_string(pairs) +
            " (image, subspace) pairs did not flip";
  if (!bounded_subspaces.empty()) {
    std::string list;
    for (const std::string& t : bounded_subspaces) list += (list.empty() ? "" : ", ") + t;
    bounds += ", so the medians of subspaces " + list + " are only lower bounds";
  }
  return series;
}

/// The model's margin in the whole space, as flat lines across the subspaces: DeepFool's median (dashed) and
/// the attack ensemble's (dotted).
void add_whole_space_margins(LineChart& chart, const std::string& name, const json& record, int colour,
                             const ChartSeries& subspaces) {
  if (subspaces.x.empty()) return;
  const std::vector<double> across{subspaces.x.front(), subspaces.x.back()};
  if (const auto full = number(record, {"full_space", "quartiles_of_flipped", "median"})) {
    chart.series.push_back({name + " (whole space, DeepFool)", across, {*full, *full}, {}, {}, true, colour});
  }
  if (const auto minimum = number(record, {"full_space", "minimal_perturbation", "quartiles", "median"})) {
    chart.series.push_back(
        {name + " (whole space, attack ensemble)", across, {*minimum, *minimum}, {}, {}, false, colour, true});
  }
}

/// The median margin per DCT subspace of each model (quartile band) with its whole-space margin, in the
/// model's colour: the subcommand's margins.svg and the report's chart. Adds to `bounds` how many pairs did not
/// flip, and to `warnings` the attack ensemble's gradient-masking warnings.
LineChart margins_chart(const std::vector<ModelRecord>& models, std::string& bounds, std::string& warnings) {
  LineChart chart{"Margin in each DCT frequency subspace",
                  "DCT subspace (0 = lowest frequencies)",
                  "median L2 margin ([0,1] pixels)",
                  {}};
  chart.note =
      "lines: medians, images whose label did not flip counted at the distance reached; shaded: "
      "quartiles; dashed: margin in the whole space by DeepFool (over the images that flipped); dotted: the "
      "minimum per image over the attack ensemble";
  for (const auto& [name, record, colour] : models) {
    const ChartSeries series = subspace_margins(name, *record, colour, bounds);
    add_whole_space_margins(chart, name, *record, colour, series);
    if (const json* warning = find(*record, {"full_space", "minimal_perturbation", "gradient_masking_warning"});
        warning && warning->is_string()) {
      warnings += (warnings.empty() ? "" : " ") + name + ", whole space: " + warning->get<std::string>() +
                  "; the subspace margins are DeepFool's too, so on this model read them as overestimates.";
    }
    chart.series.push_back(series);
  }
  return chart;
}

void run_margins(MarginsCommand command) {
  CommonOptions& common = command.common;
  const AnalysisRun run = start_analysis(common, "margins");
  const Dataset& data = run.data;
  Model& model = *run.model;
  const DctSubspaceSpec subspaces = parse_dct_subspace_spec(command.subspaces);
  command.margins.set_block(subspaces.block).set_step(subspaces.step);
  const MarginOptions options =
      command.margins.set_full_space(!command.no_full_space).set_batch_size(common.batch_size);
  const MarginResult result = analyse_margins(model, data, options, terminal_progress());

  const std::filesystem::path out(common.out);
  nlohmann::json record = run.record("margins", options.to_json(), common);
  record["statistics_over"] =
      "quartiles_of_flipped: samples whose label flipped, not_flipped counts the others; "
      "with_lower_bounds: every sample, the others at the norm reached (a lower bound)";
  record.update(result.to_json());
  write_json_file((out / "margins.json").string(), record);
  write_text_file((out / "margins.csv").string(), margins_csv(result));
  std::string bounds, warnings;
  write_svg((out / "margins.svg").string(),
            margins_chart({{model_names({common.model}, {}).front(), &record, 0}}, bounds, warnings));

  console::print("median margin per DCT subspace (K=%lld, T=%lld, %lld samples of %s):\n",
                 static_cast<long long>(result.subspaces.block), static_cast<long long>(result.subspaces.step),
                 static_cast<long long>(data.size()), data.name.c_str());
  std::int64_t not_flipped = 0;
  for (std::size_t t = 0; t < result.per_subspace.size(); ++t) {
    console::print("%s%.3g", t == 0 ? "  " : " ", result.per_subspace[t].quartiles.median);
    not_flipped += result.per_subspace[t].not_flipped;
  }
  console::print("\n");
  if (not_flipped > 0) {
    console::print(
        "counting the pairs that did not flip at the norm reached (>= marks a median that is only a lower bound):\n");
    for (std::size_t t = 0; t < result.per_subspace.size(); ++t) {
      const MarginsWithLowerBounds& b = result.per_subspace[t].with_lower_bounds;
      console::print("%s%s%.3g", t == 0 ? "  " : " ", b.median_is_lower_bound ? ">=" : "", b.quartiles.median);
    }
    console::print("\n");
  }
  if (result.full_space.margins.defined())
    console::print("full space: %.3g (DeepFool)", result.full_space.quartiles.median);
  if (result.full_space_minimum.minimal.norms.defined()) {
    const FullSpaceMinimum& minimum = result.full_space_minimum;
    console::print(", %.3g (minimum over the attack ensemble; found by %s)", minimum.quartiles.median,
                   minimum.minimal.found_by_counts().dump().c_str());
    if (!minimum.warning.empty()) {
      console::print("\nwarning: %s; the subspace margins are DeepFool's too: on this model read them as overestimates",
                     minimum.warning.c_str());
    }
  }
  if (result.full_space.margins.defined()) console::print("\n");
  console::print("%lld (sample, subspace) pairs did not flip within %lld iterations (excluded from the first line)\n",
                 static_cast<long long>(not_flipped), static_cast<long long>(options.deepfool.max_iterations));
  console::print("results in %s, %s, %s\n", (out / "margins.json").c_str(), (out / "margins.csv").c_str(),
                 (out / "margins.svg").c_str());
}

}  // namespace

void add_margins_command(CLI::App& app) {
  auto command = std::make_shared<MarginsCommand>();
  command->common.samples = 100;
  CLI::App* sub =
      app.add_subcommand("margins", "Decision-boundary distance in DCT frequency subspaces (Hold me tight!)");
  add_common_options(*sub, command->common, kModel | kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  sub->add_option("--subspaces", command->subspaces, "auto (reference settings by image size) or dct:K:T")
      ->capture_default_str();
  add_deepfool_options(*sub, command->margins.deepfool);
  sub->add_flag("--no-full-space", command->no_full_space, "Skip the unconstrained (full-space) margin");
  add_ensemble_options(
      *sub, command->margins.ensemble, command->margins.ensemble_options,
      "full space only: DeepFool, FMN, PGD bisection, a long FMN on the images none fooled; DeepFool alone without it");
  sub->callback([command] { run_margins(*command); });
}

namespace {

using json = nlohmann::json;

/// The first or the last DCT subspace of the margins step.
const json* margin_subspace(const json& model, bool highest) {
  const json* subspaces = find(model, {"analyses", "margins", "per_subspace"});
  if (subspaces == nullptr || subspaces->empty()) return nullptr;
  return highest ? &subspaces->back() : &subspaces->front();
}

std::optional<double> bounded_margin_median(const json& model, bool highest) {
  const auto bounded = bounded_margins(margin_subspace(model, highest));
  return bounded ? std::optional<double>(bounded->quartiles.median) : std::nullopt;
}

bool margin_median_is_lower_bound(const json& model, bool highest) {
  const auto bounded = bounded_margins(margin_subspace(model, highest));
  return bounded && bounded->median_is_lower_bound;
}

void margins_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Frequency margins (Hold me tight!)", "margins");
  report.paragraph(
      "How far is the decision boundary when an image may only change within one band of "
      "frequencies? The image's DCT spectrum is cut into blocks from low (coarse shapes) to high "
      "(fine texture) frequencies, and a DeepFool search restricted to each block measures the "
      "distance (the margin). A small margin means the model's decision uses features in that band; a "
      "large one means the model is nearly invariant there. Networks tend to be invariant to the "
      "frequencies where the training data have no discriminative features.");
  const auto models = ran_on(report, audit, "margins");
  if (models.empty()) return;
  std::string bounds, warnings;
  const LineChart chart = margins_chart(models, bounds, warnings);
  report.paragraph(
      "Images whose label did not flip within DeepFool's iterations count at the distance reached, a "
      "lower bound of their margin: " +
      bounds + ".");
  if (!warnings.empty()) report.html("<p class=\"skipped\">" + html_escape(warnings) + "</p>");
  // Robust models' margins can be ten times larger: a log axis keeps every model's curve readable.
  json spec = vega_lite_spec(chart);
  for (json& layer : spec["layer"]) {
    if (layer["encoding"].contains("y")) layer["encoding"]["y"]["scale"] = {{"type", "log"}};
  }
  report.chart(spec);
}

}  // namespace

Analysis margins_analysis() {
  Analysis analysis;
  analysis.name = "margins";
  analysis.result_file = "margins.json";
  analysis.add_command = add_margins_command;
  analysis.quick_arguments = {"--samples", "20"};
  analysis.record_format = 2;
  analysis.summary_columns = {
      {"margin_low", "margin, low freq.",
       "Median distance to the decision boundary within the lowest-frequency DCT subspace; images whose label "
       "did not flip count at the distance reached, and ≥ marks a median that is only a lower bound (margins).",
       "general", [](const json&, const json& m) { return bounded_margin_median(m, false); },
       [](const json&, const json& m) { return margin_median_is_lower_bound(m, false); }},
      {"margin_high", "margin, high freq.",
       "The same within the highest-frequency DCT subspace; usually much larger than at low frequencies: the "
       "model is nearly invariant to high frequencies (margins).",
       "general", [](const json&, const json& m) { return bounded_margin_median(m, true); },
       [](const json&, const json& m) { return margin_median_is_lower_bound(m, true); }},
  };
  analysis.report_section = margins_section;
  return analysis;
}

}  // namespace robustlens::cli
