// Hold me tight!'s synthetic-data experiment end to end: a LeNet trained on images whose class information lies
// in one DCT block has small margins in that block and large ones (invariance) in the blocks that do not overlap it.
#include "robustlens/core/files.h"
#include "test_support.h"

#include <gtest/gtest.h>

namespace robustlens {
namespace {

using testing::run_cli;

TEST(CliSynthetic, LeNetMarginsAreSmallInTheInformativeSubspaceAndLargeInTheOthers) {
  testing::TemporaryDirectory out;
  const std::string data = " --data synthetic-subspace:0";
  const auto trained =
      run_cli("train --arch lenet --epochs 3 --optimizer adamw --lr 0.001 --threads 2" + data + " --out " + out.path());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const auto log = read_json_file(out.file("train_log.json"));
  EXPECT_GE(log.at("result").at("epochs").back().at("test_accuracy").get<double>(), 0.99) << trained.output;
  const auto margins = run_cli("margins --samples 50 --no-full-space --threads 2 --model " + out.file("model.pt") +
                               data + " --out " + out.file("m"));
  ASSERT_EQ(margins.exit_code, 0) << margins.output;
  const auto record = read_json_file(out.file("m/margins.json"));
  ASSERT_EQ(record.at("subspaces").at("block"), 8);  // subspace t: coefficients t..t+7, so subspace 0 is the block
  const auto& subspaces = record.at("per_subspace");
  const double informative = subspaces.at(0).at("quartiles_of_flipped").at("median");
  for (std::size_t t = 8; t < subspaces.size(); ++t) {  // the subspaces that share no coefficient with it
    // The medians of the flipped pairs: a pair that never flips has a larger margin still, so leaving it out
    // can only make this check harder to pass.
    EXPECT_GE(subspaces.at(t).at("quartiles_of_flipped").at("median").get<double>(), 5 * informative)
        << "subspace " << t << "\n"
        << margins.output;
  }
}

}  // namespace
}  // namespace robustlens
