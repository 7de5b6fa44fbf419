package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
	"google.golang.org/grpc/status"
)

// Counter is a driver with a unary method and a streaming method.
type Counter struct {
	sdk.Base

	mu sync.Mutex
	n  int
}

// Exports lists the methods clients call.
func (c *Counter) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("add", c.Add, "Add delta to the counter and return the new value"),
		sdk.Export("count_to", c.CountTo, "Stream the numbers from 1 to n, every interval"),
	}
}

// Add is a unary method: one argument (decoded from JSON into an int), one
// result.
func (c *Counter) Add(ctx context.Context, delta int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += delta
	return c.n, nil
}

// CountTo is a streaming method: each value it yields reaches the client as
// it is yielded. It stops when the client goes away (ctx is cancelled).
func (c *Counter) CountTo(ctx context.Context, n int, interval time.Duration) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for i := 1; i <= n; i++ {
			if i > 1 {
				select {
				case <-ctx.Done():
					yield(0, ctx.Err())
					return
				case <-time.After(interval):
				}
			}
			if !yield(i, nil) {
				return
			}
		}
	}
}

// A driver lists its methods with Export. A plugin binary serves it with
// sdk.Serve; tests and examples serve it in-process with sdktest.
func ExampleExport() {
	counter := sdk.Type{
		Name: "counter",
		New:  sdk.Factory(func(struct{}) (*Counter, error) { return &Counter{}, nil }),
	}
	// In a test, sdktest.Start(t, counter, nil) does this and cleans up.
	ctx := context.Background()
	d, err := sdktest.Open(ctx, counter, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close(ctx)

	n, err := d.Call(ctx, "add", 2)
	fmt.Println("add(2):", n, err)

	for n, err := range d.StreamingCall(ctx, "count_to", 3, "1ms") {
		fmt.Println("count_to:", n, err)
	}

	// Arguments are checked against the Go parameter types.
	_, err = d.Call(ctx, "add", "two")
	fmt.Println(status.Code(err), status.Convert(err).Message())
	_, err = d.Call(ctx, "add")
	fmt.Println(status.Code(err), status.Convert(err).Message())

	// Output:
	// add(2): 2 <nil>
	// count_to: 1 <nil>
	// count_to: 2 <nil>
	// count_to: 3 <nil>
	// InvalidArgument add: argument 1: expected integer, got string "two"
	// InvalidArgument add takes 1 argument, got 0 (call it as add(integer))
}

// Shouter is a driver with a byte-stream method.
type Shouter struct{ sdk.Base }

// Exports lists the methods clients call.
func (s *Shouter) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.ExportStream("shout", s.Shout, "Send back what is received, in upper case"),
	}
}

// Shout serves one byte stream: it reads what the client sends until the
// client half-closes (io.EOF), and writes back. Returning ends the stream.
func (s *Shouter) Shout(ctx context.Context, conn sdk.Conn) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, err := conn.Write(bytes.ToUpper(buf[:n])); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return conn.CloseWrite() // the client reads io.EOF
		}
		if err != nil {
			return err
		}
	}
}

// ExportStream exports a byte stream, such as a serial console or a port
// forward: the driver reads and writes a connection.
func ExampleExportStream() {
	shouter := sdk.Type{
		Name: "shouter",
		New:  sdk.Factory(func(struct{}) (*Shouter, error) { return &Shouter{}, nil }),
	}
	ctx := context.Background()
	d, err := sdktest.Open(ctx, shouter, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close(ctx)

	conn, err := d.Stream(ctx, "shout")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Fprint(conn, "hello, ")
	fmt.Fprint(conn, "console")
	conn.CloseWrite()
	out, err := io.ReadAll(conn)
	fmt.Printf("%s %v\n", out, err)

	// Output:
	// HELLO, CONSOLE <nil>
}

// ConsoleConfig is the YAML `config` of a serial console instance. Keys are
// the json tags; doc tags describe them to operators.
type ConsoleConfig struct {
	Port    string        `json:"port" doc:"serial device, e.g. /dev/ttyUSB0"`
	Baud    int           `json:"baud" doc:"line speed (default 115200)"`
	Timeout time.Duration `json:"timeout" doc:"how long a read waits, e.g. 500ms (default 1s)"`
}

// SetDefaults fills in the defaults; the config is decoded over them.
func (c *ConsoleConfig) SetDefaults() {
	c.Baud, c.Timeout = 115200, time.Second
}

// Console is a serial console driver.
type Console struct {
	sdk.Base
	cfg ConsoleConfig
}

// NewConsole checks a decoded config and builds the driver. InvalidConfig
// points the operator at one key of the config.
func NewConsole(cfg ConsoleConfig) (*Console, error) {
	switch {
	case cfg.Port == "":
		return nil, sdk.InvalidConfig("port", "must be set")
	case cfg.Baud <= 0:
		return nil, sdk.InvalidConfig("baud", "must be positive, got %d", cfg.Baud)
	}
	return &Console{cfg: cfg}, nil
}

// Exports lists the methods clients call.
func (c *Console) Exports() []sdk.Method { return nil }

// Description describes the instance to clients.
func (c *Console) Description() string {
	return fmt.Sprintf("%s at %d baud, %v timeout", c.cfg.Port, c.cfg.Baud, c.cfg.Timeout)
}

// Factory turns a constructor taking a typed config into a driver type's New.
// The config is decoded strictly over its defaults: unknown keys and wrong
// types are reported with the key, before the constructor runs.
func ExampleFactory() {
	console := sdk.Type{Name: "console", New: sdk.Factory(NewConsole)}
	ctx := context.Background()
	for _, cfg := range []map[string]any{
		{"port": "/dev/ttyUSB0"},
		{"port": "/dev/ttyUSB1", "baud": 9600, "timeout": "250ms"},
		{"baud": 9600},
		{"port": "/dev/ttyUSB0", "baud": -1},
		{"port": "/dev/ttyUSB0", "baud": "fast"},
		{"port": "/dev/ttyUSB0", "parity": "none"},
	} {
		d, err := sdktest.Open(ctx, console, cfg)
		if err != nil {
			fmt.Println("rejected:", err)
			continue
		}
		fmt.Println("accepted:", d.Configured.Description)
		d.Close(ctx)
	}

	// Output:
	// accepted: /dev/ttyUSB0 at 115200 baud, 1s timeout
	// accepted: /dev/ttyUSB1 at 9600 baud, 250ms timeout
	// rejected: port: must be set
	// rejected: baud: must be positive, got -1
	// rejected: baud: expected integer, got string "fast"
	// rejected: parity: unknown key; valid keys: baud, port, timeout
}
