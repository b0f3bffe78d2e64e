#include "robustlens/attacks/fgsm.h"

namespace robustlens {

at::Tensor fgsm_attack(Model& model, const at::Tensor& images, const at::Tensor& labels, Norm norm, double eps,
                       bool clip) {
  return pgd_attack(
      model, images, labels,
      PgdOptions().set_norm(norm).set_eps(eps).set_steps(1).set_step_size(eps).set_random_start(false).set_clip(clip));
}

}  // namespace robustlens
