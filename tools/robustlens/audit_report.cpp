#include "audit_report.h"

#include "robustlens/analyses/margins.h"
#include "robustlens/analyses/spectral_importance.h"
#include "robustlens/report/chart.h"
#include "robustlens/report/vega_lite.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>

namespace robustlens::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

/// The value at a path of keys and indices, or nullptr where any step is missing.
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

/// The robust accuracy at the eps nearest 0.5 (the middle of the default L2 radii).
std::optional<double> robust_accuracy_at_half(const json& model) {
  const json* per_eps = find(model, {"analyses", "attack", "robust_accuracy"});
  if (per_eps == nullptr || per_eps->empty()) return std::nullopt;
  const json* best = &per_eps->front();
  for (const json& entry : *per_eps) {
    if (std::abs(entry["eps"].get<double>() - 0.5) < std::abs((*best)["eps"].get<double>() - 0.5)) best = &entry;
  }
  return (*best)["robust_accuracy"].get<double>();
}

/// The tangent space the manifold step measured: the VAE's when there is one, else local PCA's.
const json* tangent_result(const json& model) {
  const json* vae = find(model, {"analyses", "manifold", "tangent", "vae"});
  return vae != nullptr ? vae : find(model, {"analyses", "manifold", "tangent", "local-pca"});
}

/// The metric at the largest eps of the UPI step for one method.
std::optional<double> upi_at_largest_eps(const json& model, const std::string& method) {
  const json* per_eps = find(model, {"analyses", "upi", "per_eps"});
  if (per_eps == nullptr || per_eps->empty()) return std::nullopt;
  return number(per_eps->back(), {"metrics", method, "dissimilarity"});
}

/// A margins record's subspace entry with the samples that did not flip counted at the norm reached,
/// computed from its per-sample arrays (so that records written before the lower bounds existed read the same).
std::optional<MarginsWithLowerBounds> bounded_margins(const json* subspace) {
  if (subspace == nullptr || !subspace->contains("margins") || !subspace->contains("flipped")) return std::nullopt;
  const std::vector<double> margins = (*subspace)["margins"].get<std::vector<double>>();
  std::vector<std::int64_t> flipped;
  for (const json& f : (*subspace)["flipped"]) flipped.push_back(f.is_boolean() ? f.get<bool>() : f.get<std::int64_t>() != 0);
  if (margins.empty() || margins.size() != flipped.size()) return std::nullopt;
  return margins_with_lower_bounds(at::tensor(margins, at::kDouble), at::tensor(flipped, at::kLong).to(at::kBool));
}

/// The first or the last DCT subspace of the margins step.
const json* margin_subspace(const json& model, bool highest) {
  const json* subspaces = find(model, {"analyses", "margins", "per_subspace"});
  if (subspaces == nullptr || subspaces->empty()) return nullptr;
  return highest ? &subspaces->back() : &subspaces->front();
}

struct Column {
  std::string key, title, note, format;  ///< format: percent, fixed (3 decimals) or general (3 digits)
  std::function<std::optional<double>(const json& audit, const json& model)> value;
  /// Whether the value is only a lower bound (shown as "≥"); empty: never.
  std::function<bool(const json& audit, const json& model)> lower_bound = {};
};

std::optional<double> bounded_margin_median(const json& model, bool highest) {
  const auto bounded = bounded_margins(margin_subspace(model, highest));
  return bounded ? std::optional<double>(bounded->quartiles.median) : std::nullopt;
}
bool margin_median_is_lower_bound(const json& model, bool highest) {
  const auto bounded = bounded_margins(margin_subspace(model, highest));
  return bounded && bounded->median_is_lower_bound;
}

