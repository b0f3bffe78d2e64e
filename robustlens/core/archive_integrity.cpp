#include "robustlens/core/archive_integrity.h"

#include "robustlens/core/error.h"

#include <caffe2/serialize/inline_container.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

namespace robustlens {
namespace {

/// The central directory may take at most this much memory (PyTorch writes about 100 bytes per record).
constexpr std::uint64_t kMaxDirectoryBytes = std::uint64_t{64} << 20;

std::uint64_t little_endian(const std::vector<char>& bytes, std::size_t at, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = width; i-- > 0;) value = value << 8 | static_cast<std::uint8_t>(bytes.at(at + i));
  return value;
}

std::vector<char> read_range(std::ifstream& in, std::uint64_t offset, std::uint64_t size) {
  std::vector<char> bytes(size);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uint64_t>(in.gcount()) != size) bytes.clear();
  return bytes;
}

std::string hex32(std::uint64_t value) {
  char text[11];
  std::snprintf(text, sizeof(text), "0x%08llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

void check_archive_records(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  RL_CHECK(in.good(), what, " cannot be opened");
  const std::uint64_t file_size = static_cast<std::uint64_t>(in.tellg());
  const auto damaged = [&](const auto&... parts) {
    return Error(detail::concat(what, " is damaged (", parts..., "); it cannot be read"));
  };

  // The end-of-directory record: the last "PK\5\6" within the final 64 KiB + 22 bytes (its comment comes last).
  const std::uint64_t tail_size = std::min<std::uint64_t>(file_size, 65557);
  const std::vector<char> tail = read_range(in, file_size - tail_size, tail_size);
  std::size_t end_record = std::string::npos;
  for (std::size_t i = tail.size() >= 22 ? tail.size() - 22 + 1 : 0; i-- > 0;) {
    if (tail[i] == 'P' && tail[i + 1] == 'K' && tail[i + 2] == 5 && tail[i + 3] == 6) {
      end_record = i;
      break;
    }
  }
  if (end_record == std::string::npos) throw damaged("no zip directory at its end");
  std::uint64_t entries = little_endian(tail, end_record + 10, 2);
  std::uint64_t directory_size = little_endian(tail, end_record + 12, 4);
  std::uint64_t directory_offset = little_endian(tail, end_record + 16, 4);
  if (entries == 0xFFFF || directory_size == 0xFFFFFFFF || directory_offset == 0xFFFFFFFF) {
    // ZIP64 (archives over 4 GiB): the locator just before the record points at the ZIP64 end record.
    if (end_record < 20 || little_endian(tail, end_record - 20, 4) != 0x07064b50) throw damaged("no ZIP64 locator");
    const std::uint64_t zip64_offset = little_endian(tail, end_record - 20 + 8, 8);
    const std::vector<char> zip64 = read_range(in, zip64_offset, 56);
    if (zip64.empty() || little_endian(zip64, 0, 4) != 0x06064b50) throw damaged("no ZIP64 directory record");
    entries = little_endian(zip64, 32, 8);
    directory_size = little_endian(zip64, 40, 8);
    directory_offset = little_endian(zip64, 48, 8);
  }
  if (directory_size > kMaxDirectoryBytes || directory_offset + directory_size > file_size) {
    throw damaged("its zip directory of ", directory_size, " bytes at ", directory_offset, " lies outside the file");
  }
  const std::vector<char> directory = read_range(in, directory_offset, directory_size);
  if (directory.size() != directory_size) throw damaged("its zip directory cannot be read");

  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const std::exception& error) {
    throw damaged(first_line(error.what()));
  }
  std::size_t at = 0;
  for (std::uint64_t entry = 0; entry < entries; ++entry) {
    if (at + 46 > directory.size() || little_endian(directory, at, 4) != 0x02014b50) {
      throw damaged("zip directory entry ", entry, " of ", entries, " is malformed");
    }
    const std::uint64_t stored_crc = little_endian(directory, at + 16, 4);
    const std::size_t name_size = little_endian(directory, at + 28, 2);
    const std::size_t next =
        at + 46 + name_size + little_endian(directory, at + 30, 2) + little_endian(directory, at + 32, 2);
    if (next > directory.size()) throw damaged("zip directory entry ", entry, " runs past the directory");
    const std::string name(directory.data() + at + 46, name_size);
    at = next;
    // LibTorch names records relative to the archive's top folder.
    const std::size_t slash = name.find('/');
    if (slash == std::string::npos || name.back() == '/') continue;
    const std::string record = name.substr(slash + 1);
    std::uint64_t crc = 0;
    try {
      const auto [data, size] = reader->getRecord(record);
      crc = crc32(0, nullptr, 0);
      const auto* bytes = static_cast<const Bytef*>(data.get());
      for (std::size_t done = 0; done < size;) {
        const auto chunk = static_cast<uInt>(std::min<std::size_t>(size - done, 1u << 30));
        crc = crc32(crc, bytes + done, chunk);
        done += chunk;
      }
    } catch (const std::exception& error) {
      throw damaged("record '", record, "': ", first_line(error.what()));
    }
    if (crc != stored_crc) {
      throw damaged("record '", record, "' does not match its CRC-32: stored ", hex32(stored_crc), ", computed ",
                    hex32(crc));
    }
  }
}

}  // namespace robustlens
