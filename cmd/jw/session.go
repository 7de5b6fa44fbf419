package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
	adminv1 "github.com/jumpwire-dev/jumpwire/proto/admin/v1"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
)

func newStatusCmd(g *globals) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the exporter's lease status and its drivers' health",
		Long: `Show the exporter's lease status and its version (which increases on every change),
e.g. "LEASE_READY (version 3)", then each driver's state (running, restarting,
failed), its restarts and how its last process ended. With -w, follow it until
interrupted: a line for every status version (none skipped), and one for every
crash, restart or replacement of a driver's process.`,
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
			var drivers []driverHealth
			tree.Walk(func(d *client.Driver, _ int) {
				if h, ok := health(d); ok {
					drivers = append(drivers, h)
				}
			})
			link := controllerLink(ctx, c)
			if g.output == outputJSON {
				return writeJSON(out, statusReport{statusDoc(st), append([]driverHealth{}, drivers...), controllerDoc(link)})
			}
			if _, err := fmt.Fprintln(out, statusLine(st)); err != nil {
				return err
			}
			if link != nil {
				fmt.Fprint(out, controllerLines(link))
			}
			for _, h := range drivers {
				line := fmt.Sprintf("  %-20s %-10s restarts %d", h.Path, h.State, h.Restarts)
				if h.Pid != nil {
					line += fmt.Sprintf("  pid %d", *h.Pid)
				}
				if h.LastExit != "" {
					line += "  last exit: " + h.LastExit
				}
				fmt.Fprintln(out, line)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the status and the drivers' crashes and restarts, a line per change")
	return cmd
}

// statusReport is jw status -o json.
type statusReport struct {
	statusDocument
	Drivers    []driverHealth      `json:"drivers"`              // [] for an exporter that does not report health
	Controller *controllerDocument `json:"controller,omitempty"` // controller mode only
}

// controllerDocument is the link to a Jumpstarter controller under -o json.
type controllerDocument struct {
	Endpoint      string `json:"endpoint"`
	Registered    bool   `json:"registered"`
	Lease         string `json:"lease"`           // "" when none
	Client        string `json:"client"`          // the lease's client, "" when none
	LastError     string `json:"last_error"`      // "" once the link recovered
	LastErrorTime string `json:"last_error_time"` // RFC 3339, "" without an error
}

// controllerLink asks the exporter for its controller link: nil outside
// controller mode, or when the exporter does not say (over TCP, where the
// admin service is not served, or an exporter that is not jumpwire's).
func controllerLink(ctx context.Context, c *client.Client) *adminv1.ControllerResponse {
	resp, err := c.Controller(ctx)
	if err != nil || !resp.Enabled {
		return nil
	}
	return resp
}

func controllerDoc(l *adminv1.ControllerResponse) *controllerDocument {
	if l == nil {
		return nil
	}
	doc := &controllerDocument{Endpoint: l.Endpoint, Registered: l.Registered, Lease: l.LeaseName, Client: l.ClientName, LastError: l.LastError}
	if l.LastError != "" {
		doc.LastErrorTime = time.UnixMilli(l.LastErrorUnixMs).UTC().Format(time.RFC3339)
	}
	return doc
}

// controllerLines says in words how the link to the controller is.
func controllerLines(l *adminv1.ControllerResponse) string {
	state := "registered"
	if !l.Registered {
		state = "not registered (reconnecting)"
	}
	s := fmt.Sprintf("controller %s: %s", l.Endpoint, state)
	switch {
	case l.LeaseName != "" && l.ClientName != "":
		s += fmt.Sprintf("; lease %s held by %s", l.LeaseName, l.ClientName)
	case l.LeaseName != "":
		s += "; lease " + l.LeaseName
	default:
		s += "; no lease"
	}
	s += "\n"
	if l.LastError != "" {
		s += fmt.Sprintf("  last error at %s: %s\n", time.UnixMilli(l.LastErrorUnixMs).Local().Format("15:04:05"), l.LastError)
	}
	return s
}

// statusDocument is the lease status under -o json.
type statusDocument struct {
	Status         string `json:"status"`          // e.g. LEASE_READY
	Version        uint64 `json:"version"`         // status_version, increasing with every change
	Message        string `json:"message"`         // "" when none
	PreviousStatus string `json:"previous_status"` // "" before the first change
}

// driverHealth is what the exporter reports of a driver's process.
type driverHealth struct {
	Path     string `json:"path"`
	State    string `json:"state"` // running, restarting or failed
	Restarts int    `json:"restarts"`
	Pid      *int   `json:"pid"`       // null when no process runs
	LastExit string `json:"last_exit"` // how its last process ended, "" when none did
}

// health is what the exporter reports of a driver's process; ok is false for composites and
// exporters that do not say.
func health(d *client.Driver) (h driverHealth, ok bool) {
	state, restarts := d.Labels[client.LabelState], d.Labels["jumpwire.dev/restarts"]
	if state == "" || restarts == "" {
		return driverHealth{}, false
	}
	h = driverHealth{Path: d.Path, State: state, LastExit: d.Labels["jumpwire.dev/last-exit"]}
	h.Restarts, _ = strconv.Atoi(restarts)
	if pid, err := strconv.Atoi(d.Labels["jumpwire.dev/pid"]); err == nil {
		h.Pid = &pid
	}
	return h, true
}

