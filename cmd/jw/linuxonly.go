//go:build !linux

package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
)

// The exporter side of jw (run, shell, plugins) runs driver plugins, which
// are Linux processes; on other systems jw is a client, and these commands
// only say so.

func newRunCmd() *cobra.Command {
	return linuxOnly("run", "Serve an exporter until interrupted")
}

func newShellCmd() *cobra.Command {
	return linuxOnly("shell", "Run a local exporter and a shell (or one command) connected to it")
}

func newPluginsCmd(*globals) *cobra.Command {
	return linuxOnly("plugins", "List and inspect the driver plugins on the search path")
}

// completeTypes completes nothing: there is no plugin search path here.
func completeTypes(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// linuxOnly is an exporter-side command on a system that cannot run it.
func linuxOnly(name, short string) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Short:              short + " (Linux only)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("jw %s needs Linux: the exporter and its driver plugins run on Linux only; "+
				"on %s, jw is a client of an exporter running elsewhere (pass --host or set $%s)", name, runtime.GOOS, client.HostEnv)
		},
	}
}
