// Package client is the Go client library for a jumpwire exporter (or any exporter that speaks
// Jumpstarter's jumpstarter.v1 API).
//
// A test connects with [Dial], reads the driver tree with [Client.Tree], finds a driver instance by
// its dotted path with [Tree.Lookup], and calls its methods with [Client.Call] (one result) or
// [Client.StreamingCall] (results one by one). Arguments and results are plain Go values carried as
// JSON values on the wire; typed helpers such as [Power] wrap the upstream driver interfaces.
//
// A method of kind [KindStream] (a serial port's or a network driver's "connect") is a raw byte
// stream: [Client.Stream] opens it as an io.ReadWriteCloser with a half-close, and
// [Client.Forward] splices it with a local connection.
//
// Errors from the exporter are returned as [*Error], whose text is one readable line
// ("power.on: unavailable: driver \"power\" exited (signal: killed)") and which keeps the gRPC status
// reachable through status.FromError, status.Code and errors.As.
package client
