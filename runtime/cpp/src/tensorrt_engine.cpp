// The TensorRT backend: a serialized engine (format "tensorrt") run with TensorRT 10's
// name-based I/O API on the default CUDA device. Compiled only when CMake finds TensorRT and CUDA.
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <fstream>
#include <iterator>
#include <memory>

#include "edgert/error.hpp"
#include "edgert/model.hpp"

namespace edgert {
namespace {

class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    if (severity <= Severity::kERROR) last = msg;  // reported through the Error we throw
  }
  std::string last;
};

void cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(status));
}

DType to_dtype(nvinfer1::DataType t, const std::string& name) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: return DType::Float32;
    case nvinfer1::DataType::kHALF: return DType::Float16;
    case nvinfer1::DataType::kINT32: return DType::Int32;
    case nvinfer1::DataType::kINT64: return DType::Int64;
    case nvinfer1::DataType::kINT8: return DType::Int8;
    case nvinfer1::DataType::kUINT8: return DType::UInt8;
    case nvinfer1::DataType::kBOOL: return DType::Bool;
    default: throw Error("tensor '" + name + "': TensorRT data type not supported by edgert");
  }
}

// Device memory freed on every path out of run().
struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) { cuda(cudaMalloc(&ptr, bytes ? bytes : 1), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

class TensorRtEngine : public Engine {
 public:
  TensorRtEngine(const std::string& path, const EngineOptions&) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) throw Error("TensorRT: cannot create a runtime (no usable GPU?)");
    engine_.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine_) throw Error(path + ": TensorRT cannot deserialize it: " + logger_.last);
    context_.reset(engine_->createExecutionContext());
    if (!context_) throw Error(path + ": TensorRT cannot create an execution context: " + logger_.last);
    for (int i = 0; i < engine_->getNbIOTensors(); ++i) {
      const char* name = engine_->getIOTensorName(i);
      TensorSpec spec;
      spec.name = name;
      spec.dtype = to_dtype(engine_->getTensorDataType(name), name);
      nvinfer1::Dims dims = engine_->getTensorShape(name);
      for (int d = 0; d < dims.nbDims; ++d) {
        spec.shape.push_back(dims.d[d]);
        spec.axis_names.push_back(dims.d[d] < 0 ? "axis" + std::to_string(d) : "");
      }
      bool input = engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
      (input ? inputs_ : outputs_).push_back(spec);
    }
  }

  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  std::string runtime() const override { return "tensorrt"; }
  std::string version() const override {
    int v = getInferLibVersion();  // e.g. 100300 for 10.3.0
    return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
  }

  std::vector<Tensor> run(const std::vector<const Tensor*>& inputs) override {
    std::vector<std::unique_ptr<DeviceBuffer>> buffers;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& t = *inputs[i];
      nvinfer1::Dims dims{};
      dims.nbDims = static_cast<int>(t.shape.size());
      for (size_t d = 0; d < t.shape.size(); ++d) dims.d[d] = t.shape[d];
      if (!context_->setInputShape(inputs_[i].name.c_str(), dims))
        throw Error("input '" + inputs_[i].name + "': shape " + shape_str(t.shape) +
                    " is outside the engine's optimization profile");
      buffers.push_back(std::make_unique<DeviceBuffer>(t.data.size()));
      cuda(cudaMemcpy(buffers.back()->ptr, t.data.data(), t.data.size(), cudaMemcpyHostToDevice), "copy in");
      context_->setTensorAddress(inputs_[i].name.c_str(), buffers.back()->ptr);
    }
    std::vector<Tensor> out;
    for (const TensorSpec& spec : outputs_) {
      Tensor t;
      t.dtype = spec.dtype;
      nvinfer1::Dims dims = context_->getTensorShape(spec.name.c_str());
      for (int d = 0; d < dims.nbDims; ++d) t.shape.push_back(dims.d[d]);
      t.data.resize(t.elements() * dtype_size(t.dtype));
      buffers.push_back(std::make_unique<DeviceBuffer>(t.data.size()));
      context_->setTensorAddress(spec.name.c_str(), buffers.back()->ptr);
      out.push_back(std::move(t));
    }
    cudaStream_t stream;
    cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
    const bool ok = context_->enqueueV3(stream);
    cudaError_t synced = cudaStreamSynchronize(stream);
    cudaStreamDestroy(stream);
    if (!ok) throw Error("TensorRT could not run the engine: " + logger_.last);
    cuda(synced, "run");
    for (size_t i = 0; i < out.size(); ++i)
      cuda(cudaMemcpy(out[i].data.data(), buffers[inputs.size() + i]->ptr, out[i].data.size(),
                      cudaMemcpyDeviceToHost), "copy out");
    return out;
  }

 private:
  Logger logger_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
  std::vector<TensorSpec> inputs_, outputs_;
};

}  // namespace

std::unique_ptr<Engine> open_tensorrt(const std::string& path, const EngineOptions& options) {
  return std::make_unique<TensorRtEngine>(path, options);
}

}  // namespace edgert
