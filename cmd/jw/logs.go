package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

func newLogsCmd(g *globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] [PATH]",
		Short: "Show the exporter's and its drivers' logs",
		Long: `Show the exporter's recent log entries (its own and every driver's), or only
those of the driver at PATH. With -f, keep following new entries until
interrupted.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, tree, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			uuid := ""
			if len(args) == 1 {
				d, err := tree.Lookup(args[0])
				if err != nil {
					return err
				}
				uuid = d.UUID
			}
			backlog, entries, err := c.Logs(cmd.Context())
			if err != nil {
				return err
			}
			if !follow && backlog < 0 {
				return fmt.Errorf("this exporter does not say which entries are history; use jw logs -f")
			}
			if !follow && backlog == 0 {
				return nil
			}
			out := cmd.OutOrStdout()
			seen := 0
			for e, err := range entries {
				if err != nil {
					return err
				}
				seen++
				if uuid == "" || e.Uuid == uuid {
					if err := printLog(out, g.output, e); err != nil {
						return err
					}
				}
				if !follow && seen >= backlog {
					return nil
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep following new entries")
	return cmd
}

// printLog prints one entry: "15:04:05.000 INFO  dut.power: power on key=value".
func printLog(w io.Writer, output string, e *jumpstarterv1.LogStreamResponse) error {
	if output == outputJSON {
		fields := e.StructuredFields
		if fields == nil {
			fields = map[string]string{}
		}
		doc := map[string]any{
			"time": e.GetTimestamp().AsTime(), "severity": e.Severity, "message": e.Message,
			"source": strings.TrimPrefix(e.GetSource().String(), "LOG_SOURCE_"), "uuid": e.Uuid,
			"fields": fields,
		}
		return writeJSON(w, doc)
	}
	who := e.StructuredFields["driver"]
	if who == "" {
		who = strings.ToLower(strings.TrimPrefix(e.GetSource().String(), "LOG_SOURCE_"))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-5s %s: %s", e.GetTimestamp().AsTime().Local().Format("15:04:05.000"), e.Severity, who, e.Message)
	for _, k := range slices.Sorted(maps.Keys(e.StructuredFields)) {
		if k != "driver" {
			fmt.Fprintf(&b, " %s=%s", k, e.StructuredFields[k])
		}
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}
