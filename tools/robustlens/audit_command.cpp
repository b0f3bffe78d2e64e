// robustlens audit: every analysis on one or more models, one results JSON and
// one self-contained HTML report (audit_report.h).
//
// Each analysis is a step that runs the subcommand of the same name in this
// process, with the options the report prints beside its results, into
// OUT/models/NAME/ANALYSIS/ (latent: OUT/latent/, one step over all models,
// which it compares). So the report's numbers are the subcommands' numbers for
// the same options and seed. A finished step leaves OUT/.../audit_step.json:
// its arguments, a fingerprint of every input file it names, of the data
// (content of both splits) and of the robustlens binary. A rerun skips the
// steps whose record matches, so a killed audit continues where it stopped,
// and a retrained model, changed data or a rebuilt robustlens is analysed again.
#include "audit_records.h"
#include "audit_report.h"
#include "commands.h"
#include "common.h"

#include "robustlens/core/checksum.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/model.h"
#include "robustlens/core/run_folder.h"
#include "robustlens/report/html_report.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

namespace robustlens::cli {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kAnalyses = {"eval", "attack",   "explain", "margins", "spectral",
                                            "upi",  "manifold", "align",   "latent"};

/// What --quick changes: fewer samples and shorter generative training, for a first look.
/// The full audit runs every subcommand with its own defaults.
const std::map<std::string, std::vector<std::string>>& quick_arguments() {
  static const std::map<std::string, std::vector<std::string>> arguments = {
      {"eval", {"--samples", "2000"}},
      {"attack", {"--samples", "200"}},
      {"explain", {}},
      {"margins", {"--samples", "20"}},
      {"spectral", {"--samples", "64"}},
      {"upi", {"--samples", "100", "--attack-samples", "200"}},
      {"manifold", {"--samples", "100"}},
      {"align", {"--samples", "100"}},
      {"latent", {"--samples", "1000", "--train-samples", "5000", "--deepfool-samples", "100"}},
      {"train-vae", {"--epochs", "3"}},
      {"train-denoiser", {"--epochs", "1", "--samples", "20000"}},
  };
  return arguments;
}

/// The results file each subcommand writes into its --out.
std::string result_file(const std::string& analysis) {
  if (analysis == "align") return "alignment.json";
  if (analysis == "train-vae" || analysis == "train-denoiser") return "train_log.json";
  return analysis + ".json";
}

struct AuditCommand {
  CommonOptions common;
  std::vector<std::string> models, names, skip;
  bool quick = false;
  std::string vae, denoiser;
  bool fit_generative = false;
  bool batch_size_given = false;
  std::int64_t test_size = 0, train_size = 0;  ///< of the data's splits (the quick sample counts are capped by them)
};

struct AuditStep {
  std::string model;                   ///< the model's name; "" for a step over several models
  std::string analysis;                ///< the subcommand
  std::vector<std::string> arguments;  ///< the subcommand and its options, as typed on a command line
  fs::path folder;                     ///< its --out
};

/// The options every step passes on from the audit's own.
std::vector<std::string> shared_arguments(const AuditCommand& command) {
  const CommonOptions& c = command.common;
  std::vector<std::string> arguments{"--data", c.data};
  if (c.transform != "none") arguments.insert(arguments.end(), {"--transform", c.transform});
  if (!c.image_shape.empty()) arguments.insert(arguments.end(), {"--image-shape", c.image_shape});
  arguments.insert(arguments.end(),
                   {"--device", c.device, "--threads", std::to_string(c.threads), "--seed", std::to_string(c.seed)});
  return arguments;
}

AuditStep make_step(const AuditCommand& command, const std::string& model, const std::string& analysis,
                    const fs::path& folder, std::vector<std::string> specific) {
  std::vector<std::string> arguments{analysis};
  arguments.insert(arguments.end(), specific.begin(), specific.end());
  const std::vector<std::string> shared = shared_arguments(command);
  arguments.insert(arguments.end(), shared.begin(), shared.end());
  const bool takes_batch_size = analysis != "train-vae" && analysis != "train-denoiser";
  if (command.batch_size_given && takes_batch_size) {
    arguments.insert(arguments.end(), {"--batch-size", std::to_string(command.common.batch_size)});
  }
  if (command.quick) {
    std::vector<std::string> quick = quick_arguments().at(analysis);
    // Never more images than the split has (train-vae and train-denoiser draw --samples from the training split).
    const bool trains = analysis.rfind("train-", 0) == 0;
    for (std::size_t i = 0; i + 1 < quick.size(); i += 2) {
      const std::string& flag = quick[i];
      const bool training_images =
          flag == "--attack-samples" || flag == "--train-samples" || (flag == "--samples" && trains);
      const std::int64_t available = training_images ? command.train_size : flag == "--samples" ? command.test_size : 0;
      if (available > 0) quick[i + 1] = std::to_string(std::min<std::int64_t>(available, std::stoll(quick[i + 1])));
    }
    arguments.insert(arguments.end(), quick.begin(), quick.end());
  }
  arguments.insert(arguments.end(), {"--out", folder.string()});
  return {model, analysis, arguments, folder};
}

/// 64-bit FNV-1a of the file's bytes and its size: a changed model file is a different input.
std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Fnv1a hash;
  std::uint64_t size = 0;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    hash.add(buffer, static_cast<std::size_t>(in.gcount()));
    size += static_cast<std::uint64_t>(in.gcount());
  }
  return std::to_string(size) + " bytes, fnv1a " + hash.hex();
}

