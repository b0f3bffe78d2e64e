#include "robustlens/spectral/fourier_bands.h"

#include "robustlens/core/error.h"

#include <cmath>

namespace robustlens {

at::Tensor fourier_band_masks(std::int64_t height, std::int64_t width, std::int64_t bands, bool circular) {
  RL_CHECK(bands >= 1 && bands <= std::min(height, width), "Fourier bands: need 1 <= M <= min(H, W) = ",
           std::min(height, width), ", got M=", bands);
  const std::int64_t d = std::min(height, width);
  // inside[i]: the region of bands 0..i-1 (square of side floor(d·i/M), or disc).
  const auto inside = [&](std::int64_t i) {
    at::Tensor region = at::zeros({height, width}, at::kFloat);
    if (i == 0) return region;
    if (i == bands) return region.fill_(1);
    if (circular) {
      const at::Tensor y = at::arange(height, at::kFloat).sub(static_cast<double>(height / 2)).view({-1, 1});
      const at::Tensor x = at::arange(width, at::kFloat).sub(static_cast<double>(width / 2)).view({1, -1});
      return (y * y + x * x).sqrt().le(0.5 * static_cast<double>(d) * static_cast<double>(i) / static_cast<double>(bands)).to(at::kFloat);
    }
    const std::int64_t side = d * i / bands;
    region.slice(0, (height - side) / 2, (height - side) / 2 + side).slice(1, (width - side) / 2, (width - side) / 2 + side).fill_(1);
    return region;
  };
  std::vector<at::Tensor> masks;
  for (std::int64_t i = 0; i < bands; ++i) masks.push_back(inside(i + 1) - inside(i));
  return at::stack(masks);
}

at::Tensor band_images(const at::Tensor& images, const at::Tensor& masks) {
  RL_CHECK(images.dim() == 4 && masks.dim() == 3 && images.size(2) == masks.size(1) && images.size(3) == masks.size(2),
           "band images: images N×C×H×W and masks M×H×W must agree, got ", images.sizes(), " and ", masks.sizes());
  const at::Tensor spectrum = at::fft_fftshift(at::fft_fft2(images), {-2, -1}).unsqueeze(1);  // N×1×C×H×W
  const at::Tensor banded = spectrum * masks.to(images.device()).unsqueeze(1).unsqueeze(0);  // N×M×C×H×W
  return at::fft_ifft2(at::fft_ifftshift(banded, {-2, -1}));
}

CoalitionFill parse_coalition_fill(const std::string& name) {
  RL_CHECK(name == "zero" || name == "noise" || name == "donor", "--fill: expected zero, noise or donor, got '", name, "'");
  return name == "zero" ? CoalitionFill::zero : name == "noise" ? CoalitionFill::noise : CoalitionFill::donor;
}

CoalitionOutput parse_coalition_output(const std::string& name) {
  RL_CHECK(name == "reference" || name == "real", "--output: expected reference or real, got '", name, "'");
  return name == "reference" ? CoalitionOutput::reference : CoalitionOutput::real_clip;
}

at::Tensor coalition_images(const at::Tensor& bands, const at::Tensor& masks, std::uint32_t members, CoalitionFill fill,
                            CoalitionOutput output) {
  const std::int64_t m = bands.size(1);
  RL_CHECK(m <= 31 && members < (1u << m), "coalition ", members, " is not a subset of ", m, " bands");
  if (members == 0) return at::zeros({bands.size(0), bands.size(2), bands.size(3), bands.size(4)}, at::kFloat).to(bands.device());
  std::vector<std::int64_t> in, out;
  for (std::int64_t i = 0; i < m; ++i) ((members >> i) & 1u ? in : out).push_back(i);
  const auto select = [&](const std::vector<std::int64_t>& which) {
    return bands.index_select(1, at::tensor(which, at::kLong).to(bands.device())).sum(1);
  };
  at::Tensor image = select(in);
  if (!out.empty() && fill == CoalitionFill::donor) image = image + select(out).roll(1, 0);
  if (!out.empty() && fill == CoalitionFill::noise) {
    // Complex white noise restricted to the missing bands, with the energy the images have there.
    const at::Tensor missing = masks.to(bands.device()).index_select(0, at::tensor(out, at::kLong).to(bands.device())).sum(0);
    const at::Tensor noise = at::complex(at::randn(image.sizes(), image.options().dtype(at::kFloat)),
                                         at::randn(image.sizes(), image.options().dtype(at::kFloat)));
    const at::Tensor shaped = at::fft_ifft2(at::fft_ifftshift(noise * missing, {-2, -1}));
    const at::Tensor target = select(out);
    image = image + shaped * (target.abs().pow(2).mean().sqrt() / shaped.abs().pow(2).mean().sqrt().clamp_min(1e-12));
  }
  if (output == CoalitionOutput::real_clip) return at::real(image).clamp(0, 1).to(at::kFloat);
  const at::Tensor modulus = image.abs();
  const at::Tensor low = modulus.min(), high = modulus.max();
  return ((modulus - low) / (high - low).clamp_min(1e-12)).to(at::kFloat);
}

}  // namespace robustlens
