// The audit end to end: every analysis on two models, its numbers against the
// subcommands run alone, resuming, bad input, and the report as a browser shows
// it (Debian's chromium, installed by scripts/test.sh).
#include "robustlens/core/files.h"
#include "robustlens/data/image_folder.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace robustlens {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::run_cli;
using testing::run_shell;

/// Two small MLPs (with and without the binary-encoding bottleneck) on 3-class
/// 12×12 images (SSIM, in the alignment analysis, needs at least 11×11).
class CliAudit : public testing::CliOnIdxData {
 protected:
  void SetUp() override {
    testing::write_idx_dataset(data_.path(), testing::linear_rule_dataset(240, {1, 12, 12}, 3, 11),
                               testing::linear_rule_dataset(60, {1, 12, 12}, 3, 12));
    for (const std::string head : {"nopen", "binenc"}) {
      const auto trained =
          run_cli("train --arch mlp --width 32 --head " + head + " --epochs 3 --batch-size 32 --threads 1 --out " +
                  out_.file("models/" + head) + data_arg());
      ASSERT_EQ(trained.exit_code, 0) << trained.output;
    }
  }
  std::string model(const std::string& head) const { return out_.file("models/" + head + "/model.pt"); }
  /// The quick audit of both models (analyses' samples capped for speed), into OUT/NAME.
  testing::CommandResult audit(const std::string& folder, const std::string& extra = " --threads 1") const {
    return run_cli("audit --quick --fit-generative --model " + model("nopen") + " --model " + model("binenc") +
                   data_arg() + " --out " + out_.file(folder) + extra);
  }
};

/// The same JSON without the fields that name the output folder.
nlohmann::json without_out(nlohmann::json record) {
  record["common"].erase("out");
  return record;
}