/// The version of what a subcommand writes, raised when the summary or the report needs a field that older
/// records lack, so that an upgraded robustlens runs those steps again instead of showing "—" (2: attack's
/// ensemble minimum, latent's ensemble ratio, upi's summary at the median minimal perturbation, margins'
/// full-space ensemble minimum; 3: attack's examples.png with the ensemble's column, as the report's caption
/// says). Markers written before versions existed count as 1.
int record_format(const std::string& analysis) {
  static const std::map<std::string, int> formats = {{"attack", 3}, {"latent", 2}, {"upi", 2}, {"margins", 2}};
  const auto found = formats.find(analysis);
  return found == formats.end() ? 1 : found->second;
}

/// This build of robustlens: a rebuilt binary may compute other numbers, so its steps are not reused.
std::string build_fingerprint() {
  std::error_code ec;
  if (fs::is_regular_file("/proc/self/exe", ec)) return file_fingerprint("/proc/self/exe");
  return std::string("robustlens ") + ROBUSTLENS_VERSION;
}

/// What makes a finished step reusable: the same arguments, the same input files, the same data (by content),
/// the same build and the same record format. `shared` holds the data and build fingerprints, computed once.
/// The thread count is left out: it changes how fast a step runs, not what it computes.
nlohmann::json step_record(const AuditStep& step, const nlohmann::json& shared) {
  nlohmann::json inputs = nlohmann::json::object();
  std::vector<std::string> arguments;
  for (std::size_t i = 0; i < step.arguments.size(); ++i) {
    if (step.arguments[i] == "--threads") {
      ++i;
      continue;
    }
    arguments.push_back(step.arguments[i]);
    std::error_code ec;
    if (fs::is_regular_file(step.arguments[i], ec)) inputs[step.arguments[i]] = file_fingerprint(step.arguments[i]);
  }
  nlohmann::json record = {
      {"arguments", arguments}, {"inputs", inputs}, {"record_format", record_format(step.analysis)}};
  record.update(shared);
  return record;
}

bool step_finished(const AuditStep& step, const nlohmann::json& record) {
  const fs::path marker = step.folder / "audit_step.json";
  std::error_code ec;
  if (!fs::exists(marker, ec)) return false;
  try {
    return step_record_matches(read_text_file(marker.string()), record);
  } catch (const Error&) {
    return false;  // unreadable: run the step again
  }
}

std::string command_line(const std::vector<std::string>& arguments) {
  std::string line = "robustlens";
  for (const std::string& argument : arguments) {
    const bool plain = !argument.empty() && argument.find_first_of(" \t'\"$\\;&|<>()*?") == std::string::npos;
    line += " " + (plain ? argument : "'" + argument + "'");
  }
  return line;
}

