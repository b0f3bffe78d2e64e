// Common corruptions in the style of ImageNet-C (Hendrycks & Dietterich, ICLR 2019): ten corruptions at five
// severities each, applied to images N×C×H×W in [0,1], deterministic for a generator. The parameters per severity
// are those of the authors' CIFAR-10-C script (hendrycks/robustness, ImageNet-C/create_c/make_cifar_c.py), made
// for 32×32 images and the closest published set to 28×28; the sizes that script gives in pixels of a 32-pixel
// side (elastic transform) scale with the image's shorter side here. MNIST-C (Mu & Gilmer 2019) has one severity
// per corruption only, so it cannot give the five levels mCE averages over. docs/corruptions.md lists every
// parameter and the few places where our definition differs from the script's (borders, the ImageMagick
// motion blur rebuilt as its kernel).
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

/// The corruptions, in CIFAR-10-C's order: gaussian-noise, shot-noise, impulse-noise, defocus-blur, motion-blur,
/// brightness, contrast, elastic, pixelate, jpeg.
const std::vector<std::string>& corruption_names();
/// Severities run from 1 to this.
constexpr int kMaxCorruptionSeverity = 5;

/// One corruption at one severity, validated (an unknown name or a severity outside 1..5 is an Error naming both).
struct Corruption {
  std::string name;
  int severity = 1;

  Corruption(std::string name, int severity);
  /// The resolved parameters of this severity, with their meaning ({"sigma": 0.08, ...}).
  nlohmann::json parameters() const;
  nlohmann::json to_json() const;
  /// "NAME:SEVERITY"
  std::string label() const;
  /// A number of its own per name and severity, for the streams of derive_seed.
  std::uint64_t stream() const;
  /// Whether its random draws depend on the pixels (shot noise's Poisson counts): a data-parallel share of the
  /// images cannot then draw its rows of the whole set's numbers alone (core/random.h: RowShareScope).
  bool draws_from_pixels() const { return name == "shot-noise"; }
};

/// "NAME:SEVERITY" (the corruption spec of --data SPEC+corrupt:NAME:SEVERITY).
Corruption parse_corruption(const std::string& spec);

/// The images corrupted (a new tensor on the images' device; the work is done on the CPU), clipped to [0,1].
/// Random corruptions draw from `generator` alone, in image order; inside a RowShareScope the images are the share's
/// rows and the draws the whole set's (except draws_from_pixels()).
at::Tensor corrupt(const at::Tensor& images, const Corruption& corruption, const at::Generator& generator);

// The building blocks, with the parameters the severity tables give them; tests check each against its definition.

/// The defocus kernel: a disk of `radius` pixels on a 17×17 grid, normalised, then smoothed by a 3×3 Gaussian of
/// `alias_sigma` (make_cifar_c.py's disk()), cropped to its non-zero rows and columns.
at::Tensor defocus_kernel(double radius, double alias_sigma);
/// ImageMagick's motion-blur weights: 2·ceil(radius)+1 taps, exp(-i²/2σ²) for i = 0, 1, ..., normalised. Tap i
/// reads the pixel round(i·cos θ), round(i·sin θ) away (columns, rows), with edge pixels repeated.
at::Tensor motion_blur_weights(double radius, double sigma);
/// Motion blur along `angle_degrees` per image (N angles).
at::Tensor motion_blur(const at::Tensor& images, double radius, double sigma, const std::vector<double>& angle_degrees);
/// 2-D convolution of every channel with `kernel` (odd sides), borders reflected without repeating the edge.
at::Tensor filter_reflected(const at::Tensor& images, const at::Tensor& kernel);
/// PIL's BOX resampling from `from` to `to` pixels as a to×from matrix: output pixel o averages the input pixels
/// whose centres lie within half an output pixel of its centre (at least the nearest one).
at::Tensor box_resampling_matrix(std::int64_t from, std::int64_t to);
/// Down to floor(side·factor) pixels and back up, both with BOX resampling.
at::Tensor pixelate(const at::Tensor& images, double factor);
/// Each image encoded as a baseline JPEG of `quality` (1..100; stb_image_write, IJG quality scaling) and decoded.
at::Tensor jpeg_round_trip(const at::Tensor& images, int quality);

}  // namespace robustlens
