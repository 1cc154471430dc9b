// NumPy .npy files (format versions 1 to 3), C order, little-endian, no object arrays.
#pragma once

#include <string>

#include "edgert/tensor.hpp"

namespace edgert {

Tensor read_npy(const std::string& path);                   // throws edgert::Error on bad files
void write_npy(const std::string& path, const Tensor& t);   // complete file or none (rename)

}  // namespace edgert