const std::vector<Column>& summary_columns() {
  static const std::vector<Column> columns = {
      {"accuracy", "accuracy", "Share of the test images classified correctly (eval).", "percent",
       [](const json&, const json& m) { return number(m, {"analyses", "eval", "accuracy"}); }},
      {"robust_accuracy", "robust accuracy, L2 ε≈0.5",
       "Accuracy when an attacker may move each image by an L2 distance of 0.5 (PGD, [0,1] pixels; attack).", "percent",
       [](const json&, const json& m) { return robust_accuracy_at_half(m); }},
      {"minimal_perturbation", "minimal perturbation",
       "Median L2 length of the smallest change that alters the answer on a correctly classified image: the "
       "minimum per image over an attack ensemble (DeepFool, PGD at every ε, FMN, PGD bisection; each checked), "
       "which a stronger attack cannot lower the way it lowers DeepFool's alone. Larger: the decision boundary is "
       "farther from the data (attack; the report shows DeepFool's beside it).",
       "general",
       [](const json&, const json& m) {
         return number(m, {"analyses", "attack", "minimal_perturbation", "quartiles_of_correct", "median"});
       }},
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
      {"spectral_score", "signed spectral score",
       "I-ASIDE score, signed: (⟨b̂, psi⟩ − eta)/(1 − eta), 0 when the predictive power is spread evenly over the "
       "Fourier bands, positive when it rests on the low bands, which perturbations move least, negative when on "
       "the high ones (the paper's score is its absolute value; spectral).",
       "fixed",
       [](const json&, const json& m) -> std::optional<double> {
         // From psi, so that records written before the signed score existed are read the same way.
         const json* psi = find(m, {"analyses", "spectral", "psi"});
         const json* beta = find(m, {"analyses", "spectral", "options", "beta"});
         if (psi == nullptr || beta == nullptr) return std::nullopt;
         return signed_spectral_score(psi->get<std::vector<double>>(), beta->get<double>());
       }},
      {"upi", "UPI map change",
       "Mean dissimilarity of the explanation maps of unseen test images after one universal perturbation "
       "(UPI-Grad) at the largest ε; 0 = unchanged (upi).",
       "fixed",
       [](const json&, const json& m) {
         const auto grad = upi_at_largest_eps(m, "upi-grad");
         return grad ? grad : upi_at_largest_eps(m, "upi-pca");
       }},
      {"upi_random", "random noise map change",
       "The same dissimilarity for random universal noise of the same size: the baseline for the UPI column (upi).",
       "fixed", [](const json&, const json& m) { return upi_at_largest_eps(m, "universal-random"); }},
      {"tangent_fraction", "gradient share on manifold",
       "‖P∇f‖/‖∇f‖: how much of the input gradient lies in the data manifold's tangent space (VAE, else local PCA); "
       "a random direction gets √(k/D) (manifold).",
       "fixed",
       [](const json&, const json& m) -> std::optional<double> {
         const json* tangent = tangent_result(m);
         return tangent == nullptr ? std::nullopt : number(*tangent, {"tangent_fraction"});
       }},
      {"alignment", "gradient alignment",
       "Cosine similarity between the input gradient of log p(y|x) and s(x, y) − s(x), the gradient of a Bayes "
       "classifier of the data (the difference of a denoiser's class-conditional and unconditional scores), at "
       "noise level 0.5 (the align step's pairing and summary noise level): perceptually aligned gradients score "
       "higher (align).",
       "fixed", [](const json&, const json& m) { return number(m, {"analyses", "align", "mean_cosine"}); }},
      {"same_encoding", "same encoding",
       "Share of test images whose latent sign pattern is their predicted class's most frequent one: 1 = a "
       "binary code per class (latent).",
       "fixed",
       [](const json& a, const json& m) { return latent_number(a, m, {"encoding", "test", "same_encoding_fraction"}); }},
      {"mahalanobis_auroc", "error detection AUROC",
       "How well the Mahalanobis distance of the latent code tells misclassified test images from correct ones "
       "(0.5 = chance, 1 = perfect; latent).",
       "fixed",
       [](const json& a, const json& m) { return latent_number(a, m, {"reliability", "mahalanobis_auroc"}); }},
  };
  return columns;
}

std::string format_value(const json& value, const std::string& format) {
  if (!value.is_number()) return "—";
  const double v = value.get<double>();
  char text[32];
  if (format == "percent") {
    std::snprintf(text, sizeof text, "%.1f%%", 100 * v);
  } else if (format == "fixed") {
    std::snprintf(text, sizeof text, "%.3f", v);
  } else {
    std::snprintf(text, sizeof text, "%.3g", v);
  }
  return text;
}

