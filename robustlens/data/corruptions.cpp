#include "robustlens/data/corruptions.h"

#include "robustlens/core/error.h"
#include "robustlens/core/parsing.h"
#include "robustlens/core/random.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>

namespace robustlens {
namespace {

constexpr double kPi = 3.14159265358979323846;

/// make_cifar_c.py's parameters, one row per severity.
template <typename Row>
const Row& at_severity(const std::array<Row, kMaxCorruptionSeverity>& table, int severity) {
  return table[static_cast<std::size_t>(severity - 1)];
}
const std::array<double, 5> kGaussianSigma = {0.04, 0.06, 0.08, 0.09, 0.10};
const std::array<double, 5> kShotPhotons = {500, 250, 100, 75, 50};
const std::array<double, 5> kImpulseAmount = {0.01, 0.02, 0.03, 0.05, 0.07};
const std::array<std::array<double, 2>, 5> kDefocus = {{{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}}};
const std::array<std::array<double, 2>, 5> kMotion = {{{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}}};
const std::array<double, 5> kBrightness = {0.05, 0.1, 0.15, 0.2, 0.3};
const std::array<double, 5> kContrast = {0.75, 0.5, 0.4, 0.3, 0.15};
/// Displacement scale, displacement smoothing and affine jitter, as fractions of the image side.
const std::array<std::array<double, 3>, 5> kElastic = {
    {{0, 0, 0.08}, {0.05, 0.2, 0.07}, {0.08, 0.06, 0.06}, {0.1, 0.04, 0.05}, {0.1, 0.03, 0.03}}};
const std::array<double, 5> kPixelate = {0.95, 0.9, 0.85, 0.75, 0.65};
const std::array<int, 5> kJpegQuality = {80, 65, 58, 50, 40};

/// Normalised 1-D Gaussian weights exp(-x²/2σ²) for x = -radius..radius.
at::Tensor gaussian_weights(std::int64_t radius, double sigma) {
  const at::Tensor x = at::arange(-radius, radius + 1, at::kDouble);
  const at::Tensor w = at::exp(-x * x / (2 * sigma * sigma));
  return (w / w.sum()).to(at::kFloat);
}

/// Separable Gaussian smoothing of N×H×W fields (scipy's gaussian_filter, truncate 3), reflected borders.
at::Tensor smooth_fields(const at::Tensor& fields, double sigma) {
  if (sigma <= 0) return fields;
  const std::int64_t height = fields.size(1), width = fields.size(2);
  const auto radius = std::min<std::int64_t>(static_cast<std::int64_t>(3 * sigma + 0.5), std::min(height, width) - 1);
  const at::Tensor w = gaussian_weights(radius, sigma);
  const at::Tensor kernel = at::outer(w, w).view({1, 1, 2 * radius + 1, 2 * radius + 1});
  return filter_reflected(fields.unsqueeze(1), kernel.squeeze(0).squeeze(0)).squeeze(1);
}

/// Samples every image at (row, column) coordinates N×H×W (bilinear, borders reflected about the edge pixels).
at::Tensor sample_at(const at::Tensor& images, const at::Tensor& rows, const at::Tensor& columns) {
  const double height = static_cast<double>(images.size(2)), width = static_cast<double>(images.size(3));
  const at::Tensor grid =
      at::stack({columns * (2 / std::max(width - 1, 1.0)) - 1, rows * (2 / std::max(height - 1, 1.0)) - 1}, 3);
  return at::grid_sampler(images, grid, /*bilinear*/ 0, /*reflection*/ 2, /*align_corners*/ true);
}

/// The affine map (2×3, columns x, y, 1) that takes the three points `from` to `to` (3×2 each, x and y).
at::Tensor affine_through(const at::Tensor& from, const at::Tensor& to) {
  const at::Tensor homogeneous = at::cat({from, at::ones({3, 1}, from.options())}, 1);
  return at::linalg_solve(homogeneous, to).t();
}

/// make_cifar_c.py's elastic transform: a random affine warp (the corners of a centred square moved by up to
/// `jitter` pixels), then a smooth random displacement field (uniform noise smoothed by `smoothing`, times
/// `scale`); one warp and field per image, shared by its channels.
at::Tensor elastic(const at::Tensor& images, double scale, double smoothing, double jitter,
                   const at::Generator& generator) {
  const std::int64_t n = images.size(0), height = images.size(2), width = images.size(3);
  const at::Tensor jitters = random_uniform({n, 3, 2}, generator, at::kDouble) * (2 * jitter) - jitter;
  const at::Tensor noise = random_uniform({2, n, height, width}, generator, {}, /*row_dim=*/1) * 2 - 1;
  const double cx = static_cast<double>(width / 2), cy = static_cast<double>(height / 2);
  const double square = static_cast<double>(std::min(height, width) / 3);
  const at::Tensor corners =
      at::tensor({cx + square, cy + square, cx + square, cy - square, cx - square, cy - square}, at::kDouble)
          .view({3, 2});
  const at::Tensor ys = at::arange(height, at::kDouble).view({height, 1}).expand({height, width});
  const at::Tensor xs = at::arange(width, at::kDouble).view({1, width}).expand({height, width});
  const at::Tensor target = at::stack({xs.flatten(), ys.flatten(), at::ones({height * width}, at::kDouble)});
  std::vector<at::Tensor> source_x, source_y;
  for (std::int64_t i = 0; i < n; ++i) {
    // warpAffine: the output pixel p reads the input at the inverse map of p.
    const at::Tensor inverse = affine_through(corners + jitters[i], corners);
    const at::Tensor source = at::matmul(inverse, target);
    source_x.push_back(source[0].view({height, width}));
    source_y.push_back(source[1].view({height, width}));
  }
  const at::Tensor warped = sample_at(images, at::stack(source_y).to(at::kFloat), at::stack(source_x).to(at::kFloat));
  const at::Tensor dx = smooth_fields(noise[0], smoothing) * scale;
  const at::Tensor dy = smooth_fields(noise[1], smoothing) * scale;
  return sample_at(warped, ys.to(at::kFloat).unsqueeze(0) + dy, xs.to(at::kFloat).unsqueeze(0) + dx);
}

at::Tensor impulse_noise(const at::Tensor& images, double amount, const at::Generator& generator) {
  const at::Tensor hit = random_uniform(images.sizes(), generator) < amount;
  const at::Tensor salt = (random_uniform(images.sizes(), generator) < 0.5).to(images.scalar_type());
  return at::where(hit, salt, images);
}

/// HSV value + `delta` with hue and saturation kept: every channel scaled by V'/V (V the largest channel).
at::Tensor brightness(const at::Tensor& images, double delta) {
  const at::Tensor value = std::get<0>(images.max(1, true));
  const at::Tensor brighter = at::clamp(value + delta, 0, 1);
  return at::where(value > 0, images * (brighter / value.clamp_min(1e-12)), brighter.expand_as(images));
}

at::Tensor contrast(const at::Tensor& images, double factor) {
  const at::Tensor means = images.mean({2, 3}, true);
  return (images - means) * factor + means;
}

/// Motion-blur directions, uniform in [-45, 45] degrees.
std::vector<double> random_angles(std::int64_t n, const at::Generator& generator) {
  const at::Tensor drawn = (random_uniform({n}, generator, at::kDouble) * 90 - 45).contiguous();
  return {drawn.data_ptr<double>(), drawn.data_ptr<double>() + n};
}

std::string listed_corruptions() {
  std::string list;
  for (const std::string& name : corruption_names()) list += (list.empty() ? "" : ", ") + name;
  return list;
}

}  // namespace

const std::vector<std::string>& corruption_names() {
  static const std::vector<std::string> names = {"gaussian-noise", "shot-noise", "impulse-noise", "defocus-blur",
                                                 "motion-blur",    "brightness", "contrast",      "elastic",
                                                 "pixelate",       "jpeg"};
  return names;
}

Corruption::Corruption(std::string name_, int severity_) : name(std::move(name_)), severity(severity_) {
  const auto& names = corruption_names();
  RL_CHECK(std::find(names.begin(), names.end(), name) != names.end(), "corruption '", name.substr(0, 100),
           "' is unknown (expected one of ", listed_corruptions(), ")");
  RL_CHECK(severity >= 1 && severity <= kMaxCorruptionSeverity, "corruption ", name, ": severity must be 1 to ",
           kMaxCorruptionSeverity, ", got ", severity);
}

nlohmann::json Corruption::parameters() const {
  const int s = severity;
  if (name == "gaussian-noise") return {{"sigma", at_severity(kGaussianSigma, s)}};
  if (name == "shot-noise") return {{"photons_per_unit", at_severity(kShotPhotons, s)}};
  if (name == "impulse-noise") return {{"amount", at_severity(kImpulseAmount, s)}};
  if (name == "defocus-blur") {
    return {{"disk_radius", at_severity(kDefocus, s)[0]}, {"alias_sigma", at_severity(kDefocus, s)[1]}};
  }
  if (name == "motion-blur") {
    return {{"radius", at_severity(kMotion, s)[0]},
            {"sigma", at_severity(kMotion, s)[1]},
            {"angle_degrees", "uniform in [-45, 45] per image"}};
  }
  if (name == "brightness") return {{"value_added", at_severity(kBrightness, s)}};
  if (name == "contrast") return {{"factor", at_severity(kContrast, s)}};
  if (name == "elastic") {
    const auto& row = at_severity(kElastic, s);
    return {{"displacement_scale_per_side", row[0]},
            {"displacement_smoothing_per_side", row[1]},
            {"affine_jitter_per_side", row[2]}};
  }
  if (name == "pixelate") return {{"factor", at_severity(kPixelate, s)}};
  return {{"quality", at_severity(kJpegQuality, s)}};
}

nlohmann::json Corruption::to_json() const {
  return {{"name", name}, {"severity", severity}, {"parameters", parameters()}};
}

std::string Corruption::label() const { return name + ":" + std::to_string(severity); }

std::uint64_t Corruption::stream() const {
  const auto& names = corruption_names();
  const auto index = static_cast<std::uint64_t>(std::find(names.begin(), names.end(), name) - names.begin());
  return index * kMaxCorruptionSeverity + static_cast<std::uint64_t>(severity);
}

Corruption parse_corruption(const std::string& spec) {
  const auto colon = spec.rfind(':');
  RL_CHECK(colon != std::string::npos, "corruption spec '", spec.substr(0, 200),
           "': expected NAME:SEVERITY, e.g. gaussian-noise:3");
  const auto severity = parse_int64(spec.substr(colon + 1));
  RL_CHECK(severity.has_value(), "corruption spec '", spec.substr(0, 200), "': severity '", spec.substr(colon + 1, 50),
           "' is not an integer (expected 1 to ", kMaxCorruptionSeverity, ")");
  RL_CHECK(*severity >= 1 && *severity <= kMaxCorruptionSeverity, "corruption spec '", spec.substr(0, 200),
           "': severity must be 1 to ", kMaxCorruptionSeverity, ", got ", *severity);
  return Corruption(spec.substr(0, colon), static_cast<int>(*severity));
}

at::Tensor corrupt(const at::Tensor& images, const Corruption& corruption, const at::Generator& generator) {
  RL_CHECK(images.dim() == 4 && images.size(0) > 0, "corrupt: expected images N×C×H×W, got shape ", images.sizes());
  const at::Tensor x = images.to(at::kCPU, at::kFloat).contiguous();
  const int s = corruption.severity;
  const std::string& name = corruption.name;
  const double side = static_cast<double>(std::min(x.size(2), x.size(3)));
  at::Tensor out;
  if (name == "gaussian-noise") {
    out = x + random_normal(x.sizes(), generator) * at_severity(kGaussianSigma, s);
  } else if (name == "shot-noise") {
    const double photons = at_severity(kShotPhotons, s);
    out = at::poisson(x * photons, generator) / photons;
  } else if (name == "impulse-noise") {
    out = impulse_noise(x, at_severity(kImpulseAmount, s), generator);
  } else if (name == "defocus-blur") {
    out = filter_reflected(x, defocus_kernel(at_severity(kDefocus, s)[0], at_severity(kDefocus, s)[1]));
  } else if (name == "motion-blur") {
    out = motion_blur(x, at_severity(kMotion, s)[0], at_severity(kMotion, s)[1], random_angles(x.size(0), generator));
  } else if (name == "brightness") {
    out = brightness(x, at_severity(kBrightness, s));
  } else if (name == "contrast") {
    out = contrast(x, at_severity(kContrast, s));
  } else if (name == "elastic") {
    const auto& row = at_severity(kElastic, s);
    out = elastic(x, row[0] * side, row[1] * side, row[2] * side, generator);
  } else if (name == "pixelate") {
    out = pixelate(x, at_severity(kPixelate, s));
  } else {
    out = jpeg_round_trip(x, at_severity(kJpegQuality, s));
  }
  return out.clamp(0, 1).to(images.device());
}

at::Tensor defocus_kernel(double radius, double alias_sigma) {
  RL_CHECK(radius >= 0 && radius <= 8 && alias_sigma > 0,
           "defocus kernel: expected 0 <= radius <= 8 and alias_sigma > 0, got ", radius, " and ", alias_sigma);
  const at::Tensor offsets = at::arange(-8, 9, at::kDouble);
  const at::Tensor squared = offsets.view({17, 1}).pow(2) + offsets.view({1, 17}).pow(2);
  at::Tensor disk = (squared <= radius * radius).to(at::kDouble);
  disk /= disk.sum();
  const at::Tensor w = gaussian_weights(1, alias_sigma).to(at::kDouble);
  const at::Tensor smoothed =
      filter_reflected(disk.view({1, 1, 17, 17}).to(at::kFloat), at::outer(w, w).to(at::kFloat)).view({17, 17});
  const at::Tensor rows = smoothed.abs().sum(1).nonzero().flatten(),
                   columns = smoothed.abs().sum(0).nonzero().flatten();
  const std::int64_t half = std::max({8 - rows.min().item<std::int64_t>(), rows.max().item<std::int64_t>() - 8,
                                      8 - columns.min().item<std::int64_t>(), columns.max().item<std::int64_t>() - 8});
  return smoothed.slice(0, 8 - half, 9 + half).slice(1, 8 - half, 9 + half).contiguous();
}

at::Tensor filter_reflected(const at::Tensor& images, const at::Tensor& kernel) {
  RL_CHECK(kernel.dim() == 2 && kernel.size(0) % 2 == 1 && kernel.size(1) % 2 == 1,
           "filter: expected a kernel with odd sides, got shape ", kernel.sizes());
  const std::int64_t pad_rows = kernel.size(0) / 2, pad_columns = kernel.size(1) / 2;
  RL_CHECK(pad_rows < images.size(2) && pad_columns < images.size(3), "filter: a ", kernel.size(0), "×", kernel.size(1),
           " kernel needs images larger than ", pad_rows, "×", pad_columns, ", got ", images.size(2), "×",
           images.size(3));
  const std::int64_t channels = images.size(1);
  const at::Tensor padded = at::reflection_pad2d(images, {pad_columns, pad_columns, pad_rows, pad_rows});
  // conv2d correlates; flipping the kernel makes it a convolution (the kernels here are symmetric anyway).
  const at::Tensor weight =
      kernel.flip({0, 1}).to(images.options()).expand({channels, 1, kernel.size(0), kernel.size(1)});
  return at::conv2d(padded, weight.contiguous(), at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0},
                    at::IntArrayRef{1, 1}, channels);
}

