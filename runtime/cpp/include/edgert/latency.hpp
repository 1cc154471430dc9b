// Timing with the protocol and the record of the Python profiler (compress.devices.latency):
// first inference timed alone, `warmup` untimed runs, then up to `iterations` timed runs, stopping
// early after `max_seconds` once there are 5 samples. The JSON record has LatencyRecord's fields.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace edgert {

struct TimingSettings {
  int warmup = 20;
  int iterations = 200;
  double max_seconds = 20.0;
  double cv_threshold = 0.15;
};

struct Timing {
  double first_inference_ms = 0;
  std::vector<double> samples_ms;
};

Timing time_calls(const std::function<void()>& call, const TimingSettings& settings);
double now_ms();  // a monotonic clock, for timing the load

// What the record says about the measured thing (LatencyRecord's descriptive fields).
struct LatencyIdentity {
  std::string model, artifact, format, target, runtime, runtime_version, precision;
  int batch_size = 1;
  std::vector<int64_t> input_shape;
  int threads = 0;  // 0: not set
};

// One LatencyRecord as JSON: samples, min/mean/median/p90/p95/p99/max (numpy's linear
// percentiles), cv (sample stdev / mean), unstable, throughput, load and first-inference times.
std::string latency_record_json(const LatencyIdentity& id, const TimingSettings& settings, const Timing& timing,
                                double load_ms);

}  // namespace edgert
