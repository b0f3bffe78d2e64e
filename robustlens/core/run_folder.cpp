#include "robustlens/core/run_folder.h"
#include "robustlens/core/console.h"

#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <vector>

namespace robustlens {
namespace {

namespace fs = std::filesystem;

constexpr const char* kStagingPrefix = ".robustlens-staging-";
constexpr const char* kPlanName = "commit.json";   ///< in the staging folder, written before anything moves
constexpr const char* kStagedFilesName = "files";  ///< the staged outputs, under their paths relative to the folder
constexpr const char* kPartsName =
    "parts.json";  ///< in the staging folder: the parts so far, should the run not finish

struct OpenRun {
  fs::path folder;  ///< absolute and normal
  fs::path staging;
  std::set<std::string> outputs;  ///< relative to folder, written by this run
  std::set<std::string> parts;    ///< relative to folder: nested runs' folders and kept outputs
};

std::vector<OpenRun>& open_runs() {
  static std::vector<OpenRun> runs;
  return runs;
}

fs::path normal_absolute(const std::string& path) {
  fs::path normal = fs::absolute(path).lexically_normal();
  return normal.has_filename() ? normal : normal.parent_path();  // "a/b/" and "a/b" name the same folder
}

/// `path` relative to `folder` when it lies strictly below it.
std::optional<fs::path> relative_below(const fs::path& path, const fs::path& folder) {
  const fs::path relative = path.lexically_relative(folder);
  if (relative.empty() || relative == "." || *relative.begin() == "..") return std::nullopt;
  return relative;
}

/// Whether one of the two relative paths is the other or lies below it.
bool overlaps(const fs::path& a, const fs::path& b) {
  const auto below = [](const fs::path& path, const fs::path& folder) {
    const fs::path relative = path.lexically_relative(folder);
    return !relative.empty() && *relative.begin() != "..";
  };
  return below(a, b) || below(b, a);
}

/// A path read from a manifest or plan: relative, inside the folder, not a staging folder.
fs::path checked_relative(const std::string& text, const fs::path& file) {
  const fs::path path = fs::path(text).lexically_normal();
  RL_CHECK(!text.empty() && path.is_relative() && *path.begin() != ".." && path != "." &&
               path.begin()->string().rfind(kStagingPrefix, 0) != 0,
           "'", file.string(), "' lists '", text, "', which is not a path inside its folder");
  return path;
}

std::vector<std::string> listed(const nlohmann::json& json, const char* key, const fs::path& file) {
  std::vector<std::string> paths;
  const nlohmann::json list = json.value(key, nlohmann::json::array());
  RL_CHECK(list.is_array(), "'", file.string(), "': \"", key, "\" is not a list");
  for (const nlohmann::json& entry : list) {
    RL_CHECK(entry.is_string(), "'", file.string(), "': \"", key, "\" holds ", entry.dump(), ", not a path");
    paths.push_back(checked_relative(entry.get<std::string>(), file).generic_string());
  }
  return paths;
}

/// Carries out a commit plan: removes the previous run's outputs that the plan names, moves the staged files into
/// place, writes the manifest, removes the staging folder. Each action can be repeated, so that a commit killed
/// half-way is finished by running the plan again.
void apply_plan(const fs::path& folder, const fs::path& staging) {
  const fs::path plan_path = staging / kPlanName;
  const nlohmann::json plan = read_json_file(plan_path.string());
  std::error_code ec;
  for (const std::string& relative : listed(plan, "remove", plan_path)) fs::remove_all(folder / relative, ec);
  for (const std::string& relative : listed(plan, "move", plan_path)) {
    const fs::path staged = staging / kStagedFilesName / relative;
    if (!fs::exists(staged, ec)) continue;  // moved before the commit was killed
    fs::create_directories((folder / relative).parent_path(), ec);
    fs::rename(staged, folder / relative);
  }
  write_json_file((folder / kRunManifestName).string(), plan.at("manifest"), OutputKind::kState);
  fs::remove_all(staging, ec);
}

/// The paths of a folder's manifest (outputs, parts and unfinished parts); none when it has none or one that
/// cannot be read.
std::vector<std::string> previous_outputs(const fs::path& folder) {
  const fs::path manifest = folder / kRunManifestName;
  std::error_code ec;
  if (!fs::exists(manifest, ec)) return {};
  try {
    const nlohmann::json json = read_json_file(manifest.string());
    std::vector<std::string> paths;
    for (const char* key : {"outputs", "parts", "unfinished"}) {
      for (const std::string& path : listed(json, key, manifest)) paths.push_back(path);
    }
    return paths;
  } catch (const Error& error) {
    std::fprintf(stderr, "warning: %s; the previous run's outputs are left as they are\n", error.what());
    return {};
  }
}

/// Adds the parts that a run which did not finish committed (e.g. an audit's finished steps) to the folder's
/// manifest as "unfinished", so that the next run to commit there replaces them unless it reuses them.
void remember_unfinished_parts(const fs::path& folder, const std::vector<std::string>& parts) {
  if (parts.empty()) return;
  const fs::path manifest = folder / kRunManifestName;
  std::error_code ec;
  nlohmann::json json = {{"format", "robustlens-run"},
                         {"format_version", 1},
                         {"outputs", nlohmann::json::array()},
                         {"parts", nlohmann::json::array()}};
  if (fs::exists(manifest, ec)) json = read_json_file(manifest.string());
  std::set<std::string> unfinished;
  for (const std::string& path : listed(json, "unfinished", manifest)) unfinished.insert(path);
  unfinished.insert(parts.begin(), parts.end());
  json["unfinished"] = unfinished;
  write_json_file(manifest.string(), json, OutputKind::kState);
}

/// The parts that a run which did not finish left in its staging folder.
std::vector<std::string> staged_parts(const fs::path& staging) {
  const fs::path parts = staging / kPartsName;
  std::error_code ec;
  if (!fs::exists(parts, ec)) return {};
  return listed(read_json_file(parts.string()), "parts", parts);
}

void commit_run(const OpenRun& run) {
  std::vector<fs::path> current(run.outputs.begin(), run.outputs.end());
  current.insert(current.end(), run.parts.begin(), run.parts.end());
  nlohmann::json remove = nlohmann::json::array();
  for (const std::string& old : previous_outputs(run.folder)) {
    const bool still_used =
        std::any_of(current.begin(), current.end(), [&](const fs::path& p) { return overlaps(old, p); });
    if (!still_used) remove.push_back(old);
  }
  const nlohmann::json plan = {
      {"move", run.outputs},
      {"remove", remove},
      {"manifest",
       {{"format", "robustlens-run"}, {"format_version", 1}, {"outputs", run.outputs}, {"parts", run.parts}}}};
  write_json_file((run.staging / kPlanName).string(), plan, OutputKind::kState);
  apply_plan(run.folder, run.staging);
}

/// The innermost open run whose folder holds `path` strictly below it; none for a path in a staging folder.
OpenRun* run_holding(const fs::path& path, fs::path* relative) {
  for (const fs::path& component : path) {
    if (component.string().rfind(kStagingPrefix, 0) == 0) return nullptr;
  }
  for (auto run = open_runs().rbegin(); run != open_runs().rend(); ++run) {
    if (auto below = relative_below(path, run->folder)) {
      *relative = *below;
      return &*run;
    }
  }
  return nullptr;
}

/// Finishes or removes the staging folders that killed runs left at or below `folder`.
std::size_t recover_killed_runs(const fs::path& folder) {
  std::vector<fs::path> killed;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kStagingPrefix, 0) != 0 || !it->is_directory(ec)) continue;
    it.disable_recursion_pending();
    if (process_has_ended(parse_process_id(name.substr(std::char_traits<char>::length(kStagingPrefix))))) {
      killed.push_back(it->path());
    }
  }
  for (const fs::path& staging : killed) {
    if (fs::exists(staging / kPlanName, ec)) {
      apply_plan(staging.parent_path(), staging);
      console::print("finished the commit of a killed run in %s\n", staging.parent_path().c_str());
    } else {
      remember_unfinished_parts(staging.parent_path(), staged_parts(staging));
      fs::remove_all(staging, ec);
    }
  }
  return killed.size();
}

}  // namespace