at::Tensor motion_blur_weights(double radius, double sigma) {
  RL_CHECK(radius > 0 && sigma > 0, "motion blur: expected radius > 0 and sigma > 0, got ", radius, " and ", sigma);
  const auto taps = 2 * static_cast<std::int64_t>(std::ceil(radius)) + 1;
  const at::Tensor i = at::arange(taps, at::kDouble);
  const at::Tensor w = at::exp(-i * i / (2 * sigma * sigma));
  return (w / w.sum()).to(at::kFloat);
}

at::Tensor motion_blur(const at::Tensor& images, double radius, double sigma,
                       const std::vector<double>& angle_degrees) {
  RL_CHECK(static_cast<std::int64_t>(angle_degrees.size()) == images.size(0), "motion blur: ", angle_degrees.size(),
           " angles for ", images.size(0), " images");
  const at::Tensor weights = motion_blur_weights(radius, sigma);
  const auto w = weights.accessor<float, 1>();
  const at::Tensor x = images.to(at::kFloat).contiguous();
  at::Tensor out = at::zeros_like(x);
  const std::int64_t n = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  const float* in = x.data_ptr<float>();
  float* result = out.data_ptr<float>();
  for (std::int64_t image = 0; image < n; ++image) {
    const double angle = angle_degrees[static_cast<std::size_t>(image)] * kPi / 180;
    for (std::int64_t tap = 0; tap < weights.size(0); ++tap) {
      // ImageMagick's offsets: ceil(v - 0.5) rounds half down.
      const auto dx = static_cast<std::int64_t>(std::ceil(static_cast<double>(tap) * std::cos(angle) - 0.5));
      const auto dy = static_cast<std::int64_t>(std::ceil(static_cast<double>(tap) * std::sin(angle) - 0.5));
      for (std::int64_t c = 0; c < channels; ++c) {
        const float* plane = in + (image * channels + c) * height * width;
        float* target = result + (image * channels + c) * height * width;
        for (std::int64_t r = 0; r < height; ++r) {
          const std::int64_t source_row = std::clamp<std::int64_t>(r + dy, 0, height - 1);
          for (std::int64_t col = 0; col < width; ++col) {
            const std::int64_t source_column = std::clamp<std::int64_t>(col + dx, 0, width - 1);
            target[r * width + col] += w[tap] * plane[source_row * width + source_column];
          }
        }
      }
    }
  }
  return out;
}

