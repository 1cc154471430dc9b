#include "edgert/image.hpp"

#include <fstream>

#include "edgert/error.hpp"

namespace edgert {
namespace {

// The next header number of a PNM file, skipping whitespace and '#' comments.
int header_number(std::istream& in, const std::string& path) {
  int c = in.get();
  while (c == '#' || std::isspace(c)) {
    if (c == '#')
      while (c != '\n' && c != EOF) c = in.get();
    c = in.get();
  }
  long v = 0;
  int digits = 0;
  for (; std::isdigit(c) && digits < 7; ++digits, c = in.get()) v = v * 10 + (c - '0');
  if (digits == 0 || digits == 7) throw Error(path + ": malformed PGM/PPM header");
  return static_cast<int>(v);  // the single whitespace after the number is consumed above
}

}  // namespace

Image read_pnm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": no such image file");
  char magic[2] = {};
  in.read(magic, 2);
  if (in.gcount() != 2 || magic[0] != 'P' || (magic[1] != '5' && magic[1] != '6'))
    throw Error(path + ": not a binary PGM (P5) or PPM (P6) image");
  Image im;
  im.channels = magic[1] == '5' ? 1 : 3;
  im.width = header_number(in, path);
  im.height = header_number(in, path);
  const int maxval = header_number(in, path);
  if (im.width < 1 || im.height < 1 || im.width > 16384 || im.height > 16384)
    throw Error(path + ": image size out of range");
  if (maxval != 255) throw Error(path + ": only 8-bit images (maxval 255) are supported");
  im.pixels.resize(static_cast<size_t>(im.width) * im.height * im.channels);
  in.read(reinterpret_cast<char*>(im.pixels.data()), static_cast<std::streamsize>(im.pixels.size()));
  if (static_cast<size_t>(in.gcount()) != im.pixels.size()) throw Error(path + ": truncated image data");
  return im;
}

Tensor preprocess(const Image& image, const ImagePreprocessing& p, const std::string& what) {
  if (!p.present) throw Error("the artifact takes arrays; it has no image preprocessing");
  if (image.channels != p.channels)
    throw Error(what + ": " + std::to_string(image.channels) + " channel(s), the model takes " +
                std::to_string(p.channels) + " (convert it first)");
  const bool sized = p.height == 0 || (p.height == image.height && p.width == image.width);
  if (p.resize != 0 || !sized)
    throw Error(what + ": " + std::to_string(image.height) + "x" + std::to_string(image.width) +
                " would need resizing, which the C++ runtime does not do; give a " +
                std::to_string(p.height) + "x" + std::to_string(p.width) + " image");
  const int h = image.height, w = image.width, c = image.channels;
  Tensor t;
  t.dtype = DType::Float32;
  t.shape = p.layout == "nhwc" ? std::vector<int64_t>{1, h, w, c} : std::vector<int64_t>{1, c, h, w};
  t.data.resize(t.elements() * sizeof(float));
  float* x = t.as<float>();
  for (int y = 0; y < h; ++y)
    for (int xx = 0; xx < w; ++xx)
      for (int k = 0; k < c; ++k) {
        // same float32 arithmetic as numpy: (p / 255 - mean) / std
        float v = static_cast<float>(image.pixels[(static_cast<size_t>(y) * w + xx) * c + k]) / 255.0f;
        v = (v - p.mean[k]) / p.std[k];
        size_t at = p.layout == "nhwc" ? (static_cast<size_t>(y) * w + xx) * c + k
                                       : (static_cast<size_t>(k) * h + y) * w + xx;
        x[at] = v;
      }
  return t;
}

}  // namespace edgert
