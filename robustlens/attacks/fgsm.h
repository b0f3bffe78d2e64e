// Fast gradient sign method (Goodfellow et al.): one step of length eps along
// the sign (Linf) or the normalised direction (L2) of the loss gradient,
// clipped to [0,1] unless clip is off. It is single-step PGD without random
// start, and is computed by that code.
#pragma once

#include "robustlens/attacks/pgd.h"

namespace robustlens {

at::Tensor fgsm_attack(Model& model, const at::Tensor& images, const at::Tensor& labels, Norm norm, double eps,
                       bool clip = true);

}  // namespace robustlens
