// The CRC-32 a zip archive stores for each record, checked against the record's contents. LibTorch's archive
// reader (caffe2::serialize::PyTorchStreamReader, miniz built without its CRC checks) does not check them, so
// a damaged record reaches LibTorch's unpickler and TorchScript parser, which Debian's LibTorch 1.13 can crash
// on: one flipped bit in a model's code made the parser read through a bad pointer (found by flipping random
// bits of model files, docs/reliability.md). Every file robustlens opens through LibTorch (classifier and
// TorchScript models, VAE and denoiser files, checkpoints) is checked first; for a TorchScript model, which
// carries no parameter checksum of ours, this is its only integrity check.
#pragma once

#include <string>

namespace robustlens {

/// Throws an Error naming `what` (e.g. "model file 'm.pt'") when the zip directory of `path` cannot be read
/// or a record's contents do not match the CRC-32 the directory stores for it.
void check_archive_records(const std::string& path, const std::string& what);

}  // namespace robustlens
