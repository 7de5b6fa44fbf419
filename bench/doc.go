// Package bench holds jumpwire's performance benchmarks. Each benchmark
// measures jumpwire and, in the same run, a baseline that does the same work
// with nothing of jumpwire in it, and reports the figures of both and their
// ratio as metrics (b.ReportMetric): absolute figures depend on the machine,
// ratios much less. Nothing here asserts a timing; TestBenchmarks only checks
// that every measurement still works.
//
//   - BenchmarkDriverCall: a client's DriverCall through the exporter to a
//     plugin process and back, against a bare two-hop gRPC proxy to a bare
//     go-plugin plugin (p50 and p99 of per-call durations).
//   - BenchmarkColdStart: launch, handshake, describe, configure and first
//     call of a power plugin, against a bare go-plugin launch and one call.
//   - BenchmarkIdleRSS: resident memory of one idle power plugin (against a
//     bare plugin) and of `jw run` serving 20 power instances, plugins
//     included.
//
// Run them with `make bench`; docs/PERFORMANCE.md records the figures.
package bench