at::Tensor box_resampling_matrix(std::int64_t from, std::int64_t to) {
  RL_CHECK(from > 0 && to > 0, "box resampling: sizes must be positive, got ", from, " to ", to);
  const double scale = static_cast<double>(from) / static_cast<double>(to);
  const double support = 0.5 * std::max(scale, 1.0);
  at::Tensor matrix = at::zeros({to, from}, at::kDouble);
  auto m = matrix.accessor<double, 2>();
  for (std::int64_t o = 0; o < to; ++o) {
    const double centre = (static_cast<double>(o) + 0.5) * scale;
    double total = 0;
    for (std::int64_t p = 0; p < from; ++p) {
      const double distance = static_cast<double>(p) + 0.5 - centre;
      if (distance > -support && distance <= support) m[o][p] = 1, total += 1;
    }
    if (total == 0) m[o][std::clamp<std::int64_t>(static_cast<std::int64_t>(centre), 0, from - 1)] = total = 1;
    for (std::int64_t p = 0; p < from; ++p) m[o][p] /= total;
  }
  return matrix.to(at::kFloat);
}

at::Tensor pixelate(const at::Tensor& images, double factor) {
  RL_CHECK(factor > 0 && factor <= 1, "pixelate: factor must be in (0, 1], got ", factor);
  const std::int64_t height = images.size(2), width = images.size(3);
  const auto small_height = std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(height) * factor));
  const auto small_width = std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(width) * factor));
  const at::Tensor rows =
      at::matmul(box_resampling_matrix(small_height, height), box_resampling_matrix(height, small_height));
  const at::Tensor columns =
      at::matmul(box_resampling_matrix(small_width, width), box_resampling_matrix(width, small_width));
  return at::matmul(at::matmul(rows.to(images.options()), images), columns.t().to(images.options()));
}

