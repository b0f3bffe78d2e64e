// The audit's summary: one row per model, one headline figure per analysis,
// each column declared once (title, note, format, where its value comes from).
#include "audit_records.h"
#include "audit_report.h"

#include "robustlens/analyses/spectral_importance.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <set>

namespace robustlens::cli {
namespace {

using nlohmann::json;

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

/// The tangent space the manifold step measured: the VAE's when there is one, else local PCA's.
const json* tangent_result(const json& model) {
  const json* vae = find(model, {"analyses", "manifold", "tangent", "vae"});
  return vae != nullptr ? vae : find(model, {"analyses", "manifold", "tangent", "local-pca"});
}

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
       [](const json&, const json& m) {
         return number(m, {"analyses", "eval", "accuracy"});
       }},
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
       "fixed",
       [](const json&, const json& m) {
         return number(m, {"analyses", "align", "mean_cosine"});
       }},
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
  return columns;
}

/// Appends to `out` where a and b differ, recursing into objects of the same kind.
void collect_differences(const json& a, const json& b, const std::string& path, json& out) {
  if (a.is_object() && b.is_object() && a.value("kind", json()) == b.value("kind", json())) {
    std::set<std::string> keys;
    for (const auto& [key, value] : a.items()) keys.insert(key);
    for (const auto& [key, value] : b.items()) keys.insert(key);
    for (const std::string& key : keys) {
      collect_differences(a.value(key, json()), b.value(key, json()), path.empty() ? key : path + "." + key, out);
    }
  } else if (a != b) {
    out.push_back({{"option", path}, {"value", a}, {"compared_value", b}});
  }
}

}  // namespace

json training_comparisons(const json& audit) {
  json comparisons = json::array();
  const json& models = audit["models"];
  for (const json& model : models) {
    json best = {{"model", model["name"]}, {"compared_with", nullptr}, {"differences", json::array()}};
    const json training = model.value("training", json());
    for (const json& other : models) {
      const json other_training = other.value("training", json());
      if (&other == &model || !training.is_object() || !other_training.is_object()) continue;
      json differences = json::array();
      collect_differences(training, other_training, "", differences);
      if (best["compared_with"].is_null() || differences.size() < best["differences"].size()) {
        best["compared_with"] = other["name"];
        best["differences"] = differences;
      }
    }
    comparisons.push_back(best);
  }
  return comparisons;
}

std::vector<std::string> comparison_lines(const json& comparisons) {
  std::vector<std::string> lines;
  for (const json& c : comparisons) {
    const std::string name = c["model"].get<std::string>();
    if (c["compared_with"].is_null()) {
      lines.push_back(name +
                      ": no training record to compare (train_log.json beside the model, written by robustlens train)");
      continue;
    }
    std::string line = name + " differs from " + c["compared_with"].get<std::string>() + " in ";
    if (c["differences"].empty()) line += "nothing";
    for (std::size_t i = 0; i < c["differences"].size(); ++i) {
      const json& d = c["differences"][i];
      const auto shown = [](const json& v) { return v.is_null() ? std::string("(none)") : v.dump(); };
      line += (i == 0 ? "" : "; ") + d["option"].get<std::string>() + " " + shown(d["value"]) + " (" +
              shown(d["compared_value"]) + ")";
    }
    lines.push_back(line);
  }
  return lines;
}

json audit_summary(const json& audit) {
  json summary = {{"columns", json::array()}, {"rows", json::array()}};
  for (const Column& column : summary_columns()) {
    summary["columns"].push_back(
        {{"key", column.key}, {"title", column.title}, {"note", column.note}, {"format", column.format}});
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

}  // namespace robustlens::cli