TEST_F(CliAudit, RunsEveryAnalysisAndReportsTheSubcommandsNumbers) {
  const auto audited = audit("audit");
  ASSERT_EQ(audited.exit_code, 0) << audited.output;
  const nlohmann::json audit_json = read_json_file(out_.file("audit/audit.json"));
  ASSERT_EQ(audit_json.at("models").size(), 2u);
  EXPECT_EQ(audit_json.at("seed"), 0);
  EXPECT_TRUE(audit_json.at("versions").contains("libtorch"));
  EXPECT_TRUE(audit_json.at("versions").at("report_scripts").contains("vega-lite"));
  for (const nlohmann::json& model : audit_json.at("models")) {
    for (const std::string analysis :
         {"eval", "attack", "explain", "margins", "spectral", "upi", "manifold", "align"}) {
      EXPECT_TRUE(model.at("analyses").contains(analysis)) << model.at("name") << " " << analysis;
    }
  }
  EXPECT_EQ(audit_json.at("latent").at("result").at("models").size(), 2u);

  // Each step's command, run alone into another folder, writes the same record.
  const nlohmann::json& nopen = audit_json.at("models").at(0);
  EXPECT_EQ(nopen.at("name"), "nopen");
  for (const std::string analysis : {"margins", "spectral", "attack"}) {
    std::string command = nopen.at("commands").at(analysis).get<std::string>();
    ASSERT_EQ(command.rfind("robustlens ", 0), 0u) << command;
    command = command.substr(11);
    command.replace(command.find("--out "), std::string::npos, "--out " + out_.file("alone/" + analysis));
    const auto alone = run_cli(command);
    ASSERT_EQ(alone.exit_code, 0) << alone.output;
    const std::string file = out_.file("alone/" + analysis + "/" + analysis + ".json");
    EXPECT_EQ(without_out(read_json_file(file)), without_out(nopen.at("analyses").at(analysis))) << analysis;
  }

  // The summary repeats the records' numbers.
  const nlohmann::json& row = audit_json.at("summary").at("rows").at(1);
  const nlohmann::json& binenc = audit_json.at("models").at(1).at("analyses");
  EXPECT_EQ(row.at("model"), "binenc");
  EXPECT_EQ(row.at("values").at("accuracy"), binenc.at("eval").at("accuracy"));
  testing::expect_minimum_consistent_with_robust_accuracy(binenc.at("attack"));
  // Robust accuracy at the eps nearest 0.5 (0.5 is on the default list) under the whole ensemble.
  for (const nlohmann::json& entry : binenc.at("attack").at("minimal_perturbation").at("robust_accuracy")) {
    if (entry.at("eps") == 0.5) EXPECT_EQ(row.at("values").at("robust_accuracy"), entry.at("robust_accuracy"));
  }
  EXPECT_EQ(row.at("values").at("minimal_perturbation"),
            binenc.at("attack").at("minimal_perturbation").at("quartiles_of_correct").at("median"));
  EXPECT_NEAR(row.at("values").at("spectral_score").get<double>(),
              binenc.at("spectral").at("signed_score").get<double>(), 1e-12);
  EXPECT_NEAR(std::abs(binenc.at("spectral").at("signed_score").get<double>()),
              binenc.at("spectral").at("score").get<double>(), 1e-12);
  EXPECT_EQ(row.at("values").at("alignment"), binenc.at("align").at("mean_cosine"));
  EXPECT_EQ(binenc.at("align").at("options").at("pairing"), "bayes");
  EXPECT_EQ(row.at("values").at("same_encoding"), audit_json.at("latent")
                                                      .at("result")
                                                      .at("models")
                                                      .at(1)
                                                      .at("result")
                                                      .at("encoding")
                                                      .at("test")
                                                      .at("same_encoding_fraction"));
  EXPECT_NEAR(
      row.at("values").at("margin_low").get<double>(),
      binenc.at("margins").at("per_subspace").at(0).at("with_lower_bounds").at("quartiles").at("median").get<double>(),
      1e-9);
  EXPECT_EQ(
      row.at("lower_bounds").contains("margin_low"),
      binenc.at("margins").at("per_subspace").at(0).at("with_lower_bounds").at("median_is_lower_bound").get<bool>());
  // UPI at the median minimal perturbation of the images it is scored on, which is on its list of radii.
  const nlohmann::json& upi = binenc.at("upi");
  const nlohmann::json& upi_summary = upi.at("summary");
  EXPECT_GT(upi_summary.at("eps").get<double>(), 0);
  const auto& per_eps = upi.at("per_eps");
  EXPECT_TRUE(std::any_of(per_eps.begin(), per_eps.end(), [&](const nlohmann::json& e) {
    return e.at("eps") == upi_summary.at("eps") && e.at("metrics") == upi_summary.at("metrics");
  })) << upi.dump();
  EXPECT_EQ(row.at("values").at("upi"), upi_summary.at("metrics").at("upi-grad").at("dissimilarity_unchanged"));
  EXPECT_EQ(row.at("values").at("upi_fooling"), upi_summary.at("metrics").at("upi-grad").at("fooling_rate"));
  EXPECT_EQ(row.at("values").at("upi_random"),
            upi_summary.at("metrics").at("universal-random").at("dissimilarity_unchanged"));
  EXPECT_EQ(row.at("values").at("upi_floor"), upi.at("floor").at("metrics").at("universal-random").at("dissimilarity"));
  EXPECT_EQ(upi_summary.at("metrics").at("universal-random").at("draws"), 5);

  // Each model against the most similar other one: the two were trained alike but for the head.
  const nlohmann::json& comparison = audit_json.at("comparisons").at(1);
  EXPECT_EQ(comparison.at("model"), "binenc");
  EXPECT_EQ(comparison.at("compared_with"), "nopen");
  std::set<std::string> differing;
  for (const nlohmann::json& difference : comparison.at("differences")) differing.insert(difference.at("option"));
  EXPECT_EQ(differing, (std::set<std::string>{"architecture.bottleneck", "architecture.head", "recipe.latent_penalty"}))
      << comparison.dump();
  EXPECT_TRUE(contains(audited.output, "binenc differs from nopen in architecture.bottleneck")) << audited.output;

  const std::string page = read_text_file(out_.file("audit/index.html"));
  for (const std::string section :
       {"id=\"summary\"", "id=\"robustness\"", "id=\"explanations\"", "id=\"margins\"", "id=\"spectral\"", "id=\"upi\"",
        "id=\"manifold\"", "id=\"alignment\"", "id=\"latent\"", "id=\"reproduce\"", "<td>binenc</td>",
        "data:image/png;base64,", "binenc differs from nopen in"}) {
    EXPECT_TRUE(contains(page, section)) << section;
  }
  EXPECT_FALSE(contains(page, "src=\"http")) << "the report must not load anything from the network";
}

