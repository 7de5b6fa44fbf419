package main

import "github.com/hashicorp/go-hclog"

// pluginLineSink passes log entries on to next without what go-plugin adds to each line it
// relays from a plugin: the plugin's own "timestamp" (the line has one already) and its
// "@module" (the logger's name says whose line it is).
type pluginLineSink struct{ next hclog.SinkAdapter }

// Accept implements hclog.SinkAdapter.
func (s pluginLineSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		if i+1 < len(args) && (args[i] == "timestamp" || args[i] == "@module") {
			continue
		}
		out = append(out, args[i:min(i+2, len(args))]...)
	}
	s.next.Accept(name, level, msg, out...)
}
