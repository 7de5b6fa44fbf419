// Package network exports a network service of the lab (a DUT's SSH port, a
// debug server, a unix socket) as a byte stream, matching the upstream
// Jumpstarter network drivers: TcpNetwork, UdpNetwork and UnixNetwork, with
// the methods connect and address. The binary jumpwire-driver-network serves
// all three types.
//
// Each connect opens its own connection to the target:
//   - tcp and unix copy bytes both ways and carry half-closes across: the
//     client's GOAWAY shuts down the connection's write side, the target's
//     end of data becomes a GOAWAY to the client, and the stream ends once
//     both directions are done;
//   - udp keeps datagram boundaries: each frame the client sends is one
//     datagram and each datagram received is one frame. UDP has no end of
//     data, so the stream lasts until the client goes away.
package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

// client is the upstream client class of every network driver.
const client = "jumpstarter_driver_network.client.NetworkClient"

// TCP is the driver type for a TCP target.
var TCP = sdk.Type{
	Name:        "tcp",
	Aliases:     []string{"jumpstarter_driver_network.driver.TcpNetwork"},
	Client:      client,
	Description: "TCP connection",
	New:         sdk.Factory(NewTCP),
}

// UDP is the driver type for a UDP target.
var UDP = sdk.Type{
	Name:        "udp",
	Aliases:     []string{"jumpstarter_driver_network.driver.UdpNetwork"},
	Client:      client,
	Description: "UDP datagrams",
	New:         sdk.Factory(NewUDP),
}

// Unix is the driver type for a unix socket target.
var Unix = sdk.Type{
	Name:        "unix",
	Aliases:     []string{"jumpstarter_driver_network.driver.UnixNetwork"},
	Client:      client,
	Description: "Unix socket connection",
	New:         sdk.Factory(NewUnix),
}

// defaultTimeout is how long connecting may take unless configured.
const defaultTimeout = 5 * time.Second

// HostConfig configures a TCP or UDP target, with the keys of upstream
// configs (host, port, enable_address).
type HostConfig struct {
	Host           string        `json:"host" doc:"the target's host name or IP address (required)"`
	Port           int           `json:"port" doc:"the target's port, 1 to 65535 (required)"`
	ConnectTimeout time.Duration `json:"connect_timeout" doc:"how long resolving the host and connecting may take, e.g. 10s (default 5s)"`
	EnableAddress  bool          `json:"enable_address" doc:"let clients learn the target's address with address() (default true)"`
}

// SetDefaults fills in the defaults before the config is decoded.
func (c *HostConfig) SetDefaults() {
	c.ConnectTimeout, c.EnableAddress = defaultTimeout, true
}

// UnixConfig configures a unix socket target.
type UnixConfig struct {
	Path           string        `json:"path" doc:"the unix socket's path (required)"`
	ConnectTimeout time.Duration `json:"connect_timeout" doc:"how long connecting may take, e.g. 10s (default 5s)"`
}

// SetDefaults fills in the defaults before the config is decoded.
func (c *UnixConfig) SetDefaults() {
	c.ConnectTimeout = defaultTimeout
}

// Network is a network driver instance: one target, reached anew for every
// stream.
type Network struct {
	sdk.Base
	network string // "tcp", "udp" or "unix"
	host    string // tcp and udp
	port    int    // tcp and udp
	path    string // unix
	timeout time.Duration
	address bool // address() is allowed
}

// Interface guards
var (
	_ sdk.Driver    = (*Network)(nil)
	_ sdk.Describer = (*Network)(nil)
)

// NewTCP builds a TCP driver from its config.
func NewTCP(cfg HostConfig) (*Network, error) { return newHost("tcp", cfg) }

// NewUDP builds a UDP driver from its config.
func NewUDP(cfg HostConfig) (*Network, error) { return newHost("udp", cfg) }

