#include "common.h"

#include "robustlens/core/console.h"
#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/parsing.h"
#include "robustlens/core/run_folder.h"
#include "robustlens/core/runtime.h"
#include "robustlens/data/dataset_source.h"
#include "robustlens/data/sample_selection.h"
#include "robustlens/models/load_model.h"
#include "robustlens/spectral/dct.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace robustlens::cli {

namespace {

CLI::Validator bound_validator(bool strict, const std::string& name) {
  return CLI::Validator(
      [strict](std::string& text) -> std::string {
        double value = 0;
        const bool number = CLI::detail::lexical_cast(text, value) && std::isfinite(value);
        if (number && (strict ? value > 0 : value >= 0)) return {};
        return std::string(strict ? "must be > 0" : "must be >= 0") + ", got " + text;
      },
      name, name);
}

}  // namespace

const CLI::Validator kNonNegative = bound_validator(false, "NONNEGATIVE");
const CLI::Validator kPositive = bound_validator(true, "POSITIVE");

nlohmann::json CommonOptions::to_json() const {
  return {{"model", model},
          {"data", data},
          {"split", split},
          {"image_shape", image_shape},
          {"transform", transform},
          {"samples", samples},
          {"indices", indices},
          {"batch_size", batch_size},
          {"device", device},
          {"threads", threads},
          {"seed", seed},
          {"out", out},
          {"exclude_classes", exclude_classes}};
}

namespace {

/// The data-parallel options, which torchrun sets in the environment instead: for launching ranks by hand.
void add_process_group_options(CLI::App& command, distributed::GroupOptions& o) {
  const std::string group = "Data-parallel (torchrun sets these; docs/distributed.md)";
  command.add_option("--world-size", o.world_size, "Processes in the run (0 = WORLD_SIZE, else 1)")
      ->check(kNonNegative)
      ->group(group);
  command.add_option("--rank", o.rank, "This process's rank (-1 = RANK, else 0)")->group(group);
  command.add_option("--master-addr", o.master_address, "Rank 0's host (default MASTER_ADDR, else 127.0.0.1)")
      ->group(group);
  command.add_option("--master-port", o.master_port, "Its port (0 = MASTER_PORT, else 29500)")
      ->check(kNonNegative)
      ->group(group);
  command.add_option("--dist-timeout", o.timeout_seconds, "Seconds a rank waits for the others before the run fails")
      ->check(kPositive)
      ->capture_default_str()
      ->group(group);
}

}  // namespace

void add_common_options(CLI::App& command, CommonOptions& o, unsigned which) {
  if (which & kModel) {
    command
        .add_option("--model", o.model, "Model file: written by 'robustlens train', or TorchScript (torch.jit.save)")
        ->required();
  }
  if (which & kData) {
    command
        .add_option("--data", o.data,
                    "Dataset: fashion-mnist | fashion-mnist:DIR | mnist:DIR | idx:DIR | cifar10:DIR | folder:DIR | "
                    "synthetic-subspace:START | distractor:SPEC, each optionally +corrupt:NAME:LEVEL")
        ->capture_default_str();
    command.add_option("--exclude-classes", o.exclude_classes,
                       "Class indices to leave out of every split, comma-separated (the others are renumbered); a "
                       "model trained without them takes the same option");
    command
        .add_option("--transform", o.transform,
                    "Image transform: none, dct-flip or low-pass:B (DCT invariance experiments)")
        ->capture_default_str();
    command.add_option("--image-shape", o.image_shape,
                       "folder: datasets only: convert images to this C,H,W (C = 1 grey or 3 RGB)");
  }
  if (which & kSplit) {
    command.add_option("--split", o.split, "Split to use")
        ->check(CLI::IsMember({"train", "test"}))
        ->capture_default_str();
  }
  if (which & kSamples) {
    command.add_option("--samples", o.samples, "Random subset of this many samples (0 = all), drawn with --seed")
        ->check(kNonNegative)
        ->capture_default_str()
        ->each([&o](const std::string&) { o.samples_given = true; });
    command.add_option("--indices", o.indices, "Explicit sample indices: a comma list (3,17,42) or a file of integers");
  }
  if (which & kBatchSize) {
    command.add_option("--batch-size", o.batch_size, "Images per batch")->check(kPositive)->capture_default_str();
  }
  if (which & kRuntime) {
    command.add_option("--device", o.device, "cpu, cuda, cuda:N or auto")->capture_default_str();
    command.add_option("--threads", o.threads, "CPU threads (0 = all cores)")
        ->check(kNonNegative)
        ->capture_default_str();
    command.add_option("--seed", o.seed, "Seed for every random choice")->capture_default_str();
    add_process_group_options(command, o.group);
  }
  if (which & kOut) {
    command.add_option("--out", o.out, "Output folder")->capture_default_str();
  }
}

