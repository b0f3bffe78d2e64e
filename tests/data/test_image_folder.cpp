#include "robustlens/data/image_folder.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace robustlens {
namespace {

Dataset sorted_by_class(const Dataset& data) {
  // The folder reader returns class by class; order the original the same way.
  const at::Tensor order = std::get<1>(data.labels.sort(/*stable=*/true, 0, false));
  return {data.name, data.images.index_select(0, order), data.labels.index_select(0, order), data.class_names};
}

TEST(ImageFolder, RoundTripsGreyAndRgbPng) {
  for (const std::int64_t channels : {1, 3}) {
    testing::TemporaryDirectory dir;
    const Dataset data = testing::linear_rule_dataset(9, {channels, 6, 5}, 3, 7);
    write_image_folder(dir.path(), data);
    const Dataset read = read_image_folder(dir.path(), {channels, 6, 5});
    // Files are read in name order inside each class; compare as sets per class.
    const Dataset expected = sorted_by_class(data);
    EXPECT_EQ(read.class_names, data.class_names);
    EXPECT_TRUE(at::equal(read.labels, expected.labels));
    EXPECT_TRUE(at::equal(std::get<0>(read.images.flatten(1).sum(1).sort()),
                          std::get<0>(expected.images.flatten(1).sum(1).sort())));
  }
}

// PNG files from an independent encoder (Python's zlib and struct, following the PNG specification), 3 pixels
// wide and 2 high: RGB with R = 10y + x + 1, G = R + 110, B = R + 200; grey with 40y + 10x + 5.
const std::string kRgbPng(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x02\x08\x02\x00\x00"
    "\x00\x12\x16\xf1\x4d\x00\x00\x00\x1c\x49\x44\x41\x54\x78\x9c\x63\x60\xcc\x3f\xc9\x54\x70\x8a\xb9\xf0\x34\x03\x77"
    "\xe5\x65\x9e\xaa\x2b\xbc\xd5\x57\x01\x47\x12\x07\xc3\x28\xce\x69\xd6\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60"
    "\x82",
    85);
const std::string kGreyPng(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x02\x08\x00\x00\x00"
    "\x00\xb8\x1f\x39\xc6\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63\x60\xe5\x97\x64\xd0\x35\x77\x04\x00\x02\x38\x00"
    "\xd3\x1b\xd2\xcb\xf3\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    73);

TEST(ImageFolder, ReadsPixelsInRowOrderAndChannelsInRgbOrder) {
  testing::TemporaryDirectory dir;
  testing::write_bytes(dir.file("a/rgb.png"), kRgbPng);
  testing::write_bytes(dir.file("b/grey.png"), kGreyPng);
  const Dataset rgb = read_image_folder(dir.path(), {3, 2, 3});
  const Dataset grey = read_image_folder(dir.path(), {1, 2, 3});
  at::Tensor expected_rgb = at::empty({3, 2, 3}, at::kFloat), expected_grey = at::empty({1, 2, 3}, at::kFloat);
  for (std::int64_t y = 0; y < 2; ++y) {
    for (std::int64_t x = 0; x < 3; ++x) {
      const double red = 10 * y + x + 1;
      expected_rgb[0][y][x] = red / 255;
      expected_rgb[1][y][x] = (red + 110) / 255;
      expected_rgb[2][y][x] = (red + 200) / 255;
      expected_grey[0][y][x] = (40.0 * y + 10 * x + 5) / 255;
    }
  }
  ASSERT_EQ(rgb.size(), 2);
  EXPECT_TRUE(at::allclose(rgb.images[0], expected_rgb, 0, 1e-6)) << rgb.images[0];
  EXPECT_TRUE(at::allclose(grey.images[1], expected_grey, 0, 1e-6)) << grey.images[1];
}

TEST(ImageFolder, RefusesTheJpegsWhoseHuffmanTablesOverflowedStb) {
  // Found by fuzz/fuzz_image: DHT segments declaring more than 256 codes made Debian's stb_image write past its
  // table: in the decoder, in the header scan (stbi_info), and with a table that runs past the end of the file
  // (stb reads zeros there), in a file that 0xFF fill bytes open before its start marker, and after a scan
  // whose data hold fill bytes before a stuffed 0 (stb reads on; the walk once took them for a marker).
  for (const auto& [file, codes] :
       std::vector<std::pair<std::string, int>>{{"stb-huffman-table-overflow.jpg", 1734},
                                                {"stb-huffman-table-overflow-in-header.jpg", 799},
                                                {"stb-huffman-table-overflow-past-the-end.jpg", 2364},
                                                {"stb-huffman-table-overflow-after-fill-bytes.jpg", 1091},
                                                {"stb-huffman-table-overflow-after-fill-bytes-in-scan.jpg", 1093}}) {
    testing::TemporaryDirectory dir;
    std::filesystem::create_directories(dir.file("a"));
    std::filesystem::copy_file(std::string(ROBUSTLENS_FUZZ_REGRESSIONS_DIR) + "/image/" + file,
                               dir.file("a/image.jpg"));
    testing::expect_error(
        [&] {
          read_image_folder(dir.path(), {3, 5, 6});
        },
        "is not a valid JPEG file: a Huffman table declares " + std::to_string(codes) + " codes (at most 256)");
  }
}

TEST(ImageFolder, DecodesTheJpegKindsEncodersWrite) {
  // The checks that refuse corrupt JPEGs before stb reads them must pass the files encoders write. These were
  // written by libjpeg-turbo's cjpeg (quality 95; tests/fixtures/jpeg/README.md) from a 16×12 pattern with
  // red 40 + 10x, green 60 + 12y, blue 200 − 5x − 4y; the grey ones hold its luminance.
  at::Tensor rgb = at::empty({3, 12, 16}, at::kDouble);
  for (std::int64_t y = 0; y < 12; ++y) {
    for (std::int64_t x = 0; x < 16; ++x) {
      rgb[0][y][x] = (40.0 + 10 * x) / 255;
      rgb[1][y][x] = (60.0 + 12 * y) / 255;
      rgb[2][y][x] = (200.0 - 5 * x - 4 * y) / 255;
    }
  }
  const at::Tensor luminance = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).unsqueeze(0).expand({3, 12, 16});
  for (const std::string kind :
       {"baseline", "progressive", "restart-markers", "optimized-420", "grey", "progressive-grey"}) {
    const std::string file = std::string(ROBUSTLENS_TEST_FIXTURES_DIR) + "/jpeg/" + kind + ".jpg";
    const at::Tensor read = decode_image(testing::read_bytes(file), file, 3, 12, 16).to(at::kDouble);
    const at::Tensor expected = kind.find("grey") == std::string::npos ? rgb : luminance;
    // Lossy, and 4:2:0 halves the colour resolution: a few levels on average, never far.
    EXPECT_LT((read - expected).abs().mean().item<double>(), 3.0 / 255) << kind;
    EXPECT_LT((read - expected).abs().max().item<double>(), 16.0 / 255) << kind;
  }
}

TEST(ImageFolder, RefusesTheJpegsWhoseScansUseUndefinedTables) {
  // Found by fuzz/fuzz_image: a scan that uses tables no segment defined makes Debian's stb_image decode with
  // its own uninitialised memory (the pixels changed from run to run; garbage code lengths made its bit reader
  // shift by 33 bits). The found file defines no quantisation table; the second one, the same file with one,
  // still lacks its AC Huffman table 1.
  for (const auto& [file, message] : std::vector<std::pair<std::string, std::string>>{
           {"stb-undefined-quantisation-table.jpg", "a scan uses quantisation table 0, which no DQT segment"},
           {"stb-undefined-huffman-table.jpg", "a scan uses AC Huffman table 1, which no DHT segment"}}) {
    testing::TemporaryDirectory dir;
    std::filesystem::create_directories(dir.file("a"));
    std::filesystem::copy_file(std::string(ROBUSTLENS_FUZZ_REGRESSIONS_DIR) + "/image/" + file,
                               dir.file("a/image.jpg"));
    testing::expect_error([&] { read_image_folder(dir.path(), {3, 5, 6}); }, "is not a valid JPEG file: " + message);
  }
}

TEST(ImageFolder, RefusesAPngChunkLongerThanTheFileBeforeStbReservesItsMemory) {
  // Found by fuzz/fuzz_image: stb reserved 2 GB for an IDAT chunk that declared 2120099171 bytes in a 145-byte
  // file. A PNG the tests write, cut short in its data, is refused the same way.
  testing::TemporaryDirectory dir;
  std::filesystem::create_directories(dir.file("a"));
  std::filesystem::copy_file(
      std::string(ROBUSTLENS_FUZZ_REGRESSIONS_DIR) + "/image/png-idat-chunk-longer-than-the-file.png",
      dir.file("a/image.png"));
  testing::expect_error(
      [&] {
        read_image_folder(dir.path(), {3, 4, 7});
      },
      "is not a valid PNG file: its IDAT chunk at byte 144 declares 2120099171 bytes and a 4-byte "
      "checksum, but only 5 bytes follow its header");
  testing::TemporaryDirectory written;
  write_image_folder(written.path(), testing::linear_rule_dataset(2, {3, 6, 5}, 2, 7));
  std::string png;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(written.path())) {
    if (entry.path().extension() == ".png") png = testing::read_bytes(entry.path().string());
  }
  EXPECT_EQ(image_file_size(png, "whole.png"), std::make_pair(5, 6));
  testing::expect_error([&] { image_file_size(png.substr(0, png.size() - 20), "cut.png"); },
                        "image 'cut.png' is not a valid PNG file: its");
}

