// The metadata record of VAE and denoiser files, with the spec the loader builds the network from.
#include "fuzz_support.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/generative/denoiser.h"
#include "robustlens/generative/generative_file.h"
#include "robustlens/generative/vae.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace robustlens;
  const std::string text = fuzz::input_text(data, size);
  fuzz::expect_clear_errors([&] {
    const auto metadata = parse_generative_metadata(text, kVaeFormat, "VAE", "vae.pt");
    VaeSpec::from_json(required_field<nlohmann::json>(metadata, "spec", "vae.pt"), "vae.pt: spec");
  });
  fuzz::expect_clear_errors([&] {
    const auto metadata = parse_generative_metadata(text, kDenoiserFormat, "denoiser", "denoiser.pt");
    DenoiserSpec::from_json(required_field<nlohmann::json>(metadata, "spec", "denoiser.pt"), "denoiser.pt: spec");
  });
  return 0;
}
