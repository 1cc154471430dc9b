#include "edgert/signature.hpp"

#include <fstream>
#include <sstream>

#include "edgert/error.hpp"

namespace edgert {
namespace {

TensorSpec tensor_spec(const Json& j) {
  TensorSpec spec;
  spec.name = j.at("name").str();
  if (!dtype_from_name(j.at("dtype").str(), &spec.dtype))
    throw Error("unknown dtype '" + j.at("dtype").str() + "'");
  for (const Json& d : j.at("shape").list()) {
    bool named = d.kind == Json::Kind::String;
    spec.shape.push_back(named ? -1 : static_cast<int64_t>(d.num()));
    spec.axis_names.push_back(named ? d.str() : "");
  }
  return spec;
}

std::vector<float> floats(const Json& j) {
  std::vector<float> out;
  for (const Json& v : j.list()) out.push_back(static_cast<float>(v.num()));
  return out;
}

ImagePreprocessing image_preprocessing(const Json& j) {
  ImagePreprocessing p;
  if (j.is_null()) return p;
  p.present = true;
  if (!j.at("size").is_null()) {
    p.height = static_cast<int>(j.at("size").list().at(0).num());
    p.width = static_cast<int>(j.at("size").list().at(1).num());
  }
  p.resize = j.at("resize").is_null() ? 0 : static_cast<int>(j.at("resize").num());
  p.channels = static_cast<int>(j.at("channels").num());
  p.mean = floats(j.at("mean"));
  p.std = floats(j.at("std"));
  if (j.has("layout")) p.layout = j.at("layout").str();
  if (p.mean.size() != static_cast<size_t>(p.channels) || p.std.size() != p.mean.size())
    throw Error("preprocessing: mean and std need one value per channel");
  return p;
}

}  // namespace

Signature read_signature(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": no such signature file");
  std::stringstream text;
  text << in.rdbuf();
  Json j = Json::parse(text.str(), path);
  Signature s;
  s.path = path;
  try {
    s.file = j.at("file").str();
    s.format = j.at("format").str();
    s.precision = j.at("precision").str();
    s.task = j.at("task").str();
    for (const Json& t : j.at("signature").at("inputs").list()) s.inputs.push_back(tensor_spec(t));
    for (const Json& t : j.at("signature").at("outputs").list()) s.outputs.push_back(tensor_spec(t));
    for (const Json& l : j.at("labels").list()) s.labels.push_back(l.str());
    if (j.has("preprocessing")) s.preprocessing = image_preprocessing(j.at("preprocessing"));
    s.provenance = j.at("provenance");
    if (s.provenance.has("model")) s.model = s.provenance.at("model").str();
  } catch (const std::out_of_range&) {
    throw Error(path + ": not a readable signature file (preprocessing.size needs 2 values)");
  } catch (const Error& e) {
    throw Error(path + ": not a readable signature file (" + e.what() + ")");
  }
  if (s.file.find('/') != std::string::npos || s.file.empty())
    throw Error(path + ": 'file' must name a file in the signature's own folder, got '" + s.file + "'");
  return s;
}

std::string signature_path(const std::string& artifact) {
  size_t slash = artifact.find_last_of('/');
  size_t dot = artifact.find_last_of('.');
  std::string stem = dot == std::string::npos || (slash != std::string::npos && dot < slash)
                         ? artifact : artifact.substr(0, dot);
  return stem + ".signature.json";
}

}  // namespace edgert