/// A summary cell: the formatted value, with "≥" when the row marks it as a lower bound.
std::string summary_cell(const json& row, const json& column) {
  const std::string key = column["key"].get<std::string>();
  const bool bound = row.contains("lower_bounds") && row["lower_bounds"].value(key, false);
  return (bound ? "≥" : "") + format_value(row["values"][key], column["format"]);
}
std::string fixed(double value, int digits = 3) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

/// The models that ran `analysis`, with their records.
std::vector<std::pair<std::string, const json*>> models_with(const json& audit, const std::string& analysis) {
  std::vector<std::pair<std::string, const json*>> found;
  for (const json& model : audit["models"]) {
    const json* record = find(model, {"analyses", analysis});
    if (record != nullptr) found.emplace_back(model["name"].get<std::string>(), record);
  }
  return found;
}

/// A paragraph saying which models an analysis was not run on, and why; returns those it ran on.
std::vector<std::pair<std::string, const json*>> ran_on(HtmlReport& report, const json& audit, const std::string& analysis) {
  for (const json& model : audit["models"]) {
    const json* why = find(model, {"skipped", analysis});
    if (why != nullptr) {
      report.html("<p class=\"skipped\">Not run on " + html_escape(model["name"].get<std::string>()) + ": " +
                  html_escape(why->get<std::string>()) + ".</p>");
    }
  }
  return models_with(audit, analysis);
}

std::string folder_of(const json& audit, const std::string& name, const std::string& analysis) {
  for (const json& model : audit["models"]) {
    if (model["name"] == name) return model["folders"][analysis].get<std::string>();
  }
  return "";
}

/// One picture per model that ran `analysis` (those whose file exists), side by side.
void model_figures(HtmlReport& report, const json& audit, const std::string& analysis, const std::string& file,
                   const std::string& caption) {
  std::vector<Figure> pictures;
  for (const auto& [name, record] : models_with(audit, analysis)) {
    const fs::path path = fs::path(folder_of(audit, name, analysis)) / file;
    if (fs::exists(path)) pictures.push_back({path.string(), name + ": " + caption});
  }
  if (!pictures.empty()) report.figures(pictures);
}

void charts_side_by_side(HtmlReport& report, const std::vector<json>& specs) {
  report.html("<div class=\"figures\">");
  for (const json& spec : specs) report.chart(spec);
  report.html("</div>");
}

std::vector<double> numbers(const json& array) {
  std::vector<double> values;
  for (const json& v : array) values.push_back(v.is_number() ? v.get<double>() : std::nan(""));
  return values;
}

void summary_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Summary", "summary");
  report.paragraph("One row per model, one headline figure per analysis; hover over a column title for what it "
                   "measures. The sections below explain each analysis and show its charts.");
  std::vector<std::string> header{"model"}, notes{""};
  for (const json& column : audit["summary"]["columns"]) {
    header.push_back(column["title"]);
    notes.push_back(column["note"]);
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& row : audit["summary"]["rows"]) {
    std::vector<std::string> cells{row["model"].get<std::string>()};
    for (const json& column : audit["summary"]["columns"]) {
      cells.push_back(summary_cell(row, column));
    }
    rows.push_back(cells);
  }
  report.table(header, rows, notes);
  std::string legend = "<ul>";
  for (const json& column : audit["summary"]["columns"]) {
    legend += "<li><b>" + html_escape(column["title"].get<std::string>()) + "</b>: " +
              html_escape(column["note"].get<std::string>()) + "</li>";
  }
  report.html(legend + "</ul>");
}

