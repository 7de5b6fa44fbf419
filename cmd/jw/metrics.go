package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// listenMetrics opens the listener of --metrics-listen HOST:PORT (a
// tcp:// or http:// prefix is accepted), before anything starts, so a busy
// port is refused at once.
func listenMetrics(addr string) (net.Listener, error) {
	hostPort := strings.TrimPrefix(strings.TrimPrefix(addr, "tcp://"), "http://")
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		return nil, fmt.Errorf("--metrics-listen %q: expected HOST:PORT (e.g. 127.0.0.1:9464, or :9464 for every interface): %w", addr, err)
	}
	lis, err := net.Listen("tcp", hostPort)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %q: %w", addr, err)
	}
	return lis, nil
}

// serveMetrics serves /metrics on lis until ctx ends.
func serveMetrics(ctx context.Context, lis net.Listener, metrics http.Handler, log hclog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serving metrics failed", "address", lis.Addr(), "error", err)
	}
}
