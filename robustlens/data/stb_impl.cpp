// The one translation unit that compiles stb's implementations (header-only use).
// Image folders hold PNG and JPEG files; stb's other decoders (BMP, GIF, PSD, TGA, HDR, PIC, PNM) are left out,
// so that a file of another kind under a .png name is refused instead of reaching code nobody needs (fuzzing
// found a BMP of 0 rows and a PNM header whose size overflowed int).
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
