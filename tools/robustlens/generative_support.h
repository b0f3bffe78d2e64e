// What the commands that use the generative models share: loading a VAE or a
// denoiser and checking it against the data, the denoiser's score as a
// ScoreFunction, and the figure of images beside gradient-like maps.
#pragma once

#include "robustlens/analyses/alignment.h"
#include "robustlens/data/dataset.h"
#include "robustlens/generative/denoiser.h"
#include "robustlens/generative/vae.h"

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

namespace robustlens::cli {

/// Loads --vae and checks that it models images of the data's shape.
std::unique_ptr<Vae> load_vae_for(const std::string& path, const Dataset& data, const at::Device& device);
/// Loads --denoiser (required) and checks image shape and class count against the data.
std::unique_ptr<Denoiser> load_denoiser_for(const std::string& path, const Dataset& data, const at::Device& device);
/// The Tweedie score of `denoiser` (the denoiser must outlive it).
ScoreFunction denoiser_score_function(Denoiser& denoiser);
/// Alignment options for `denoiser` from the command line's pairing name,
/// label choice and noise levels; errors say what the denoiser cannot give
/// (an old conditional denoiser has no s(x); an unconditional one no s(x, y)).
AlignmentOptions alignment_options_for(const Denoiser& denoiser, const std::string& denoiser_path,
                                       const std::string& pairing, const std::string& label,
                                       const std::vector<double>& sigmas, double summary_sigma,
                                       std::int64_t batch_size);
/// Adds --pairing, --label, --sigmas and --summary-sigma to a subcommand.
struct AlignmentFlags {
  std::string pairing = "conditional", label = "true";
  std::vector<double> sigmas = AlignmentOptions().sigmas;
  double summary_sigma = AlignmentOptions().summary_sigma;
};
void add_alignment_flags(CLI::App& app, AlignmentFlags& flags);
/// PNG: one row per image, the image then one diverging-colour tile (channel sum) per column of maps.
void write_gradient_figure(const std::string& path, const at::Tensor& images, const std::vector<at::Tensor>& columns);

}  // namespace robustlens::cli
