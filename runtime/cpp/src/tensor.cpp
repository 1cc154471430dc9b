#include "edgert/tensor.hpp"

namespace edgert {
namespace {

struct TypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
const TypeInfo kTypes[] = {{DType::Float32, "float32", 4}, {DType::Float64, "float64", 8},
                           {DType::Float16, "float16", 2}, {DType::Int64, "int64", 8},
                           {DType::Int32, "int32", 4},     {DType::Int8, "int8", 1},
                           {DType::UInt8, "uint8", 1},     {DType::Bool, "bool", 1}};

const TypeInfo& info(DType t) {
  for (const TypeInfo& i : kTypes)
    if (i.dtype == t) return i;
  return kTypes[0];  // unreachable: every enumerator is listed
}

}  // namespace

std::string dtype_name(DType t) { return info(t).name; }
size_t dtype_size(DType t) { return info(t).size; }

bool dtype_from_name(const std::string& name, DType* out) {
  for (const TypeInfo& i : kTypes)
    if (name == i.name) return *out = i.dtype, true;
  return false;
}

size_t Tensor::elements() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace edgert
