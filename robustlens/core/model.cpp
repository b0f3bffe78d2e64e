#include "robustlens/core/model.h"

#include "robustlens/core/distributed.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"

namespace robustlens {

nlohmann::json ModelInfo::to_json() const {
  return {{"kind", kind},
          {"path", path},
          {"input_shape", input_shape},
          {"num_classes", num_classes},
          {"class_names", class_names},
          {"architecture", architecture},
          {"training", training}};
}

std::unique_ptr<Model> Model::softplus_surrogate(double /*beta*/) const {
  RL_CHECK(false, "a softplus surrogate needs a built-in model (written by robustlens train); model '", info_.path,
           "' is ", info_.kind.empty() ? std::string("not one") : info_.kind);
  return nullptr;
}

void check_logits(const at::Tensor& logits, std::int64_t batch, const std::string& who) {
  RL_CHECK(logits.dim() == 2 && logits.size(0) == batch, who, " must return N×K logits for a batch of N=", batch,
           ", got a tensor of shape ", logits.sizes());
  RL_CHECK(at::isFloatingType(logits.scalar_type()), who, " must return floating-point logits, got ",
           logits.scalar_type());
}

void check_images(const at::Tensor& images, const std::vector<std::int64_t>& input_shape, const std::string& who) {
  RL_CHECK(images.dim() == 4, who, " takes images N×C×H×W, got a tensor of shape ", images.sizes());
  if (input_shape.size() == 3) {
    RL_CHECK(images.size(1) == input_shape[0] && images.size(2) == input_shape[1] && images.size(3) == input_shape[2],
             who, " takes images of shape C×H×W = ", input_shape[0], "×", input_shape[1], "×", input_shape[2], ", got ",
             images.size(1), "×", images.size(2), "×", images.size(3));
  }
}

at::Tensor batched_logits(Model& model, const at::Tensor& images, std::int64_t batch_size,
                          const ProgressCallback& progress) {
  RL_CHECK(batch_size > 0, "batched logits: batch size must be > 0, got ", batch_size);
  RL_CHECK(images.size(0) > 0, "no images to evaluate");
  // Each image's logits are its own: a data-parallel run splits the images (core/distributed.h).
  at::Tensor logits =
      distributed::shard_rows(
          images.size(0), progress,
          [&](std::int64_t first, std::int64_t last, const ProgressCallback& share_progress) {
            at::NoGradGuard no_grad;
            std::vector<at::Tensor> chunks;
            for (const auto [start, end] : batches(last - first, batch_size)) {
              chunks.push_back(model.forward(images.slice(0, first + start, first + end).to(model.device()))
                                   .to(at::kCPU, at::kFloat));
              report(share_progress, {"evaluate", end, last - first, ""});
            }
            return std::vector<at::Tensor>{at::cat(chunks)};
          })
          .front();
  const std::int64_t bad = at::isfinite(logits).logical_not().sum().item<std::int64_t>();
  RL_CHECK(bad == 0, "model '", model.info().path, "' returned ", bad, " NaN or infinite logits on ", images.size(0),
           " images; its predictions would be meaningless");
  return logits;
}

}  // namespace robustlens
