// Images for image classifiers: binary PGM (P5, grayscale) and PPM (P6, RGB) files, turned into
// model input by the artifact's preprocessing exactly as the Python runtime does when no resize is
// needed: pixels / 255, then (x - mean) / std per channel, in the model's layout.
#pragma once

#include <string>

#include "edgert/signature.hpp"
#include "edgert/tensor.hpp"

namespace edgert {

struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<unsigned char> pixels;  // (h, w, c), 8-bit
};

Image read_pnm(const std::string& path);  // throws edgert::Error on bad or truncated files

// A batch of one: (1, c, h, w) or (1, h, w, c) float32. Refuses images that would need resizing
// or a channel conversion (the Python runtime does those with Pillow).
Tensor preprocess(const Image& image, const ImagePreprocessing& p, const std::string& what);

}  // namespace edgert