void robustness_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Accuracy and robustness to attacks", "robustness");
  report.paragraph("An adversarial attack looks for a small change of an image that changes the model's answer. "
                   "Robust accuracy is the share of images still classified correctly when every image may be "
                   "changed by up to ε (L2 length, pixels in [0,1]; ε = 0 is the clean accuracy). DeepFool finds, "
                   "for each image, a near-smallest change that flips the prediction: its length estimates the "
                   "distance to the decision boundary. One attack can be fooled, so the minimum per image over an "
                   "ensemble of attacks (DeepFool, PGD, FMN, PGD bisection) is the distance the summary reports. "
                   "Robust training moves the boundary away from the data.");
  const auto models = ran_on(report, audit, "attack");
  if (models.empty()) return;
  const json& options = (*models.front().second)["options"];
  LineChart accuracy{"Accuracy under attack", "ε (L2 length of the change)", "accuracy", {}};
  accuracy.note = options.value("attack", "pgd") + " " + options.value("norm", "l2") +
                  (options.contains("steps") ? ", " + std::to_string(options["steps"].get<int>()) + " steps" : "") +
                  "; " + std::to_string((*models.front().second)["data"].value("size", 0)) + " test images";
  BarChart deepfool{"Distance to the decision boundary", "", "L2 length of the smallest change found",
                    {"first quartile", "median", "third quartile"}, {},
                    "DeepFool: over the images whose prediction flipped; ensemble: the minimum per image over all "
                    "attacks, over the correctly classified images"};
  std::string warnings;
  for (const auto& [name, record] : models) {
    ChartSeries series{name, {0.0}, {(*record)["clean_accuracy"].get<double>()}, {}, {}, false};
    for (const json& entry : (*record)["robust_accuracy"]) {
      series.x.push_back(entry["eps"]);
      series.y.push_back(entry["robust_accuracy"]);
    }
    accuracy.series.push_back(series);
    if (const json* q = find(*record, {"deepfool", "norms_of_flipped"})) {
      deepfool.series.push_back({name + " DeepFool", numbers(json::array({(*q)["q1"], (*q)["median"], (*q)["q3"]}))});
    }
    if (const json* q = find(*record, {"minimal_perturbation", "quartiles_of_correct"})) {
      deepfool.series.push_back({name + " ensemble", numbers(json::array({(*q)["q1"], (*q)["median"], (*q)["q3"]}))});
    }
    if (const json* warning = find(*record, {"minimal_perturbation", "gradient_masking_warning"}); warning && warning->is_string()) {
      warnings += (warnings.empty() ? "" : " ") + name + ": " + warning->get<std::string>() + ".";
    }
  }
  std::vector<json> charts{vega_lite_spec(accuracy)};
  if (!deepfool.series.empty()) charts.push_back(vega_lite_spec(deepfool));
  charts_side_by_side(report, charts);
  if (!warnings.empty()) report.html("<p class=\"skipped\">" + html_escape(warnings) + "</p>");
  report.paragraph("Each row: the image, its adversarial version at the largest ε, that change (red +, blue −) and "
                   "the change DeepFool found.");
  model_figures(report, audit, "attack", "examples.png", "image | attacked | its change | DeepFool's change");
}

void explanations_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Explanations (attribution maps)", "explanations");
  report.paragraph("A saliency map shows how strongly each pixel sways the model's score for a class (the gradient "
                   "of the score with respect to the image). Maps of robust models tend to follow the object's "
                   "shape; maps of standard models look noisy. The same test images are shown for every model.");
  const auto models = ran_on(report, audit, "explain");
  if (models.empty()) return;
  model_figures(report, audit, "explain", "heatmaps.png",
                (*models.front().second)["options"].value("method", "saliency") + " maps (image | map | overlay)");
}

void margins_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Frequency margins (Hold me tight!)", "margins");
  report.paragraph("How far is the decision boundary when an image may only change within one band of "
                   "frequencies? The image's DCT spectrum is cut into blocks from low (coarse shapes) to high "
                   "(fine texture) frequencies, and a DeepFool search restricted to each block measures the "
                   "distance (the margin). A small margin means the model's decision uses features in that band; a "
                   "large one means the model is nearly invariant there. Networks tend to be invariant to the "
                   "frequencies where the training data have no discriminative features.");
  const auto models = ran_on(report, audit, "margins");
  if (models.empty()) return;
  LineChart chart{"Margin in each DCT frequency subspace", "DCT subspace (0 = lowest frequencies)",
                  "median L2 margin ([0,1] pixels)", {}};
  chart.note = "lines: medians, images whose label did not flip counted at the distance reached; shaded: "
               "quartiles; dashed: margin in the whole space (over the images that flipped)";
  std::string bounds;
  for (const auto& [name, record] : models) {
    ChartSeries series{name, {}, {}, {}, {}, false};
    std::vector<std::string> bounded_subspaces;
    std::int64_t not_flipped = 0, pairs = 0;
    for (const json& subspace : (*record)["per_subspace"]) {
      series.x.push_back(subspace["index"]);
      const auto bounded = bounded_margins(&subspace);
      series.y.push_back(bounded ? bounded->quartiles.median : std::nan(""));
      series.band_low.push_back(bounded ? bounded->quartiles.q1 : std::nan(""));
      series.band_high.push_back(bounded ? bounded->quartiles.q3 : std::nan(""));
      if (bounded && bounded->median_is_lower_bound) bounded_subspaces.push_back(std::to_string(subspace["index"].get<int>()));
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
    if (const auto full = number(*record, {"full_space", "quartiles_of_flipped", "median"}); full && !series.x.empty()) {
      chart.series.push_back({name + " (whole space)", {series.x.front(), series.x.back()}, {*full, *full}, {}, {}, true});
    }
    chart.series.push_back(series);
  }
  report.paragraph("Images whose label did not flip within DeepFool's iterations count at the distance reached, a "
                   "lower bound of their margin: " + bounds + ".");
  // Robust models' margins can be ten times larger: a log axis keeps every model's curve readable.
  json spec = vega_lite_spec(chart);
  for (json& layer : spec["layer"]) {
    if (layer["encoding"].contains("y")) layer["encoding"]["y"]["scale"] = {{"type", "log"}};
  }
  report.chart(spec);
}

