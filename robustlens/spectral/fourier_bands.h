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

/// What replaces the bands outside a coalition.
enum class CoalitionFill { zero, noise, donor };
/// How the complex coalition image becomes a real image in [0,1].
enum class CoalitionOutput {
  reference,  ///< modulus, then min-max over the whole batch (the reference code)
  real_clip,  ///< real part clipped to [0,1]
};
CoalitionFill parse_coalition_fill(const std::string& name);
CoalitionOutput parse_coalition_output(const std::string& name);

/// The images of coalition `members` (bit i set = band i kept) from band images
/// N×M×C×H×W. Fill: zero; noise (complex Gaussian in the missing bands, scaled to
/// the images' spectral energy there); donor (the missing bands of the next
/// image of the batch, cyclically). The empty coalition is an all-zero image.
/// Returns float32 N×C×H×W, the model's input contract.
at::Tensor coalition_images(const at::Tensor& bands, const at::Tensor& masks, std::uint32_t members, CoalitionFill fill,
                            CoalitionOutput output);

}  // namespace robustlens
