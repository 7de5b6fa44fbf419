package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the exporter's lease status",
		Long: `Show the exporter's lease status and its version (which increases on every change),
e.g. "LEASE_READY (version 3)".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.callCtx(cmd.Context())
			defer cancel()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output == outputJSON {
				doc := map[string]any{
					"status":  statusName(st.GetStatus()),
					"version": st.GetStatusVersion(),
					"message": st.GetMessage(),
				}
				if st.PreviousStatus != nil {
					doc["previous_status"] = statusName(st.GetPreviousStatus())
				}
				return g.print(out, doc)
			}
			line := fmt.Sprintf("%s (version %d)", statusName(st.GetStatus()), st.GetStatusVersion())
			if msg := st.GetMessage(); msg != "" {
				line += ": " + msg
			}
			_, err = fmt.Fprintln(out, line)
			return err
		},
	}
}

func newEndSessionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "end-session",
		Short: "End the current session (the after-lease hook runs)",
		Long: `End the exporter's current session: calls in flight are canceled, the drivers are
reset for the next session, and the after-lease hook runs. Fails when there is no session.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.callCtx(cmd.Context())
			defer cancel()
			ok, msg, err := c.EndSession(ctx)
			if err != nil {
				return err
			}
			if !ok {
				if msg == "" {
					msg = "the exporter did not end the session"
				}
				return fmt.Errorf("end session: %s", msg)
			}
			if g.output == outputJSON {
				return g.print(cmd.OutOrStdout(), map[string]any{"success": true, "message": msg})
			}
			if msg == "" {
				msg = "session ended"
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
			return err
		},
	}
}

// statusName is the status without its enum prefix: "LEASE_READY".
func statusName(s jumpstarterv1.ExporterStatus) string {
	return strings.TrimPrefix(s.String(), "EXPORTER_STATUS_")
}

// dial checks --output and dials the exporter, without reading its tree.
func (g *globals) dial(cmd *cobra.Command) (*client.Client, error) {
	if err := g.checkOutput(); err != nil {
		return nil, err
	}
	ctx, cancel := g.callCtx(cmd.Context())
	defer cancel()
	c, err := client.Dial(ctx, g.host)
	if err != nil {
		return nil, dialError(err)
	}
	return c, nil
}