void spectral_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Spectral importance (I-ASIDE)", "spectral");
  report.paragraph("Which frequencies does the model's predictive power come from? The image's Fourier spectrum is "
                   "split into rings from low to high frequency; the model is scored on images rebuilt from every "
                   "subset of rings, and the exact Shapley value of each ring is its fair share of the score. psi is "
                   "that share normalised to sum to 1. Robust models put more of it on the low bands; the signed "
                   "spectral score summarises this (0 = spread evenly, positive = low bands, negative = high bands; "
                   "the paper's score is its absolute value). The signal-to-noise ratio per band shows "
                   "where perturbations put their energy.");
  const auto models = ran_on(report, audit, "spectral");
  if (models.empty()) return;
  BarChart psi{"Spectral importance distribution psi", "Fourier band (0 = lowest, holds the mean)", "share of predictive power", {}, {}, ""};
  LineChart snr{"Spectral signal-to-noise ratio of perturbations", "Fourier band", "SNR (dB)", {}};
  std::string scores;
  for (const auto& [name, record] : models) {
    const std::vector<double> values = numbers((*record)["psi"]);
    if (psi.categories.empty()) {
      for (std::size_t b = 0; b < values.size(); ++b) psi.categories.push_back(std::to_string(b));
    }
    psi.series.push_back({name, values});
    scores += (scores.empty() ? "signed score: " : ", ") + name + " " +
              fixed(signed_spectral_score(values, (*record)["options"]["beta"].get<double>()));
    for (const json& curve : record->value("snr", json::array())) {
      ChartSeries series{name + " · " + curve["perturbation"].get<std::string>(), {}, numbers(curve["snr_db"]), {}, {}, false};
      for (std::size_t b = 0; b < series.y.size(); ++b) series.x.push_back(static_cast<double>(b));
      snr.series.push_back(series);
    }
  }
  psi.note = scores;
  std::vector<json> charts{vega_lite_spec(psi)};
  if (!snr.series.empty()) charts.push_back(vega_lite_spec(snr));
  charts_side_by_side(report, charts);
  report.paragraph("Images rebuilt from growing sets of bands (columns: coalitions of bands, from none to all).");
  model_figures(report, audit, "spectral", "coalitions.png", "images rebuilt from subsets of Fourier bands");
}

