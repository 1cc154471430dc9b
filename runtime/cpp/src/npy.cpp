#include "edgert/npy.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "edgert/error.hpp"

namespace edgert {
namespace {

const char kMagic[] = "\x93NUMPY";
constexpr int64_t kMaxBytes = int64_t{1} << 34;  // 16 GiB: a shape claiming more is corrupt

struct Descr {
  const char* code;  // numpy's descr string, little-endian ('|' where byte order is moot)
  DType dtype;
};
const Descr kDescrs[] = {{"<f4", DType::Float32}, {"<f8", DType::Float64}, {"<f2", DType::Float16},
                         {"<i8", DType::Int64},   {"<i4", DType::Int32},   {"|i1", DType::Int8},
                         {"|u1", DType::UInt8},   {"|b1", DType::Bool}};

// The value of 'key' in the header dict, as written by numpy: 'key': value,
std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) throw Error(path + ": .npy header has no '" + key + "'");
  at = header.find(':', at);
  size_t end = key == "shape" ? header.find(')', at) + 1 : header.find(',', at);
  if (at == std::string::npos || end == std::string::npos || end == 0)
    throw Error(path + ": malformed .npy header: " + header);
  std::string v = header.substr(at + 1, end - at - 1);
  v.erase(0, v.find_first_not_of(" "));
  return v;
}

std::vector<int64_t> parse_shape(const std::string& text, const std::string& path) {
  std::vector<int64_t> shape;
  std::string inner = text.substr(text.find('(') + 1);
  inner = inner.substr(0, inner.find(')'));
  std::stringstream in(inner);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.find_first_not_of(" ") == std::string::npos) continue;  // "(3,)"
    char* end = nullptr;
    long long d = std::strtoll(item.c_str(), &end, 10);
    if (d < 0 || end == item.c_str()) throw Error(path + ": bad .npy shape " + text);
    shape.push_back(d);
  }
  return shape;
}

DType parse_descr(const std::string& text, const std::string& path) {
  std::string code = text.substr(1, text.find('\'', 1) - 1);  // '<f4' -> <f4
  if (code.size() == 3 && code[0] == '=') code[0] = '<';      // native order on little-endian
  if (code.size() == 3 && (code[1] == 'u' || code[1] == 'i' || code[1] == 'b') && code[2] == '1')
    code[0] = '|';
  for (const Descr& d : kDescrs)
    if (code == d.code) return d.dtype;
  throw Error(path + ": unsupported .npy dtype " + text +
              " (float16/32/64, int8/32/64, uint8 and bool, little-endian)");
}

}  // namespace

Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": no such file (or not readable)");
  char magic[8] = {};
  in.read(magic, 8);
  if (in.gcount() != 8 || std::memcmp(magic, kMagic, 6) != 0)
    throw Error(path + ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  if (major < 1 || major > 3) throw Error(path + ": unsupported .npy version " + std::to_string(major));
  unsigned char len_bytes[4] = {};
  const int len_size = major == 1 ? 2 : 4;
  in.read(reinterpret_cast<char*>(len_bytes), len_size);
  size_t header_len = len_bytes[0] | (len_bytes[1] << 8);
  if (len_size == 4) header_len |= (size_t{len_bytes[2]} << 16) | (size_t{len_bytes[3]} << 24);
  if (!in || header_len > (1u << 20)) throw Error(path + ": truncated or corrupt .npy header");
  std::string header(header_len, '\0');
  in.read(&header[0], static_cast<std::streamsize>(header_len));
  if (static_cast<size_t>(in.gcount()) != header_len) throw Error(path + ": truncated .npy header");

  if (header_field(header, "fortran_order", path).rfind("False", 0) != 0)
    throw Error(path + ": Fortran-ordered .npy files are not supported (save a C-ordered array)");
  Tensor t;
  t.dtype = parse_descr(header_field(header, "descr", path), path);
  t.shape = parse_shape(header_field(header, "shape", path), path);
  int64_t bytes = static_cast<int64_t>(dtype_size(t.dtype));
  for (int64_t d : t.shape) {
    if (d != 0 && bytes > kMaxBytes / d) throw Error(path + ": .npy shape too large " + shape_str(t.shape));
    bytes *= d;
  }
  // Compare with the bytes really there before allocating: a corrupt shape must not cost memory.
  const std::streamoff data_start = in.tellg();
  in.seekg(0, std::ios::end);
  const int64_t present = static_cast<int64_t>(in.tellg() - data_start);
  in.seekg(data_start);
  if (present < bytes)
    throw Error(path + ": truncated .npy data (" + std::to_string(present) + " of " +
                std::to_string(bytes) + " bytes for shape " + shape_str(t.shape) + ")");
  if (present > bytes) throw Error(path + ": .npy file is longer than its header says");
  t.data.resize(static_cast<size_t>(bytes));
  in.read(reinterpret_cast<char*>(t.data.data()), bytes);
  if (in.gcount() != bytes) throw Error(path + ": cannot read the .npy data");
  return t;
}

void write_npy(const std::string& path, const Tensor& t) {
  std::string descr;
  for (const Descr& d : kDescrs)
    if (d.dtype == t.dtype) descr = d.code;
  std::string shape = "(";
  for (int64_t d : t.shape) shape += std::to_string(d) + ", ";
  if (t.shape.size() > 1) shape.resize(shape.size() - 2);
  else if (t.shape.size() == 1) shape.resize(shape.size() - 1);  // "(3,)"
  shape += ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // pad so magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';

  const std::string tmp = path + ".partial";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write");
    out.write(kMagic, 6);
    out.put(1).put(0);
    out.put(static_cast<char>(header.size() & 0xFF)).put(static_cast<char>(header.size() >> 8));
    out << header;
    out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
    if (!out.flush()) throw Error(path + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error(path + ": cannot write (rename failed)");
}

}  // namespace edgert
