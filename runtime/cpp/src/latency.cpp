#include "edgert/latency.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "edgert/json.hpp"

namespace edgert {
namespace {

// numpy.percentile's default ("linear"): rank q/100 * (n - 1) between the sorted neighbours.
double percentile(std::vector<double> sorted, double q) {
  double rank = q / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string field(const std::string& key, const std::string& value) { return json_quote(key) + ": " + value; }

}  // namespace

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

Timing time_calls(const std::function<void()>& call, const TimingSettings& settings) {
  Timing t;
  double start = now_ms();
  call();
  t.first_inference_ms = now_ms() - start;
  for (int i = 0; i < settings.warmup; ++i) call();
  const double deadline = now_ms() + settings.max_seconds * 1000.0;
  while (static_cast<int>(t.samples_ms.size()) < settings.iterations &&
         (t.samples_ms.size() < 5 || now_ms() < deadline)) {
    start = now_ms();
    call();
    t.samples_ms.push_back(now_ms() - start);
  }
  return t;
}

std::string latency_record_json(const LatencyIdentity& id, const TimingSettings& settings, const Timing& timing,
                                double load_ms) {
  std::vector<double> s = timing.samples_ms;
  std::sort(s.begin(), s.end());
  const double n = static_cast<double>(s.size());
  double mean = 0, var = 0;
  for (double v : s) mean += v / n;
  for (double v : s) var += (v - mean) * (v - mean);
  const double stdev = s.size() > 1 ? std::sqrt(var / (n - 1)) : 0.0;
  const double cv = mean > 0 ? stdev / mean : 0.0;
  const double median = percentile(s, 50);

  std::string shape, samples;
  for (int64_t d : id.input_shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  for (double v : timing.samples_ms) samples += (samples.empty() ? "" : ", ") + num(std::round(v * 1e6) / 1e6);
  std::vector<std::string> f = {
      field("model", json_quote(id.model)), field("artifact", json_quote(id.artifact)),
      field("format", json_quote(id.format)), field("target", json_quote(id.target)),
      field("runtime", json_quote(id.runtime)), field("runtime_version", json_quote(id.runtime_version)),
      field("precision", json_quote(id.precision)), field("batch_size", std::to_string(id.batch_size)),
      field("input_shape", "[" + shape + "]"), field("warmup", std::to_string(settings.warmup)),
      field("iterations", std::to_string(s.size())), field("samples_ms", "[" + samples + "]"),
      field("min_ms", num(s.front())), field("mean_ms", num(mean)), field("median_ms", num(median)),
      field("p90_ms", num(percentile(s, 90))), field("p95_ms", num(percentile(s, 95))),
      field("p99_ms", num(percentile(s, 99))), field("max_ms", num(s.back())), field("cv", num(cv)),
      field("cv_threshold", num(settings.cv_threshold)),
      field("unstable", cv > settings.cv_threshold ? "true" : "false"),
      field("throughput_per_s", num(id.batch_size / (median / 1e3))), field("load_ms", num(load_ms)),
      field("first_inference_ms", num(timing.first_inference_ms)),
      field("threads", id.threads > 0 ? std::to_string(id.threads) : "null"),
  };
  std::string out = "{";
  for (size_t i = 0; i < f.size(); ++i) out += (i ? ", " : "") + f[i];
  return out + "}";
}

}  // namespace edgert
