package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// defaultListenHost is where jw forward listens when given only a port.
const defaultListenHost = "127.0.0.1"

// forwardFlags are the flags of the jw forward commands.
type forwardFlags struct {
	method string
	idle   time.Duration // udp only
}

func newForwardCmd(g *globals) *cobra.Command {
	f := &forwardFlags{}
	cmd := &cobra.Command{
		Use:   "forward tcp|udp|unix ...",
		Short: "Make a driver's byte stream reachable on a local port or socket",
		Long: `Listen locally and connect whatever comes to a byte stream of a driver (method
"connect", or --method): each TCP or unix-socket connection gets its own stream, and
each UDP peer gets its own stream with one datagram per frame.

jw prints the address it listens on as one line, "forwarding ADDRESS -> PATH (NETWORK)",
and runs until interrupted. A connection that fails is reported on stderr and does not
stop the others.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("forward needs a network: tcp, udp or unix")}
		},
	}
	cmd.PersistentFlags().StringVar(&f.method, "method", defaultStreamMethod, "byte-stream method to open")

	tcp := &cobra.Command{
		Use:   "tcp [ADDR:]PORT PATH",
		Short: "Forward a local TCP port to a driver's byte stream",
		Long: `Listen on TCP [ADDR:]PORT (ADDR defaults to ` + defaultListenHost + `; ":PORT" means every
interface; port 0 picks a free port) and connect each connection to a byte stream of
the driver at PATH. Half-closes travel both ways.`,
		Example: `  jw forward tcp 2222 dut.net
  jw forward tcp 0.0.0.0:8080 camera`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := listenAddr(args[0])
			if err != nil {
				return usageError{err}
			}
			return g.forwardStream(cmd, f, "tcp", addr, args[1])
		},
	}
	unix := &cobra.Command{
		Use:   "unix SOCKET PATH",
		Short: "Forward a local unix socket to a driver's byte stream",
		Long: `Listen on the unix socket SOCKET (which must not exist; it is removed on exit) and
connect each connection to a byte stream of the driver at PATH. Half-closes travel
both ways.`,
		Example: `  jw forward unix /tmp/uart.sock serial`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.forwardStream(cmd, f, "unix", args[0], args[1])
		},
	}
	udp := &cobra.Command{
		Use:   "udp [ADDR:]PORT PATH",
		Short: "Forward a local UDP port to a driver's byte stream",
		Long: `Listen on UDP [ADDR:]PORT (ADDR defaults to ` + defaultListenHost + `; ":PORT" means every
interface; port 0 picks a free port). The first datagram from a peer opens a byte
stream to the driver at PATH for that peer; each datagram travels as one frame, and
each frame coming back is sent to the peer as one datagram. A peer's stream is closed
after --idle-timeout without traffic, or when the driver ends it; its next datagram
opens a new one. Empty datagrams are not forwarded.`,
		Example: `  jw forward udp 5353 dut.net --method connect_udp`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := listenAddr(args[0])
			if err != nil {
				return usageError{err}
			}
			return g.forwardUDP(cmd, f, addr, args[1])
		},
	}
	udp.Flags().DurationVar(&f.idle, "idle-timeout", 60*time.Second, "close a peer's stream after this long without traffic")
	cmd.AddCommand(tcp, udp, unix)
	return cmd
}

// listenAddr turns "[ADDR:]PORT" into a host:port to listen on; a bare port listens on
// defaultListenHost.
func listenAddr(arg string) (string, error) {
	host, port := defaultListenHost, arg
	if strings.Contains(arg, ":") {
		var err error
		if host, port, err = net.SplitHostPort(arg); err != nil {
			return "", fmt.Errorf("invalid address %q: want [ADDR:]PORT, e.g. 8080 or 0.0.0.0:8080", arg)
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		return "", fmt.Errorf("invalid port %q in %q: want a number from 0 to 65535", port, arg)
	}
	return net.JoinHostPort(host, port), nil
}

// forwardStream listens on network (tcp or unix) at addr and splices each connection with a
// byte stream to the driver at path until the command's context ends.
func (g *globals) forwardStream(cmd *cobra.Command, f *forwardFlags, network, addr, path string) error {
	c, d, err := g.streamTarget(cmd, path, f.method)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := cmd.Context()
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	defer lis.Close()
	stop := context.AfterFunc(ctx, func() { _ = lis.Close() })
	defer stop()
	if _, err := fmt.Fprintf(cmd.OutOrStdout(), "forwarding %s -> %s (%s)\n", lis.Addr(), displayPath(d), network); err != nil {
		return err
	}

	log := newLineLog(cmd.ErrOrStderr())
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 1; ; n++ {
		conn, err := lis.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("forward: %w", err)
		}
		wg.Go(func() {
			err := c.Forward(ctx, d.UUID, f.method, conn)
			if err != nil && ctx.Err() == nil {
				log.Printf("jw: forward %s: connection %d%s: %v", lis.Addr(), n, from(conn.RemoteAddr()), err)
			}
		})
	}
}

// from names a connection's peer for log lines ("" for an unnamed unix peer).
func from(addr net.Addr) string {
	if addr == nil || addr.String() == "" || addr.String() == "@" {
		return ""
	}
	return " from " + addr.String()
}

// lineLog writes whole lines from several goroutines.
type lineLog struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineLog(w io.Writer) *lineLog { return &lineLog{w: w} }

// Printf writes one line (a newline is added).
func (l *lineLog) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}
