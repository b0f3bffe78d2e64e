// One image file of an image folder (PNG, JPEG and what else stb decodes), as read_image_folder decodes it:
// the header checks, then the decode at two shapes (resized). Images that declare more than 64×64 pixels are
// decoded no further than their header: a large image takes seconds under the sanitizers and would leave the
// decoder's parsing unexplored (the decode limit itself, kMaxDecodedPixels, is tested by the unit tests).
#include "fuzz_support.h"
#include "robustlens/data/image_folder.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace robustlens;
  const std::string bytes = fuzz::input_text(data, size);
  fuzz::expect_clear_errors([&] {
    const auto [width, height] = image_file_size(bytes, "image.png");
    if (std::int64_t{width} * height > 64 * 64) return;
    decode_image(bytes, "image.png", 3, 8, 8);
    decode_image(bytes, "image.png", 1, 5, 7);
  });
  return 0;
}
