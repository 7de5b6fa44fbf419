package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	adminv1 "github.com/jumpwire-dev/jumpwire/proto/admin/v1"
)

func newReloadCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make a running exporter reload its config and plugin binaries",
		Long: `Ask the exporter (on its local socket) to read its config file and the plugin
binaries on its search path again, and to replace only what changed: added
instances start, removed ones stop, changed ones (type, binary, config) are
swapped while the others keep running untouched. Prints what changed; a change
that failed leaves the previous instance running and makes jw exit 1. The
exporter also reloads on SIGHUP, and by itself with jw run --watch.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.callCtx(cmd.Context())
			defer cancel()
			resp, err := c.Reload(ctx)
			if err != nil {
				return err
			}
			if g.output == outputJSON {
				if err := g.print(cmd.OutOrStdout(), reloadDoc(resp)); err != nil {
					return err
				}
			} else {
				printReload(cmd.OutOrStdout(), resp)
			}
			return reloadError(resp)
		},
	}
}

// printReload prints a reload's outcome, a line per change.
func printReload(w io.Writer, resp *adminv1.ReloadResponse) {
	if len(resp.Problems) > 0 {
		return // reloadError says it
	}
	if len(resp.Changes) == 0 {
		fmt.Fprintln(w, "nothing changed")
	}
	for _, c := range resp.Changes {
		line := c.Action + " " + c.Path
		if c.Detail != "" {
			line += ": " + c.Detail
		}
		if c.Error != "" {
			line += " FAILED: " + c.Error + " (the previous instance keeps running)"
		}
		fmt.Fprintln(w, line)
	}
}

func reloadDoc(resp *adminv1.ReloadResponse) map[string]any {
	changes := []map[string]any{}
	for _, c := range resp.Changes {
		changes = append(changes, map[string]any{"path": c.Path, "action": c.Action, "detail": c.Detail, "error": c.Error})
	}
	problems := resp.Problems
	if problems == nil {
		problems = []string{}
	}
	return map[string]any{"changes": changes, "problems": problems}
}

// reloadError is the command's error: config problems, or failed changes.
func reloadError(resp *adminv1.ReloadResponse) error {
	if len(resp.Problems) > 0 {
		return errors.New("the new config has problems; nothing changed:\n" + strings.Join(resp.Problems, "\n"))
	}
	n := 0
	for _, c := range resp.Changes {
		if c.Error != "" {
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("%d of %d changes failed", n, len(resp.Changes))
	}
	return nil
}
