// The ONNX Runtime backend: CPU execution provider, ONNX Runtime's C++ API.
#include <onnxruntime_cxx_api.h>

#include "edgert/error.hpp"
#include "edgert/model.hpp"

namespace edgert {
namespace {

struct OrtType {
  ONNXTensorElementDataType ort;
  DType dtype;
};
const OrtType kTypes[] = {
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, DType::Float32}, {ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, DType::Float64},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, DType::Float16}, {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, DType::Int64},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, DType::Int32}, {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, DType::Int8},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, DType::UInt8}, {ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, DType::Bool}};

DType to_dtype(ONNXTensorElementDataType t, const std::string& what) {
  for (const OrtType& o : kTypes)
    if (o.ort == t) return o.dtype;
  throw Error(what + ": element type " + std::to_string(static_cast<int>(t)) + " is not supported");
}

ONNXTensorElementDataType to_ort(DType d) {
  for (const OrtType& o : kTypes)
    if (o.dtype == d) return o.ort;
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

// The C API table the headers were compiled for; a library older than the headers has none.
void init_api() {
  static bool done = false;
  if (done) return;
  const OrtApiBase* base = OrtGetApiBase();
  const OrtApi* api = base->GetApi(ORT_API_VERSION);
  if (api == nullptr)
    throw Error(std::string("libonnxruntime ") + base->GetVersionString() + " does not provide C API version " +
                std::to_string(ORT_API_VERSION) + ", which edgert was compiled against: rebuild with older headers");
  Ort::InitApi(api);
  done = true;
}

Ort::Env& env() {
  static Ort::Env e(ORT_LOGGING_LEVEL_FATAL, "edgert");  // errors reach the caller as exceptions
  return e;
}

TensorSpec spec_of(const std::string& name, const Ort::TypeInfo& info, const std::string& what) {
  if (info.GetONNXType() != ONNX_TYPE_TENSOR) throw Error(what + " '" + name + "' is not a tensor");
  auto shape_info = info.GetTensorTypeAndShapeInfo();
  TensorSpec spec;
  spec.name = name;
  spec.dtype = to_dtype(shape_info.GetElementType(), what + " '" + name + "'");
  spec.shape = shape_info.GetShape();
  std::vector<const char*> symbolic(spec.shape.size(), nullptr);
  shape_info.GetSymbolicDimensions(symbolic.data(), symbolic.size());
  for (size_t i = 0; i < spec.shape.size(); ++i)
    spec.axis_names.push_back(spec.shape[i] < 0 && symbolic[i] ? symbolic[i] : "");
  return spec;
}

class OnnxRuntimeEngine : public Engine {
 public:
  OnnxRuntimeEngine(const std::string& path, const EngineOptions& options) {
    init_api();
    Ort::SessionOptions so;
    if (options.threads > 0) so.SetIntraOpNumThreads(options.threads);
    session_ = Ort::Session(env(), path.c_str(), so);
    Ort::AllocatorWithDefaultOptions alloc;
    for (size_t i = 0; i < session_.GetInputCount(); ++i)
      inputs_.push_back(spec_of(session_.GetInputNameAllocated(i, alloc).get(), session_.GetInputTypeInfo(i), "input"));
    for (size_t i = 0; i < session_.GetOutputCount(); ++i)
      outputs_.push_back(spec_of(session_.GetOutputNameAllocated(i, alloc).get(), session_.GetOutputTypeInfo(i), "output"));
    for (const TensorSpec& s : inputs_) input_names_.push_back(s.name.c_str());
    for (const TensorSpec& s : outputs_) output_names_.push_back(s.name.c_str());
  }

  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  std::string runtime() const override { return "onnxruntime"; }
  std::string version() const override { return OrtGetApiBase()->GetVersionString(); }

  std::vector<Tensor> run(const std::vector<const Tensor*>& inputs) override {
    try {
      return run_session(inputs);
    } catch (const Ort::Exception& e) {  // e.g. a size the graph's own checks refuse
      throw Error(std::string("ONNX Runtime could not run the model: ") + e.what());
    }
  }

 private:
  Ort::Session session_{nullptr};
  std::vector<TensorSpec> inputs_, outputs_;
  std::vector<const char*> input_names_, output_names_;

  std::vector<Tensor> run_session(const std::vector<const Tensor*>& inputs) {
    auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::vector<Ort::Value> values;
    for (const Tensor* t : inputs)  // ORT reads the caller's buffer; it does not write inputs
      values.push_back(Ort::Value::CreateTensor(memory, const_cast<unsigned char*>(t->data.data()), t->data.size(),
                                                t->shape.data(), t->shape.size(), to_ort(t->dtype)));
    auto results = session_.Run(Ort::RunOptions{nullptr}, input_names_.data(), values.data(), values.size(),
                                output_names_.data(), output_names_.size());
    std::vector<Tensor> out;
    for (size_t i = 0; i < results.size(); ++i) {
      auto info = results[i].GetTensorTypeAndShapeInfo();
      Tensor t;
      t.dtype = to_dtype(info.GetElementType(), "output '" + outputs_[i].name + "'");
      t.shape = info.GetShape();
      t.data.resize(t.elements() * dtype_size(t.dtype));
      const auto* src = static_cast<const unsigned char*>(results[i].GetTensorRawData());
      std::copy(src, src + t.data.size(), t.data.begin());
      out.push_back(std::move(t));
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<Engine> open_onnxruntime(const std::string& path, const EngineOptions& options) {
  try {
    return std::make_unique<OnnxRuntimeEngine>(path, options);
  } catch (const Ort::Exception& e) {  // corrupt, truncated or not an ONNX model
    throw Error(path + ": ONNX Runtime cannot load it: " + e.what());
  }
}

}  // namespace edgert
