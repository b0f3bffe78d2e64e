#include "robustlens/generative/generative_file.h"

#include "robustlens/core/archive_integrity.h"
#include "robustlens/core/checksum.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/models/builtin_model.h"

#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <filesystem>

namespace robustlens {
namespace {

constexpr int kGenerativeFormatVersion = 1;

/// "VAE" or "denoiser" for a format name, for messages about files of another kind.
std::string describe_format(const std::string& format) {
  if (format == kVaeFormat) return "VAE";
  if (format == kDenoiserFormat) return "denoiser";
  if (format == "robustlens-model") return "classifier model";
  return "'" + format + "'";
}

}  // namespace

void save_generative_file(const std::string& path, const std::string& format, nlohmann::json metadata,
                          const torch::nn::Module& module) {
  metadata["format"] = format;
  metadata["format_version"] = kGenerativeFormatVersion;
  write_file_atomically(path, [&](const std::string& temporary) {
    torch::serialize::OutputArchive archive;
    archive.write(kBuiltinMetadataKey, c10::IValue(metadata.dump()));
    write_generative_parameters(archive, module);
    archive.save_to(temporary);
  });
}

void write_generative_parameters(torch::serialize::OutputArchive& archive, const torch::nn::Module& module) {
  torch::serialize::OutputArchive parameters;
  module.save(parameters);
  archive.write("parameters", parameters);
  write_parameter_checksum(archive, module);
}

nlohmann::json open_generative_file(const std::string& path, const std::string& format, const std::string& what,
                                    const at::Device& device, torch::serialize::InputArchive& archive) {
  RL_CHECK(std::filesystem::is_regular_file(path), what, " file '", path, "' does not exist");
  check_archive_records(path, what + " file '" + path + "'");
  try {
    archive.load_from(path, device);
  } catch (const std::exception& error) {  // c10::Error, and what else LibTorch throws for a damaged file
    RL_CHECK(false, what, " file '", path,
             "' cannot be read (expected a PyTorch archive written by robustlens): ", first_line(error.what()));
  }
  c10::IValue value;
  RL_CHECK(archive.try_read(kBuiltinMetadataKey, value) && value.isString(), "'", path, "' is not a robustlens ", what,
           " file (no ", kBuiltinMetadataKey, " record)");
  return parse_generative_metadata(value.toStringRef(), format, what, path);
}

nlohmann::json parse_generative_metadata(const std::string& text, const std::string& format, const std::string& what,
                                         const std::string& path) {
  nlohmann::json metadata;
  try {
    metadata = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    RL_CHECK(false, "'", path, "': metadata is not valid JSON: ", error.what());
  }
  const std::string where = what + " file '" + path + "': metadata";
  RL_CHECK(metadata.is_object(), where, " is not a JSON object");
  const std::string found = optional_field<std::string>(metadata, "format", "", where);
  RL_CHECK(found == format, "'", path, "' is a robustlens ", describe_format(found.substr(0, 100)), " file, not a ",
           what, " file (format ", found.substr(0, 100), ", expected ", format, ")");
  const std::int64_t version = optional_field<std::int64_t>(metadata, "format_version", 0, where);
  RL_CHECK(version == kGenerativeFormatVersion, "'", path, "': unsupported ", what, " file version ", version,
           " (this robustlens reads version ", kGenerativeFormatVersion, ")");
  return metadata;
}

void load_generative_parameters(torch::serialize::InputArchive& archive, torch::nn::Module& module,
                                const std::string& path) {
  torch::serialize::InputArchive parameters;
  RL_CHECK(archive.try_read("parameters", parameters), "'", path, "' has no parameters");
  try {
    module.load(parameters);
  } catch (const std::exception& error) {  // c10::Error, and what else LibTorch throws for a damaged file
    RL_CHECK(false, "'", path, "': the parameters do not fit the recorded spec: ", first_line(error.what()));
  }
  check_parameter_checksum(archive, module, path);
}

nlohmann::json read_generative_metadata(const std::string& path) {
  torch::serialize::InputArchive archive;
  c10::IValue value;
  try {
    check_archive_records(path, "'" + path + "'");
    archive.load_from(path, at::kCPU);
    if (!archive.try_read(kBuiltinMetadataKey, value) || !value.isString()) return nullptr;
    nlohmann::json metadata = nlohmann::json::parse(value.toStringRef());
    const std::string format = metadata.value("format", "");
    return format == kVaeFormat || format == kDenoiserFormat ? metadata : nlohmann::json(nullptr);
  } catch (const std::exception&) {
    return nullptr;  // not ours: the classifier loader gives the message
  }
}

}  // namespace robustlens