namespace {

void prepare_output_folder(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code error;
  RL_CHECK(!fs::exists(out, error) || fs::is_directory(out, error), "--out '", out, "' is a file; expected a folder");
  fs::create_directories(out, error);
  RL_CHECK(!error, "--out '", out, "' cannot be created: ", error.message());
  // A folder that exists but refuses files would otherwise fail only when the results are written. The probe is
  // named as a temporary (NAME.tmpPID), so that one a killed run leaves is removed by the next run, below.
  const fs::path probe = fs::path(out) / (".robustlens-write-test.tmp" + std::to_string(::getpid()));
  RL_CHECK(std::ofstream(probe).good(), "--out '", out, "' is not writable");
  fs::remove(probe, error);
  if (const std::size_t stale = remove_stale_temporaries(out)) {
    console::print("removed %zu unfinished temporary file%s that a killed run left in %s\n", stale,
                   stale == 1 ? "" : "s", out.c_str());
  }
  // The outputs go to a staging folder until the command finishes (main commits them).
  if (const std::size_t killed = open_run(out)) {
    console::print("cleaned up after %zu killed run%s in %s\n", killed, killed == 1 ? "" : "s", out.c_str());
  }
}

}  // namespace

at::Device start_run(const CommonOptions& options) {
  distributed::join(options.group);
  // The main process alone prints the summary and writes the outputs; the others' stdout would repeat it.
  if (!distributed::is_main_process())
    RL_CHECK(std::freopen("/dev/null", "w", stdout) != nullptr, "cannot silence stdout");
  at::Device device = at::kCPU;
  distributed::agree("the start of the run", [&] {
    if (!options.out.empty() && distributed::is_main_process()) prepare_output_folder(options.out);
    configure_memory_allocator();
    configure_threads(options.threads);
    device = resolve_device(options.device);
  });
  return device;
}

std::vector<std::int64_t> excluded_classes(const CommonOptions& options) {
  return options.exclude_classes.empty() ? std::vector<std::int64_t>{} : parse_index_list(options.exclude_classes);
}

namespace {

Dataset load_transformed(const CommonOptions& options, const std::string& split) {
  Dataset dataset =
      load_dataset(options.data, parse_split(split),
                   options.image_shape.empty() ? std::vector<std::int64_t>{} : parse_image_shape(options.image_shape));
  if (options.transform != "none") {
    // A DCT transform mixes the two halves of distractor images, so their mask would no longer say where the item is.
    RL_CHECK(!dataset.signal_mask.defined(), "--transform ", options.transform, " cannot be combined with --data ",
             options.data, ": the transform mixes the item half and the glyph half");
    dataset.images = apply_dct_transform(options.transform, dataset.images);
    dataset.name += " [" + options.transform + "]";
  }
  return dataset;
}

}  // namespace

Dataset load_data(const CommonOptions& options, const std::string& split) {
  const std::vector<std::int64_t> excluded = excluded_classes(options);
  Dataset dataset = load_transformed(options, split);
  return excluded.empty() ? dataset : dataset.without_classes(excluded);
}

Dataset load_held_out_classes(const CommonOptions& options, const std::string& split) {
  const std::vector<std::int64_t> excluded = excluded_classes(options);
  RL_CHECK(!excluded.empty(), "--exclude-classes: no classes are held out");
  return load_transformed(options, split).only_classes(excluded);
}

Dataset select_data(const Dataset& dataset, const CommonOptions& options, std::vector<std::int64_t>* indices) {
  SampleSelection selection;
  selection.set_count(options.samples_given ? options.samples : std::min(options.samples, dataset.size()))
      .set_seed(options.seed);
  if (!options.indices.empty()) selection.set_indices(parse_index_list(options.indices));
  const std::vector<std::int64_t> chosen = select_samples(dataset.size(), selection);
  if (indices != nullptr) *indices = chosen;
  return selection.indices.empty() && selection.count == 0 ? dataset : dataset.subset(chosen);
}

