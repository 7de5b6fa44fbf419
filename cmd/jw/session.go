package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

func newStatusCmd(g *globals) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the exporter's lease status and its drivers' health",
		Long: `Show the exporter's lease status and its version (which increases on every change),
e.g. "LEASE_READY (version 3)", then each driver's state (running, restarting,
failed), its restarts and how its last process ended. With -w, follow the
status: print a line at every change until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if watch {
				return g.watchStatus(cmd)
			}
			c, tree, err := g.connect(cmd)
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
				doc := statusDoc(st)
				var drivers []map[string]any
				tree.Walk(func(d *client.Driver, _ int) {
					if h := health(d); h != nil {
						drivers = append(drivers, h)
					}
				})
				if len(drivers) > 0 {
					doc["drivers"] = drivers
				}
				return g.print(out, doc)
			}
			if _, err := fmt.Fprintln(out, statusLine(st)); err != nil {
				return err
			}
			tree.Walk(func(d *client.Driver, _ int) {
				h := health(d)
				if h == nil {
					return
				}
				line := fmt.Sprintf("  %-20s %-10s restarts %s", h["path"], h["state"], h["restarts"])
				if p, ok := h["pid"]; ok {
					line += fmt.Sprintf("  pid %s", p)
				}
				if l, ok := h["last_exit"]; ok {
					line += fmt.Sprintf("  last exit: %s", l)
				}
				fmt.Fprintln(out, line)
			})
			return nil
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the status, a line per change")
	return cmd
}

// health is what the exporter reports of a driver's process, nil for
// composites and exporters that do not say.
func health(d *client.Driver) map[string]any {
	state, restarts := d.Labels["jumpwire.dev/state"], d.Labels["jumpwire.dev/restarts"]
	if state == "" || restarts == "" {
		return nil
	}
	h := map[string]any{"path": d.Path, "state": state, "restarts": restarts}
	if p := d.Labels["jumpwire.dev/pid"]; p != "" {
		h["pid"] = p
	}
	if l := d.Labels["jumpwire.dev/last-exit"]; l != "" {
		h["last_exit"] = l
	}
	return h
}

func statusDoc(st *jumpstarterv1.GetStatusResponse) map[string]any {
	doc := map[string]any{
		"status":  statusName(st.GetStatus()),
		"version": st.GetStatusVersion(),
		"message": st.GetMessage(),
	}
	if st.PreviousStatus != nil {
		doc["previous_status"] = statusName(st.GetPreviousStatus())
	}
	return doc
}

func statusLine(st *jumpstarterv1.GetStatusResponse) string {
	line := fmt.Sprintf("%s (version %d)", statusName(st.GetStatus()), st.GetStatusVersion())
	if msg := st.GetMessage(); msg != "" {
		line += ": " + msg
	}
	return line
}

// watchStatus prints the status at every change. jumpstarter.v1 has no
// status stream, so it asks a few times a second and prints what changed.
func (g *globals) watchStatus(cmd *cobra.Command) error {
	c, err := g.dial(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	var last uint64
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := c.Status(cmd.Context())
		if err != nil {
			if cmd.Context().Err() != nil {
				return nil
			}
			return err
		}
		if v := st.GetStatusVersion(); v != last {
			last = v
			if g.output == outputJSON {
				if err := g.print(cmd.OutOrStdout(), statusDoc(st)); err != nil {
					return err
				}
			} else if _, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", time.Now().Format("15:04:05"), statusLine(st)); err != nil {
				return err
			}
		}
		select {
		case <-cmd.Context().Done():
			return nil
		case <-tick.C:
		}
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
	return g.dialClient(ctx, cmd)
}