void upi_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Universal perturbations of interpretations (UPI)", "upi");
  report.paragraph("Can one small perturbation, built on some images, change the explanations of most other "
                   "images? UPI-Grad and UPI-PCA build such a universal perturbation against the attribution maps "
                   "of training images and score it on unseen test images: the dissimilarity says how much the maps "
                   "change (0 = not at all), compared with random noise of the same size (universal or per image) "
                   "and with an attack that sees each test image (an upper reference). Far above random noise means "
                   "the explanations can be steered without access to the image explained.");
  const auto models = ran_on(report, audit, "upi");
  if (models.empty()) return;
  std::vector<json> charts;
  for (const auto& [name, record] : models) {
    LineChart chart{name + ": map dissimilarity", "ε (L2 length of the perturbation)", "dissimilarity of maps", {}};
    chart.note = (*record)["options"]["attribution"].value("method", "") + " maps, " +
                 std::to_string((*record).value("test_images", 0)) + " test images; dashed: baselines";
    std::map<std::string, ChartSeries> by_method;
    for (const json& entry : (*record)["per_eps"]) {
      for (const auto& [method, metrics] : entry["metrics"].items()) {
        ChartSeries& series = by_method[method];
        series.name = method;
        series.dashed = method.rfind("upi-", 0) != 0;
        series.x.push_back(entry["eps"]);
        series.y.push_back(metrics["dissimilarity"]);
      }
    }
    for (auto& [method, series] : by_method) chart.series.push_back(series);
    charts.push_back(vega_lite_spec(chart));
  }
  charts_side_by_side(report, charts);
  model_figures(report, audit, "upi", "maps.png", "maps before and after the universal perturbations");
  model_figures(report, audit, "upi", "perturbations.png", "the universal perturbations");
}

void manifold_section(HtmlReport& report, const json& audit) {
  report.heading(2, "On- and off-manifold robustness", "manifold");
  report.paragraph("Natural images lie near a low-dimensional surface (the data manifold). A change along it keeps "
                   "the image natural (a slightly different shoe); a change across it adds unnatural noise. The "
                   "chart compares how much the prediction (softmax) changes under random changes of the same "
                   "length along the tangent space (on-manifold) and across it (off-manifold). Models whose "
                   "gradients are perceptually aligned are robust off the manifold while staying sensitive on it; "
                   "the tangent fraction is the share of the input gradient that lies on the manifold. The "
                   "first-order ratio compares, per direction, the squared derivative of the log-probability of the "
                   "predicted class across the manifold with that along it: below 1, the model is more robust off "
                   "the manifold than on it, at any small length.");
  const auto models = ran_on(report, audit, "manifold");
  if (models.empty()) return;
  LineChart chart{"Prediction change along and across the data manifold", "ε (L2 length of the change)",
                  "mean L1 change of the softmax", {}};
  chart.log_x = true;
  chart.note = "solid: along the tangent space (on-manifold); dashed: across it (off-manifold)";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, record] : models) {
    const json* tangents = find(*record, {"tangent"});
    if (tangents == nullptr) continue;
    for (const auto& [basis, result] : tangents->items()) {
      if (!result.contains("eps")) continue;  // subspace_agreement
      const std::vector<double> eps = numbers(result["eps"]);
      chart.series.push_back({name + " on (" + basis + ")", eps, numbers(result["on_manifold"]["mean"]), {}, {}, false});
      chart.series.push_back({name + " off (" + basis + ")", eps, numbers(result["off_manifold"]["mean"]), {}, {}, true});
      rows.push_back({name, basis, std::to_string(result["tangent_dim"].get<int>()) + " of " +
                                       std::to_string(result["input_dim"].get<int>()),
                      fixed(result["tangent_fraction"]) + " ± " + fixed(result["tangent_fraction_standard_error"]),
                      fixed(result["random_baseline"]),
                      result.contains("first_order") ? fixed(result["first_order"]["off_to_on_ratio"]) : "-"});
    }
  }
  if (!chart.series.empty()) report.chart(vega_lite_spec(chart));
  if (!rows.empty()) {
    report.table({"model", "tangent space", "dimension k of D", "tangent fraction of gradients", "random direction",
                  "first-order off/on per direction"},
                 rows);
  }
}

