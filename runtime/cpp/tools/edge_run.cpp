// edge-run: load an exported artifact, run it on .npy inputs, write the outputs, time it.
//
//   edge-run ARTIFACT --input x.npy [--output y.npy] [--bench N] [--json]
//   edge-run ARTIFACT --input x.npy --serve     # one timed run per line read from stdin
//
// ARTIFACT is the model file or its folder (one *.signature.json in it). Models with several
// inputs or outputs take NAME=FILE. Bad input of any kind (missing or corrupt file, wrong shape
// or dtype) prints one line `edge-run: error: ...` and exits with code 2.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "edgert/error.hpp"
#include "edgert/json.hpp"
#include "edgert/latency.hpp"
#include "edgert/model.hpp"
#include "edgert/npy.hpp"

namespace {

const char kUsage[] =
    "usage: edge-run ARTIFACT --input [NAME=]x.npy ... [--output [NAME=]y.npy ...]\n"
    "                [--bench N] [--warmup N] [--max-seconds S] [--threads N] [--json]\n"
    "Runs an exported ONNX artifact (file or folder) with ONNX Runtime's C++ API.\n"
    "  --input        an input as .npy (NAME= needed when the model has several inputs)\n"
    "  --output       where to write an output as .npy (NAME= for other than the first)\n"
    "  --bench N      time N runs with the Python profiler's protocol (latency schema)\n"
    "  --warmup N     untimed runs before timing (default 20)\n"
    "  --max-seconds  stop timing after this long once 5 runs are timed (default 20)\n"
    "  --threads N    intra-op threads (default: ONNX Runtime's)\n"
    "  --json         print one JSON object: the latency record with --bench, else the outputs\n"
    "  --serve        after loading, print 'ready'; then for each line on stdin run once and\n"
    "                 print its time in ms (for a profiler that interleaves models)\n";

struct Args {
  std::string artifact;
  std::vector<std::pair<std::string, std::string>> inputs, outputs;  // (name or "", path)
  int bench = 0, threads = 0;
  edgert::TimingSettings timing;
  bool json = false, serve = false;
};

std::pair<std::string, std::string> named(const std::string& arg) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos || arg.find('/') < eq) return {"", arg};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

long number(const std::string& flag, const char* text, long lo, long hi) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < lo || v > hi)
    throw edgert::Error(flag + " takes a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                        ", got '" + text + "'");
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw edgert::Error(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--input") a.inputs.push_back(named(value()));
    else if (flag == "--output") a.outputs.push_back(named(value()));
    else if (flag == "--bench") a.bench = static_cast<int>(number(flag, value(), 1, 1000000));
    else if (flag == "--warmup") a.timing.warmup = static_cast<int>(number(flag, value(), 0, 100000));
    else if (flag == "--max-seconds") a.timing.max_seconds = static_cast<double>(number(flag, value(), 1, 3600));
    else if (flag == "--threads") a.threads = static_cast<int>(number(flag, value(), 1, 1024));
    else if (flag == "--json") a.json = true;
    else if (flag == "--serve") a.serve = true;
    else if (flag.rfind("--", 0) == 0) throw edgert::Error("unknown option " + flag);
    else if (a.artifact.empty()) a.artifact = flag;
    else throw edgert::Error("one artifact at a time; got '" + a.artifact + "' and '" + flag + "'");
  }
  if (a.artifact.empty()) throw edgert::Error("no artifact given");
  if (a.inputs.empty()) throw edgert::Error("no --input given");
  a.timing.iterations = a.bench;
  return a;
}

// The given .npy files by input name; an unnamed file is the model's only input.
std::map<std::string, edgert::Tensor> read_inputs(const Args& a, const edgert::Model& m) {
  std::map<std::string, edgert::Tensor> feed;
  for (const auto& [name, path] : a.inputs) {
    std::string key = name;
    if (key.empty()) {
      if (m.inputs().size() != 1)
        throw edgert::Error("the model takes " + std::to_string(m.inputs().size()) +
                            " inputs; name each: --input NAME=FILE.npy");
      key = m.inputs()[0].name;
    }
    if (feed.count(key)) throw edgert::Error("input '" + key + "' given twice");
    try {
      feed[key] = edgert::read_npy(path);
    } catch (const edgert::Error& e) {
      throw edgert::Error("input '" + key + "': " + e.what());
    }
  }
  return feed;
}

