// The signature file beside every exported artifact (<artifact>.signature.json), the same file
// the Python runtime reads: inputs and outputs, preprocessing, labels, provenance.
#pragma once

#include <string>
#include <vector>

#include "edgert/json.hpp"
#include "edgert/tensor.hpp"

namespace edgert {

struct TensorSpec {
  std::string name;
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;           // -1 where the axis is dynamic
  std::vector<std::string> axis_names;  // the dynamic axis' name ("batch"), "" for fixed sizes
};

// Image preprocessing as the Python runtime applies it: [0, 1] pixels, then (x - mean) / std.
struct ImagePreprocessing {
  bool present = false;
  int height = 0, width = 0;  // 0: the image's own size
  int resize = 0;             // shorter side before a centre crop; 0: none
  int channels = 1;
  std::vector<float> mean, std;
  std::string layout = "nchw";
};

struct Signature {
  std::string path;  // the signature file itself
  std::string file, format, precision, task, model;
  std::vector<TensorSpec> inputs, outputs;
  std::vector<std::string> labels;
  ImagePreprocessing preprocessing;
  Json provenance;
};

Signature read_signature(const std::string& path);  // throws edgert::Error naming the file and key
std::string signature_path(const std::string& artifact);  // student.onnx -> student.signature.json

}  // namespace edgert
