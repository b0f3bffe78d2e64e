#include "robustlens/core/files.h"
#include "robustlens/core/run_folder.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
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
  for (const std::string& name :
       std::vector<std::string>{"model.pt.tmp" + dead, "models/a/upi.json.tmp" + dead, "report.json.tmp" + alive,
                                "notes.tmp", "data.tmpfile", "upi.json"}) {
    testing::write_bytes(dir.file(name), "x");
  }
  EXPECT_EQ(remove_stale_temporaries(dir.path()), 2u);
  EXPECT_FALSE(fs::exists(dir.file("model.pt.tmp" + dead)));
  EXPECT_FALSE(fs::exists(dir.file("models/a/upi.json.tmp" + dead)));
  for (const std::string& kept :
       std::vector<std::string>{"report.json.tmp" + alive, "notes.tmp", "data.tmpfile", "upi.json"}) {
    EXPECT_TRUE(fs::exists(dir.file(kept))) << kept;
  }
  EXPECT_EQ(remove_stale_temporaries(dir.file("absent")), 0u);
}

/// The files below `folder`, relative, sorted.
std::set<std::string> files_below(const std::string& folder) {
  std::set<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (entry.is_regular_file()) files.insert(fs::relative(entry.path(), folder).generic_string());
  }
  return files;
}

/// A finished run on `folder` that writes each name with the text `text`.
void finished_run(const testing::TemporaryDirectory& dir, const std::vector<std::string>& names,
                  const std::string& text) {
  RunScope runs;
  open_run(dir.path());
  for (const std::string& name : names) write_text_file(dir.file(name), text);
  runs.commit();
}

TEST(RunFolder, OutputsAppearOnlyWhenTheRunCommits) {
  testing::TemporaryDirectory dir;
  RunScope runs;
  open_run(dir.path());
  write_text_file(dir.file("result.json"), "1");
  write_text_file(dir.file("figures/a.svg"), "<svg/>");
  write_text_file(dir.file("checkpoint.pt"), "state", OutputKind::kState);  // state is written at once
  EXPECT_EQ(files_below(dir.path()).count("result.json"), 0u);
  EXPECT_TRUE(fs::exists(dir.file("checkpoint.pt")));
  runs.commit();
  EXPECT_EQ(files_below(dir.path()),
            (std::set<std::string>{"checkpoint.pt", "figures/a.svg", "result.json", kRunManifestName}));
  EXPECT_EQ(read_text_file(dir.file("result.json")), "1");
  const nlohmann::json manifest = read_json_file(dir.file(kRunManifestName));
  EXPECT_EQ(manifest.at("outputs"), nlohmann::json({"figures/a.svg", "result.json"}));
}

TEST(RunFolder, AFailedRunLeavesThePreviousRunsOutputsAndNothingOfItsOwn) {
  testing::TemporaryDirectory dir;
  finished_run(dir, {"result.json"}, "first");
  const std::set<std::string> before = files_below(dir.path());
  try {
    RunScope runs;
    open_run(dir.path());
    write_text_file(dir.file("result.json"), "second");
    write_text_file(dir.file("extra.json"), "second");
    throw Error("the analysis failed");
  } catch (const Error&) {
  }
  EXPECT_EQ(files_below(dir.path()), before);
  EXPECT_EQ(read_text_file(dir.file("result.json")), "first");
}

TEST(RunFolder, ARerunReplacesThePreviousRunsOutputsAndKeepsOtherFiles) {
  testing::TemporaryDirectory dir;
  finished_run(dir, {"a.json", "old/b.json"}, "first");
  testing::write_bytes(dir.file("notes.txt"), "the user's");
  testing::write_bytes(dir.file("old/notes.txt"), "the user's");
  finished_run(dir, {"a.json", "c.json"}, "second");
  EXPECT_EQ(files_below(dir.path()),
            (std::set<std::string>{"a.json", "c.json", "notes.txt", "old/notes.txt", kRunManifestName}));
  EXPECT_EQ(read_text_file(dir.file("a.json")), "second");
}

