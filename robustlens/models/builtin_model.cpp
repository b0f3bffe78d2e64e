#include "robustlens/models/builtin_model.h"

#include "robustlens/core/checksum.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/json_fields.h"

namespace robustlens {

BuiltinModel::BuiltinModel(const ArchitectureSpec& spec, std::vector<std::string> class_names, nlohmann::json training)
    : spec_(spec.resolved()), net_(build_architecture(spec_)) {
  RL_CHECK(class_names.empty() || static_cast<std::int64_t>(class_names.size()) == spec_.num_classes, "model has ",
           spec_.num_classes, " classes but ", class_names.size(), " class names were given");
  if (class_names.empty()) {
    for (std::int64_t k = 0; k < spec_.num_classes; ++k) class_names.push_back(std::to_string(k));
  }
  info_.kind = "builtin";
  info_.input_shape = spec_.input_shape;
  info_.num_classes = spec_.num_classes;
  info_.class_names = std::move(class_names);
  info_.architecture = spec_.to_json();
  info_.training = std::move(training);
}

at::Tensor BuiltinModel::forward(const at::Tensor& images) {
  check_images(images, spec_.input_shape, "model " + spec_.name);
  return net_->forward(images);
}

at::Tensor BuiltinModel::latent(const at::Tensor& images) {
  check_images(images, spec_.input_shape, "model " + spec_.name);
  return net_->latent(images);
}

std::pair<at::Tensor, at::Tensor> BuiltinModel::forward_with_latent(const at::Tensor& images) {
  check_images(images, spec_.input_shape, "model " + spec_.name);
  at::Tensor z = net_->latent(images);
  return {net_->head->forward(z), z};
}

void BuiltinModel::to(const at::Device& device) {
  net_->to(device);
  device_ = device;
}

std::unique_ptr<Model> BuiltinModel::softplus_surrogate(double beta) const {
  RL_CHECK(beta > 0, "softplus surrogate: beta must be > 0, got ", beta);
  ArchitectureSpec smooth = spec_;
  smooth.activation = "softplus";
  smooth.softplus_beta = beta;
  auto surrogate = std::make_unique<BuiltinModel>(smooth, info_.class_names, info_.training);
  at::NoGradGuard no_grad;
  const auto copy = [](const auto& from, const auto& to) {
    for (const auto& item : from) to[item.key()].copy_(item.value());
  };
  copy(net_->named_parameters(), surrogate->net_->named_parameters());
  copy(net_->named_buffers(), surrogate->net_->named_buffers());
  surrogate->to(device_);
  surrogate->net_->train(net_->is_training());
  return surrogate;
}

void BuiltinModel::save_to(torch::serialize::OutputArchive& archive) const {
  const nlohmann::json metadata = {{"format", "robustlens-model"},
                                   {"format_version", 1},
                                   {"architecture", spec_.to_json()},
                                   {"class_names", info_.class_names},
                                   {"training", info_.training}};
  archive.write(kBuiltinMetadataKey, c10::IValue(metadata.dump()));
  torch::serialize::OutputArchive parameters;
  net_->save(parameters);
  archive.write("parameters", parameters);
  write_parameter_checksum(archive, *net_);
}

void BuiltinModel::load_parameters_from(torch::serialize::InputArchive& archive, const std::string& path) {
  torch::serialize::InputArchive parameters;
  RL_CHECK(archive.try_read("parameters", parameters), "'", path, "' has no parameters");
  try {
    net_->load(parameters);
  } catch (const std::exception& error) {
    RL_CHECK(false, "model parameters do not fit architecture ", spec_.to_json().dump(), ": ",
             first_line(error.what()));
  }
  check_parameter_checksum(archive, *net_, path);
  net_->to(device_);
}

void BuiltinModel::save(const std::string& path) const {
  write_file_atomically(path, [&](const std::string& temporary) {
    torch::serialize::OutputArchive archive;
    save_to(archive);
    archive.save_to(temporary);
  });
}

BuiltinMetadata parse_builtin_metadata(const std::string& text, const std::string& path) {
  nlohmann::json metadata;
  try {
    metadata = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    RL_CHECK(false, "'", path, "': metadata is not valid JSON: ", error.what());
  }
  const std::string where = "model file '" + path + "': metadata";
  RL_CHECK(metadata.is_object(), where, " is not a JSON object");
  const std::string format = optional_field<std::string>(metadata, "format", "", where);
  RL_CHECK(format != "robustlens-vae" && format != "robustlens-denoiser", "'", path, "' is a robustlens ",
           format == "robustlens-vae" ? "VAE" : "denoiser", " file, not a classifier model file (format ", format, ")");
  const std::int64_t version = optional_field<std::int64_t>(metadata, "format_version", 0, where);
  RL_CHECK(format == "robustlens-model" && version == 1, "'", path, "': unsupported model format '",
           format.substr(0, 100), "' version ", version, " (this robustlens reads robustlens-model version 1)");
  BuiltinMetadata parsed{ArchitectureSpec::from_json(required_field<nlohmann::json>(metadata, "architecture", where),
                                                     where + ".architecture"),
                         optional_field<std::vector<std::string>>(metadata, "class_names", {}, where),
                         optional_field<nlohmann::json>(metadata, "training", nlohmann::json::object(), where)};
  RL_CHECK(
      parsed.class_names.empty() || static_cast<std::int64_t>(parsed.class_names.size()) == parsed.spec.num_classes,
      where, ": ", parsed.class_names.size(), " class names for ", parsed.spec.num_classes, " classes");
  return parsed;
}

BuiltinMetadata read_builtin_metadata(torch::serialize::InputArchive& archive, const std::string& path) {
  c10::IValue value;
  RL_CHECK(archive.try_read(kBuiltinMetadataKey, value) && value.isString(), "'", path,
           "' is not a robustlens model file (no ", kBuiltinMetadataKey, " record)");
  return parse_builtin_metadata(value.toStringRef(), path);
}

std::unique_ptr<BuiltinModel> load_builtin_model(const std::string& path, const at::Device& device) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device);
  } catch (const std::exception& error) {
    RL_CHECK(false, "model file '", path, "' cannot be read: ", first_line(error.what()));
  }
  BuiltinMetadata metadata = read_builtin_metadata(archive, path);
  auto model =
      std::make_unique<BuiltinModel>(metadata.spec, std::move(metadata.class_names), std::move(metadata.training));
  model->to(device);
  model->load_parameters_from(archive, path);
  model->info().path = path;
  model->set_training(false);
  return model;
}

}  // namespace robustlens