void alignment_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Perceptually aligned gradients", "alignment");
  report.paragraph("Does the input gradient point where a generative model of the data would change the image? A "
                   "denoiser trained on the data gives the score of the noisy data, with the image's class "
                   "(s(x, y)) and without it (s(x)); their difference is the input gradient of log p(y|x) of the "
                   "Bayes classifier of that data. The cosine similarity between it and the gradient of the "
                   "model's log-probability of the class measures the alignment (SSIM as a second metric). The "
                   "score is read at several noise levels sigma: small sigma sees fine detail, large sigma the "
                   "coarse shape. The paper reports that moderately robust models have the most aligned "
                   "gradients. (robustlens align also pairs the gradient with s(x, y) alone, the conditional "
                   "pairing; on Fashion-MNIST that reads about 0 for every model.)");
  const auto models = ran_on(report, audit, "align");
  if (models.empty()) return;
  LineChart chart{"Alignment of input gradients with the data score", "noise level sigma of the score",
                  "mean cosine over the images", {}};
  chart.log_x = true;
  for (const auto& [name, record] : models) {
    std::vector<double> sigmas, cosines;
    for (const json& level : record->value("per_sigma", json::array())) {
      sigmas.push_back(level.at("sigma").get<double>());
      cosines.push_back(level.at("mean_cosine").get<double>());
    }
    chart.series.push_back({name, sigmas, cosines, {}, {}, false});
  }
  const json& options = (*models.front().second)["options"];
  chart.note = "pairing: " + options.value("pairing_description", options.value("pairing", "")) +
               "; the summary table uses sigma " + fixed(options.value("summary_sigma", 0.5), 2);
  report.chart(vega_lite_spec(chart));
  model_figures(report, audit, "align", "gradients.png", "image | input gradient | data score");
}

void latent_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Latent code (binary encoding)", "latent");
  report.paragraph("The representation just before the output layer (the latent code z). With a narrow linear "
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
  const fs::path folder = audit["latent"]["folder"].get<std::string>();
  std::vector<Figure> pictures;
  for (const json& entry : *models) {
    const std::string name = entry["name"];
    pictures.push_back({(folder / name / "units.svg").string(), name + ": histogram of each latent unit"});
    pictures.push_back({(folder / name / "projection.svg").string(), name + ": z projected on two principal components"});
  }
  report.figures(pictures);
}

void reproduce_section(HtmlReport& report, const json& audit) {
  report.heading(2, "How these numbers were made", "reproduce");
  report.paragraph("Each analysis ran as the robustlens subcommand below, with the same options and seed; run "
                   "one alone to get the same numbers. Every number of this page is in audit.json, beside the "
                   "options, the seed and the library versions.");
  std::string commands;
  const json generative = audit.value("generative", json::object());
  for (const auto& [step, entry] : generative.items()) {
    commands += entry["command"].get<std::string>() + "\n";
  }
  for (const json& model : audit["models"]) {
    for (const auto& [analysis, line] : model["commands"].items()) commands += line.get<std::string>() + "\n";
  }
  if (const json* latent = find(audit, {"latent", "command"})) commands += latent->get<std::string>() + "\n";
  report.html("<pre>" + html_escape(commands) + "</pre>");
  report.html("<pre>" + html_escape(json({{"seed", audit["seed"]}, {"options", audit["options"]},
                                          {"versions", audit["versions"]}}).dump(2)) + "</pre>");
}

}  // namespace

json audit_summary(const json& audit) {
  json summary = {{"columns", json::array()}, {"rows", json::array()}};
  for (const Column& column : summary_columns()) {
    summary["columns"].push_back({{"key", column.key}, {"title", column.title}, {"note", column.note}, {"format", column.format}});
  }
  for (const json& model : audit["models"]) {
    json values = json::object(), lower_bounds = json::object();
    for (const Column& column : summary_columns()) {
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

std::string render_audit_report(const json& audit, const WebAssets& assets) {
  const std::string data = audit["data"].value("name", "the data");
  HtmlReport report("robustlens audit: " + std::to_string(audit["models"].size()) + " model" +
                    (audit["models"].size() == 1 ? "" : "s") + " on " + data);
  std::string names;
  for (const json& model : audit["models"]) {
    names += (names.empty() ? "" : ", ") + model["name"].get<std::string>() + " (" + model["file"].get<std::string>() + ")";
  }
  report.html("<p class=\"lead\">Models: " + html_escape(names) + ". Data: " + html_escape(data) + ", seed " +
              html_escape(audit["seed"].dump()) + (audit["options"].value("quick", false) ? ", quick audit (fewer samples)" : "") +
              ". Written by robustlens " + html_escape(audit["versions"].value("robustlens", "")) + ".</p>");
  summary_section(report, audit);
  robustness_section(report, audit);
  explanations_section(report, audit);
  margins_section(report, audit);
  spectral_section(report, audit);
  upi_section(report, audit);
  manifold_section(report, audit);
  alignment_section(report, audit);
  latent_section(report, audit);
  reproduce_section(report, audit);
  return report.render(assets);
}

}  // namespace robustlens::cli
