// Load an exported artifact and run it: the engine (ONNX Runtime, or TensorRT when built with
// it) chosen by the signature's format; inputs checked against the model before they reach it.
//
//   edgert::Model m = edgert::Model::load("runs/fashion-kd/03-export/student@s0");
//   auto out = m.run({{"input", x}});        // {"logits": Tensor (b, 10)}
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgert/signature.hpp"
#include "edgert/tensor.hpp"

namespace edgert {

struct EngineOptions {
  int threads = 0;  // intra-op threads; 0: the runtime's default (as the Python runtime)
};

// One loaded model file in one runtime; inputs arrive in the engine's input order, checked.
class Engine {
 public:
  virtual ~Engine() = default;
  virtual const std::vector<TensorSpec>& inputs() const = 0;
  virtual const std::vector<TensorSpec>& outputs() const = 0;
  virtual std::vector<Tensor> run(const std::vector<const Tensor*>& inputs) = 0;
  virtual std::string runtime() const = 0;  // "onnxruntime"
  virtual std::string version() const = 0;  // "1.32.0"
};

std::unique_ptr<Engine> open_onnxruntime(const std::string& path, const EngineOptions& options);
#ifdef EDGERT_WITH_TENSORRT
std::unique_ptr<Engine> open_tensorrt(const std::string& path, const EngineOptions& options);
#endif

class Model {
 public:
  // An artifact file, or a folder holding exactly one *.signature.json. The signature is read
  // when it exists; a bare .onnx file without one still loads (format onnx, names from the model).
  static Model load(const std::string& path, const EngineOptions& options = {});

  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs);
  const std::vector<TensorSpec>& inputs() const { return engine_->inputs(); }
  const std::vector<TensorSpec>& outputs() const { return engine_->outputs(); }
  const std::string& path() const { return path_; }
  const Signature& signature() const { return signature_; }  // empty fields when there was none
  bool has_signature() const { return !signature_.path.empty(); }
  Engine& engine() { return *engine_; }

 private:
  std::string path_;
  Signature signature_;
  std::unique_ptr<Engine> engine_;
};

// Throws edgert::Error naming the input when a tensor's dtype, rank or a fixed size is wrong, an
// input is missing or unknown, or a named dynamic axis takes two different sizes.
void check_inputs(const std::vector<TensorSpec>& specs, const std::map<std::string, Tensor>& inputs);

}  // namespace edgert