std::size_t open_run(const std::string& folder) {
  const fs::path path = normal_absolute(folder);
  RL_CHECK(fs::is_directory(path), "cannot open a run on '", folder, "': not a folder");
  if (!distributed::is_main_process()) return 0;  // the main process alone writes the outputs
  const std::size_t recovered = recover_killed_runs(path);
  OpenRun run{path, path / (kStagingPrefix + std::to_string(::getpid())), {}, {}};
  std::error_code ec;
  fs::remove_all(run.staging, ec);  // an earlier run of this process on the same folder that was not closed
  open_runs().push_back(std::move(run));
  return recovered;
}

std::string staged_output_path(const std::string& path) {
  fs::path relative;
  OpenRun* run = run_holding(normal_absolute(path), &relative);
  if (run == nullptr) return path;
  run->outputs.insert(relative.generic_string());
  return (run->staging / kStagedFilesName / relative).string();
}

void keep_output(const std::string& path) {
  fs::path relative;
  OpenRun* run = run_holding(normal_absolute(path), &relative);
  if (run == nullptr || !run->parts.insert(relative.generic_string()).second) return;
  // Recorded at once: should the run be killed, the next one knows whose they were.
  write_json_file((run->staging / kPartsName).string(), {{"parts", run->parts}}, OutputKind::kState);
}

RunScope::RunScope() : first_(open_runs().size()) {}

RunScope::~RunScope() {
  while (open_runs().size() > first_) {
    const OpenRun& run = open_runs().back();
    try {
      remember_unfinished_parts(run.folder, {run.parts.begin(), run.parts.end()});
    } catch (const std::exception& error) {
      std::fprintf(stderr, "warning: %s\n", error.what());
    }
    std::error_code ec;
    fs::remove_all(run.staging, ec);
    open_runs().pop_back();
  }
}

void RunScope::commit() {
  while (open_runs().size() > first_) {
    const OpenRun run = std::move(open_runs().back());
    open_runs().pop_back();
    commit_run(run);
    keep_output(run.folder.string());  // a nested run's folder is an output of the run around it
  }
}

}  // namespace robustlens
