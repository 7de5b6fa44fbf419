// Package sinkdriver is the driver the byte-stream benchmarks stream to: a
// jumpwire SDK driver whose stream methods do as little as possible, so a
// benchmark measures the path to the driver rather than the driver. It does
// through the SDK what package bareplugin does on a bare gRPC stream.
//
// The plugin binary is ./bench/internal/sinkdriver/cmd/jumpwire-driver-sink;
// its driver type is "sink" and takes no config.
package sinkdriver

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// Type is the driver type of the sink driver.
var Type = sdk.Type{
	Name:        "sink",
	Client:      "jumpwire.bench.SinkClient",
	Description: "Byte-stream sink and echo for benchmarks",
	New:         sdk.Factory(New),
}

// Config configures a sink driver: there is nothing to configure.
type Config struct{}

// bufSize is the most one Read takes once data flows: the largest frame
// the SDK delivers. Until the first byte arrives a stream reads into a small
// buffer, so that an idle stream holds nothing of the driver's worth
// measuring (BenchmarkIdleStreams measures what the SDK and exporter hold).
const (
	bufSize   = 1 << 20
	firstSize = 512
)

// Sink is a sink driver instance.
type Sink struct {
	sdk.Base
}

// Interface guards
var _ sdk.Driver = (*Sink)(nil)

// New builds a sink driver.
func New(Config) (*Sink, error) { return &Sink{}, nil }

// Exports lists the methods clients call.
func (s *Sink) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.ExportStream("sink", s.Sink, "Read until the client half-closes, then send the byte count (decimal) and half-close"),
		sdk.ExportStream("echo", s.Echo, "Send back what is received; half-close after the client does"),
	}
}

// Sink reads until the client half-closes, then writes the number of bytes
// it read as decimal ASCII and half-closes.
func (s *Sink) Sink(_ context.Context, conn sdk.Conn) error {
	buf := make([]byte, firstSize)
	var n int64
	for {
		m, err := conn.Read(buf)
		n += int64(m)
		if m > 0 && len(buf) < bufSize {
			buf = make([]byte, bufSize)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if _, err := conn.Write(strconv.AppendInt(nil, n, 10)); err != nil {
		return err
	}
	return conn.CloseWrite()
}

// Echo writes back everything it reads until the client half-closes, then
// half-closes.
func (s *Sink) Echo(_ context.Context, conn sdk.Conn) error {
	buf := make([]byte, firstSize)
	for {
		m, err := conn.Read(buf)
		if m > 0 {
			if _, werr := conn.Write(buf[:m]); werr != nil {
				return werr
			}
			if len(buf) < bufSize {
				buf = make([]byte, bufSize)
			}
		}
		if errors.Is(err, io.EOF) {
			return conn.CloseWrite()
		}
		if err != nil {
			return err
		}
	}
}
