-- wrk script for scripts/bench-dataplane: when the run is done, print its figures as one line
-- of JSON after the marker WRK_JSON (latency in microseconds, as wrk records it), so the
-- benchmark reads numbers instead of wrk's rounded text. Non-2xx/3xx answers count as errors.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