TEST_F(CliAudit, ContinuesWhereItStoppedAndRedoesOnlyWhatChanged) {
  ASSERT_EQ(audit("audit").exit_code, 0);
  const auto again = audit("audit", " --threads 2");  // another thread count computes the same: nothing is redone
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "(19 reused from an earlier run)")) << again.output;

  // A step killed half-way leaves no marker: only it runs again.
  fs::remove(out_.file("audit/models/binenc/upi/audit_step.json"));
  const auto resumed = audit("audit");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "(18 reused from an earlier run)")) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "binenc: upi: robustlens upi")) << resumed.output;

  // A step written by an older robustlens, whose record lacks what the summary now reads, runs again.
  nlohmann::json marker = read_json_file(out_.file("audit/models/binenc/attack/audit_step.json"));
  ASSERT_EQ(marker.at("record_format"), 3);
  marker.erase("record_format");
  write_json_file(out_.file("audit/models/binenc/attack/audit_step.json"), marker);
  // A record with values of the wrong types (damaged, or hand-edited) is not a finished step either.
  write_json_file(out_.file("audit/models/binenc/spectral/audit_step.json"),
                  {{"record_format", "three"}, {"arguments", 5}});
  const auto upgraded = audit("audit");
  ASSERT_EQ(upgraded.exit_code, 0) << upgraded.output;
  EXPECT_TRUE(contains(upgraded.output, "(17 reused from an earlier run)")) << upgraded.output;
  EXPECT_TRUE(contains(upgraded.output, "binenc: attack: robustlens attack")) << upgraded.output;
  EXPECT_TRUE(contains(upgraded.output, "binenc: spectral: robustlens spectral")) << upgraded.output;

  // A step finished by another build of robustlens, or on other data under the same --data, runs again.
  for (const auto& [step, key] :
       std::vector<std::pair<std::string, std::string>>{{"binenc/explain", "build"}, {"nopen/eval", "data"}}) {
    const std::string path = out_.file("audit/models/" + step + "/audit_step.json");
    nlohmann::json finished = read_json_file(path);
    ASSERT_TRUE(finished.contains(key)) << step;
    finished[key] = "another";
    write_json_file(path, finished);
  }
  const auto rebuilt = audit("audit");
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt.output;
  EXPECT_TRUE(contains(rebuilt.output, "(17 reused from an earlier run)")) << rebuilt.output;
  EXPECT_TRUE(contains(rebuilt.output, "binenc: explain: robustlens explain")) << rebuilt.output;
  EXPECT_TRUE(contains(rebuilt.output, "nopen: eval: robustlens eval")) << rebuilt.output;

  // A retrained model is analysed again, and so is the latent step that compares it.
  const auto retrained = run_cli(
      "train --arch mlp --width 32 --head nopen --epochs 3 --batch-size 32 --seed 5 --threads 1 "
      "--restart --out " +
      out_.file("models/nopen") + data_arg());
  ASSERT_EQ(retrained.exit_code, 0) << retrained.output;
  const auto changed = audit("audit");
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  EXPECT_TRUE(contains(changed.output, "(10 reused from an earlier run)")) << changed.output;
}