/// Runs the subcommand in this process, as `robustlens ARGUMENTS` would.
void run_step(const AuditStep& step) {
  CLI::App app{"robustlens"};
  add_all_commands(app);
  std::vector<std::string> reversed(step.arguments.rbegin(), step.arguments.rend());  // CLI11 parses from the back
  const std::string where =
      "audit step '" + step.analysis + "'" + (step.model.empty() ? "" : " of model '" + step.model + "'");
  const std::string how =
      " (finished steps are kept: rerun the audit to continue; the step alone: " + command_line(step.arguments) + ")";
  try {
    RunScope runs;  // the step's outputs appear when it finishes
    app.parse(reversed);
    runs.commit();
  } catch (const CLI::ParseError& error) {
    throw Error(where + ": invalid options: " + error.what() + how);
  } catch (const c10::Error& error) {
    throw Error(where + " failed: LibTorch: " + first_line(error.what()) + how);
  } catch (const std::exception& error) {
    throw Error(where + " failed: " + error.what() + how);
  }
}

/// The training options (architecture and recipe) in the train_log.json that robustlens train writes beside
/// the model; null for a model without one (e.g. TorchScript) or with one that cannot be read.
nlohmann::json training_options(const std::string& model) {
  const fs::path log = fs::path(model).parent_path() / "train_log.json";
  std::error_code ec;
  if (!fs::is_regular_file(log, ec)) return nullptr;
  try {
    return read_json_file(log.string()).value("options", nlohmann::json());
  } catch (const Error& error) {
    std::fprintf(stderr, "warning: %s: %s; the report cannot say how this model's training differs\n", log.c_str(),
                 error.what());
    return nullptr;
  }
}

/// A name that is safe as a folder name.
void check_name(const std::string& name) {
  RL_CHECK(!name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos, "--name: '", name,
           "' cannot name a folder (expected a non-empty name without '/')");
}

