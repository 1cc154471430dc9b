// A dense, C-ordered tensor held by value: what .npy files hold and what models take and return.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgert {

// Element types, named as numpy and the signature files name them.
enum class DType { Float32, Float64, Float16, Int64, Int32, Int8, UInt8, Bool };

std::string dtype_name(DType t);             // "float32", ...
size_t dtype_size(DType t);                  // bytes per element
bool dtype_from_name(const std::string& name, DType* out);

struct Tensor {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<unsigned char> data;  // elements() * dtype_size(dtype) bytes, row-major

  size_t elements() const;
  template <typename T> const T* as() const { return reinterpret_cast<const T*>(data.data()); }
  template <typename T> T* as() { return reinterpret_cast<T*>(data.data()); }
};

std::string shape_str(const std::vector<int64_t>& shape);  // "(1, 28, 28)"

}  // namespace edgert
