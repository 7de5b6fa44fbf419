// Command jumpwire-demo-board simulates a small embedded Linux board for the
// jumpwire demo, so the serial and network drivers have something to talk to:
//
//	jumpwire-demo-board --tty /tmp/jumpwire-demo/tty --http 127.0.0.1:18080
//
// With --tty it makes a pseudo-terminal, links PATH to it and runs a serial
// console there: a boot log, a login prompt (any user name, no password) and
// a shell with a few commands (help lists them). Point a serial driver at
// PATH. With --http it serves GET / on ADDR with a greeting and the board's
// status; point a tcp network driver at ADDR.
//
// It prints one line per resource it provides, then runs until SIGINT or
// SIGTERM and removes the link on the way out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// options configures the board; run needs at least one of TTY and HTTP.
type options struct {
	TTY  string // path to link to the serial console's terminal; "" for no console
	HTTP string // address of the HTTP service; "" for none
	Name string // the board's host name
	Log  hclog.Logger
}

func main() {
	o := options{Log: hclog.New(&hclog.LoggerOptions{Name: "demo-board", Output: os.Stderr})}
	flag.StringVar(&o.TTY, "tty", "", "make `PATH` a symbolic link to the board's serial console")
	flag.StringVar(&o.HTTP, "http", "", "serve the board's HTTP service on `ADDR`, e.g. 127.0.0.1:18080")
	flag.StringVar(&o.Name, "name", "demo-board", "the board's host `name`")
	flag.Parse()
	if flag.NArg() > 0 || (o.TTY == "" && o.HTTP == "") || o.Name == "" {
		fmt.Fprintln(os.Stderr, "usage: jumpwire-demo-board [--name NAME] [--tty PATH] [--http ADDR] (at least one of --tty, --http)")
		flag.PrintDefaults()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "jumpwire-demo-board: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// run starts the board's HTTP service and console (in that order, so that a
// busy port fails before the console's link is touched), prints one line per
// resource to out and serves until ctx ends, then stops both and removes the
// console's link.
func run(ctx context.Context, o options, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := newBoard(o.Name)
	if o.HTTP != "" {
		ln, err := net.Listen("tcp", o.HTTP)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		srv := &http.Server{Handler: handler(b), ReadHeaderTimeout: 5 * time.Second}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				o.Log.Error("http service stopped", "error", err)
			}
		}()
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer scancel()
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
			}
			<-done
		}()
		fmt.Fprintf(out, "http on %s\n", ln.Addr())
	}
	if o.TTY != "" {
		master, slave, err := openPTY()
		if err != nil {
			return err
		}
		if err := link(slave, o.TTY); err != nil {
			_ = master.Close()
			return err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			serveConsole(ctx, master, b, o.Log.Named("console"))
		}()
		defer func() {
			unlink(slave, o.TTY)
			cancel()
			_ = master.Close()
			<-done
		}()
		fmt.Fprintf(out, "serial console on %s -> %s\n", o.TTY, slave)
	}
	<-ctx.Done()
	return nil
}

// handler serves the board's HTTP service: GET / answers a greeting and the
// board's status.
func handler(b *board) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, b.status())
	})
	return mux
}
