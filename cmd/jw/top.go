package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// metricsEnv names the metrics address `jw top` reads when none is given.
const metricsEnv = "JUMPWIRE_METRICS"

func newTopCmd(_ *globals) *cobra.Command {
	var (
		interval time.Duration
		once     bool
	)
	cmd := &cobra.Command{
		Use:   "top [HOST:PORT | URL]",
		Short: "Watch the drivers of an exporter live: calls, errors, latency, streams, memory, CPU",
		Long: `Watch an exporter's drivers, refreshed every --interval: per driver its state,
plugin process id, calls per second, failed calls, median and 99th percentile
latency (over the last interval, from the latency histogram's buckets), byte
streams open, bytes per second each way (rx: from clients, tx: to clients),
restarts, resident memory and CPU.

jw top reads the exporter's Prometheus metrics: start it with
  jw run -c exporter.yaml --metrics-listen 127.0.0.1:9464
and give that address (or set $` + metricsEnv + `). On a terminal it refreshes
until interrupted; otherwise (or with --once) it prints one table, the rates
measured over one interval, and exits.`,
		Example: `  jw top 127.0.0.1:9464
  JUMPWIRE_METRICS=lab-1:9464 jw top --once | grep power`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr := os.Getenv(metricsEnv)
			if len(args) == 1 {
				addr = args[0]
			}
			if addr == "" {
				return usageError{fmt.Errorf("top: which exporter? give the address it serves metrics on (jw run --metrics-listen ADDR), or set $%s", metricsEnv)}
			}
			if interval <= 0 {
				return usageError{fmt.Errorf("--interval %s: must be positive", interval)}
			}
			url := metricsURL(addr)
			out := cmd.OutOrStdout()
			f, isFile := out.(*os.File)
			live := !once && isFile && term.IsTerminal(int(f.Fd()))
			return top(cmd.Context(), out, url, interval, live)
		},
	}
	cmd.Flags().DurationVarP(&interval, "interval", "n", 2*time.Second, "time between refreshes, over which rates are measured")
	cmd.Flags().BoolVar(&once, "once", false, "print one table and exit, even on a terminal")
	return cmd
}

// metricsURL makes a scrape URL of HOST:PORT, http://HOST:PORT or a full URL.
func metricsURL(addr string) string {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	if rest := addr[strings.Index(addr, "://")+3:]; !strings.Contains(rest, "/") {
		addr += "/metrics"
	}
	return addr
}

// top scrapes url every interval and prints the table; live, it clears the
// screen first and goes on until ctx ends, else it prints once.
func top(ctx context.Context, w io.Writer, url string, interval time.Duration, live bool) error {
	prev, err := scrapeTop(ctx, url)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
		cur, err := scrapeTop(ctx, url)
		if err != nil {
			if live && ctx.Err() == nil {
				fmt.Fprintf(w, "\x1b[H\x1b[2J%s\n", err)
				continue
			}
			return err
		}
		if live {
			fmt.Fprint(w, "\x1b[H\x1b[2J")
		}
		renderTop(w, prev, cur)
		if !live {
			return nil
		}
		prev = cur
	}
}

// topSnapshot is one scrape, folded per driver.
type topSnapshot struct {
	at       time.Time
	exporter string
	lease    string
	sessions float64
	inFlight float64
	rss, cpu float64 // the exporter process's
	drivers  map[string]*topDriver
}

// topDriver is one driver's figures in a scrape; counters are cumulative.
type topDriver struct {
	path, typ, state        string
	pid, restarts, streams  float64
	calls, failures, rx, tx float64
	rss, cpu                float64
	buckets                 map[float64]float64 // cumulative count by upper bound, all methods
	observed                float64             // calls in the histogram, all methods
}

func scrapeTop(ctx context.Context, url string) (*topSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("top: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("top: scrape %s: %w (is the exporter running with --metrics-listen?)", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("top: scrape %s: %s", url, resp.Status)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("top: %s does not serve Prometheus metrics: %w", url, err)
	}
	return foldTop(fams), nil
}

