// From a --data spec to a Dataset:
//   fashion-mnist             Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
//   fashion-mnist:DIR         Fashion-MNIST idx files in DIR
//   mnist:DIR | idx:DIR       MNIST-style idx files in DIR (train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz]);
//                             idx: takes class names from DIR/classes.txt when present
//   cifar10:DIR               CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin)
//   folder:DIR                one sub-folder per class; DIR/train and DIR/test when both exist
//   distractor:SPEC           the items of SPEC in a random half of a twice-as-tall image, a fixed
//                             glyph in the other (data/distractor.h), e.g. distractor:fashion-mnist
#pragma once

#include "robustlens/data/dataset.h"

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

/// Where `fashion-mnist` is looked for: $ROBUSTLENS_FASHION_MNIST_DIR, else Debian's folder.
std::string default_fashion_mnist_directory();

/// Loads and validates one split. image_shape (C,H,W) is needed for folder: specs only
/// (for distractor:folder:DIR it is the shape of the items).
Dataset load_dataset(const std::string& spec, Split split, const std::vector<std::int64_t>& image_shape = {});

}  // namespace robustlens
