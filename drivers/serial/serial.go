// Package serial exports a serial port (a UART, a USB serial adapter, a
// pseudo-terminal) as a raw byte stream, matching the upstream Jumpstarter
// pyserial driver (connect, close, set_dtr, set_rts). The binary
// jumpwire-driver-serial serves it.
//
// The port is opened on the first connect (or set_dtr/set_rts) and stays open
// until close(), Reset or Close, so modem lines keep their state between
// streams. By default one stream at a time uses the port: a second connect
// fails with FAILED_PRECONDITION. With share: true every stream receives
// everything the port sends and may write to it.
//
// Output reaches a stream through a bounded queue, so nothing is buffered
// without limit:
//   - a single stream (share: false) gets backpressure: while the client does
//     not read, the driver stops reading the port and the device's output waits
//     in the kernel's buffer (and beyond that is lost, as on any UART without
//     flow control);
//   - in share mode one slow stream must not stall the others, so output that
//     does not fit in a stream's queue (256 KiB) is dropped for that stream
//     alone and the drop is logged with the number of bytes lost.
//
// While no stream is connected the port is not read: what the device sends
// waits in the kernel's buffer for the next stream.
package serial

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"go.bug.st/serial"
)

// Type is the driver type this package provides.
var Type = sdk.Type{
	Name:        "serial",
	Aliases:     []string{"jumpstarter_driver_pyserial.driver.PySerial"},
	Client:      "jumpstarter_driver_pyserial.client.PySerialClient",
	Description: "Serial port",
	Exclusive:   true,
	New:         sdk.Factory(New),
}

// Config configures a serial port. The keys url, baudrate and check_present
// are those of upstream pyserial configs.
type Config struct {
	URL          string  `json:"url" doc:"the serial port's device path, e.g. /dev/ttyUSB0 (required)"`
	Baudrate     int     `json:"baudrate" doc:"line speed in bits per second (default 115200)"`
	Bytesize     int     `json:"bytesize" doc:"data bits per character, 5 to 8 (default 8)"`
	Parity       string  `json:"parity" doc:"none, even, odd, mark or space (default none)"`
	Stopbits     float64 `json:"stopbits" doc:"stop bits: 1, 1.5 or 2 (default 1; 1.5 only on Windows)"`
	Share        bool    `json:"share" doc:"let several streams use the port at once, each receiving all output (default false)"`
	CheckPresent bool    `json:"check_present" doc:"reject the config when the port does not exist (default true)"`
}

// SetDefaults fills in the defaults before the config is decoded.
func (c *Config) SetDefaults() {
	c.Baudrate, c.Bytesize, c.Parity, c.Stopbits, c.CheckPresent = 115200, 8, "none", 1, true
}

var parities = map[string]serial.Parity{
	"none": serial.NoParity, "n": serial.NoParity,
	"even": serial.EvenParity, "e": serial.EvenParity,
	"odd": serial.OddParity, "o": serial.OddParity,
	"mark": serial.MarkParity, "m": serial.MarkParity,
	"space": serial.SpaceParity, "s": serial.SpaceParity,
}

// mode checks the line settings and turns them into a serial.Mode.
func (c *Config) mode() (serial.Mode, error) {
	m := serial.Mode{BaudRate: c.Baudrate, DataBits: c.Bytesize}
	if c.Baudrate <= 0 {
		return m, sdk.InvalidConfig("baudrate", "must be a positive number of bits per second, got %d", c.Baudrate)
	}
	if c.Bytesize < 5 || c.Bytesize > 8 {
		return m, sdk.InvalidConfig("bytesize", "must be 5, 6, 7 or 8 data bits, got %d", c.Bytesize)
	}
	p, ok := parities[strings.ToLower(c.Parity)]
	if !ok {
		return m, sdk.InvalidConfig("parity", "must be one of none, even, odd, mark, space; got %q", c.Parity)
	}
	m.Parity = p
	switch c.Stopbits {
	case 1:
		m.StopBits = serial.OneStopBit
	case 1.5:
		if runtime.GOOS != "windows" {
			return m, sdk.InvalidConfig("stopbits", "1.5 stop bits are not supported on %s; use 1 or 2", runtime.GOOS)
		}
		m.StopBits = serial.OnePointFiveStopBits
	case 2:
		m.StopBits = serial.TwoStopBits
	default:
		return m, sdk.InvalidConfig("stopbits", "must be 1, 1.5 or 2, got %v", c.Stopbits)
	}
	return m, nil
}

// Serial is a serial port driver instance.
type Serial struct {
	sdk.Base
	cfg  Config
	mode serial.Mode

	// mu guards dev and serialises opening and closing the port, so two
	// descriptors of the port are never open at once.
	mu  sync.Mutex
	dev *device
}

// Interface guards
var (
	_ sdk.Driver    = (*Serial)(nil)
	_ sdk.Resetter  = (*Serial)(nil)
	_ sdk.Closer    = (*Serial)(nil)
	_ sdk.Describer = (*Serial)(nil)
)