TEST(ImageFolder, RefusesFilesOtherThanPngAndJpegWhateverTheirName) {
  // Found by fuzz/fuzz_image in stb's other decoders, which robustlens no longer compiles: a BMP of 73478×0
  // pixels made stb_image_resize convert NaN to int, and a PNM header's size overflowed int.
  for (const std::string file : {"bmp-without-rows.bmp", "pnm-size-overflowing-int.png"}) {
    testing::TemporaryDirectory dir;
    std::filesystem::create_directories(dir.file("a"));
    std::filesystem::copy_file(std::string(ROBUSTLENS_FUZZ_REGRESSIONS_DIR) + "/image/" + file,
                               dir.file("a/image.png"));
    testing::expect_error(
        [&] {
          read_image_folder(dir.path(), {3, 8, 8});
        },
        "image.png' cannot be decoded (unknown image type); expected a PNG or JPEG file");
  }
}

TEST(ImageFolder, RefusesImagesLargerThanTheDecodeLimitBeforeDecoding) {
  // A PNG header declaring 5000×5000 RGB pixels (75 MB decoded) and no data: refused on its header alone.
  const auto big_endian = [](std::uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  const std::string header = std::string("\x89PNG\r\n\x1a\n", 8) + big_endian(13) + "IHDR" + big_endian(5000) +
                             big_endian(5000) + std::string("\x08\x02\x00\x00\x00", 5) + big_endian(0) + big_endian(0) +
                             "IEND" + big_endian(0);
  testing::TemporaryDirectory dir;
  testing::write_bytes(dir.file("a/huge.png"), header);
  testing::expect_error(
      [&] {
        read_image_folder(dir.path(), {3, 8, 8});
      },
      "has 5000×5000 pixels, more than 16777216: resize it first");
}

TEST(ImageFolder, ResizesToTheDeclaredShape) {
  testing::TemporaryDirectory dir;
  write_image_folder(dir.path(), testing::linear_rule_dataset(4, {1, 8, 8}, 2, 1));
  const Dataset read = read_image_folder(dir.path(), {3, 4, 6});
  EXPECT_EQ(read.image_shape(), (std::vector<std::int64_t>{3, 4, 6}));
}

TEST(ImageFolder, RejectsCorruptImagesAndMissingClasses) {
  testing::TemporaryDirectory dir;
  write_image_folder(dir.path(), testing::linear_rule_dataset(4, {1, 8, 8}, 2, 1));
  testing::write_bytes(dir.file("0/broken.png"), "not a png");
  try {
    read_image_folder(dir.path(), {1, 8, 8});
    ADD_FAILURE() << "a corrupt PNG must be rejected";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("broken.png"), std::string::npos) << error.what();
  }
  testing::TemporaryDirectory one_class;
  std::filesystem::create_directories(one_class.file("only"));
  EXPECT_THROW(read_image_folder(one_class.path(), {1, 8, 8}), Error);
  EXPECT_THROW(read_image_folder(dir.path(), {2, 8, 8}), Error);  // 2 channels are not an image format
}

TEST(ImageFolder, AClassWithoutImagesKeepsItsLabelAndTheOthersTheirs) {
  testing::TemporaryDirectory dir;
  const Dataset data = testing::linear_rule_dataset(30, {1, 6, 6}, 3, 4);
  write_image_folder(dir.path(), data);
  std::filesystem::remove_all(dir.file("1"));
  std::filesystem::create_directories(dir.file("1"));                   // the class exists, this split has none of it
  std::filesystem::create_directories(dir.file(".ipynb_checkpoints"));  // not a class
  const Dataset read = read_image_folder(dir.path(), {1, 6, 6});
  EXPECT_EQ(read.class_names, data.class_names);
  const Dataset expected = sorted_by_class(data);
  const at::Tensor kept = expected.labels.ne(1);
  EXPECT_TRUE(at::equal(read.labels, expected.labels.masked_select(kept))) << read.labels;
  EXPECT_EQ(read.summary().at("images_per_class").get<std::vector<std::int64_t>>(),
            (std::vector<std::int64_t>{expected.labels.eq(0).sum().item<std::int64_t>(), 0,
                                       expected.labels.eq(2).sum().item<std::int64_t>()}));
}

}  // namespace
}  // namespace robustlens
