#include "audit_report.h"
#include "audit_records.h"

#include "robustlens/analyses/spectral_importance.h"
#include "robustlens/report/chart.h"
#include "robustlens/report/vega_lite.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

namespace robustlens::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

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
std::vector<std::pair<std::string, const json*>> ran_on(HtmlReport& report, const json& audit,
                                                        const std::string& analysis) {
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
  report.paragraph(
      "One row per model, one headline figure per analysis; hover over a column title for what it "
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
  if (const json* comparisons = find(audit, {"comparisons"}); comparisons != nullptr && !comparisons->empty()) {
    report.paragraph(
        "A difference between two rows is only attributable to what their training differs in. Each "
        "model against the most similar other one (its training options, from the train_log.json "
        "beside the model; in brackets the other model's value):");
    std::string list = "<ul>";
    for (const std::string& line : comparison_lines(*comparisons)) list += "<li>" + html_escape(line) + "</li>";
    report.html(list + "</ul>");
  }
  std::string legend = "<ul>";
  for (const json& column : audit["summary"]["columns"]) {
    legend += "<li><b>" + html_escape(column["title"].get<std::string>()) +
              "</b>: " + html_escape(column["note"].get<std::string>()) + "</li>";
  }
  report.html(legend + "</ul>");
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
  const json& options = (*models.front().second)["options"];
  LineChart accuracy{"Accuracy under attack", "ε (L2 length of the change)", "accuracy", {}};
  accuracy.note = options.value("attack", "pgd") + " " + options.value("norm", "l2") +
                  (options.contains("steps") ? ", " + std::to_string(options["steps"].get<int>()) + " steps" : "") +
                  "; " + std::to_string((*models.front().second)["data"].value("size", 0)) + " test images";
  BarChart deepfool{"Distance to the decision boundary",
                    "",
                    "L2 length of the smallest change found",
                    {"first quartile", "median", "third quartile"},
                    {},
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
    if (const json* per_eps = find(*record, {"minimal_perturbation", "robust_accuracy"})) {
      ChartSeries ensemble{name + " (ensemble)", {0.0}, {(*record)["clean_accuracy"].get<double>()}, {}, {}, true};
      for (const json& entry : *per_eps) {
        ensemble.x.push_back(entry["eps"]);
        ensemble.y.push_back(entry["robust_accuracy"]);
      }
      accuracy.series.push_back(ensemble);
    }
    if (const json* q = find(*record, {"deepfool", "norms_of_flipped"})) {
      deepfool.series.push_back({name + " DeepFool", numbers(json::array({(*q)["q1"], (*q)["median"], (*q)["q3"]}))});
    }
    if (const json* q = find(*record, {"minimal_perturbation", "quartiles_of_correct"})) {
      deepfool.series.push_back({name + " ensemble", numbers(json::array({(*q)["q1"], (*q)["median"], (*q)["q3"]}))});
    }
    if (const json* warning = find(*record, {"minimal_perturbation", "gradient_masking_warning"});
        warning && warning->is_string()) {
      warnings += (warnings.empty() ? "" : " ") + name + ": " + warning->get<std::string>() + ".";
    }
  }
  std::vector<json> charts{vega_lite_spec(accuracy)};
  if (!deepfool.series.empty()) charts.push_back(vega_lite_spec(deepfool));
  charts_side_by_side(report, charts);
  if (!warnings.empty()) report.html("<p class=\"skipped\">" + html_escape(warnings) + "</p>");
  report.paragraph(
      "Each row: the image, its adversarial version at the largest ε, that change (red +, blue −), "
      "the change DeepFool found and the smallest change the ensemble found (blank: the image was "
      "already misclassified, or no attack flipped it).");
  model_figures(report, audit, "attack", "examples.png",
                "image | attacked | its change | DeepFool's change | the ensemble's minimal change");
}

void explanations_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Explanations (attribution maps)", "explanations");
  report.paragraph(
      "A saliency map shows how strongly each pixel sways the model's score for a class (the gradient "
      "of the score with respect to the image). Maps of robust models tend to follow the object's "
      "shape; maps of standard models look noisy. The same test images are shown for every model.");
  const auto models = ran_on(report, audit, "explain");
  if (models.empty()) return;
  model_figures(report, audit, "explain", "heatmaps.png",
                (*models.front().second)["options"].value("method", "saliency") + " maps (image | map | overlay)");
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
  LineChart chart{"Margin in each DCT frequency subspace",
                  "DCT subspace (0 = lowest frequencies)",
                  "median L2 margin ([0,1] pixels)",
                  {}};
  chart.note =
      "lines: medians, images whose label did not flip counted at the distance reached; shaded: "
      "quartiles; dashed: margin in the whole space (DeepFool, over the images that flipped; and the minimum "
      "per image over the attack ensemble)";
  std::string bounds, warnings;
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
      if (bounded && bounded->median_is_lower_bound)
        bounded_subspaces.push_back(std::to_string(subspace["index"].get<int>()));
      not_flipped += subspace.value("not_flipped", 0);
      pairs += static_cast<std::int64_t>(subspace["margins"].size());
    }
    bounds += (bounds.empty() ? "" : "; ") + name + ": " + std::to_string(not_flipped) + " of " +
              std::to_string(pairs) + " (image, subspace) pairs did not flip";
    if (!bounded_subspaces.empty()) {
      std::string list;
      for (const std::string& t : bounded_subspaces) list += (list.empty() ? "" : ", ") + t;
      bounds += ", so the medians of subspaces " + list + " are only lower bounds";
    }
    if (const auto full = number(*record, {"full_space", "quartiles_of_flipped", "median"});
        full && !series.x.empty()) {
      chart.series.push_back(
          {name + " (whole space, DeepFool)", {series.x.front(), series.x.back()}, {*full, *full}, {}, {}, true});
    }
    if (const auto minimum = number(*record, {"full_space", "minimal_perturbation", "quartiles", "median"});
        minimum && !series.x.empty()) {
      chart.series.push_back({name + " (whole space, attack ensemble)",
                              {series.x.front(), series.x.back()},
                              {*minimum, *minimum},
                              {},
                              {},
                              true});
    }
    if (const json* warning = find(*record, {"full_space", "minimal_perturbation", "gradient_masking_warning"});
        warning && warning->is_string()) {
      warnings += (warnings.empty() ? "" : " ") + name + ", whole space: " + warning->get<std::string>() +
                  "; the subspace margins are DeepFool's too, so on this model read them as overestimates.";
    }
    chart.series.push_back(series);
  }
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