void run_audit(AuditCommand command) {
  CommonOptions& common = command.common;
  RL_CHECK(!command.models.empty(), "--model: give at least one model");
  for (const std::string& analysis : command.skip) {
    RL_CHECK(std::find(kAnalyses.begin(), kAnalyses.end(), analysis) != kAnalyses.end(), "--skip: unknown analysis '",
             analysis, "' (expected some of eval, attack, explain, margins, spectral, upi, manifold, align, latent)");
  }
  for (const auto& [flag, path] : {std::pair{"--vae", command.vae}, std::pair{"--denoiser", command.denoiser}}) {
    RL_CHECK(path.empty() || fs::is_regular_file(path), flag, ": no such file '", path, "'");
  }
  const std::vector<std::string> names = model_names(command.models, command.names);
  for (const std::string& name : names) check_name(name);
  const fs::path out(common.out);
  const WebAssets assets = load_web_assets();  // before any work: a report that cannot be written is an error now

  // Every model must fit the data before anything runs; which of them expose a latent code decides the latent step.
  const at::Device device = start_run(common);
  const Dataset test = load_data(common, "test");
  command.test_size = test.size();
  const Dataset train = load_data(common, "train");
  command.train_size = train.size();
  // Every step also depends on the data's content (a file replaced under the same --data) and on this build.
  const nlohmann::json shared_inputs = {
      {"data",
       {{"test", data_checksum(test.images, test.labels)}, {"train", data_checksum(train.images, train.labels)}}},
      {"build", build_fingerprint()}};
  std::vector<bool> has_latent;
  nlohmann::json model_info = nlohmann::json::array();
  for (const std::string& path : command.models) {
    CommonOptions model_options = common;
    model_options.model = path;
    const auto model = load_model_for(model_options, test, device);
    has_latent.push_back(model->has_latent());
    model_info.push_back(model->info().to_json());
  }
  const auto skipped_by_user = [&](const std::string& analysis) {
    return std::find(command.skip.begin(), command.skip.end(), analysis) != command.skip.end();
  };

  std::vector<AuditStep> steps;
  std::string vae = command.vae, denoiser = command.denoiser;
  // The audit decides itself which steps it reuses; a checkpoint another build left must not be resumed.
  if (command.fit_generative && vae.empty() && !skipped_by_user("manifold")) {
    steps.push_back(make_step(command, "", "train-vae", out / "generative" / "vae", {"--restart"}));
    vae = (out / "generative" / "vae" / "vae.pt").string();
  }
  if (command.fit_generative && denoiser.empty() && !skipped_by_user("align")) {
    // Class-conditional with label dropout: one network gives s(x, y) and s(x) for every pairing of align.
    steps.push_back(make_step(command, "", "train-denoiser", out / "generative" / "denoiser", {"--restart"}));
    denoiser = (out / "generative" / "denoiser" / "denoiser.pt").string();
  }
  nlohmann::json skipped = nlohmann::json::object();  // model name → analysis → why
  for (std::size_t m = 0; m < command.models.size(); ++m) {
    const fs::path folder = out / "models" / names[m];
    const std::vector<std::string> model{"--model", command.models[m]};
    const auto add = [&](const std::string& analysis, std::vector<std::string> specific) {
      if (skipped_by_user(analysis)) {
        skipped[names[m]][analysis] = "left out with --skip";
        return;
      }
      specific.insert(specific.begin(), model.begin(), model.end());
      steps.push_back(make_step(command, names[m], analysis, folder / analysis, specific));
    };
    add("eval", {});
    add("attack", {"--save-examples"});
    add("explain", {});
    add("margins", {});
    add("spectral", {});
    add("upi", {});
    add("manifold", vae.empty() ? std::vector<std::string>{} : std::vector<std::string>{"--vae", vae});
    if (denoiser.empty()) {
      skipped[names[m]]["align"] = skipped_by_user("align")
                                       ? "left out with --skip"
                                       : "no denoiser: give --denoiser FILE (robustlens train-denoiser) "
                                         "or --fit-generative";
    } else {
      // The bayes pairing: the conditional one reads about 0 for every model, since the denoisers barely use the
      // label and s(x, y) is dominated by the class-independent pull towards the data (docs/manifold-and-alignment.md).
      add("align", {"--denoiser", denoiser, "--pairing", "bayes"});
    }
    if (!has_latent[m]) {
      skipped[names[m]]["latent"] =
          "the model exposes no latent code (a TorchScript model needs a method named latent)";
    } else if (skipped_by_user("latent")) {
      skipped[names[m]]["latent"] = "left out with --skip";
    }
  }
  std::vector<std::string> latent_models, latent_names;
  for (std::size_t m = 0; m < command.models.size(); ++m) {
    if (has_latent[m] && !skipped_by_user("latent")) {
      latent_models.insert(latent_models.end(), {"--model", command.models[m]});
      latent_names.insert(latent_names.end(), {"--name", names[m]});
    }
  }
  if (!latent_models.empty()) {
    latent_models.insert(latent_models.end(), latent_names.begin(), latent_names.end());
    steps.push_back(make_step(command, "", "latent", out / "latent", latent_models));
  }

  // The steps, each skipped when an earlier audit finished it with the same arguments and inputs.
  const auto started = std::chrono::steady_clock::now();
  std::size_t reused = 0;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const AuditStep& step = steps[s];
    const std::string label = (step.model.empty() ? "" : step.model + ": ") + step.analysis;
    const nlohmann::json record = step_record(step, shared_inputs);
    if (step_finished(step, record)) {
      std::printf("[audit %zu/%zu] %s: finished earlier, reused (%s)\n", s + 1, steps.size(), label.c_str(),
                  step.folder.c_str());
      keep_output(step.folder.string());
      ++reused;
      continue;
    }
    std::printf("\n[audit %zu/%zu] %s: %s\n", s + 1, steps.size(), label.c_str(), command_line(step.arguments).c_str());
    std::fflush(stdout);
    const auto step_start = std::chrono::steady_clock::now();
    fs::remove(step.folder / "audit_step.json");  // a step killed while rerunning must not count as finished
    run_step(step);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    nlohmann::json marker = record;
    marker["seconds"] = seconds;
    write_json_file((step.folder / "audit_step.json").string(), marker, OutputKind::kState);
    std::printf("[audit %zu/%zu] %s: done in %.1f s\n", s + 1, steps.size(), label.c_str(), seconds);
  }

  // One results file with every number, then the report built from it alone.
  nlohmann::json audit = run_record("audit",
                                    {{"models", command.models},
                                     {"names", names},
                                     {"quick", command.quick},
                                     {"vae", vae},
                                     {"denoiser", denoiser},
                                     {"fit_generative", command.fit_generative},
                                     {"skip", command.skip}},
                                    common);
  audit["versions"]["report_scripts"] = assets.versions;
  audit["data"] = test.summary();
  audit["models"] = nlohmann::json::array();
  for (std::size_t m = 0; m < command.models.size(); ++m) {
    nlohmann::json entry = {{"name", names[m]},
                            {"file", command.models[m]},
                            {"model", model_info[m]},
                            {"training", training_options(command.models[m])},
                            {"analyses", nlohmann::json::object()},
                            {"commands", nlohmann::json::object()},
                            {"skipped", skipped.value(names[m], nlohmann::json::object())}};
    audit["models"].push_back(entry);
  }
  for (const AuditStep& step : steps) {
    const std::string folder = step.folder.string();
    if (step.model.empty()) {
      nlohmann::json& target = step.analysis == "latent" ? audit["latent"] : audit["generative"][step.analysis];
      target = {{"command", command_line(step.arguments)},
                {"folder", folder},
                {"result", read_json_file((step.folder / result_file(step.analysis)).string())}};
      continue;
    }
    for (nlohmann::json& entry : audit["models"]) {
      if (entry["name"] != step.model) continue;
      entry["analyses"][step.analysis] = read_json_file((step.folder / result_file(step.analysis)).string());
      entry["commands"][step.analysis] = command_line(step.arguments);
      entry["folders"][step.analysis] = folder;
    }
  }
  audit["comparisons"] = training_comparisons(audit);
  audit["summary"] = audit_summary(audit);
  write_json_file((out / "audit.json").string(), audit);
  write_text_file((out / "index.html").string(), render_audit_report(audit, assets));

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("\n%s\n", summary_text(audit["summary"]).c_str());
  for (const std::string& line : comparison_lines(audit["comparisons"])) std::printf("%s\n", line.c_str());
  std::printf("%zu steps (%zu reused from an earlier run) in %.0f s; report in %s, every number in %s\n", steps.size(),
              reused, seconds, (out / "index.html").c_str(), (out / "audit.json").c_str());
}

}  // namespace

