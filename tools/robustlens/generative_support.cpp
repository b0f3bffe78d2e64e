#include "generative_support.h"

#include "robustlens/core/error.h"
#include "robustlens/report/images.h"

namespace robustlens::cli {

std::unique_ptr<Vae> load_vae_for(const std::string& path, const Dataset& data, const at::Device& device) {
  std::unique_ptr<Vae> vae = load_vae(path, device);
  RL_CHECK(vae->spec().input_shape == data.image_shape(), "--vae '", path, "' models images of shape ",
           nlohmann::json(vae->spec().input_shape).dump(), " but the data hold ", nlohmann::json(data.image_shape()).dump());
  return vae;
}

std::unique_ptr<Denoiser> load_denoiser_for(const std::string& path, const Dataset& data, const at::Device& device) {
  RL_CHECK(!path.empty(), "--denoiser is required: a file written by robustlens train-denoiser");
  std::unique_ptr<Denoiser> denoiser = load_denoiser(path, device);
  RL_CHECK(denoiser->spec().input_shape == data.image_shape(), "--denoiser '", path, "' models images of shape ",
           nlohmann::json(denoiser->spec().input_shape).dump(), " but the data hold ",
           nlohmann::json(data.image_shape()).dump());
  RL_CHECK(denoiser->spec().num_classes == 0 || denoiser->spec().num_classes == data.num_classes(), "--denoiser '",
           path, "' is conditioned on ", denoiser->spec().num_classes, " classes but the data have ", data.num_classes());
  return denoiser;
}

ScoreFunction denoiser_score_function(Denoiser& denoiser, double sigma) {
  return [&denoiser, sigma](const at::Tensor& images, const at::Tensor& labels) {
    return denoiser_score(denoiser, images, labels, sigma);
  };
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
