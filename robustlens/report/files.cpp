#include "robustlens/report/files.h"

#include "robustlens/core/error.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace robustlens {

void write_file_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  RL_CHECK(!ec, "cannot create directory '", target.parent_path().string(), "': ", ec.message());
  const std::string temporary = path + ".tmp" + std::to_string(getpid());
  try {
    write(temporary);
    fs::rename(temporary, target);
  } catch (...) {
    fs::remove(temporary, ec);
    throw;
  }
}

void write_text_file(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](const std::string& temporary) {
    std::ofstream out(temporary, std::ios::binary);
    out << text;
    out.close();
    RL_CHECK(out.good(), "cannot write '", path, "'");
  });
}

void write_json_file(const std::string& path, const nlohmann::json& json) {
  write_text_file(path, json.dump(2) + "\n");
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

}  // namespace robustlens
