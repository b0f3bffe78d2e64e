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
#include "analysis_registry.h"
#include "audit_records.h"
#include "audit_report.h"
#include "commands.h"
#include "common.h"

#include "robustlens/core/checksum.h"
#include "robustlens/core/console.h"
#include "robustlens/core/distributed.h"
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
  const bool trains = registered_analysis(analysis).scope == AuditScope::kGenerative;
  if (command.batch_size_given && !trains) {
    arguments.insert(arguments.end(), {"--batch-size", std::to_string(command.common.batch_size)});
  }
  if (command.quick) {
    std::vector<std::string> quick = registered_analysis(analysis).quick_arguments;
    // Never more images than the split has (the generative steps draw --samples from the training split).
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
  nlohmann::json record = {{"arguments", arguments},
                           {"inputs", inputs},
                           {"record_format", registered_analysis(step.analysis).record_format}};
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
  make_app(app);
  const std::string where =
      "audit step '" + step.analysis + "'" + (step.model.empty() ? "" : " of model '" + step.model + "'");
  const std::string how =
      " (finished steps are kept: rerun the audit to continue; the step alone: " + command_line(step.arguments) + ")";
  try {
    run_command(app, step.arguments);  // the step's outputs appear when it finishes
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

void check_audit_command(const AuditCommand& command, const std::vector<std::string>& names) {
  RL_CHECK(!command.models.empty(), "--model: give at least one model");
  for (const std::string& skipped : command.skip) {
    const bool known = std::any_of(analysis_registry().begin(), analysis_registry().end(), [&](const Analysis& a) {
      return a.name == skipped && a.scope != AuditScope::kGenerative;
    });
    RL_CHECK(known, "--skip: unknown analysis '", skipped, "' (expected some of ", skippable_analyses(), ")");
  }
  for (const auto& [flag, path] : {std::pair{"--vae", command.vae}, std::pair{"--denoiser", command.denoiser}}) {
    RL_CHECK(path.empty() || fs::is_regular_file(path), flag, ": no such file '", path, "'");
  }
  for (const std::string& name : names) check_name(name);
}

/// What the steps depend on besides their arguments, and what the models can do, read before anything runs.
struct AuditInputs {
  Dataset test;
  /// The data's content (a file replaced under the same --data) and this build: every step depends on them.
  nlohmann::json shared;
  std::vector<bool> has_latent;
  nlohmann::json model_info = nlohmann::json::array();
};

AuditInputs read_audit_inputs(AuditCommand& command, const at::Device& device) {
  AuditInputs inputs;
  inputs.test = load_data(command.common, "test");
  command.test_size = inputs.test.size();
  const Dataset train = load_data(command.common, "train");
  command.train_size = train.size();
  inputs.shared = {{"data",
                    {{"test", data_checksum(inputs.test.images, inputs.test.labels)},
                     {"train", data_checksum(train.images, train.labels)}}},
                   {"build", build_fingerprint()}};
  // Every model must fit the data before anything runs; which of them expose a latent code decides the latent step.
  for (const std::string& path : command.models) {
    CommonOptions model_options = command.common;
    model_options.model = path;
    const auto model = load_model_for(model_options, inputs.test, device);
    inputs.has_latent.push_back(model->has_latent());
    inputs.model_info.push_back(model->info().to_json());
  }
  return inputs;
}

/// The steps of an audit, and per model the analyses it leaves out and why.
struct AuditPlan {
  std::vector<AuditStep> steps;
  nlohmann::json skipped = nlohmann::json::object();  ///< model name → analysis → why
  std::string vae, denoiser;                          ///< the generative models the steps use ("" = none)
};

bool skipped_by_user(const AuditCommand& command, const std::string& analysis) {
  return std::find(command.skip.begin(), command.skip.end(), analysis) != command.skip.end();
}

/// The steps that fit the VAE and the denoiser, where --fit-generative asks and an analysis left in needs them.
void plan_generative_steps(const AuditCommand& command, AuditPlan& plan) {
  for (const Analysis& generative : analysis_registry()) {
    if (generative.scope != AuditScope::kGenerative || !command.fit_generative) continue;
    std::string& file = generative.needs == kDenoiser ? plan.denoiser : plan.vae;
    const bool needed = std::any_of(analysis_registry().begin(), analysis_registry().end(), [&](const Analysis& a) {
      return a.scope != AuditScope::kGenerative && (a.needs & generative.needs) && !skipped_by_user(command, a.name);
    });
    if (!file.empty() || !needed) continue;
    const fs::path folder = fs::path(command.common.out) / "generative" / fs::path(generative.model_file).stem();
    plan.steps.push_back(make_step(command, "", generative.name, folder, generative.audit_arguments));
    file = (folder / generative.model_file).string();
  }
}

/// Why model m cannot run `analysis`, or "" when it can.
std::string why_not(const AuditCommand& command, const AuditPlan& plan, const AuditInputs& inputs,
                    const Analysis& analysis, std::size_t m) {
  if (skipped_by_user(command, analysis.name)) return "left out with --skip";
  if ((analysis.needs & kDenoiser) && plan.denoiser.empty()) {
    return "no denoiser: give --denoiser FILE (robustlens train-denoiser) or --fit-generative";
  }
  if ((analysis.needs & kLatentCode) && !inputs.has_latent[m]) {
    return "the model exposes no latent code (a TorchScript model needs a method named latent)";
  }
  return "";
}

/// The options a step takes for what its analysis needs, then those the audit always adds.
std::vector<std::string> requirement_arguments(const Analysis& analysis, const AuditPlan& plan) {
  std::vector<std::string> arguments;
  if ((analysis.needs & kVaeIfAny) && !plan.vae.empty()) arguments.insert(arguments.end(), {"--vae", plan.vae});
  if (analysis.needs & kDenoiser) arguments.insert(arguments.end(), {"--denoiser", plan.denoiser});
  arguments.insert(arguments.end(), analysis.audit_arguments.begin(), analysis.audit_arguments.end());
  return arguments;
}

AuditPlan plan_audit(const AuditCommand& command, const std::vector<std::string>& names, const AuditInputs& inputs) {
  AuditPlan plan{{}, nlohmann::json::object(), command.vae, command.denoiser};
  plan_generative_steps(command, plan);
  const fs::path out(command.common.out);
  for (std::size_t m = 0; m < command.models.size(); ++m) {  // model by model, each analysis in turn
    for (const Analysis& analysis : analysis_registry()) {
      if (analysis.scope == AuditScope::kGenerative) continue;
      const std::string why = why_not(command, plan, inputs, analysis, m);
      if (!why.empty()) plan.skipped[names[m]][analysis.name] = why;
      if (!why.empty() || analysis.scope != AuditScope::kPerModel) continue;
      std::vector<std::string> arguments{"--model", command.models[m]};
      for (const std::string& a : requirement_arguments(analysis, plan)) arguments.push_back(a);
      plan.steps.push_back(
          make_step(command, names[m], analysis.name, out / "models" / names[m] / analysis.name, arguments));
    }
  }
  for (const Analysis& analysis : analysis_registry()) {  // one step over every model that can run it
    if (analysis.scope != AuditScope::kAllModels) continue;
    std::vector<std::string> models, model_names;
    for (std::size_t m = 0; m < command.models.size(); ++m) {
      if (!why_not(command, plan, inputs, analysis, m).empty()) continue;
      models.insert(models.end(), {"--model", command.models[m]});
      model_names.insert(model_names.end(), {"--name", names[m]});
    }
    if (models.empty()) continue;
    models.insert(models.end(), model_names.begin(), model_names.end());
    for (const std::string& a : requirement_arguments(analysis, plan)) models.push_back(a);
    plan.steps.push_back(make_step(command, "", analysis.name, out / analysis.name, models));
  }
  return plan;
}

/// Runs the steps, each skipped when an earlier audit finished it with the same arguments and inputs; returns
/// how many were reused.
std::size_t run_steps(const std::vector<AuditStep>& steps, const nlohmann::json& shared_inputs) {
  std::size_t reused = 0;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const AuditStep& step = steps[s];
    const std::string label = (step.model.empty() ? "" : step.model + ": ") + step.analysis;
    const nlohmann::json record = step_record(step, shared_inputs);
    // Rank 0's view of the folder decides for every rank of a data-parallel run (core/distributed.h).
    if (distributed::main_process_says(step_finished(step, record))) {
      console::print("[audit %zu/%zu] %s: finished earlier, reused (%s)\n", s + 1, steps.size(), label.c_str(),
                     step.folder.c_str());
      keep_output(step.folder.string());
      ++reused;
      continue;
    }
    console::print("\n[audit %zu/%zu] %s: %s\n", s + 1, steps.size(), label.c_str(),
                   command_line(step.arguments).c_str());
    std::fflush(stdout);
    const auto step_start = std::chrono::steady_clock::now();
    // A step killed while rerunning must not count as finished.
    if (distributed::is_main_process()) fs::remove(step.folder / "audit_step.json");
    run_step(step);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    nlohmann::json marker = record;
    marker["seconds"] = seconds;
    write_json_file((step.folder / "audit_step.json").string(), marker, OutputKind::kState);
    distributed::barrier();  // the other ranks read what rank 0 wrote (a fitted VAE, the step's results)
    console::print("[audit %zu/%zu] %s: done in %.1f s\n", s + 1, steps.size(), label.c_str(), seconds);
  }
  return reused;
}

/// Every step's results in one record: audit.json without its summary and comparisons.
nlohmann::json audit_record(const AuditCommand& command, const std::vector<std::string>& names, const AuditPlan& plan,
                            const AuditInputs& inputs, const WebAssets& assets) {
  nlohmann::json audit = run_record("audit",
                                    {{"models", command.models},
                                     {"names", names},
                                     {"quick", command.quick},
                                     {"vae", plan.vae},
                                     {"denoiser", plan.denoiser},
                                     {"fit_generative", command.fit_generative},
                                     {"skip", command.skip}},
                                    command.common);
  audit["versions"]["report_scripts"] = assets.versions;
  audit["data"] = inputs.test.summary();
  audit["models"] = nlohmann::json::array();
  for (std::size_t m = 0; m < command.models.size(); ++m) {
    audit["models"].push_back({{"name", names[m]},
                               {"file", command.models[m]},
                               {"model", inputs.model_info[m]},
                               {"training", training_options(command.models[m])},
                               {"analyses", nlohmann::json::object()},
                               {"commands", nlohmann::json::object()},
                               {"skipped", plan.skipped.value(names[m], nlohmann::json::object())}});
  }
  for (const AuditStep& step : plan.steps) {
    const Analysis& analysis = registered_analysis(step.analysis);
    const nlohmann::json result = read_json_file((step.folder / analysis.result_file).string());
    if (step.model.empty()) {
      nlohmann::json& target =
          analysis.scope == AuditScope::kGenerative ? audit["generative"][step.analysis] : audit[step.analysis];
      target = {{"command", command_line(step.arguments)}, {"folder", step.folder.string()}, {"result", result}};
      continue;
    }
    for (nlohmann::json& entry : audit["models"]) {
      if (entry["name"] != step.model) continue;
      entry["analyses"][step.analysis] = result;
      entry["commands"][step.analysis] = command_line(step.arguments);
      entry["folders"][step.analysis] = step.folder.string();
    }
  }
  return audit;
}

void run_audit(AuditCommand command) {
  const std::vector<std::string> names = model_names(command.models, command.names);
  check_audit_command(command, names);
  const WebAssets assets = load_web_assets();  // before any work: a report that cannot be written is an error now
  const at::Device device = start_run(command.common);
  const AuditInputs inputs = read_audit_inputs(command, device);
  const AuditPlan plan = plan_audit(command, names, inputs);
  const auto started = std::chrono::steady_clock::now();
  const std::size_t reused = run_steps(plan.steps, inputs.shared);

  // One results file with every number, then the report built from it alone.
  nlohmann::json audit = audit_record(command, names, plan, inputs, assets);
  audit["comparisons"] = training_comparisons(audit);
  audit["summary"] = audit_summary(audit);
  const fs::path out(command.common.out);
  write_json_file((out / "audit.json").string(), audit);
  write_text_file((out / "index.html").string(), render_audit_report(audit, assets));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  console::print("\n%s\n", summary_text(audit["summary"]).c_str());
  for (const std::string& line : comparison_lines(audit["comparisons"])) console::print("%s\n", line.c_str());
  console::print("%zu steps (%zu reused from an earlier run) in %.0f s; report in %s, every number in %s\n",
                 plan.steps.size(), reused, seconds, (out / "index.html").c_str(), (out / "audit.json").c_str());
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
  sub->add_option("--skip", command->skip, "Analyses to leave out, comma list: " + skippable_analyses())
      ->delimiter(',');
  sub->callback([command] { run_audit(*command); });
}

}  // namespace robustlens::cli
