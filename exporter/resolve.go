package exporter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jumpwire-dev/jumpwire/exporter/config"
	"github.com/jumpwire-dev/jumpwire/plugins"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
)

// resolve finds the binary and driver type of every driver instance among
// nodes (the running tree's, or a reload's new one), and makes the private
// copy of each binary that its processes run.
func (e *Exporter) resolve(ctx context.Context, nodes []*node) config.Errors {
	var (
		mu   sync.Mutex
		errs config.Errors
		wg   sync.WaitGroup
	)
	e.learnPython(ctx, nodes)
	for _, n := range nodes {
		if !n.isDriver() {
			continue
		}
		wg.Go(func() {
			err := e.resolveNode(ctx, n)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// learnPython asks the Python interpreters about every type they may
// provide at once (one interpreter run each, not one per instance); what
// they cannot import is reported by resolveNode.
func (e *Exporter) learnPython(ctx context.Context, nodes []*node) {
	byPython := map[string][]string{}
	var maybe []string // types without `plugin:`: Python's if no Go binary provides them
	for _, n := range nodes {
		if !n.isDriver() {
			continue
		}
		if py, ok := strings.CutPrefix(n.inst.Plugin, plugins.PythonPlugin); ok && (py == "" || py[0] == ':') {
			// Named: asked of Python whatever the Go binaries provide (so
			// the binaries are not hashed on their account).
			byPython[strings.TrimPrefix(py, ":")] = append(byPython[strings.TrimPrefix(py, ":")], n.inst.Type)
		} else if n.inst.Plugin == "" {
			maybe = append(maybe, n.inst.Type)
		}
	}
	for _, t := range maybe {
		if !e.catalog.ProvidedByBinary(ctx, t) {
			byPython[""] = append(byPython[""], t)
		}
	}
	for py, types := range byPython {
		if err := e.catalog.LearnPython(ctx, py, types); err != nil {
			e.logger.Debug("asking python about driver types", "error", err)
		}
	}
}

// resolveNode finds the binary of one driver instance: its `plugin:`, or the
// newest on the search path providing its type, matching its `sha256:` and
// `version:` pins. The node then runs a verified private copy of it, so a
// binary replaced on disk never runs under this exporter (see
// plugins.Catalog.Install).
func (e *Exporter) resolveNode(ctx context.Context, n *node) *config.Error {
	inst := n.inst
	pin := plugins.Pin{SHA256: inst.SHA256, Version: inst.Version}
	var (
		entry *plugins.Entry
		dt    *pluginv1.DriverType
		err   error
		key   = "type"
	)
	if py, ok := strings.CutPrefix(inst.Plugin, plugins.PythonPlugin); ok && (py == "" || py[0] == ':') {
		// The instance names the Python class even if a Go binary provides its type.
		key = "plugin"
		if entry, dt, err = e.catalog.LookupPython(ctx, inst.Type, strings.TrimPrefix(py, ":"), pin); err != nil {
			return keyError(inst, key, err)
		}
	} else if inst.Plugin != "" {
		key = "plugin"
		if entry, err = e.catalog.Binary(ctx, inst.Plugin, pin); err != nil {
			return keyError(inst, key, err)
		}
		if dt = entry.Type(inst.Type); dt == nil {
			return inst.KeyError("type", fmt.Sprintf("%s provides no driver type %q; it provides: %s",
				entry.Binary, inst.Type, typeNames(entry)))
		}
	} else if entry, dt, err = e.catalog.Lookup(ctx, inst.Type, pin); err != nil {
		return keyError(inst, key, err)
	}
	run, err := e.catalog.Install(ctx, entry, pin)
	if err != nil {
		return keyError(inst, key, err)
	}
	e.logger.Debug("driver binary", "instance", inst.Path, "type", dt.Name, "binary", run.Source,
		"version", run.Info.GetVersion(), "sha256", run.SHA256, "copy", run.Binary)
	n.entry, n.dtype = run, dt
	return nil
}

// keyError places err at the instance's key it is about: a pin that no
// binary matches at that pin (`sha256:` or `version:`), anything else at key.
func keyError(inst *config.Instance, key string, err error) *config.Error {
	var pe *plugins.PinError
	if errors.As(err, &pe) {
		key = pe.Key
	}
	return inst.KeyError(key, err.Error())
}

func typeNames(e *plugins.Entry) string {
	var names []string
	for _, t := range e.Info.GetTypes() {
		names = append(names, t.Name)
	}
	if len(names) == 0 {
		return "nothing"
	}
	return fmt.Sprint(names)
}

// releaseBinaries removes the private copies of the plugin binaries; no
// plugin may run from them afterwards.
func (e *Exporter) releaseBinaries() {
	e.zygotes.Close() // and the Python zygotes, which no instance needs any more
	if err := e.catalog.Close(); err != nil {
		e.logger.Warn("removing the private copies of the plugin binaries", "error", err)
	}
}
