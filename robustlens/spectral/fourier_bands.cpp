#include "robustlens/spectral/fourier_bands.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"

#include <cmath>

namespace robustlens {

at::Tensor fourier_band_masks(std::int64_t height, std::int64_t width, std::int64_t bands, bool circular) {
  RL_CHECK(bands >= 1 && bands <= std::min(height, width),
           "Fourier bands: need 1 <= M <= min(H, W) = ", std::min(height, width), ", got M=", bands);
  const std::int64_t d = std::min(height, width);
  // inside[i]: the region of bands 0..i-1 (square of side floor(d·i/M), or disc).
  const auto inside = [&](std::int64_t i) {
    at::Tensor region = at::zeros({height, width}, at::kFloat);
    if (i == 0) return region;
    if (i == bands) return region.fill_(1);
    if (circular) {
      const at::Tensor y = at::arange(height, at::kFloat).sub(static_cast<double>(height / 2)).view({-1, 1});
      const at::Tensor x = at::arange(width, at::kFloat).sub(static_cast<double>(width / 2)).view({1, -1});
      return (y * y + x * x)
          .sqrt()
          .le(0.5 * static_cast<double>(d) * static_cast<double>(i) / static_cast<double>(bands))
          .to(at::kFloat);
    }
    const std::int64_t side = d * i / bands;
    region.slice(0, (height - side) / 2, (height - side) / 2 + side)
        .slice(1, (width - side) / 2, (width - side) / 2 + side)
        .fill_(1);
    return region;
  };
  std::vector<at::Tensor> masks;
  for (std::int64_t i = 0; i < bands; ++i) masks.push_back(inside(i + 1) - inside(i));
  return at::stack(masks);
}

namespace {

/// fftshift(FFT(images)) after checking that images and masks agree.
at::Tensor centred_spectrum(const at::Tensor& images, const at::Tensor& masks, const char* what) {
  RL_CHECK(images.dim() == 4 && masks.dim() == 3 && images.size(2) == masks.size(1) && images.size(3) == masks.size(2),
           what, ": images N×C×H×W and masks M×H×W must agree, got ", images.sizes(), " and ", masks.sizes());
  return at::fft_fftshift(at::fft_fft2(images), {-2, -1});
}

}  // namespace

at::Tensor band_energies(const at::Tensor& images, const at::Tensor& masks) {
  const at::Tensor power =
      centred_spectrum(images.to(at::kDouble), masks, "band energies").abs().pow(2).sum(1);  // N×H×W
  return at::einsum("nhw,mhw->nm", {power, masks.to(power.device()).to(at::kDouble)});
}

at::Tensor band_images(const at::Tensor& images, const at::Tensor& masks) {
  const at::Tensor spectrum = centred_spectrum(images, masks, "band images").unsqueeze(1);   // N×1×C×H×W
  const at::Tensor banded = spectrum * masks.to(images.device()).unsqueeze(1).unsqueeze(0);  // N×M×C×H×W
  return at::fft_ifft2(at::fft_ifftshift(banded, {-2, -1}));
}

CoalitionFill parse_coalition_fill(const std::string& name) {
  RL_CHECK(name == "zero" || name == "noise" || name == "donor", "band fill: expected zero, noise or donor, got '",
           name, "'");
  return name == "zero" ? CoalitionFill::zero : name == "noise" ? CoalitionFill::noise : CoalitionFill::donor;
}

CoalitionOutput parse_coalition_output(const std::string& name) {
  RL_CHECK(name == "reference" || name == "real", "band output: expected reference or real, got '", name, "'");
  return name == "reference" ? CoalitionOutput::reference : CoalitionOutput::real_clip;
}

at::Tensor fill_band_images(const at::Tensor& bands, const at::Tensor& masks, CoalitionFill fill,
                            const at::Generator& generator) {
  if (fill == CoalitionFill::zero) return at::zeros_like(bands);
  if (fill == CoalitionFill::donor) return bands.roll(1, 0);
  RL_CHECK(generator.defined(), "the noise fill draws from a generator: pass one (core/random.h)");
  // One complex white-noise spectrum per image, split into the bands like the images.
  const std::vector<std::int64_t> shape = {bands.size(0), bands.size(2), bands.size(3), bands.size(4)};
  const at::Tensor real = random_normal(shape, generator), imaginary = random_normal(shape, generator);
  const at::Tensor noise_spectrum = at::complex(real, imaginary).to(bands.device());
  const at::Tensor noise = at::fft_ifft2(
      at::fft_ifftshift(noise_spectrum.unsqueeze(1) * masks.to(bands.device()).unsqueeze(1).unsqueeze(0), {-2, -1}));
  const auto energy = [](const at::Tensor& t) { return t.abs().pow(2).sum({2, 3, 4}, true); };  // N×M×1×1×1
  return noise * (energy(bands) / energy(noise).clamp_min(1e-30)).sqrt();
}

at::Tensor coalition_output(const at::Tensor& complex_images, CoalitionOutput output) {
  if (output == CoalitionOutput::real_clip) return at::real(complex_images).clamp(0, 1).to(at::kFloat);
  at::Tensor modulus = complex_images.abs().to(at::kFloat);
  const auto [low, high] = at::aminmax(modulus);
  return modulus.sub_(low).div_((high - low).clamp_min(1e-12));
}

namespace {

at::Tensor empty_coalition(const at::Tensor& bands) {
  return at::zeros({bands.size(0), bands.size(2), bands.size(3), bands.size(4)}, bands.options().dtype(at::kFloat));
}

}  // namespace

at::Tensor coalition_images(const at::Tensor& bands, const at::Tensor& fill, std::uint32_t members,
                            CoalitionOutput output) {
  const std::int64_t m = bands.size(1);
  RL_CHECK(bands.dim() == 5 && fill.sizes() == bands.sizes(), "coalition images: band images ", bands.sizes(),
           " and fill ", fill.sizes(), " must both be N×M×C×H×W");
  RL_CHECK(m <= 31 && members < (1u << m), "coalition ", members, " is not a subset of ", m, " bands");
  if (members == 0) return empty_coalition(bands);
  std::vector<double> keep;
  for (std::int64_t i = 0; i < m; ++i) keep.push_back((members >> i) & 1u ? 1.0 : 0.0);
  const at::Tensor in = at::tensor(keep, at::kDouble).to(bands.device()).view({1, m, 1, 1, 1}).to(bands.dtype());
  return coalition_output((bands * in + fill * (1 - in)).sum(1), output);
}

CoalitionEnumerator::CoalitionEnumerator(const at::Tensor& bands, const at::Tensor& fill, CoalitionOutput output)
    : differences_(bands - fill), current_(fill.sum(1)), output_(output) {
  RL_CHECK(bands.dim() == 5 && fill.sizes() == bands.sizes() && bands.size(1) <= 31, "coalition images: band images ",
           bands.sizes(), " and fill ", fill.sizes(), " must both be N×M×C×H×W with M <= 31");
}

at::Tensor CoalitionEnumerator::images() const {
  return members() == 0 ? empty_coalition(differences_) : coalition_output(current_, output_);
}

void CoalitionEnumerator::advance() {
  const std::uint32_t before = members();
  ++step_;
  if (done()) return;
  const std::uint32_t changed = before ^ members();
  const at::Tensor band = differences_.select(1, __builtin_ctz(changed));
  if (members() & changed)
    current_.add_(band);
  else
    current_.sub_(band);
}

}  // namespace robustlens
