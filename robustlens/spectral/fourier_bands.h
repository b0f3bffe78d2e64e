// Fourier bands of I-ASIDE (Luo et al., TMLR 2024): the centred 2-D spectrum
// split into M rings, band images computed once per image, and coalition
// images assembled from them without any further FFT.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace robustlens {

/// M×H×W {0,1} masks over the fftshift-ed spectrum (DC at (H/2, W/2)). With
/// d = min(H, W), band i is the ring between the centred squares of sides
/// floor(d·i/M) and floor(d·(i+1)/M) (each starting at floor((n − side)/2) on
/// an axis of length n); the last band also takes whatever lies outside the
/// largest square, so the bands tile the spectrum exactly. `circular` uses
/// rings of radius d/2·i/M instead (the last again taking the rest).
at::Tensor fourier_band_masks(std::int64_t height, std::int64_t width, std::int64_t bands, bool circular = false);

/// Band images of N×C×H×W images: N×M×C×H×W complex, band i =
/// IFFT(ifftshift(mask_i ⊙ fftshift(FFT(x)))). They sum to the images.
at::Tensor band_images(const at::Tensor& images, const at::Tensor& masks);

/// Spectral energy of N×C×H×W images in each band: N×M (double), Σ over channels
/// and the band's bins of |fftshift(FFT(x))|². Sums over bands to H·W·‖x‖².
at::Tensor band_energies(const at::Tensor& images, const at::Tensor& masks);

/// What replaces the bands outside a coalition.
enum class CoalitionFill { zero, noise, donor };
/// How the complex coalition image becomes a real image in [0,1].
enum class CoalitionOutput {
  reference,  ///< modulus, then min-max over the whole batch (the reference code)
  real_clip,  ///< real part clipped to [0,1]
};
CoalitionFill parse_coalition_fill(const std::string& name);
CoalitionOutput parse_coalition_output(const std::string& name);

/// What stands in for each band when it is outside a coalition, N×M×C×H×W
/// complex like `bands`: zero; donor (the band images of the previous image of
/// the batch, cyclically); noise (complex Gaussian white noise restricted to
/// each band, scaled to the energy the image has in that band; drawn once, so
/// every coalition sees the same noise, from `generator`, which only noise needs).
at::Tensor fill_band_images(const at::Tensor& bands, const at::Tensor& masks, CoalitionFill fill,
                            const at::Generator& generator = {});

/// The model's input (float32 N×C×H×W in [0,1]) from complex coalition images.
at::Tensor coalition_output(const at::Tensor& complex_images, CoalitionOutput output);

/// The images of coalition `members` (bit i set = band i kept): Σ_{i∈S} bands_i
/// + Σ_{i∉S} fill_i, then `output`. The empty coalition is an all-zero image.
at::Tensor coalition_images(const at::Tensor& bands, const at::Tensor& fill, std::uint32_t members,
                            CoalitionOutput output);

/// Every coalition's images, in Gray-code order: consecutive coalitions differ
/// in one band, so each is one addition (± bands_i − fill_i) away from the
/// previous one instead of a sum over all bands.
class CoalitionEnumerator {
 public:
  CoalitionEnumerator(const at::Tensor& bands, const at::Tensor& fill, CoalitionOutput output);
  bool done() const { return step_ >> differences_.size(1) != 0; }
  std::uint32_t members() const { return step_ ^ (step_ >> 1); }
  /// The current coalition's images (as coalition_images).
  at::Tensor images() const;
  void advance();

 private:
  at::Tensor differences_;  ///< bands − fill, N×M×C×H×W
  at::Tensor current_;      ///< Σ_{i∈S} bands_i + Σ_{i∉S} fill_i
  CoalitionOutput output_;
  std::uint32_t step_ = 0;
};

}  // namespace robustlens