TEST_F(CliAudit, BadInputGetsOneClearMessageAndNoReport) {
  for (const auto& [arguments, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"audit --model " + out_.file("missing.pt"), "missing.pt"},
           {"audit --model " + model("nopen") + " --skip margins,colour", "--skip: unknown analysis 'colour'"},
           {"audit --model " + model("nopen") + " --name a --name b", "one name per --model"},
           {"audit --model " + model("nopen") + " --name a/b", "cannot name a folder"},
           {"audit --model " + model("nopen") + " --vae " + out_.file("no-vae.pt"), "--vae: no such file"},
           {"audit --model " + model("nopen") + " --data idx:" + out_.file("nowhere"), "nowhere"},
           {"audit", "--model"}}) {
    const auto bad =
        run_cli(arguments + (contains(arguments, "--data") ? "" : data_arg()) + " --out " + out_.file("bad"));
    EXPECT_EQ(bad.exit_code, 2) << arguments;
    EXPECT_TRUE(contains(bad.output, fragment)) << arguments << "\n" << bad.output;
    EXPECT_FALSE(fs::exists(out_.file("bad/index.html"))) << arguments;
  }
  // Without the report's scripts nothing runs: the message says where they were looked for and how to install them.
  const auto no_scripts =
      run_shell("ROBUSTLENS_WEB_ASSETS=" + out_.file("empty") + " " + ROBUSTLENS_CLI_PATH + " audit --model " +
                model("nopen") + data_arg() + " --out " + out_.file("bad2") + " 2>&1");
  EXPECT_EQ(no_scripts.exit_code, 2) << no_scripts.output;
  EXPECT_TRUE(contains(no_scripts.output, "vega.min.js") && contains(no_scripts.output, "scripts/setup.sh"))
      << no_scripts.output;
  EXPECT_FALSE(fs::exists(out_.file("bad2/models"))) << "no analysis runs when the report cannot be written";
}

TEST_F(CliAudit, ReportRendersEveryChartInHeadlessChromium) {
  ASSERT_EQ(audit("audit").exit_code, 0);
  ASSERT_EQ(run_shell("command -v chromium >/dev/null").exit_code, 0)
      << "chromium is not installed: scripts/test.sh installs Debian's chromium for this test";
  const std::string page = "file://" + fs::absolute(out_.file("audit/index.html")).string();
  const std::string browser =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
      "--virtual-time-budget=30000 ";

  // The page records what it drew once every chart has rendered.
  const auto dom = run_shell(browser + "--dump-dom '" + page + "' 2>/dev/null");
  ASSERT_EQ(dom.exit_code, 0) << dom.output.substr(0, 2000);
  const std::string open = "<pre id=\"render-status\" data-done=\"true\">";
  const std::size_t start = dom.output.find(open);
  ASSERT_NE(start, std::string::npos) << "the page's script did not finish";
  const std::size_t end = dom.output.find("</pre>", start);
  const nlohmann::json status =
      nlohmann::json::parse(dom.output.substr(start + open.size(), end - start - open.size()));
  EXPECT_EQ(status.at("errors"), nlohmann::json::array()) << status.dump();
  EXPECT_GE(status.at("charts").get<int>(), 8) << status.dump();
  EXPECT_EQ(status.at("rendered"), status.at("charts")) << status.dump();
  for (const nlohmann::json& marks : status.at("marks")) EXPECT_GT(marks.get<int>(), 0) << status.dump();

  // A screenshot of the top of the page is not blank: text, table and chart pixels of several shades.
  testing::TemporaryDirectory shots;
  fs::create_directories(shots.file("page"));
  const auto shot = run_shell(browser + "--window-size=1200,1600 --screenshot=" + shots.file("page/top.png") + " '" +
                              page + "' >/dev/null 2>&1");
  ASSERT_EQ(shot.exit_code, 0);
  fs::create_directories(shots.file("copy"));  // the image-folder reader wants two classes
  fs::copy_file(shots.file("page/top.png"), shots.file("copy/top.png"));
  const at::Tensor pixels = read_image_folder(shots.path(), {3, 1600, 1200}).images[0];
  const double dark = pixels.lt(0.5).any(0).to(at::kDouble).mean().item<double>();
  EXPECT_GT(dark, 0.01) << "share of dark pixels";
  EXPECT_GT(pixels.std().item<double>(), 0.05);
}

}  // namespace
}  // namespace robustlens
