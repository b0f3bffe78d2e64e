// The option parsers: --data, --indices, --subspaces, --transform, --image-shape. The first byte picks one.
#include "fuzz_support.h"
#include "robustlens/data/dataset_source.h"
#include "robustlens/data/sample_selection.h"
#include "robustlens/spectral/dct.h"

#include <ATen/ATen.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace robustlens;
  if (size == 0) return 0;
  const std::string text = fuzz::input_text(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0:
      fuzz::expect_clear_errors([&] { parse_dataset_spec(text); });
      break;
    case 1:
      fuzz::expect_clear_errors([&] { parse_index_list(text); });
      break;
    case 2:
      fuzz::expect_clear_errors([&] { parse_dct_subspace_spec(text); });
      break;
    case 3: {
      static const at::Tensor images = at::rand({2, 1, 8, 8});
      fuzz::expect_clear_errors([&] { apply_dct_transform(text, images); });
      break;
    }
    default:
      fuzz::expect_clear_errors([&] { parse_image_shape(text); });
      break;
  }
  return 0;
}