void spectral_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Spectral importance (I-ASIDE)", "spectral");
  report.paragraph(
      "Which frequencies does the model's predictive power come from? The image's Fourier spectrum is "
      "split into rings from low to high frequency; the model is scored on images rebuilt from every "
      "subset of rings, and the exact Shapley value of each ring is its fair share of the score. psi is "
      "that share normalised to sum to 1. Robust models put more of it on the low bands; the signed "
      "spectral score summarises this (0 = spread evenly, positive = low bands, negative = high bands; "
      "the paper's score is its absolute value). The signal-to-noise ratio per band shows "
      "where perturbations put their energy.");
  const auto models = ran_on(report, audit, "spectral");
  if (models.empty()) return;
  BarChart psi{"Spectral importance distribution psi",
               "Fourier band (0 = lowest, holds the mean)",
               "share of predictive power",
               {},
               {},
               ""};
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
      ChartSeries series{
          name + " · " + curve["perturbation"].get<std::string>(), {}, numbers(curve["snr_db"]), {}, {}, false};
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
  for (const auto& [name, record] : models) {
    const json* summary = find(*record, {"summary", "metrics"});
    if (summary == nullptr) {
      rows.push_back({name, "— (a record without a summary: rerun the audit)", "", "", "", "", ""});
      continue;
    }
    const auto cell = [&](const std::string& method, const std::string& metric, const std::string& format) {
      const json* m = find(*summary, {method});
      if (m == nullptr) return std::string("—");
      std::string text = format_value((*m)[metric], format);
      if (const json* spread = find(*m, {"spread", metric}); spread != nullptr && spread->is_number()) {
        text += " ± " + format_value(*spread, format);
      }
      return text;
    };
    const json* floor = find(*record, {"floor", "metrics", "universal-random", "dissimilarity"});
    rows.push_back(
        {name, format_value((*record)["summary"]["eps"], "general"),
         cell("upi-grad", "dissimilarity_unchanged", "fixed") + " / " + cell("upi-grad", "fooling_rate", "percent"),
         cell("upi-pca", "dissimilarity_unchanged", "fixed") + " / " + cell("upi-pca", "fooling_rate", "percent"),
         cell("universal-random", "dissimilarity_unchanged", "fixed"),
         cell("per-image-attack", "dissimilarity_unchanged", "fixed") + " / " +
             cell("per-image-attack", "fooling_rate", "percent"),
         floor != nullptr
             ? format_value(*floor, "fixed") + " (ε " + format_value((*record)["floor"]["eps"], "general") + ")"
             : "—"});
  }
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
  for (const auto& [name, record] : models) {
    LineChart chart{name + ": map dissimilarity", "ε (L2 length of the perturbation)", "dissimilarity of maps", {}};
    chart.note = (*record)["options"]["attribution"].value("method", "") + " maps, " +
                 std::to_string((*record).value("test_images", 0)) +
                 " test images; dashed: baselines, shaded: ± one standard deviation over draws";
    std::map<std::string, ChartSeries> by_method;
    for (const json& entry : (*record)["per_eps"]) {
      for (const auto& [method, metrics] : entry["metrics"].items()) {
        ChartSeries& series = by_method[method];
        series.name = method;
        series.dashed = method.rfind("upi-", 0) != 0;
        series.x.push_back(entry["eps"]);
        series.y.push_back(metrics["dissimilarity"]);
        if (const json* spread = find(metrics, {"spread", "dissimilarity"})) {
          series.band_low.push_back(metrics["dissimilarity"].get<double>() - spread->get<double>());
          series.band_high.push_back(metrics["dissimilarity"].get<double>() + spread->get<double>());
        }
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
  report.paragraph(
      "Natural images lie near a low-dimensional surface (the data manifold). A change along it keeps "
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
  LineChart chart{"Prediction change along and across the data manifold",
                  "ε (L2 length of the change)",
                  "mean L1 change of the softmax",
                  {}};
  chart.log_x = true;
  chart.note = "solid: along the tangent space (on-manifold); dashed: across it (off-manifold)";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, record] : models) {
    const json* tangents = find(*record, {"tangent"});
    if (tangents == nullptr) continue;
    for (const auto& [basis, result] : tangents->items()) {
      if (!result.contains("eps")) continue;  // subspace_agreement
      const std::vector<double> eps = numbers(result["eps"]);
      chart.series.push_back(
          {name + " on (" + basis + ")", eps, numbers(result["on_manifold"]["mean"]), {}, {}, false});
      chart.series.push_back(
          {name + " off (" + basis + ")", eps, numbers(result["off_manifold"]["mean"]), {}, {}, true});
      rows.push_back(
          {name, basis,
           std::to_string(result["tangent_dim"].get<int>()) + " of " + std::to_string(result["input_dim"].get<int>()),
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
  report.paragraph(
      "Does the input gradient point where a generative model of the data would change the image? A "
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
  LineChart chart{"Alignment of input gradients with the data score",
                  "noise level sigma of the score",
                  "mean cosine over the images",
                  {}};
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
  const fs::path folder = audit["latent"]["folder"].get<std::string>();
  std::vector<Figure> pictures;
  for (const json& entry : *models) {
    const std::string name = entry["name"];
    pictures.push_back({(folder / name / "units.svg").string(), name + ": histogram of each latent unit"});
    pictures.push_back(
        {(folder / name / "projection.svg").string(), name + ": z projected on two principal components"});
  }
  report.figures(pictures);
}

void reproduce_section(HtmlReport& report, const json& audit) {
  report.heading(2, "How these numbers were made", "reproduce");
  report.paragraph(
      "Each analysis ran as the robustlens subcommand below, with the same options and seed; run "
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
  report.html(
      "<pre>" +
      html_escape(
          json({{"seed", audit["seed"]}, {"options", audit["options"]}, {"versions", audit["versions"]}}).dump(2)) +
      "</pre>");
}

}  // namespace

std::string render_audit_report(const json& audit, const WebAssets& assets) {
  const std::string data = audit["data"].value("name", "the data");
  HtmlReport report("robustlens audit: " + std::to_string(audit["models"].size()) + " model" +
                    (audit["models"].size() == 1 ? "" : "s") + " on " + data);
  std::string names;
  for (const json& model : audit["models"]) {
    names +=
        (names.empty() ? "" : ", ") + model["name"].get<std::string>() + " (" + model["file"].get<std::string>() + ")";
  }
  report.html("<p class=\"lead\">Models: " + html_escape(names) + ". Data: " + html_escape(data) + ", seed " +
              html_escape(audit["seed"].dump()) +
              (audit["options"].value("quick", false) ? ", quick audit (fewer samples)" : "") +
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
