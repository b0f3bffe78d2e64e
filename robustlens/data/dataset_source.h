// From a --data spec to a Dataset:
//   fashion-mnist             Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
//   fashion-mnist:DIR         Fashion-MNIST idx files in DIR
//   mnist:DIR | idx:DIR       MNIST-style idx files in DIR (train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz]);
//                             idx: takes class names from DIR/classes.txt when present
//   cifar10:DIR               CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin)
//   folder:DIR                one sub-folder per class; DIR/train and DIR/test when both exist
//   distractor:SPEC           the items of SPEC in a random half of a twice-as-tall image, a fixed
//                             glyph in the other (data/distractor.h), e.g. distractor:fashion-mnist
//   synthetic-subspace:START[:SIZE[:EPS[:SIGMA]]]
//                             two classes told apart only along one direction in a DCT block
//                             (data/synthetic_subspace.h), e.g. synthetic-subspace:0
//   glyphs[:C,H,W]            the distractor glyph alone, identical images of one class (out-of-distribution
//                             images for the latent analyses; 1,28,28 by default)
//   memory:NAME               tensors the Python module holds in this process (data/held_datasets.h)
//   SPEC+corrupt:NAME:LEVEL   the images of SPEC with a common corruption at severity LEVEL 1..5
//                             (data/corruptions.h), drawn from a fixed seed per split and corruption,
//                             e.g. fashion-mnist+corrupt:gaussian-noise:3
#pragma once

#include "robustlens/data/dataset.h"

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

/// Where `fashion-mnist` is looked for: $ROBUSTLENS_FASHION_MNIST_DIR, else Debian's folder.
std::string default_fashion_mnist_directory();

/// A --data spec, parsed without touching the disk.
struct DatasetSpec {
  bool distractor = false;  ///< distractor:BASE (BASE is kind:directory; distractors do not nest)
  std::string kind;         ///< fashion-mnist, mnist, idx, cifar10, folder, synthetic-subspace or glyphs
  std::string directory;    ///< empty for Debian's fashion-mnist; synthetic-subspace: its parameters; glyphs: its shape
  std::string base;         ///< the spec without its corruption
  std::string corruption;   ///< NAME:SEVERITY, validated; empty for clean images
};
/// Parses a --data spec; an unknown kind, a missing directory, a nested distractor, or an unknown or repeated
/// corruption is an Error.
DatasetSpec parse_dataset_spec(const std::string& spec);

/// The seed the corruption `corruption` (NAME:SEVERITY) of a split's images is drawn from.
std::uint64_t corruption_seed(Split split, const std::string& corruption);

/// --image-shape "C,H,W": C 1 (grey) or 3 (RGB), 1 <= H, W <= kMaxImageSide (core/limits.h).
std::vector<std::int64_t> parse_image_shape(const std::string& text);

/// Loads and validates one split. image_shape (C,H,W) is needed for folder: specs only
/// (for distractor:folder:DIR it is the shape of the items).
Dataset load_dataset(const std::string& spec, Split split, const std::vector<std::int64_t>& image_shape = {});

}  // namespace robustlens
