#include "edgert/model.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include "edgert/error.hpp"

namespace edgert {
namespace {

bool is_dir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The one signature file in a folder.
std::string folder_signature(const std::string& dir) {
  std::vector<std::string> found;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (ends_with(e->d_name, ".signature.json")) found.push_back(dir + "/" + e->d_name);
    closedir(d);
  }
  if (found.size() != 1)
    throw Error(dir + ": " + std::to_string(found.size()) + " signature files here; name the artifact");
  return found[0];
}

}  // namespace

Model Model::load(const std::string& path, const EngineOptions& options) {
  Model m;
  std::string sig;
  if (is_dir(path)) {
    sig = folder_signature(path);
    m.signature_ = read_signature(sig);
    m.path_ = path + "/" + m.signature_.file;
  } else {
    m.path_ = path;
    sig = signature_path(path);
    if (is_file(sig)) m.signature_ = read_signature(sig);
    else m.signature_.format = "onnx";
  }
  if (!is_file(m.path_)) throw Error("no such artifact: " + m.path_);
  const std::string& format = m.signature_.format;
  if (format == "onnx" || format.rfind("onnx-", 0) == 0) {  // onnx, onnx-qdq, onnx-generation, ...
    m.engine_ = open_onnxruntime(m.path_, options);
  } else if (format == "tensorrt") {
#ifdef EDGERT_WITH_TENSORRT
    m.engine_ = open_tensorrt(m.path_, options);
#else
    throw Error(m.path_ + ": a TensorRT engine; this build of edgert has no TensorRT backend "
                "(CMake did not find TensorRT and CUDA)");
#endif
  } else {
    throw Error(m.path_ + ": format '" + format + "' is not run by the C++ runtime (onnx, onnx-*" +
#ifdef EDGERT_WITH_TENSORRT
                ", tensorrt" +
#endif
                "); use the Python runtime, compress.runtime.load");
  }
  return m;
}

std::map<std::string, Tensor> Model::run(const std::map<std::string, Tensor>& inputs) {
  check_inputs(engine_->inputs(), inputs);
  std::vector<const Tensor*> ordered;
  for (const TensorSpec& spec : engine_->inputs()) ordered.push_back(&inputs.at(spec.name));
  std::vector<Tensor> results = engine_->run(ordered);
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < results.size(); ++i) out[engine_->outputs()[i].name] = std::move(results[i]);
  return out;
}

void check_inputs(const std::vector<TensorSpec>& specs, const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, int64_t> axis_sizes;  // "batch" -> 8: one size per named axis
  for (const TensorSpec& spec : specs) {
    auto it = inputs.find(spec.name);
    if (it == inputs.end()) throw Error("missing input '" + spec.name + "'");
    const Tensor& t = it->second;
    const std::string want = dtype_name(spec.dtype) + " " + shape_str(spec.shape);
    const std::string got = dtype_name(t.dtype) + " " + shape_str(t.shape);
    if (t.dtype != spec.dtype)
      throw Error("input '" + spec.name + "': dtype " + dtype_name(t.dtype) + ", the model takes " + want);
    if (t.shape.size() != spec.shape.size())
      throw Error("input '" + spec.name + "': shape " + shape_str(t.shape) + ", the model takes " + want);
    for (size_t i = 0; i < spec.shape.size(); ++i) {
      if (t.shape[i] == 0) throw Error("input '" + spec.name + "': empty (" + got + ")");
      if (spec.shape[i] >= 0 && t.shape[i] != spec.shape[i])
        throw Error("input '" + spec.name + "': shape " + shape_str(t.shape) + ", the model takes " + want);
      const std::string& axis = spec.axis_names.size() > i ? spec.axis_names[i] : "";
      if (axis.empty()) continue;
      auto [seen, fresh] = axis_sizes.emplace(axis, t.shape[i]);
      if (!fresh && seen->second != t.shape[i])
        throw Error("input '" + spec.name + "': axis '" + axis + "' is " + std::to_string(t.shape[i]) +
                    " here but " + std::to_string(seen->second) + " in another input");
    }
  }
  for (const auto& [name, t] : inputs) {
    bool known = false;
    for (const TensorSpec& spec : specs) known = known || spec.name == name;
    if (!known) throw Error("unknown input '" + name + "'");
  }
}

}  // namespace edgert