// New builds a serial port driver from its config. With check_present the
// port must exist now; the port itself is opened on first use.
func New(cfg Config) (*Serial, error) {
	if cfg.URL == "" {
		return nil, sdk.InvalidConfig("url", "required: the serial port's device path, e.g. /dev/ttyUSB0")
	}
	if strings.Contains(cfg.URL, "://") {
		return nil, sdk.InvalidConfig("url", "must be a device path such as /dev/ttyUSB0, got %q (pyserial URL handlers are not supported)", cfg.URL)
	}
	mode, err := cfg.mode()
	if err != nil {
		return nil, err
	}
	if cfg.CheckPresent {
		fi, err := os.Stat(cfg.URL)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, sdk.InvalidConfig("url", "serial port %s does not exist", cfg.URL)
		case err != nil:
			return nil, sdk.InvalidConfig("url", "cannot check serial port %s: %v", cfg.URL, err)
		case fi.Mode()&fs.ModeCharDevice == 0:
			return nil, sdk.InvalidConfig("url", "%s is not a serial port (not a character device)", cfg.URL)
		}
	}
	return &Serial{cfg: cfg, mode: mode}, nil
}

// Description describes the port and its line settings: "serial port
// /dev/ttyUSB0, 115200 8N1".
func (s *Serial) Description() string {
	return fmt.Sprintf("serial port %s, %d %d%s%v", s.cfg.URL, s.cfg.Baudrate, s.cfg.Bytesize,
		strings.ToUpper(s.cfg.Parity[:1]), s.cfg.Stopbits)
}

// Exports lists the methods clients call.
func (s *Serial) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.ExportStream("connect", s.Connect, "Raw bytes to and from the serial port"),
		sdk.Export("close", s.ClosePort, "Close the serial port, ending its streams"),
		sdk.Export("set_dtr", s.SetDTR, "Set the DTR (data terminal ready) line", sdk.Params("value")),
		sdk.Export("set_rts", s.SetRTS, "Set the RTS (request to send) line", sdk.Params("value")),
	}
}

// Reset closes the port, so a session starts with no stream and the port
// opened afresh.
func (s *Serial) Reset(ctx context.Context) error { return s.ClosePort(ctx) }

// Close closes the port at the end of a session.
func (s *Serial) Close(ctx context.Context) error { return s.ClosePort(ctx) }

// ClosePort closes the port if it is open; its streams end (cleanly, as if
// the device had nothing more to say). The next connect opens it again.
func (s *Serial) ClosePort(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dev == nil {
		return nil
	}
	err := s.dev.shutdown()
	s.dev = nil
	s.Logger().Info("closed serial port", "path", s.cfg.URL)
	if err != nil && !isPortClosed(err) {
		return kindErrorf(sdk.ErrIO, "closing serial port %s: %v", s.cfg.URL, err)
	}
	return nil
}

// SetDTR sets the DTR line, opening the port if needed.
func (s *Serial) SetDTR(_ context.Context, value bool) error {
	return s.modemLine("set_dtr", "DTR", value, serial.Port.SetDTR)
}

// SetRTS sets the RTS line, opening the port if needed.
func (s *Serial) SetRTS(_ context.Context, value bool) error {
	return s.modemLine("set_rts", "RTS", value, serial.Port.SetRTS)
}

func (s *Serial) modemLine(method, line string, value bool, set func(serial.Port, bool) error) error {
	d, err := s.device()
	if err != nil {
		return err
	}
	err = d.control(func(p serial.Port) error { return set(p, value) })
	switch {
	case err == nil:
		s.Logger().Debug("set modem line", "line", line, "value", value)
		return nil
	case errors.Is(err, errPortClosed):
		return kindErrorf(sdk.ErrUnavailable, "%s: serial port %s was closed meanwhile", method, s.cfg.URL)
	case errors.Is(err, syscall.ENOTTY), errors.Is(err, syscall.EINVAL):
		return kindErrorf(sdk.ErrUnsupported, "%s: serial port %s has no %s line (%v)", method, s.cfg.URL, line, err)
	}
	return kindErrorf(sdk.ErrIO, "%s: serial port %s: %v", method, s.cfg.URL, err)
}

// device returns the open port, opening it if needed. A port whose device
// went away is opened anew, so a replugged adapter works again.
func (s *Serial) device() (*device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dev != nil {
		select {
		case <-s.dev.closing:
			<-s.dev.done // the port failed; its descriptor is being closed
			s.dev = nil
		default:
			return s.dev, nil
		}
	}
	p, err := serial.Open(s.cfg.URL, &s.mode)
	if err != nil {
		return nil, s.openError(err)
	}
	s.dev = newDevice(s.cfg.URL, p, s.cfg.Share, s.Logger())
	s.Logger().Info("opened serial port", "path", s.cfg.URL, "baudrate", s.cfg.Baudrate, "share", s.cfg.Share)
	return s.dev, nil
}

// openError says why the port could not be opened, with the kind a client
// should see.
func (s *Serial) openError(err error) error {
	path := s.cfg.URL
	var pe *serial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PortBusy:
			return kindErrorf(sdk.ErrBusy, "serial port %s is busy: another program has it open", path)
		case serial.PermissionDenied:
			return kindErrorf(fs.ErrPermission, "permission denied opening serial port %s (is the exporter's user in the dialout group?)", path)
		case serial.PortNotFound:
			return kindErrorf(sdk.ErrUnavailable, "serial port %s does not exist (unplugged?)", path)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return kindErrorf(sdk.ErrUnavailable, "serial port %s does not exist (unplugged?)", path)
	}
	return kindErrorf(sdk.ErrUnavailable, "cannot open serial port %s: %v", path, err)
}

// kindError is an error of one of the SDK's kinds that reads as its own message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func kindErrorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
