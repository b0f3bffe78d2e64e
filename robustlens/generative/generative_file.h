// The file format of the generative models (vae.h, denoiser.h): a PyTorch
// archive (zip) holding the parameters and one JSON record under the key
// classifier files use ("robustlens_metadata"), whose "format" names the kind
// (robustlens-vae, robustlens-denoiser). Sharing the key lets every loader
// recognise the other kinds and refuse them by name instead of with a parse error.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>

namespace torch {
namespace nn {
class Module;
}
namespace serialize {
class InputArchive;
class OutputArchive;
}  // namespace serialize
}  // namespace torch

namespace robustlens {

inline constexpr const char* kVaeFormat = "robustlens-vae";
inline constexpr const char* kDenoiserFormat = "robustlens-denoiser";

/// Writes `metadata` (to which "format" and "format_version" 1 are added) and
/// the parameters and buffers of `module` to `path` atomically.
void save_generative_file(const std::string& path, const std::string& format, nlohmann::json metadata,
                          const torch::nn::Module& module);

/// Writes the parameters and buffers of `module` and their checksum into `archive` (files and training
/// checkpoints); load_generative_parameters reads them back.
void write_generative_parameters(torch::serialize::OutputArchive& archive, const torch::nn::Module& module);

/// Parses and checks the metadata record (JSON text) of `path`, a file of kind `format`: an object of that
/// format and version (an Error names the file and what it holds instead).
nlohmann::json parse_generative_metadata(const std::string& text, const std::string& format, const std::string& what,
                                         const std::string& path);

/// Opens `path` on `device` and returns its metadata; errors when the file is
/// missing, unreadable, not a robustlens file or of another kind than `format`
/// (`what` names the expected kind in messages, e.g. "VAE").
nlohmann::json open_generative_file(const std::string& path, const std::string& format, const std::string& what,
                                    const at::Device& device, torch::serialize::InputArchive& archive);

/// Loads the parameters written by write_generative_parameters into `module` (built from the file's spec);
/// errors when they do not fit.
void load_generative_parameters(torch::serialize::InputArchive& archive, torch::nn::Module& module,
                                const std::string& path);

/// The metadata record of `path` when it is a VAE or denoiser file; null for
/// any other file (for `robustlens info`, which describes all kinds).
nlohmann::json read_generative_metadata(const std::string& path);

}  // namespace robustlens
