package exporter

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Log stream limits.
const (
	// logBacklog is how many recent entries a new subscriber is sent first.
	logBacklog = 1000
	// logBuffer is how far a subscriber may fall behind before its oldest
	// undelivered entries are dropped (drivers never wait for a reader).
	logBuffer = 4096
	// BacklogHeader is the LogStream response header saying how many of the
	// first entries are history rather than live (`jw logs` without -f
	// prints those and exits).
	BacklogHeader = "jumpwire-log-backlog"
)

// Fields of the "status changed" log entry the exporter writes at every change of its lease
// status, so that a LogStream client (jw status -w) sees each status_version.
const (
	LogStatus         = "status"          // the new status, e.g. LEASE_READY
	LogStatusVersion  = "status_version"  // its status_version
	LogPreviousStatus = "previous_status" // the status before
)

// logHub fans log entries out to LogStream subscribers. It is an hclog sink:
// everything logged through the exporter's logger (its own messages and the
// re-logged output of every plugin) passes through it.
type logHub struct {
	prefix string           // the exporter logger's name, with a trailing dot
	paths  map[string]*node // instance path -> node, for naming entries

	mu      sync.Mutex
	history []*jumpstarterv1.LogStreamResponse // ring of the last logBacklog entries
	next    int
	subs    map[*logSub]struct{}
}

type logSub struct {
	ch      chan *jumpstarterv1.LogStreamResponse
	mu      sync.Mutex
	dropped int
}

func newLogHub(loggerName string, nodes []*node) *logHub {
	h := &logHub{subs: map[*logSub]struct{}{}}
	if loggerName != "" {
		h.prefix = loggerName + "."
	}
	h.setNodes(nodes)
	return h
}

// setNodes tells the hub which drivers there are (after a reload).
func (h *logHub) setNodes(nodes []*node) {
	paths := map[string]*node{}
	for _, n := range nodes {
		if n.isDriver() {
			paths[n.path()] = n
		}
	}
	h.mu.Lock()
	h.paths = paths
	h.mu.Unlock()
}

// Accept receives one log entry (hclog.SinkAdapter).
func (h *logHub) Accept(name string, level hclog.Level, msg string, args ...any) {
	if level < hclog.Info {
		return
	}
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "hook" {
			return // hook output is published with its own source
		}
	}
	e := &jumpstarterv1.LogStreamResponse{
		Severity:         strings.ToUpper(level.String()),
		Message:          msg,
		Timestamp:        timestamppb.New(time.Now()),
		StructuredFields: map[string]string{},
	}
	src := jumpstarterv1.LogSource_LOG_SOURCE_SYSTEM
	if n, rest := h.driverOf(name); n != nil && n.entry != nil {
		e.Uuid = n.uuid
		e.DriverType = &n.dtype.Name
		if rest == pluginBinaryName(n) {
			src = jumpstarterv1.LogSource_LOG_SOURCE_DRIVER
		}
		e.StructuredFields["driver"] = n.path()
	}
	e.Source = &src
	for i := 0; i+1 < len(args); i += 2 {
		k := fmt.Sprint(args[i])
		if k == "timestamp" || k == "@module" {
			continue
		}
		e.StructuredFields[k] = fmt.Sprint(args[i+1])
	}
	h.publish(e)
}

func pluginBinaryName(n *node) string {
	b := n.entry.Binary
	return b[strings.LastIndexByte(b, '/')+1:]
}

// driverOf finds the driver a logger name belongs to: the exporter names each
// instance's logger after its path, and go-plugin names the re-logged plugin
// output after the binary below that. rest is what follows the path.
func (h *logHub) driverOf(name string) (*node, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name = strings.TrimPrefix(name, h.prefix)
	for p := name; p != ""; {
		if n, ok := h.paths[p]; ok {
			return n, strings.TrimPrefix(strings.TrimPrefix(name, p), ".")
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return nil, ""
}

func (h *logHub) publish(e *jumpstarterv1.LogStreamResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.history) < logBacklog {
		h.history = append(h.history, e)
	} else {
		h.history[h.next] = e
		h.next = (h.next + 1) % logBacklog
	}
	for s := range h.subs {
		s.offer(e)
	}
}

// offer queues e for the subscriber, dropping its oldest entry when full.
func (s *logSub) offer(e *jumpstarterv1.LogStreamResponse) {
	for {
		select {
		case s.ch <- e:
			return
		default:
		}
		select {
		case <-s.ch:
			s.mu.Lock()
			s.dropped++
			s.mu.Unlock()
		default:
		}
	}
}

// subscribe registers a subscriber and returns the backlog to send first.
func (h *logHub) subscribe() (*logSub, []*jumpstarterv1.LogStreamResponse) {
	s := &logSub{ch: make(chan *jumpstarterv1.LogStreamResponse, logBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	backlog := append(append([]*jumpstarterv1.LogStreamResponse(nil), h.history[h.next:]...), h.history[:h.next]...)
	h.subs[s] = struct{}{}
	return s, backlog
}

func (h *logHub) unsubscribe(s *logSub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// LogStream sends the recent log entries, then every new one, until the
// client goes away. A client that reads too slowly loses its oldest entries
// and is told how many.
func (s *service) LogStream(_ *emptypb.Empty, stream jumpstarterv1.ExporterService_LogStreamServer) error {
	sub, backlog := s.e.logs.subscribe()
	defer s.e.logs.unsubscribe(sub)
	if err := stream.SendHeader(metadata.Pairs(BacklogHeader, strconv.Itoa(len(backlog)))); err != nil {
		return err
	}
	for _, e := range backlog {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case e := <-sub.ch:
			sub.mu.Lock()
			dropped := sub.dropped
			sub.dropped = 0
			sub.mu.Unlock()
			if dropped > 0 {
				src := jumpstarterv1.LogSource_LOG_SOURCE_SYSTEM
				note := &jumpstarterv1.LogStreamResponse{
					Severity: "WARN", Source: &src, Timestamp: timestamppb.Now(),
					Message: fmt.Sprintf("%d log entries were dropped because this client reads too slowly", dropped),
				}
				if err := stream.Send(note); err != nil {
					return err
				}
			}
			if err := stream.Send(e); err != nil {
				return err
			}
		}
	}
}