void check_class_names(const std::vector<std::string>& trained_on, const Dataset& dataset, const std::string& what,
                       const std::string& consequence) {
  // Names on both sides are compared in label order. A side without names (TorchScript without
  // robustlens_class_names; idx files, named "0", "1", ... by their labels) is trusted on the count alone.
  const auto named = [](const std::vector<std::string>& names) {
    return !names.empty() && names != numbered_class_names(static_cast<std::int64_t>(names.size()));
  };
  if (!named(trained_on) || !named(dataset.class_names)) return;
  for (std::size_t k = 0; k < dataset.class_names.size(); ++k) {
    RL_CHECK(k < trained_on.size() && trained_on[k] == dataset.class_names[k], what, " was trained on classes ",
             nlohmann::json(trained_on).dump(), " but dataset ", dataset.name, " has ",
             nlohmann::json(dataset.class_names).dump(), " (label ", k, " differs): ", consequence);
  }
}

std::unique_ptr<Model> load_model_for(const CommonOptions& options, const Dataset& dataset, const at::Device& device) {
  std::unique_ptr<Model> model = load_model(options.model, device, dataset.image_shape());
  const ModelInfo& info = model->info();
  RL_CHECK(info.input_shape == dataset.image_shape(), "model '", options.model, "' takes images ",
           nlohmann::json(info.input_shape).dump(), " (C,H,W) but dataset ", dataset.name, " has ",
           nlohmann::json(dataset.image_shape()).dump());
  RL_CHECK(info.num_classes >= dataset.num_classes(), "model '", options.model, "' has ", info.num_classes,
           " outputs but dataset ", dataset.name, " has ", dataset.num_classes(), " classes");
  check_class_names(info.class_names, dataset, "model '" + options.model + "'",
                    "every label would be scored against another class");
  model->set_training(false);
  return model;
}

nlohmann::json run_record(const std::string& command, const nlohmann::json& options, const CommonOptions& common) {
  return {{"command", command},
          {"options", options},
          {"common", common.to_json()},
          {"seed", common.seed},
          {"versions", library_versions()},
          {"distributed", distributed::describe()}};
}

nlohmann::json AnalysisRun::record(const std::string& command, const nlohmann::json& options,
                                   const CommonOptions& common) const {
  nlohmann::json json = run_record(command, options, common);
  json["model"] = model->info().to_json();
  json["data"] = data.summary();
  json["indices"] = indices;
  return json;
}

AnalysisRun start_analysis(CommonOptions& common, const std::string& command) {
  if (common.out.empty()) common.out = "runs/" + command;
  const at::Device device = start_run(common);
  std::vector<std::int64_t> indices;
  Dataset data;
  std::unique_ptr<Model> model;
  distributed::agree("loading the model and the data", [&] {
    data = select_data(load_data(common, common.split), common, &indices);
    model = load_model_for(common, data, device);
  });
  return {device, std::move(indices), std::move(data), std::move(model)};
}

void add_restart_flag(CLI::App& command, bool& restart) {
  command.add_flag("--restart", restart, "Ignore an existing checkpoint in --out and start afresh");
}

void print_resumed(std::int64_t resumed_after_epoch, std::int64_t epochs, const std::string& out) {
  const std::string checkpoint = (std::filesystem::path(out) / "checkpoint.pt").string();
  if (resumed_after_epoch == epochs) {
    console::print("all %lld epochs were already trained in %s; nothing retrained\n", static_cast<long long>(epochs),
                   checkpoint.c_str());
  } else if (resumed_after_epoch > 0) {
    console::print("resumed from %s: epochs 1-%lld were taken from it\n", checkpoint.c_str(),
                   static_cast<long long>(resumed_after_epoch));
  }
}

