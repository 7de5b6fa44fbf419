//go:build linux

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/jumpwire-dev/jumpwire/exporter"
)

// reloadOnSignals reloads e on every SIGHUP until ctx ends, and, when
// watch is set, whenever its config file or a plugin binary changes. The
// exporter logs each change it makes; a reload refused as a whole is
// logged here.
func reloadOnSignals(ctx context.Context, e *exporter.Exporter, watch bool, logger hclog.Logger) {
	report := func(changes []exporter.Change, err error) {
		switch {
		case err != nil:
			logger.Error("reload refused; nothing changed", "error", err)
		case len(changes) == 0:
			logger.Info("reload: nothing changed")
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: reloading")
				report(e.Reload(ctx))
			}
		}
	}()
	if watch {
		go func() {
			if err := e.Watch(ctx, report); err != nil {
				logger.Error("cannot watch for changes; reload with SIGHUP or jw reload", "error", err)
			}
		}()
	}
}
