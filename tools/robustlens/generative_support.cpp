#include "generative_support.h"

#include "common.h"
#include "robustlens/core/error.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/data/image_folder.h"
#include "robustlens/report/images.h"

#include <cstdio>

namespace robustlens::cli {
namespace {

/// Warns when a generative model was trained on other data than the data analysed (its tangent spaces or
/// scores then describe another distribution). Data are compared by their --data spec, the dataset's name
/// without its split, so the same files given two ways warn too; files from before the record are trusted.
void warn_about_other_training_data(const nlohmann::json& training, const Dataset& data, const std::string& what,
                                    const std::string& describes) {
  const std::string trained_on = optional_field<std::string>(training, "train_data", "", what + ": training record");
  const auto spec = [](const std::string& name) { return name.substr(0, name.rfind(" (")); };
  if (trained_on.empty() || spec(trained_on) == spec(data.name)) return;
  std::fprintf(stderr, "warning: %s was trained on %s, but the data analysed are %s: its %s describe other data\n",
               what.c_str(), trained_on.c_str(), data.name.c_str(), describes.c_str());
}

}  // namespace

std::unique_ptr<Vae> load_vae_for(const std::string& path, const Dataset& data, const at::Device& device) {
  std::unique_ptr<Vae> vae = load_vae(path, device);
  RL_CHECK(vae->spec().input_shape == data.image_shape(), "--vae '", path, "' models images of shape ",
           nlohmann::json(vae->spec().input_shape).dump(), " but the data hold ",
           nlohmann::json(data.image_shape()).dump());
  warn_about_other_training_data(vae->training_record(), data, "--vae '" + path + "'", "tangent spaces");
  return vae;
}

std::unique_ptr<Denoiser> load_denoiser_for(const std::string& path, const Dataset& data, const at::Device& device) {
  RL_CHECK(!path.empty(), "--denoiser is required: a file written by robustlens train-denoiser");
  std::unique_ptr<Denoiser> denoiser = load_denoiser(path, device);
  RL_CHECK(denoiser->spec().input_shape == data.image_shape(), "--denoiser '", path, "' models images of shape ",
           nlohmann::json(denoiser->spec().input_shape).dump(), " but the data hold ",
           nlohmann::json(data.image_shape()).dump());
  RL_CHECK(denoiser->spec().num_classes == 0 || denoiser->spec().num_classes == data.num_classes(), "--denoiser '",
           path, "' is conditioned on ", denoiser->spec().num_classes, " classes but the data have ",
           data.num_classes());
  const std::string what = "--denoiser '" + path + "'";
  if (denoiser->spec().conditional()) {
    check_class_names(optional_field<std::vector<std::string>>(denoiser->training_record(), "train_class_names", {},
                                                               what + ": training record"),
                      data, what, "its class-conditional score for each label would be another class's");
  }
  warn_about_other_training_data(denoiser->training_record(), data, what, "scores");
  return denoiser;
}

ScoreFunction denoiser_score_function(Denoiser& denoiser) {
  return [&denoiser](const at::Tensor& images, const at::Tensor& labels, double sigma) {
    return denoiser_score(denoiser, images, labels, sigma);
  };
}

AlignmentOptions alignment_options_for(const Denoiser& denoiser, const std::string& denoiser_path,
                                       const std::string& pairing_name, const std::string& label,
                                       const std::vector<double>& sigmas, double summary_sigma,
                                       std::int64_t batch_size) {
  const AlignmentPairing pairing = parse_alignment_pairing(pairing_name);
  RL_CHECK(label == "true" || label == "predicted", "--label must be true or predicted, got '", label, "'");
  const DenoiserSpec& spec = denoiser.spec();
  RL_CHECK(!pairing_needs_class_scores(pairing) || spec.conditional(), "--pairing ", pairing_name,
           " needs the class-conditional score s(x, y), but --denoiser '", denoiser_path,
           "' is unconditional; train one without --unconditional");
  RL_CHECK(!pairing_needs_unconditional_scores(pairing) || spec.gives_unconditional_scores(), "--pairing ",
           pairing_name, " needs the unconditional score s(x), but --denoiser '", denoiser_path,
           "' is class-conditional without a \"no label\" token (trained before label dropout); retrain it with "
           "robustlens train-denoiser (label dropout is the default) or use --pairing conditional");
  const AlignmentOptions options = AlignmentOptions()
                                       .set_pairing(pairing)
                                       .set_predicted_label(label == "predicted")
                                       .set_sigmas(sigmas)
                                       .set_summary_sigma(summary_sigma)
                                       .set_batch_size(batch_size);
  options.check();
  return options;
}

void add_alignment_flags(CLI::App& app, AlignmentFlags& flags) {
  app.add_option("--pairing", flags.pairing,
                 "What is compared: conditional (grad log p(y|x) vs s(x,y)), bayes (vs s(x,y) - s(x)), or "
                 "summed-logits (grad of the summed logits vs s(x): the reference's CIFAR script, not a measure of "
                 "alignment)")
      ->check(CLI::IsMember({"conditional", "bayes", "summed-logits"}))
      ->capture_default_str();
  app.add_option("--label", flags.label, "Class y of the pairing: the true label or the model's prediction")
      ->check(CLI::IsMember({"true", "predicted"}))
      ->capture_default_str();
  app.add_option("--sigmas", flags.sigmas,
                 "Noise levels of the score ([-1,1] pixel units), comma list; each is reported")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--summary-sigma", flags.summary_sigma,
                 "The noise level whose numbers are the summary (one of --sigmas)")
      ->capture_default_str();
}

void write_gradient_figure(const std::string& path, const at::Tensor& images, const std::vector<at::Tensor>& columns) {
  std::vector<at::Tensor> tiles;
  for (std::int64_t i = 0; i < images.size(0); ++i) {
    tiles.push_back(to_rgb(images[i].cpu()));
    for (const at::Tensor& maps : columns) tiles.push_back(diverging_colormap(maps[i].sum(0).cpu()));
  }
  write_png(path, image_grid(tiles, static_cast<std::int64_t>(columns.size()) + 1, images.size(-1) < 64 ? 3 : 1));
}

}  // namespace robustlens::cli
