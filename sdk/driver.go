package sdk

import (
	"context"

	"github.com/hashicorp/go-hclog"
)

// Driver is a driver instance. Exports lists the methods clients may call.
//
// The lifecycle of an instance, in order:
//  1. its constructor (see [Factory]) validates the decoded config and builds it;
//  2. Reset ([Resetter]) runs at the start of every session;
//  3. exported methods serve calls and streams, possibly concurrently;
//  4. Close ([Closer]) runs at the end; the process exits afterwards.
type Driver interface {
	Exports() []Method
}

// Resetter is implemented by drivers that return to a known state at the start
// of a session.
type Resetter interface {
	Reset(ctx context.Context) error
}

// Closer is implemented by drivers that release resources when their session ends.
type Closer interface {
	Close(ctx context.Context) error
}

// HandOverer is implemented by drivers whose device keeps running when
// their process is replaced within a session (a swap to a new binary or
// config): HandOver is called instead of Close, releases what the process
// holds and leaves the device as it is, for the successor process (which is
// configured, not Reset) to adopt. A driver without it is Closed.
type HandOverer interface {
	HandOver(ctx context.Context) error
}

// Describer is implemented by drivers whose description depends on their config.
type Describer interface {
	Description() string
}

// Labeler is implemented by drivers that report extra labels to clients.
type Labeler interface {
	Labels() map[string]string
}

// Base is embedded by drivers. The SDK fills it in before the instance serves:
// the instance's name, its dotted path in the exporter's tree, and a logger
// named after it whose output the exporter collects.
type Base struct {
	name   string
	path   string
	logger hclog.Logger
}

// Name returns the instance's key in its parent ("power").
func (b *Base) Name() string { return b.name }

// Path returns the instance's dotted path from the exporter's root ("dut.power").
func (b *Base) Path() string { return b.path }

// Logger returns the instance's logger. It is never nil.
func (b *Base) Logger() hclog.Logger {
	if b.logger == nil {
		return hclog.NewNullLogger()
	}
	return b.logger
}

func (b *Base) sdkBase() *Base { return b }

// based is implemented by every type that embeds Base.
type based interface{ sdkBase() *Base }
