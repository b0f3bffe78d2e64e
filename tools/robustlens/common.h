// What every subcommand shares: the common options (declared once, so help,
// defaults and validation agree everywhere), the run-time set-up they imply,
// and the header every output file starts with (command, options, seed, versions).
#pragma once

#include "robustlens/attacks/deepfool.h"
#include "robustlens/attacks/minimal_perturbation.h"
#include "robustlens/core/distributed.h"
#include "robustlens/core/model.h"
#include "robustlens/data/dataset.h"
#include "robustlens/explain/attributions.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace robustlens::cli {

struct CommonOptions {
  std::string model;
  std::string data = "fashion-mnist";
  std::string split = "test";
  std::string image_shape;         ///< "C,H,W" for image folders
  std::string transform = "none";  ///< applied to every loaded image (spectral/dct.h)
  std::string exclude_classes;     ///< class indices left out of every split ("5,8"), e.g. held out for OOD tests
  std::int64_t samples = 0;
  bool samples_given = false;  ///< a default larger than the dataset means "all of it"
  std::string indices;
  std::int64_t batch_size = 256;
  std::string device = "auto";
  int threads = 0;
  std::uint64_t seed = 0;
  std::string out;
  distributed::GroupOptions group;  ///< --world-size, --rank, --master-addr, --master-port, --dist-timeout

  nlohmann::json to_json() const;
};

/// Whether the loaded images are pixels in [0,1], the box attacks clip to: not after a --transform.
inline bool images_are_pixels(const CommonOptions& options) { return options.transform == "none"; }

/// Option validators whose message names the bound and the value given ("--eps: must be >= 0, got -1");
/// CLI11's own NonNegativeNumber prints its range up to the largest double.
extern const CLI::Validator kNonNegative;
extern const CLI::Validator kPositive;

/// Which of the common options a subcommand takes.
enum CommonOption : unsigned {
  kModel = 1u << 0,
  kData = 1u << 1,     ///< --data, --image-shape, --transform, --exclude-classes
  kSplit = 1u << 6,    ///< --split
  kSamples = 1u << 2,  ///< --samples, --indices
  kBatchSize = 1u << 3,
  kRuntime = 1u << 4,  ///< --device, --threads, --seed
  kOut = 1u << 5,
};

void add_common_options(CLI::App& command, CommonOptions& options, unsigned which);

/// Joins the data-parallel process group when there is one (core/distributed.h), checks --out before any work
/// (a folder, created if missing, writable), then sets allocator, threads, seed and device from the options;
/// returns the device. Every rank agrees on the outcome: bad input on one rank stops all of them.
at::Device start_run(const CommonOptions& options);

/// The split named by --split of --data (validated), transformed, without the --exclude-classes.
Dataset load_data(const CommonOptions& options, const std::string& split);
/// The classes of --exclude-classes (empty when none).
std::vector<std::int64_t> excluded_classes(const CommonOptions& options);
/// The images of the --exclude-classes alone in a split, transformed: what a model trained without them has not seen.
Dataset load_held_out_classes(const CommonOptions& options, const std::string& split);
/// The dataset restricted to --samples/--indices (seeded by --seed); the chosen
/// indices into `dataset` go to `indices` when given.
Dataset select_data(const Dataset& dataset, const CommonOptions& options, std::vector<std::int64_t>* indices = nullptr);

/// Refuses `dataset` when the class names a model (`what`, e.g. "model 'm.pt'") was trained on name its labels
/// differently; `consequence` says what would go wrong. Either side without names is trusted on the count.
void check_class_names(const std::vector<std::string>& trained_on, const Dataset& dataset, const std::string& what,
                       const std::string& consequence);

/// Loads --model and makes sure it fits the dataset (binds a TorchScript model's
/// input shape, checks shape, class count and, where both have them, class names).
std::unique_ptr<Model> load_model_for(const CommonOptions& options, const Dataset& dataset, const at::Device& device);

/// {"command", "options", "common", "versions", "seed"} for every output file.
nlohmann::json run_record(const std::string& command, const nlohmann::json& options, const CommonOptions& common);

/// What every subcommand that analyses a model starts from.
struct AnalysisRun {
  at::Device device;
  std::vector<std::int64_t> indices;  ///< the selected samples of the split
  Dataset data;
  std::unique_ptr<Model> model;
  /// run_record plus the model, the data summary and the sample indices.
  nlohmann::json record(const std::string& command, const nlohmann::json& options, const CommonOptions& common) const;
};

/// Sets --out to runs/COMMAND when empty, starts the run (allocator, threads,
/// seed, device), selects the samples and loads the model for them.
AnalysisRun start_analysis(CommonOptions& common, const std::string& command);

/// One name per model for tables and folders: `given` (one per path, distinct)
/// or else each model file's folder name, or model-1, model-2, ... when those
/// are not distinct.
std::vector<std::string> model_names(const std::vector<std::string>& paths, const std::vector<std::string>& given);

/// --restart of the training commands: ignore the checkpoint in --out.
void add_restart_flag(CLI::App& command, bool& restart);

/// After training into `out`: says how many of the `epochs` were taken from its checkpoint, if any.
void print_resumed(std::int64_t resumed_after_epoch, std::int64_t epochs, const std::string& out);

/// One number through a printf format (e.g. "%.4g", "%.2f%%"); NaN and infinities read `not_finite`
/// when it is given.
std::string format_number(double value, const char* format = "%.4g", const char* not_finite = nullptr);

/// A library message in the CLI's terms: each option it names as Struct.field (TrainOptions.batch_size) becomes
/// the flag that sets it (--batch-size), and each input it names by what it is ("dataset spec", "device spec",
/// "sample count") the flag that gives it (--data, --device, --samples).
std::string in_cli_terms(const std::string& message);

/// The attack ensemble's options (attacks/minimal_perturbation.h) of `attack`, `margins` and `latent`, declared
/// once: --no-ensemble (clears `ensemble`), --fmn-steps, --fmn-gamma, --long-fmn-steps, --bisection-rounds,
/// --bisection-steps. `members` lists the members for the help text.
void add_ensemble_options(CLI::App& command, bool& ensemble, MinimalPerturbationOptions& options,
                          const std::string& members);

/// The DeepFool options of `attack` and `margins`, declared once.
void add_deepfool_options(CLI::App& command, DeepFoolOptions& options);

/// The attribution method (as option `method_flag`, e.g. --method) and its
/// parameters (--steps, --baseline, --noise, --noise-samples), declared once
/// for `explain` and `upi`. The method name is parsed by parse_attribution_method.
void add_attribution_options(CLI::App& command, AttributionOptions& options, std::string& method,
                             const std::string& method_flag);

}  // namespace robustlens::cli
