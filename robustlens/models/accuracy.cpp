#include "robustlens/models/accuracy.h"

#include "robustlens/core/error.h"

namespace robustlens {

nlohmann::json AccuracyResult::to_json(const std::vector<std::string>& class_names) const {
  nlohmann::json per_class = nlohmann::json::object();
  for (std::size_t k = 0; k < per_class_accuracy.size() && k < class_names.size(); ++k) {
    per_class[class_names[k]] = per_class_accuracy[k];
  }
  return {
      {"accuracy", accuracy}, {"mean_loss", mean_loss}, {"samples", logits.size(0)}, {"per_class_accuracy", per_class}};
}

AccuracyResult evaluate_accuracy(Model& model, const Dataset& dataset, const AccuracyOptions& options,
                                 const ProgressCallback& progress) {
  model.set_training(false);
  AccuracyResult result;
  result.logits = batched_logits(model, dataset.images, options.batch_size, progress);
  const std::int64_t classes = result.logits.size(1);
  RL_CHECK(classes >= dataset.num_classes(), "the model returns ", classes, " logits but the dataset has ",
           dataset.num_classes(), " classes");
  result.predictions = result.logits.argmax(1);
  const at::Tensor correct = result.predictions.eq(dataset.labels);
  result.accuracy = correct.to(at::kDouble).mean().item<double>();
  result.mean_loss = at::cross_entropy_loss(result.logits, dataset.labels).item<double>();
  for (std::int64_t k = 0; k < dataset.num_classes(); ++k) {
    const at::Tensor of_class = dataset.labels.eq(k);
    const std::int64_t count = of_class.sum().item<std::int64_t>();
    result.per_class_accuracy.push_back(
        count == 0 ? 0.0 : correct.logical_and(of_class).sum().item<double>() / static_cast<double>(count));
  }
  return result;
}

Dataset correctly_classified(Model& model, const Dataset& dataset, std::int64_t batch_size) {
  model.set_training(false);
  const at::Tensor correct = batched_logits(model, dataset.images, batch_size).argmax(1).eq(dataset.labels);
  const at::Tensor kept = correct.nonzero().flatten().contiguous();
  return dataset.subset(
      std::vector<std::int64_t>(kept.data_ptr<std::int64_t>(), kept.data_ptr<std::int64_t>() + kept.numel()));
}

}  // namespace robustlens
