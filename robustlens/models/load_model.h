// The one way to open a model file: a robustlens model (models/builtin_model.h)
// or a TorchScript file saved from PyTorch (models/torchscript_model.h), decided
// by its content, both returned behind the Model interface of core/model.h.
#pragma once

#include "robustlens/core/model.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace robustlens {

/// Loads a model file onto `device`, after checking the archive's records and refusing NaN or infinite
/// weights. A TorchScript file that does not record its input shape is bound to `input_shape` (C, H, W) when
/// one is given (its class count learnt from one forward pass); the caller checks the shape of the other
/// kinds. Errors name the file and what was expected.
std::unique_ptr<Model> load_model(const std::string& path, const at::Device& device,
                                  const std::vector<std::int64_t>& input_shape = {});

}  // namespace robustlens
