// Out-of-distribution detection from a model's latent code and outputs, the reliability claim of BinEnc
// (Sbailò & Ghiringhelli, arXiv 2310.08224) beyond misclassification: the test images of the training
// distribution against each set of images from elsewhere (classes held out of training, strongly corrupted
// images, ...), scored as in latent.h (larger = more anomalous):
//   mahalanobis  the Mahalanobis distance of z to the predicted class's Gaussian (Lee et al. 2018), fitted to the
//                correctly predicted training images
//   odin         minus the largest softmax of logits / T (Liang et al. 2018, T = LatentOptions.odin_temperature;
//                no input preprocessing)
//   max_softmax  minus the largest softmax (Hendrycks & Gimpel 2017)
// Per set and score: AUROC from exact ranks (ties half; the OOD images are the positives) and the false-positive
// rate at 95% true-positive rate (false_positive_rate_at).
#pragma once

#include "robustlens/analyses/latent.h"
#include "robustlens/core/model.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

/// A set of images from outside the training distribution, with the name the results give it.
struct OodSet {
  std::string name;
  Dataset images;
};

/// The ODIN convention: the in-distribution images are the positives, kept when their score is at most a
/// threshold. The threshold is the smallest in-distribution score that keeps at least a share `tpr` of them; the
/// result is the share of OOD images it keeps too (0 is perfect, 1 − tpr is chance for equal distributions).
double false_positive_rate_at(const at::Tensor& in_scores, const at::Tensor& out_scores, double tpr = 0.95);

struct DetectionQuality {
  double auroc = 0, fpr_at_95_tpr = 0;
  nlohmann::json to_json() const;
};

struct OodDetection {
  std::string set;
  std::int64_t in_images = 0, out_images = 0;
  DetectionQuality mahalanobis, odin, max_softmax;
  /// Images whose predicted class has no Gaussian (fewer than two correct training images), left out of the
  /// Mahalanobis numbers.
  std::int64_t mahalanobis_left_out = 0;
  nlohmann::json to_json() const;
};

/// Every set against `test` (the in-distribution test images); the Gaussians from `train`. The model must expose
/// latent(); the sets must have the model's image shape.
std::vector<OodDetection> detect_out_of_distribution(Model& model, const Dataset& train, const Dataset& test,
                                                     const std::vector<OodSet>& sets, const LatentOptions& options,
                                                     const ProgressCallback& progress = {});

}  // namespace robustlens