func statusDoc(st *jumpstarterv1.GetStatusResponse) statusDocument {
	doc := statusDocument{Status: statusName(st.GetStatus()), Version: st.GetStatusVersion(), Message: st.GetMessage()}
	if st.PreviousStatus != nil {
		doc.PreviousStatus = statusName(st.GetPreviousStatus())
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

// watchStatus follows the status: a line for each status_version and for each crash, restart
// or replacement of a driver's process. A jumpwire exporter logs both (a "status changed" entry
// per version, and its supervisor's entries about each driver), so it follows the log stream; a
// plain Jumpstarter exporter has no such entries, and then it asks a few times a second and
// prints what changed.
func (g *globals) watchStatus(cmd *cobra.Command) error {
	c, err := g.dial(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := cmd.Context()
	backlog, entries, err := c.Logs(ctx)
	if err != nil || backlog < 0 {
		return g.pollStatus(cmd, c)
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if err := g.printStatusEvent(out, time.Now(), statusDoc(st)); err != nil {
		return err
	}
	last := st.GetStatusVersion()
	for e, err := range entries {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if backlog > 0 { // history: what happened before the status printed above
			backlog--
			continue
		}
		when := e.GetTimestamp().AsTime()
		f := e.StructuredFields
		if v, ok := f[client.LogStatusVersion]; ok && e.Uuid == "" {
			version, err := strconv.ParseUint(v, 10, 64)
			if err != nil || version <= last {
				continue
			}
			last = version
			doc := statusDocument{Status: f[client.LogStatus], Version: version, Message: f["message"],
				PreviousStatus: f[client.LogPreviousStatus]}
			if err := g.printStatusEvent(out, when, doc); err != nil {
				return err
			}
			continue
		}
		if path := f["driver"]; path != "" && supervisorEvent(e) {
			if err := g.printDriverEvent(out, when, path, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// supervisorEvent reports whether e is what the exporter's supervisor says about a driver's
// process ("driver process exited; restarting", "driver restarted", "driver replaced", and its
// warnings and errors), rather than the driver's own log or go-plugin's chatter.
func supervisorEvent(e *jumpstarterv1.LogStreamResponse) bool {
	if e.GetSource() != jumpstarterv1.LogSource_LOG_SOURCE_SYSTEM {
		return false
	}
	if _, ok := e.StructuredFields["plugin"]; ok {
		return false // go-plugin's own line about the process, which the supervisor's repeats
	}
	switch e.Severity {
	case "WARN", "ERROR":
		return true
	}
	return strings.HasPrefix(e.Message, "driver ")
}

// pollStatus is watchStatus for an exporter without a log stream to follow.
func (g *globals) pollStatus(cmd *cobra.Command, c *client.Client) error {
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
			if err := g.printStatusEvent(cmd.OutOrStdout(), time.Now(), statusDoc(st)); err != nil {
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

// statusEvent is a line of jw status -w -o json: "status" events carry the fields of
// statusDocument, "driver" events those of driverEvent.
type statusEvent struct {
	Time  time.Time `json:"time"`
	Event string    `json:"event"` // "status" or "driver"
	statusDocument
}

func (g *globals) printStatusEvent(w io.Writer, when time.Time, doc statusDocument) error {
	if g.output == outputJSON {
		return writeJSON(w, statusEvent{Time: when, Event: "status", statusDocument: doc})
	}
	line := fmt.Sprintf("%s %s (version %d)", when.Local().Format("15:04:05"), doc.Status, doc.Version)
	if doc.Message != "" {
		line += ": " + doc.Message
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// driverEvent is what the exporter's supervisor said about a driver's process: exited and
// restarting, restarted, crash-looping, replaced.
type driverEvent struct {
	Time     time.Time         `json:"time"`
	Event    string            `json:"event"` // "driver"
	Path     string            `json:"path"`
	Severity string            `json:"severity"`
	Message  string            `json:"message"`
	Fields   map[string]string `json:"fields"`
}

func (g *globals) printDriverEvent(w io.Writer, when time.Time, path string, e *jumpstarterv1.LogStreamResponse) error {
	fields := map[string]string{}
	for k, v := range e.StructuredFields {
		if k != "driver" {
			fields[k] = v
		}
	}
	if g.output == outputJSON {
		return writeJSON(w, driverEvent{Time: when, Event: "driver", Path: path, Severity: e.Severity, Message: e.Message, Fields: fields})
	}
	line := fmt.Sprintf("%s %s: %s", when.Local().Format("15:04:05"), path, e.Message)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		line += fmt.Sprintf(" %s=%s", k, fields[k])
	}
	_, err := fmt.Fprintln(w, line)
	return err
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
				return writeJSON(cmd.OutOrStdout(), endSessionJSON{Success: true, Message: msg})
			}
			if msg == "" {
				msg = "session ended"
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
			return err
		},
	}
}

// endSessionJSON is jw end-session -o json.
type endSessionJSON struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
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