// foldTop sums a scrape's series per driver.
func foldTop(fams map[string]*dto.MetricFamily) *topSnapshot {
	s := &topSnapshot{at: time.Now(), drivers: map[string]*topDriver{}}
	driver := func(m *dto.Metric) *topDriver {
		l := labels(m)
		d, ok := s.drivers[l["driver"]]
		if !ok {
			d = &topDriver{path: l["driver"], typ: l["driver_type"], buckets: map[float64]float64{}}
			s.drivers[d.path] = d
		}
		return d
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			l := labels(m)
			if e := l["exporter"]; e != "" {
				s.exporter = e
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			switch name {
			case "jumpstarter_active_sessions":
				s.sessions = v
			case "jumpwire_session_calls_in_flight":
				s.inFlight = v
			case "process_resident_memory_bytes":
				s.rss = v
			case "process_cpu_seconds_total":
				s.cpu = v
			case "jumpwire_lease_status":
				if v == 1 {
					s.lease = l["status"]
				}
			case "jumpstarter_operations_total":
				d := driver(m)
				d.calls += v
				if l["result"] == "failure" {
					d.failures += v
				}
			case "jumpstarter_operation_duration_seconds":
				d := driver(m)
				d.observed += float64(m.GetHistogram().GetSampleCount())
				for _, b := range m.GetHistogram().GetBucket() {
					d.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
			case "jumpstarter_stream_bytes_total":
				d := driver(m)
				if l["direction"] == "rx" {
					d.rx += v
				} else {
					d.tx += v
				}
			case "jumpwire_driver_state":
				if v == 1 {
					driver(m).state = l["state"]
				}
			case "jumpwire_driver_pid":
				driver(m).pid = v
			case "jumpwire_driver_restarts_total":
				driver(m).restarts = v
			case "jumpwire_driver_streams_open":
				driver(m).streams = v
			case "jumpwire_driver_resident_memory_bytes":
				driver(m).rss = v
			case "jumpwire_driver_cpu_seconds_total":
				driver(m).cpu = v
			}
		}
	}
	return s
}

func labels(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// renderTop prints cur, with rates and latency over the time since prev.
// Drivers no longer in the session (state "") are left out.
func renderTop(w io.Writer, prev, cur *topSnapshot) {
	dt := cur.at.Sub(prev.at).Seconds()
	rate := func(now, before float64) float64 { return max(now-before, 0) / dt }
	fmt.Fprintf(w, "exporter %s  lease %s  sessions %.0f  calls in flight %.0f  memory %s  cpu %.0f%%\n\n",
		cur.exporter, cur.lease, cur.sessions, cur.inFlight, bytesHuman(cur.rss), 100*rate(cur.cpu, prev.cpu))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DRIVER\tTYPE\tSTATE\tPID\tCALLS/S\tERRORS\tP50\tP99\tSTREAMS\tRX/S\tTX/S\tRESTARTS\tRSS\tCPU\t")
	paths := make([]string, 0, len(cur.drivers))
	for p, d := range cur.drivers {
		if d.state != "" {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		d, b := cur.drivers[p], prev.drivers[p]
		if b == nil {
			b = &topDriver{buckets: map[float64]float64{}}
		}
		pid := "-"
		if d.pid > 0 {
			pid = fmt.Sprintf("%.0f", d.pid)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%.0f\t%s\t%s\t%.0f\t%s\t%s\t%.0f\t%s\t%.0f%%\t\n",
			d.path, d.typ, d.state, pid, rate(d.calls, b.calls), d.failures,
			latency(d, b, 0.50), latency(d, b, 0.99), d.streams,
			bytesHuman(rate(d.rx, b.rx)), bytesHuman(rate(d.tx, b.tx)), d.restarts, bytesHuman(d.rss), 100*rate(d.cpu, b.cpu))
	}
	_ = tw.Flush()
}

// latency is the q-quantile of the calls observed between two scrapes of a
// driver: the upper bound of the histogram bucket it falls in, "-" without
// calls in between.
func latency(now, before *topDriver, q float64) string {
	total := now.observed - before.observed
	if total <= 0 {
		return "-"
	}
	bounds := slices.DeleteFunc(slices.Sorted(maps.Keys(now.buckets)), func(b float64) bool { return math.IsInf(b, 1) })
	for _, b := range bounds {
		if now.buckets[b]-before.buckets[b] >= q*total {
			return "≤" + durationHuman(b)
		}
	}
	if len(bounds) == 0 {
		return "-"
	}
	return ">" + durationHuman(bounds[len(bounds)-1])
}

func durationHuman(s float64) string {
	return time.Duration(s * float64(time.Second)).String()
}

func bytesHuman(n float64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%.0fB", n)
	}
	exp, div := 0, float64(unit)
	for x := n / unit; x >= unit && exp < 4; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", n/div, "KMGTP"[exp])
}
