#include "robustlens/report/files.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

namespace robustlens {
namespace {

namespace fs = std::filesystem;

TEST(WriteFileAtomically, LeavesTheOldFileWhenTheWriterFailsAndNoTemporary) {
  testing::TemporaryDirectory dir;
  write_text_file(dir.file("a.json"), "old");
  EXPECT_THROW(write_file_atomically(dir.file("a.json"),
                                     [](const std::string& temporary) {
                                       testing::write_bytes(temporary, "half");
                                       throw Error("disk full");
                                     }),
               Error);
  EXPECT_EQ(read_text_file(dir.file("a.json")), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(RemoveStaleTemporaries, RemovesOnlyTheFilesOfWritersThatNoLongerRun) {
  testing::TemporaryDirectory dir;
  const std::string dead = std::to_string(testing::exited_process_id()), alive = std::to_string(::getpid());
  fs::create_directories(dir.file("models/a"));
  for (const std::string& name : std::vector<std::string>{"model.pt.tmp" + dead, "models/a/upi.json.tmp" + dead,
                                                          "report.json.tmp" + alive, "notes.tmp", "data.tmpfile", "upi.json"}) {
    testing::write_bytes(dir.file(name), "x");
  }
  EXPECT_EQ(remove_stale_temporaries(dir.path()), 2u);
  EXPECT_FALSE(fs::exists(dir.file("model.pt.tmp" + dead)));
  EXPECT_FALSE(fs::exists(dir.file("models/a/upi.json.tmp" + dead)));
  for (const std::string& kept : std::vector<std::string>{"report.json.tmp" + alive, "notes.tmp", "data.tmpfile", "upi.json"}) {
    EXPECT_TRUE(fs::exists(dir.file(kept))) << kept;
  }
  EXPECT_EQ(remove_stale_temporaries(dir.file("absent")), 0u);
}

}  // namespace
}  // namespace robustlens