at::Tensor jpeg_round_trip(const at::Tensor& images, int quality) {
  RL_CHECK(quality >= 1 && quality <= 100, "JPEG: quality must be 1 to 100, got ", quality);
  const std::int64_t n = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  RL_CHECK(channels == 1 || channels == 3, "JPEG: images must have 1 or 3 channels, got ", channels);
  // Interleaved bytes, the layout stb reads and writes.
  const at::Tensor bytes =
      (images.to(at::kCPU, at::kFloat).clamp(0, 1) * 255).round().to(at::kByte).permute({0, 2, 3, 1}).contiguous();
  at::Tensor decoded = at::empty_like(bytes);
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<unsigned char> encoded;
    const auto append = [](void* context, void* data, int size) {
      auto* buffer = static_cast<std::vector<unsigned char>*>(context);
      buffer->insert(buffer->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
    };
    const int ok = stbi_write_jpg_to_func(append, &encoded, static_cast<int>(width), static_cast<int>(height),
                                          static_cast<int>(channels), bytes[i].data_ptr<std::uint8_t>(), quality);
    RL_CHECK(ok != 0 && !encoded.empty(), "JPEG: encoding image ", i, " failed");
    int w = 0, h = 0, file_channels = 0;
    const std::unique_ptr<unsigned char, void (*)(void*)> pixels(
        stbi_load_from_memory(encoded.data(), static_cast<int>(encoded.size()), &w, &h, &file_channels,
                              static_cast<int>(channels)),
        stbi_image_free);
    RL_CHECK(pixels != nullptr && w == width && h == height, "JPEG: decoding image ", i, " failed");
    std::copy_n(pixels.get(), height * width * channels, decoded[i].data_ptr<std::uint8_t>());
  }
  return decoded.permute({0, 3, 1, 2}).to(at::kFloat).div(255).contiguous().to(images.device());
}

}  // namespace robustlens
