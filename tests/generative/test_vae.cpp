#include "robustlens/generative/vae.h"

#include "robustlens/core/error.h"
#include "robustlens/core/model.h"
#include "robustlens/generative/denoiser.h"
#include "robustlens/generative/generative_file.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/models/load_model.h"
#include "test_support.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/utils.h>
#include <numeric>

namespace robustlens {
namespace {

using testing::expect_error;

/// Images sigmoid(A·z + b) of a 2-D Gaussian code z: a curved 2-D manifold in
/// 36 pixels (A, b fixed; z drawn with `seed`), which a VAE can learn.
Dataset manifold_dataset(std::int64_t size, std::uint64_t seed) {
  at::Generator rule = at::detail::createCPUGenerator(7);
  const at::Tensor mixing = at::randn({36, 2}, rule) * 2, offset = at::randn({36}, rule);
  at::Generator draws = at::detail::createCPUGenerator(seed);
  const at::Tensor codes = at::randn({size, 2}, draws);
  const at::Tensor images = at::sigmoid(codes.matmul(mixing.t()) + offset).view({size, 1, 6, 6});
  return {"manifold", images, at::zeros({size}, at::kLong), {"0"}};
}

std::unique_ptr<Vae> small_vae(std::uint64_t seed = 3) {
  torch::manual_seed(seed);
  return std::make_unique<Vae>(VaeSpec().set_input_shape({1, 6, 6}).set_latent_dim(4).set_hidden(32));
}

/// Orthogonal projection onto the span of the columns of each N×D×k matrix.
at::Tensor projection(const at::Tensor& columns) {
  const at::Tensor q = std::get<0>(at::linalg_qr(columns, "reduced"));
  return q.matmul(q.transpose(1, 2));
}

TEST(VaeTangentSpace, IsOrthonormalAndSpansTheFiniteDifferenceJacobian) {
  auto vae = small_vae();
  vae->to(at::kCPU, at::kDouble);
  const at::Tensor images = manifold_dataset(5, 1).images.to(at::kDouble);
  const VaeTangentSpace space = vae_tangent_space(*vae, images);
  const std::int64_t n = 5, d = 36, k = 4;
  ASSERT_EQ(space.basis.sizes(), (std::vector<std::int64_t>{n, d, k}));

  const at::Tensor gram = space.basis.transpose(1, 2).matmul(space.basis);
  EXPECT_TRUE(at::allclose(gram, at::eye(k, gram.options()).expand({n, k, k}), 0, 1e-12));

  // Central differences of decode at the encoder mean, one latent direction at a time.
  at::NoGradGuard no_grad;
  const at::Tensor mean = vae->encode_mean(images);
  EXPECT_TRUE(at::allclose(space.latent_mean, mean, 0, 1e-12));
  const double step = 1e-5;
  std::vector<at::Tensor> columns;
  for (std::int64_t j = 0; j < k; ++j) {
    const at::Tensor shift = at::zeros({k}, mean.options()).index_fill_(0, at::tensor({j}), step);
    columns.push_back(((vae->decode(mean + shift) - vae->decode(mean - shift)) / (2 * step)).flatten(1));
  }
  const at::Tensor finite_differences = at::stack(columns, 2);
  EXPECT_TRUE(at::allclose(space.jacobian, finite_differences, 1e-6, 1e-9))
      << (space.jacobian - finite_differences).abs().max().item<double>();
  EXPECT_LT(
      (projection(finite_differences) - space.basis.matmul(space.basis.transpose(1, 2))).abs().max().item<double>(),
      1e-7);
  EXPECT_TRUE(at::allclose(space.reconstruction, vae->decode(mean), 0, 1e-12));
}

TEST(VaeTangentSpace, FloatAgreesWithDoubleAndBatchedWithPerImage) {
  auto single = small_vae(), precise = small_vae();
  precise->to(at::kCPU, at::kDouble);
  const at::Tensor images = manifold_dataset(6, 2).images;
  const at::Tensor batched = vae_tangent_basis(*single, images, 64);
  ASSERT_EQ(batched.scalar_type(), at::kFloat);
  const at::Tensor reference = vae_tangent_basis(*precise, images.to(at::kDouble));
  EXPECT_LT((projection(batched.to(at::kDouble)) - projection(reference)).abs().max().item<double>(), 1e-4);
  for (std::int64_t i = 0; i < images.size(0); ++i) {
    const at::Tensor alone = vae_tangent_basis(*single, images.slice(0, i, i + 1));
    EXPECT_TRUE(at::allclose(alone[0], batched[i], 1e-4, 1e-5)) << "image " << i;
  }
  // Chunking is invisible too.
  EXPECT_TRUE(at::allclose(vae_tangent_basis(*single, images, 4), batched, 1e-4, 1e-5));
}

TEST(VaeTraining, LowersTheTestLossAndIsDeterministic) {
  const Dataset train = manifold_dataset(512, 11), test = manifold_dataset(128, 12);
  const auto options = VaeTrainOptions().set_epochs(6).set_batch_size(32).set_lr(3e-3).set_beta(1).set_seed(5);
  auto vae = small_vae();
  const double before = evaluate_vae(*vae, test, 1.0, 100, 1).test_loss;
  std::vector<std::string> tasks;
  const VaeTrainResult result = train_vae(*vae, train, test, options, [&](const ProgressUpdate& update) {
    if (tasks.empty() || tasks.back() != update.task) tasks.push_back(update.task);
  });
  ASSERT_EQ(result.epochs.size(), 6u);
  EXPECT_EQ(tasks.size(), 6u);
  const VaeEpochRecord& last = result.epochs.back();
  EXPECT_LT(last.test_loss, before - 1.0) << "before " << before;
  EXPECT_LT(last.test_loss, result.epochs.front().test_loss);
  EXPECT_NEAR(last.test_loss, last.test_reconstruction + last.test_kl, 1e-9);
  EXPECT_GT(last.test_kl, 0);
  ASSERT_EQ(last.test_kl_per_dim.size(), 4u);
  EXPECT_NEAR(std::accumulate(last.test_kl_per_dim.begin(), last.test_kl_per_dim.end(), 0.0), last.test_kl,
              1e-4 * last.test_kl);
  // The data lie on a 2-D manifold: at least two latent dimensions carry it.
  EXPECT_GE(last.active_dims, 2);
  EXPECT_EQ(vae->training_record().at("log").size(), 6u);
  EXPECT_EQ(vae->training_record().at("train_data"), "manifold");

  auto again = small_vae();
  const VaeTrainResult repeated = train_vae(*again, train, test, options);
  EXPECT_EQ(repeated.epochs.back().test_loss, last.test_loss);
  EXPECT_EQ(repeated.epochs.back().train_loss, last.train_loss);
}

TEST(VaeTraining, KilledAndResumedRunEndsWithTheSameWeights) {
  const Dataset train = manifold_dataset(96, 11), test = manifold_dataset(32, 12);
  testing::TemporaryDirectory whole, interrupted;
  const auto options = [](const std::string& out) {
    return VaeTrainOptions().set_epochs(3).set_batch_size(32).set_lr(3e-3).set_seed(5).set_out_dir(out);
  };
  auto reference = small_vae();
  const VaeTrainResult expected = train_vae(*reference, train, test, options(whole.path()));
  auto first = small_vae();
  struct SimulatedKill {};
  EXPECT_THROW(train_vae(*first, train, test, options(interrupted.path()),
                         [](const ProgressUpdate& update) {
                           if (update.task == "epoch 2/3" && update.done >= 64) throw SimulatedKill{};
                         }),
               SimulatedKill);
  auto resumed = small_vae(99);  // other initial weights: the checkpoint must replace them
  const VaeTrainResult result = train_vae(*resumed, train, test, options(interrupted.path()));
  EXPECT_EQ(result.resumed_after_epoch, 1);
  ASSERT_EQ(result.epochs.size(), 3u);
  EXPECT_EQ(result.epochs.back().test_loss, expected.epochs.back().test_loss);
  const auto a = reference->parameters(), b = resumed->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << "parameter " << i;
  // A checkpoint of another spec is refused.
  auto wider = std::make_unique<Vae>(VaeSpec().set_input_shape({1, 6, 6}).set_latent_dim(4).set_hidden(48));
  expect_error([&] { train_vae(*wider, train, test, options(whole.path())); },
               "another architecture or other training data");
}

TEST(VaeFile, SaveLoadRoundTripGivesIdenticalOutputs) {
  testing::TemporaryDirectory directory;
  auto vae = small_vae();
  train_vae(*vae, manifold_dataset(64, 1), manifold_dataset(32, 2), VaeTrainOptions().set_epochs(1).set_batch_size(16));
  vae->save(directory.file("vae.pt"));
  const auto loaded = load_vae(directory.file("vae.pt"), at::kCPU);
  EXPECT_EQ(loaded->spec().to_json(), vae->spec().to_json());
  EXPECT_EQ(loaded->training_record(), vae->training_record());
  const at::Tensor images = manifold_dataset(8, 3).images;
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(loaded->encode(images).logvar, vae->encode(images).logvar));
  const at::Tensor codes = at::randn({8, 4});
  EXPECT_TRUE(at::equal(loaded->decode(codes), vae->decode(codes)));
}

TEST(VaeFile, BadFilesGiveClearErrors) {
  testing::TemporaryDirectory directory;
  testing::write_bytes(directory.file("text.pt"), "hello");
  testing::save_linear_torchscript(directory.file("linear.pt"), at::randn({3, 36}), at::zeros({3}));
  BuiltinModel(ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(3), {})
      .save(directory.file("classifier.pt"));
  Denoiser(DenoiserSpec().set_input_shape({1, 6, 6}).set_channels(4)).save(directory.file("denoiser.pt"));
  small_vae()->save(directory.file("vae.pt"));

  const auto load = [&](const std::string& name) { return [&, name] { load_vae(directory.file(name), at::kCPU); }; };
  expect_error(load("absent.pt"), "does not exist");
  expect_error(load("text.pt"), "cannot be read");
  expect_error(load("linear.pt"), "is not a robustlens VAE file");
  expect_error(load("classifier.pt"), "is a robustlens classifier model file, not a VAE file");
  expect_error(load("denoiser.pt"), "is a robustlens denoiser file, not a VAE file");
  // ... and the classifier loader names the VAE.
  expect_error([&] { load_model(directory.file("vae.pt"), at::kCPU); }, "is a robustlens VAE file, not a classifier");
  // 64 inverted bytes of the first parameter. In place, the archive's CRC-32 catches them; in an archive
  // written again with matching CRC-32s, the file loads as an archive and the parameter checksum catches them.
  const at::Tensor first = small_vae()->parameters().at(0).detach().contiguous();
  const std::string first_bytes(static_cast<const char*>(first.data_ptr()), 64);
  std::string bytes = testing::read_bytes(directory.file("vae.pt"));
  const std::size_t at = bytes.find(first_bytes);
  ASSERT_NE(at, std::string::npos);
  for (std::size_t i = at; i < at + 64; ++i) bytes[i] = static_cast<char>(~bytes[i]);
  testing::write_bytes(directory.file("flipped.pt"), bytes);
  expect_error(load("flipped.pt"), "is damaged (record 'data/0' does not match its CRC-32");
  const auto invert = [&](const std::string&, std::string& record) {
    const std::size_t found = record.find(first_bytes);
    if (found != std::string::npos)
      for (std::size_t i = found; i < found + 64; ++i) record[i] = static_cast<char>(~record[i]);
  };
  ASSERT_EQ(testing::rewrite_archive(directory.file("vae.pt"), directory.file("rewritten.pt"), invert), 1);
  expect_error(load("rewritten.pt"), "do not match the checksum written with them");
}

TEST(VaeOptions, ChecksNameTheOffendingValues) {
  expect_error([] { Vae(VaeSpec().set_latent_dim(0)); },
               "VaeSpec.latent_dim must lie in [1, 784] (C·H·W of the images), got 0");
  expect_error([] { Vae(VaeSpec().set_input_shape({1, 0, 28})); }, "[1,0,28]");
  expect_error([] { VaeTrainOptions().set_lr(-1).check(); }, "VaeTrainOptions.lr must be > 0, got -1");
  expect_error([] { VaeTrainOptions().set_beta(-0.5).check(); }, "VaeTrainOptions.beta must be >= 0, got -0.5");
  auto vae = small_vae();
  expect_error([&] { vae->decode(at::zeros({2, 3})); }, "latent codes N×4");
  expect_error([&] { vae->encode(at::zeros({2, 1, 5, 6})); }, "1×6×6");
  expect_error(
      [&] {
        train_vae(*vae, testing::linear_rule_dataset(8, {1, 5, 5}, 2, 1), manifold_dataset(8, 1), {});
      },
      "has images 1×5×5 but the VAE takes 1×6×6");
}

TEST(VaeOptions, JsonRecordsTheRecipe) {
  const nlohmann::json recipe = VaeTrainOptions().set_beta(0.5).to_json();
  EXPECT_EQ(recipe.at("optimizer"), "adam");
  EXPECT_EQ(recipe.at("beta"), 0.5);
  EXPECT_EQ(recipe.at("epochs"), VaeTrainOptions().epochs);
  EXPECT_EQ(VaeSpec::from_json(VaeSpec().set_latent_dim(8).to_json()).latent_dim, 8);
}

TEST(GenerativeFile, MetadataOfTheWrongShapeIsAnErrorNamingTheFile) {
  expect_error([] { parse_generative_metadata("[\"robustlens-vae\"]", kVaeFormat, "VAE", "v.pt"); },
               "VAE file 'v.pt': metadata is not a JSON object");
  expect_error([] { parse_generative_metadata("{\"format\": 7}", kVaeFormat, "VAE", "v.pt"); },
               "key 'format' holds a value of the wrong type");
  expect_error(
      [] {
        parse_generative_metadata("{\"format\": \"robustlens-vae\", \"format_version\": \"one\"}", kVaeFormat, "VAE",
                                  "v.pt");
      },
      "key 'format_version' holds a value of the wrong type");
  expect_error(
      [] {
        parse_generative_metadata("{\"format\": \"robustlens-denoiser\", \"format_version\": 1}", kVaeFormat, "VAE",
                                  "v.pt");
      },
      "'v.pt' is a robustlens denoiser file, not a VAE file");
}

}  // namespace
}  // namespace robustlens
