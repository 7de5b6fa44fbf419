// Package bench holds jumpwire's performance benchmarks. Each benchmark
// measures jumpwire and, in the same run, a baseline that does the same work
// with nothing of jumpwire in it, and reports the figures of both and their
// ratio as metrics (b.ReportMetric): absolute figures depend on the machine,
// ratios much less. Nothing here asserts a timing; TestBenchmarks and
// TestStreamBenchmarks only check that every measurement still works.
//
//   - BenchmarkDriverCall: a client's DriverCall through the exporter to a
//     plugin process and back, against a bare two-hop gRPC proxy to a bare
//     go-plugin plugin (p50 and p99 of per-call durations).
//   - BenchmarkColdStart: launch, handshake, describe, configure and first
//     call of a power plugin, against a bare go-plugin launch and one call.
//   - BenchmarkIdleRSS: resident memory of one idle power plugin (against a
//     bare plugin) and of `jw run` serving 20 power instances, plugins
//     included.
//   - BenchmarkStreamThroughput: byte streams from a client through the
//     exporter to a sink or echo driver, chunk sizes 4 KiB to 1 MiB, against
//     a bare two-hop gRPC passthrough to a bare go-plugin plugin.
//   - BenchmarkForwardThroughput: `jw forward tcp` against socat and ssh -L
//     relaying the same connections to the same target.
//   - BenchmarkConsoleLatency: one byte out and its echo back through the
//     serial driver, against the same echo on the bare pseudo-terminal.
//   - BenchmarkIdleStreams: memory per idle open stream, exporter and plugin.
//   - BenchmarkRestart: kill to answer after a driver's process is killed,
//     against a cold start of the same binary.
//   - BenchmarkKillStorm: calls to one driver while another is killed every
//     100 ms, against the same load without kills.
//   - BenchmarkSwapUnderLoad: 16 callers while the driver's binary is
//     replaced and reloaded, against steady state.
//   - BenchmarkReload100: a reload of 100 instances of which one changed.
//   - BenchmarkFlash: `jw flash` of a 1 GiB image (raw and gzip) into the
//     storage driver on tmpfs and on disk, against cp and zcat with sync,
//     with the peak RSS of exporter, plugin and client.
//   - BenchmarkBoardBoot: QEMU board power-on to login prompt through the
//     exporter, against qemu started directly (needs make image).
//   - BenchmarkBoardConsoleEcho: a byte's echo from the board's shell through
//     the console stream, against socat on qemu's serial socket.
//   - BenchmarkUnderAbuse: an authorised client's DriverCall over TCP with
//     TLS and a passphrase while strangers hold 500 idle TLS connections and
//     keep 8 unauthenticated 63 MiB calls in flight, against the same
//     client on the idle exporter, with the exporter's peak RSS.
//
// Run them with `make bench`; docs/PERFORMANCE.md records the figures.
package bench
