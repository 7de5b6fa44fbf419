// Package sdk is what a jumpwire driver is written against.
//
// A driver is a Go type that embeds [Base] and lists its methods with
// [Export] (unary and streaming calls) and [ExportStream] (byte streams).
// A plugin binary's main function hands its driver types to [Serve], which
// speaks the jumpwire plugin protocol to the exporter that launched it.
// Every configured driver instance runs in its own plugin process, so a
// driver that panics, leaks or crashes hurts only itself.
//
// Arguments and results are typed Go values. The SDK decodes each positional
// argument from its JSON value into the parameter's Go type, encodes results
// back (structs become JSON objects, honouring json tags) and maps returned
// errors to the status codes clients expect (see the error kinds below).
//
// The package sdktest runs a driver in-process over real gRPC, so a driver's
// tests need no exporter.
package sdk

// Version is the version of this SDK. Plugins report it to the exporter.
const Version = "0.1.0"