void write_outputs(const Args& a, const edgert::Model& m, const std::map<std::string, edgert::Tensor>& out) {
  for (const auto& [name, path] : a.outputs) {
    const std::string key = name.empty() ? m.outputs()[0].name : name;
    auto it = out.find(key);
    if (it == out.end()) throw edgert::Error("the model has no output '" + key + "'");
    edgert::write_npy(path, it->second);
  }
}

std::string outputs_json(const std::map<std::string, edgert::Tensor>& out) {
  std::string s = "{\"outputs\": [";
  bool first = true;
  for (const auto& [name, t] : out) {
    std::string shape;
    for (int64_t d : t.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    s += std::string(first ? "" : ", ") + "{\"name\": " + edgert::json_quote(name) + ", \"dtype\": \"" +
         edgert::dtype_name(t.dtype) + "\", \"shape\": [" + shape + "]}";
    first = false;
  }
  return s + "]}";
}

std::string file_stem(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  return base.substr(0, base.find_last_of('.'));
}

edgert::LatencyIdentity identity(const Args& a, edgert::Model& m, const edgert::Tensor& first) {
  const edgert::Signature& s = m.signature();
  edgert::LatencyIdentity id;
  id.model = s.model.empty() ? file_stem(m.path()) : s.model;
  id.artifact = m.path();
  id.format = s.format;
  id.target = "cpu-ort-cpp";
  id.runtime = m.engine().runtime() + "-cpp";
  id.runtime_version = m.engine().version();
  id.precision = s.precision.empty() ? "unknown" : s.precision;
  id.batch_size = first.shape.empty() ? 1 : static_cast<int>(first.shape[0]);
  id.input_shape = first.shape;
  id.threads = a.threads;
  return id;
}

// A profiler's handle: each stdin line runs the model once and answers the C++-side time in ms,
// so Python can interleave this model with others without its own overhead in the samples.
int serve(edgert::Model& m, const std::map<std::string, edgert::Tensor>& feed) {
  std::cout << "ready" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    const double start = edgert::now_ms();
    m.run(feed);
    std::printf("%.6f\n", edgert::now_ms() - start);
    std::fflush(stdout);
  }
  return 0;
}

int run(const Args& a) {
  edgert::EngineOptions options;
  options.threads = a.threads;
  edgert::Model m = edgert::Model::load(a.artifact, options);
  auto feed = read_inputs(a, m);
  edgert::check_inputs(m.inputs(), feed);
  if (a.serve) return serve(m, feed);
  auto out = m.run(feed);
  write_outputs(a, m, out);
  if (a.bench == 0) {
    if (a.json) std::cout << outputs_json(out) << "\n";
    else
      for (const auto& [name, t] : out)
        std::cout << name << ": " << edgert::dtype_name(t.dtype) << " " << edgert::shape_str(t.shape) << "\n";
    return 0;
  }
  // Timed like the Python profiler: a fresh load, its first call alone, warm-up, then samples.
  const double reload = edgert::now_ms();
  edgert::Model timed = edgert::Model::load(a.artifact, options);
  const double timed_load_ms = edgert::now_ms() - reload;
  edgert::Timing timing = edgert::time_calls([&] { timed.run(feed); }, a.timing);
  const edgert::Tensor& first = feed.at(m.inputs()[0].name);
  std::string record = edgert::latency_record_json(identity(a, timed, first), a.timing, timing, timed_load_ms);
  if (a.json) {
    std::cout << record << "\n";
  } else {
    edgert::Json r = edgert::Json::parse(record, "record");
    std::printf("%s batch %d: median %.4f ms, p99 %.4f ms, cv %.2f%s (%zu runs, load %.1f ms)\n",
                r.at("model").str().c_str(), static_cast<int>(r.at("batch_size").num()), r.at("median_ms").num(),
                r.at("p99_ms").num(), r.at("cv").num(), r.at("unstable").boolean ? " UNSTABLE" : "",
                timing.samples_ms.size(), timed_load_ms);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::cout << kUsage;
    return 0;
  }
  try {
    return run(parse(argc, argv));
  } catch (const edgert::Error& e) {
    std::cerr << "edge-run: error: " << e.what() << "\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << "edge-run: error: out of memory (is an input or the model far larger than expected?)\n";
    return 2;
  } catch (const std::exception& e) {  // a bug in edge-run rather than bad input
    std::cerr << "edge-run: internal error: " << e.what() << "\n";
    return 1;
  }
}