func newHost(network string, cfg HostConfig) (*Network, error) {
	switch {
	case cfg.Host == "":
		return nil, sdk.InvalidConfig("host", "required: the target's host name or IP address")
	case cfg.Port == 0:
		return nil, sdk.InvalidConfig("port", "required: the target's port, 1 to 65535")
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, sdk.InvalidConfig("port", "must be between 1 and 65535, got %d", cfg.Port)
	case cfg.ConnectTimeout <= 0:
		return nil, sdk.InvalidConfig("connect_timeout", "must be positive, got %v", cfg.ConnectTimeout)
	}
	return &Network{network: network, host: cfg.Host, port: cfg.Port, timeout: cfg.ConnectTimeout, address: cfg.EnableAddress}, nil
}

// NewUnix builds a unix socket driver from its config. The socket need not
// exist yet: it is connected to on each stream.
func NewUnix(cfg UnixConfig) (*Network, error) {
	switch {
	case cfg.Path == "":
		return nil, sdk.InvalidConfig("path", "required: the unix socket's path")
	case cfg.ConnectTimeout <= 0:
		return nil, sdk.InvalidConfig("connect_timeout", "must be positive, got %v", cfg.ConnectTimeout)
	}
	return &Network{network: "unix", path: cfg.Path, timeout: cfg.ConnectTimeout, address: true}, nil
}

// Description names the target: "tcp://192.168.1.2:22".
func (n *Network) Description() string { return n.url() }

// Exports lists the methods clients call.
func (n *Network) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.ExportStream("connect", n.Connect, "Connect to the target"),
		sdk.Export("address", n.Address, "The target's address, e.g. tcp://192.168.1.2:22"),
	}
}

// url is the target as configured: "tcp://host:port", "unix:///path".
func (n *Network) url() string {
	if n.network == "unix" {
		return "unix://" + n.path
	}
	return n.network + "://" + net.JoinHostPort(n.host, strconv.Itoa(n.port))
}

// Address returns the target's address as upstream does: for tcp and udp the
// host resolved to an IP address where possible ("tcp://192.168.1.2:22",
// "udp://[fd00::2]:69"); for unix "unix:///path". A config with
// enable_address: false refuses (UNIMPLEMENTED).
func (n *Network) Address(ctx context.Context) (string, error) {
	if !n.address {
		return "", kindErrorf(sdk.ErrUnsupported, "address: disabled by enable_address: false in the exporter config")
	}
	if n.network == "unix" {
		return n.url(), nil
	}
	host := n.host
	if net.ParseIP(host) == nil {
		ctx, cancel := context.WithTimeout(ctx, n.timeout)
		defer cancel()
		if addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host); err == nil && len(addrs) > 0 {
			host = addrs[0].String()
		} else if err != nil {
			n.Logger().Debug("address: cannot resolve the host; answering its name", "host", host, "error", err)
		}
	}
	return n.network + "://" + net.JoinHostPort(host, strconv.Itoa(n.port)), nil
}

// Connect serves one byte stream over a new connection to the target. A
// target that cannot be reached fails the stream with UNAVAILABLE naming it.
func (n *Network) Connect(ctx context.Context, conn sdk.Conn) error {
	c, err := n.dial(ctx)
	if err != nil {
		return err
	}
	n.Logger().Debug("connected", "target", n.url(), "local", c.LocalAddr().String())
	if n.network == "udp" {
		return n.relayDatagrams(ctx, conn, c)
	}
	return n.relayStream(ctx, conn, c.(halfCloser))
}

func (n *Network) dial(ctx context.Context) (net.Conn, error) {
	target := n.path
	if n.network != "unix" {
		target = net.JoinHostPort(n.host, strconv.Itoa(n.port))
	}
	d := net.Dialer{Timeout: n.timeout}
	c, err := d.DialContext(ctx, n.network, target)
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, kindErrorf(sdk.ErrUnavailable, "cannot connect to %s: %v", n.url(), cause(err))
}

// cause strips the operations and addresses *net.OpErrors repeat, which our
// messages already name: "connect: connection refused". An error can be
// wrapped twice ("writeto" around "read" when io.Copy used the connection's
// WriteTo).
func cause(err error) error {
	var oe *net.OpError
	for errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return err
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
