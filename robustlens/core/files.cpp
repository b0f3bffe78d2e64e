#include "robustlens/core/files.h"

#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/run_folder.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <torch/csrc/jit/serialization/pickle.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace robustlens {

namespace {

constexpr const char* kTemporarySuffix = ".tmp";

/// Flushes a file's or folder's data to the disk: a rename that survives a crash then never names a file
/// whose contents did not.
void sync_to_disk(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

/// The writer's process id when `name` is a temporary of write_file_atomically (NAME.tmpPID), else 0.
long temporary_owner(const std::string& name) {
  const std::size_t at = name.rfind(kTemporarySuffix);
  if (at == std::string::npos || at == 0) return 0;
  return parse_process_id(name.substr(at + std::char_traits<char>::length(kTemporarySuffix)));
}

}  // namespace

long parse_process_id(const std::string& digits) {
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stol(digits);
}

bool process_has_ended(long process_id) {
  // kill(pid, 0) fails with ESRCH only when no such process exists.
  return process_id > 0 && ::kill(static_cast<pid_t>(process_id), 0) != 0 && errno == ESRCH;
}

void write_file_atomically(const std::string& path, const std::function<void(const std::string&)>& write,
                           OutputKind kind) {
  if (!distributed::is_main_process()) return;  // the other ranks of a data-parallel run compute the same files
  namespace fs = std::filesystem;
  const fs::path target(kind == OutputKind::kOutput ? staged_output_path(path) : path);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  RL_CHECK(!ec, "cannot create directory '", target.parent_path().string(), "': ", ec.message());
  const std::string temporary = target.string() + kTemporarySuffix + std::to_string(getpid());
  try {
    write(temporary);
    sync_to_disk(temporary);
    fs::rename(temporary, target);
  } catch (...) {
    fs::remove(temporary, ec);
    throw;
  }
  sync_to_disk(target.has_parent_path() ? target.parent_path().string() : ".");
}

std::size_t remove_stale_temporaries(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> stale;
  for (fs::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const long owner = temporary_owner(it->path().filename().string());
    if (process_has_ended(owner)) stale.push_back(it->path());  // a live writer's file is left alone
  }
  std::size_t removed = 0;
  for (const fs::path& path : stale) removed += fs::remove(path, ec) ? 1 : 0;
  return removed;
}

void write_text_file(const std::string& path, const std::string& text, OutputKind kind) {
  write_file_atomically(
      path,
      [&](const std::string& temporary) {
        std::ofstream out(temporary, std::ios::binary);
        out << text;
        out.close();
        RL_CHECK(out.good(), "cannot write '", path, "'");
      },
      kind);
}

void write_json_file(const std::string& path, const nlohmann::json& json, OutputKind kind) {
  write_text_file(path, json.dump(2) + "\n", kind);
}

nlohmann::json tensor_to_json(const at::Tensor& values) {
  RL_CHECK(values.dim() == 1, "only 1-D tensors become JSON arrays, got shape ", values.sizes());
  const at::Tensor cpu = values.detach().to(at::kCPU);
  nlohmann::json array = nlohmann::json::array();
  if (at::isFloatingType(cpu.scalar_type())) {
    const at::Tensor d = cpu.to(at::kDouble).contiguous();
    for (std::int64_t i = 0; i < d.numel(); ++i) array.push_back(d.data_ptr<double>()[i]);
  } else {
    const at::Tensor l = cpu.to(at::kLong).contiguous();
    for (std::int64_t i = 0; i < l.numel(); ++i) array.push_back(l.data_ptr<std::int64_t>()[i]);
  }
  return array;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RL_CHECK(in.good(), "cannot open '", path, "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  RL_CHECK(!in.bad(), "cannot read '", path, "'");
  return bytes;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  RL_CHECK(in.good(), "cannot open '", path, "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    RL_CHECK(false, "'", path, "' is not valid JSON: ", error.what());
  }
  return {};
}

void write_tensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : tensors) dict.insert(name, tensor.detach().to(at::kCPU));
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
  write_file_atomically(path, [&](const std::string& temporary) {
    std::ofstream out(temporary, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    RL_CHECK(out.good(), "cannot write '", path, "'");
  });
}

}  // namespace robustlens