TEST(RunFolder, NestedRunsCommitOnTheirOwnAndArePartsOfTheEnclosingRun) {
  testing::TemporaryDirectory dir;
  const auto audit = [&](const std::vector<std::string>& run_steps, const std::vector<std::string>& kept_steps,
                         bool fail_after_steps) {
    RunScope runs;
    open_run(dir.path());
    for (const std::string& step : run_steps) {
      fs::create_directories(dir.file(step));
      RunScope step_run;
      open_run(dir.file(step));
      write_text_file(dir.file(step + "/result.json"), step);
      step_run.commit();
    }
    for (const std::string& step : kept_steps) keep_output(dir.file(step));
    if (fail_after_steps) throw Error("the report failed");
    write_text_file(dir.file("audit.json"), "{}");
    runs.commit();
  };
  EXPECT_THROW(audit({"models/a/eval", "models/b/eval"}, {}, true), Error);
  // The finished steps stay (a rerun reuses them), marked unfinished; the audit's own output does not appear.
  EXPECT_EQ(files_below(dir.path()),
            (std::set<std::string>{kRunManifestName, "models/a/eval/result.json",
                                   std::string("models/a/eval/") + kRunManifestName, "models/b/eval/result.json",
                                   std::string("models/b/eval/") + kRunManifestName}));
  EXPECT_EQ(read_json_file(dir.file(kRunManifestName)).at("unfinished"),
            nlohmann::json({"models/a/eval", "models/b/eval"}));
  audit({}, {"models/a/eval"}, false);  // reuses a, drops b
  EXPECT_EQ(files_below(dir.path()), (std::set<std::string>{"audit.json", kRunManifestName, "models/a/eval/result.json",
                                                            std::string("models/a/eval/") + kRunManifestName}));
  EXPECT_EQ(read_json_file(dir.file(kRunManifestName)).at("parts"), nlohmann::json({"models/a/eval"}));
}

TEST(RunFolder, AKilledRunIsRemovedAndAKilledCommitIsFinished) {
  testing::TemporaryDirectory dir;
  finished_run(dir, {"a.json", "b.json"}, "first");
  const std::string dead = std::to_string(testing::exited_process_id());
  // Killed while computing: staged files and a finished nested run (part), no plan.
  testing::write_bytes(dir.file(".robustlens-staging-" + dead + "/files/a.json"), "killed");
  write_json_file(dir.file(".robustlens-staging-" + dead + "/parts.json"), {{"parts", {"sub"}}});
  // Killed while committing, below the folder: a.json moved already, b.json not, the old c.json not yet removed.
  fs::create_directories(dir.file("sub"));
  testing::write_bytes(dir.file("sub/a.json"), "second");
  testing::write_bytes(dir.file("sub/c.json"), "first");
  const std::string staging = "sub/.robustlens-staging-" + dead;
  testing::write_bytes(dir.file(staging + "/files/b.json"), "second");
  write_json_file(
      dir.file(staging + "/commit.json"),
      {{"move", {"a.json", "b.json"}},
       {"remove", {"c.json"}},
       {"manifest",
        {{"format", "robustlens-run"}, {"outputs", {"a.json", "b.json"}}, {"parts", nlohmann::json::array()}}}});
  RunScope runs;
  EXPECT_EQ(open_run(dir.path()), 2u);
  EXPECT_EQ(files_below(dir.path()), (std::set<std::string>{"a.json", "b.json", kRunManifestName, "sub/a.json",
                                                            "sub/b.json", std::string("sub/") + kRunManifestName}));
  EXPECT_EQ(read_text_file(dir.file("a.json")), "first");
  EXPECT_EQ(read_text_file(dir.file("sub/b.json")), "second");
  EXPECT_EQ(read_json_file(dir.file(kRunManifestName)).at("unfinished"), nlohmann::json({"sub"}));
}

TEST(RunFolder, AManifestThatNamesPathsOutsideItsFolderIsNotFollowed) {
  testing::TemporaryDirectory dir;
  fs::create_directories(dir.file("run"));
  testing::write_bytes(dir.file("precious.txt"), "keep");
  write_json_file(dir.file(std::string("run/") + kRunManifestName),
                  {{"outputs", {"../precious.txt"}}, {"parts", nlohmann::json::array()}});
  RunScope runs;
  open_run(dir.file("run"));
  write_text_file(dir.file("run/a.json"), "1");
  runs.commit();  // warns and leaves the previous outputs alone
  EXPECT_TRUE(fs::exists(dir.file("precious.txt")));
  EXPECT_TRUE(fs::exists(dir.file("run/a.json")));
}

}  // namespace
}  // namespace robustlens
