package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

// collector reports, at each scrape, what the running session knows: each
// driver's state, pid and restarts, its plugin process's memory and CPU
// (from /proc), and the calls and streams in flight.
type collector struct{ m *Metrics }

var (
	driverLabels = []string{"driver_type", "driver"}
	stateDesc    = prometheus.NewDesc(DriverState,
		"The driver's state: 1 for the current one of running, restarting, failed, stopped.", append(driverLabels[:2:2], "state"), nil)
	pidDesc = prometheus.NewDesc(DriverPid,
		"The process id of the driver's plugin process; 0 while it has none.", driverLabels, nil)
	restartsDesc = prometheus.NewDesc(DriverRestartsTotal,
		"Times the driver's process crashed and was restarted, across sessions.", driverLabels, nil)
	rssDesc = prometheus.NewDesc(DriverResidentMemory,
		"Resident memory of the driver's plugin process.", driverLabels, nil)
	cpuDesc = prometheus.NewDesc(DriverCPUSeconds,
		"User and system CPU time of the driver's current plugin process (resets when it is replaced).", driverLabels, nil)
	callsDesc = prometheus.NewDesc(SessionCallsInFlight,
		"Calls in flight in the running session.", nil, nil)
	streamsDesc = prometheus.NewDesc(SessionStreamsOpen,
		"Byte streams open in the running session.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{stateDesc, pidDesc, restartsDesc, rssDesc, cpuDesc, callsDesc, streamsDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	src := c.m.source
	before := make(map[string]int, len(c.m.drivers))
	for path, d := range c.m.drivers {
		before[path] = d.restartsBefore
	}
	c.m.mu.Unlock()
	var calls, streams int
	var instances []Instance
	if src != nil {
		calls, streams = src.InFlight()
		instances = src.Instances()
	}
	ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.GaugeValue, float64(calls))
	ch <- prometheus.MustNewConstMetric(streamsDesc, prometheus.GaugeValue, float64(streams))
	for _, in := range instances {
		for _, s := range States {
			v := 0.0
			if s == in.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, in.Type, in.Path, s)
		}
		ch <- prometheus.MustNewConstMetric(pidDesc, prometheus.GaugeValue, float64(in.Pid), in.Type, in.Path)
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(before[in.Path]+in.Restarts), in.Type, in.Path)
		if in.Pid <= 0 {
			continue
		}
		p, err := procfs.NewProc(in.Pid)
		if err != nil {
			continue
		}
		st, err := p.Stat()
		if err != nil {
			continue // it exited meanwhile
		}
		ch <- prometheus.MustNewConstMetric(rssDesc, prometheus.GaugeValue, float64(st.ResidentMemory()), in.Type, in.Path)
		ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.CounterValue, st.CPUTime(), in.Type, in.Path)
	}
}