void add_audit_command(CLI::App& app) {
  auto command = std::make_shared<AuditCommand>();
  command->common.out = "report";
  CLI::App* sub = app.add_subcommand(
      "audit",
      "Every analysis on one or more models: one results JSON and one self-contained HTML report (OUT/index.html)");
  sub->add_option("--model", command->models, "Model file(s); repeat to compare models side by side")->required();
  sub->add_option("--name", command->names,
                  "A name per --model for the report and folders (default: each model's folder name)");
  add_common_options(*sub, command->common, kData | kBatchSize | kRuntime | kOut);
  sub->get_option("--batch-size")->each([command](const std::string&) { command->batch_size_given = true; });
  sub->add_flag("--quick", command->quick, "A first look: fewer samples per analysis (a few minutes per model)");
  sub->add_option("--vae", command->vae,
                  "VAE of the data (robustlens train-vae): tangent spaces for the manifold analysis");
  sub->add_option("--denoiser", command->denoiser,
                  "Denoiser of the data (robustlens train-denoiser): the score for the alignment analysis");
  sub->add_flag("--fit-generative", command->fit_generative,
                "Train the VAE and denoiser the manifold and alignment analyses need (OUT/generative), unless given");
  sub->add_option(
         "--skip", command->skip,
         "Analyses to leave out, comma list: eval, attack, explain, margins, spectral, upi, manifold, align, latent")
      ->delimiter(',');
  sub->callback([command] { run_audit(*command); });
}

}  // namespace robustlens::cli