std::string format_number(double value, const char* format, const char* not_finite) {
  if (not_finite != nullptr && !std::isfinite(value)) return not_finite;
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

std::vector<std::string> model_names(const std::vector<std::string>& paths, const std::vector<std::string>& given) {
  if (!given.empty()) {
    RL_CHECK(given.size() == paths.size(), "--name: give one name per --model (", paths.size(), "), got ",
             given.size());
    RL_CHECK(std::set<std::string>(given.begin(), given.end()).size() == given.size(), "--name: names must differ");
    return given;
  }
  std::vector<std::string> names;
  for (const std::string& path : paths) names.push_back(std::filesystem::path(path).parent_path().filename().string());
  const bool distinct = std::set<std::string>(names.begin(), names.end()).size() == names.size();
  if (!distinct ||
      std::any_of(names.begin(), names.end(), [](const std::string& n) { return n.empty() || n == "."; })) {
    for (std::size_t i = 0; i < names.size(); ++i) names[i] = "model-" + std::to_string(i + 1);
  }
  return names;
}

void add_ensemble_options(CLI::App& command, bool& ensemble, MinimalPerturbationOptions& options,
                          const std::string& members) {
  command.add_flag(
      "--no-ensemble", [&ensemble](std::int64_t) { ensemble = false; },
      "Skip the minimal perturbation over the attack ensemble (" + members + ")");
  command.add_option("--fmn-steps", options.fmn_options.steps, "Ensemble: FMN steps")
      ->check(kPositive)
      ->capture_default_str();
  command
      .add_option("--fmn-gamma", options.fmn_options.gamma_init,
                  "Ensemble: FMN's initial radius factor (the radius moves by up to this fraction per step, annealed)")
      ->capture_default_str();
  command
      .add_option(
          "--long-fmn-steps", options.long_fmn_steps,
          "Ensemble: steps of the long FMN run (gamma 0.05, from the image) on the images no other member fooled "
          "(0 = none)")
      ->check(kNonNegative)
      ->capture_default_str();
  command
      .add_option("--bisection-rounds", options.bisection_rounds, "Ensemble: PGD bisection rounds per image (0 = none)")
      ->check(kNonNegative)
      ->capture_default_str();
  command.add_option("--bisection-steps", options.bisection_steps, "Ensemble: PGD steps per bisection round")
      ->check(kPositive)
      ->capture_default_str();
}

void add_deepfool_options(CLI::App& command, DeepFoolOptions& d) {
  command.add_option("--candidates", d.candidates, "DeepFool: top-k candidate classes")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  command.add_option("--overshoot", d.overshoot, "DeepFool: overshoot")->check(kNonNegative)->capture_default_str();
  command.add_option("--max-iterations", d.max_iterations, "DeepFool: iteration limit")
      ->check(kPositive)
      ->capture_default_str();
  command.add_flag("--clip", d.clip, "DeepFool: keep iterates in [0,1] (default: unconstrained, as the reference)");
}

void add_attribution_options(CLI::App& command, AttributionOptions& a, std::string& method,
                             const std::string& method_flag) {
  command.add_option(method_flag, method, "Attribution method")
      ->check(CLI::IsMember({"saliency", "input-x-gradient", "ig", "smoothgrad"}))
      ->capture_default_str();
  command.add_option("--steps", a.steps, "ig: Riemann steps")->check(kPositive)->capture_default_str();
  command.add_option("--baseline", a.baseline, "ig: constant baseline image value")->capture_default_str();
  command.add_option("--noise", a.noise, "smoothgrad: noise standard deviation")
      ->check(kNonNegative)
      ->capture_default_str();
  command.add_option("--noise-samples", a.noise_samples, "smoothgrad: noisy copies per image")
      ->check(kPositive)
      ->capture_default_str();
}

std::string in_cli_terms(const std::string& message) {
  // The spec strings and counts the library parses, by the names its messages give them.
  static const std::vector<std::pair<std::string, std::string>> inputs = {
      {"dataset spec", "--data"},    {"image shape spec", "--image-shape"}, {"sample count", "--samples"},
      {"index list", "--indices"},   {"subspace spec", "--subspaces"},      {"transform spec", "--transform"},
      {"band fill", "--fill"},       {"band output", "--output"},           {"device spec", "--device"},
      {"thread count", "--threads"}, {"SNR perturbation spec", "--snr"}};
  // The fields whose flag is not the field's name with dashes.
  static const std::map<std::string, std::string> renamed = {{"LatentPenaltyOptions.factor", "--gamma-factor"},
                                                             {"ScheduleOptions.gamma", "--lr-gamma"},
                                                             {"ScheduleOptions.step_epochs", "--lr-step-epochs"},
                                                             {"ScheduleOptions.kind", "--schedule"},
                                                             {"ObjectiveOptions.kind", "--objective"},
                                                             {"TrainOptions.resume", "--restart"},
                                                             {"VaeTrainOptions.resume", "--restart"},
                                                             {"DenoiserTrainOptions.resume", "--restart"}};
  std::string text = message;
  for (const auto& [name, flag] : inputs) {
    for (std::size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + flag.size())) {
      text.replace(at, name.size(), flag);
    }
  }
  static const std::regex option_field(R"(\b[A-Z]\w*(?:Options|Spec)\.([a-z]\w*))");
  std::string result;
  std::size_t copied = 0;
  for (auto match = std::sregex_iterator(text.begin(), text.end(), option_field); match != std::sregex_iterator();
       ++match) {
    const std::string name = match->str();
    std::string flag = "--" + (*match)[1].str();
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (const auto alias = renamed.find(name); alias != renamed.end()) flag = alias->second;
    result += text.substr(copied, static_cast<std::size_t>(match->position()) - copied) + flag;
    copied = static_cast<std::size_t>(match->position() + match->length());
  }
  return result + text.substr(copied);
}

}  // namespace robustlens::cli
