package exporter

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jumpwire-dev/jumpwire/exporter/config"
	"github.com/jumpwire-dev/jumpwire/host"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/proto"
)

// Change is one thing a reload did to a driver instance.
type Change struct {
	Path   string
	Action string // "added", "removed" or "replaced"
	Detail string // why, e.g. "binary changed (version 1.0.0 -> 1.1.0)"
	Err    error  // the change failed; what ran before keeps running
}

// Reload reads the config file and the plugin binaries again and applies
// only the difference to the running session: added instances start,
// removed ones stop, changed ones (type, binary content, config) are
// swapped (see host.Supervised.Swap); unchanged ones are not touched and
// keep their processes. Uuids of unchanged paths never move. A config with
// problems changes nothing and comes back as config.Errors.
func (e *Exporter) Reload(ctx context.Context) ([]Change, error) {
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	cur := e.Config()
	cfg, err := config.Load(e.opts.ConfigFile)
	if err != nil {
		return nil, err
	}
	if cfg.Metadata != cur.Metadata {
		return nil, config.Errors{{Pos: config.Pos{File: cfg.File}, Key: "metadata",
			Msg: "the exporter's name and namespace seed every uuid and cannot change in a reload; restart the exporter"}}
	}
	e.catalog.Rescan(ctx)
	nodes, byUUID := buildTree(cfg)
	if errs := e.resolve(ctx, nodes); len(errs) > 0 {
		return nil, errs
	}
	newSpecs, err := specsOf(nodes)
	if err != nil {
		return nil, err
	}
	oldNodes, oldByUUID := e.tree()
	oldSpecs, _ := specsOf(oldNodes)

	var changes []Change
	sess := e.Session()
	apply := func(n *node, c Change, do func() error) {
		if sess != nil {
			c.Err = placeConfigError(n, do())
		}
		if c.Err != nil {
			e.logger.Error("reload: change failed; the previous instance keeps running", "path", c.Path, "action", c.Action, "error", c.Err)
		} else {
			e.logger.Info("reload", "path", c.Path, "action", c.Action, "detail", c.Detail)
		}
		changes = append(changes, c)
	}
	for _, n := range nodes {
		spec, ok := newSpecs[n.uuid]
		if !ok {
			continue
		}
		old, had := oldSpecs[n.uuid]
		switch {
		case !had:
			apply(n, Change{Path: n.path(), Action: "added"}, func() error { return sess.Add(ctx, n.uuid, spec) })
		default:
			on := oldByUUID[n.uuid]
			why := difference(on, n, old, spec)
			if why == "" {
				continue
			}
			exclusive := on.dtype.GetExclusive() || n.dtype.GetExclusive()
			apply(n, Change{Path: n.path(), Action: "replaced", Detail: why}, func() error {
				return sess.Swap(ctx, n.uuid, spec, host.SwapOptions{Exclusive: exclusive, Drain: e.opts.SwapDrain})
			})
		}
	}
	for id, old := range oldSpecs {
		if _, ok := newSpecs[id]; !ok {
			apply(nil, Change{Path: old.Path, Action: "removed"}, func() error { return sess.Remove(ctx, id) })
		}
	}
	// Refs need nothing of the session: the new tree routes them.
	nodes = keepFailed(nodes, byUUID, changes, oldByUUID)
	// Report changes in tree order; removed instances, gone from the tree, last.
	order := make(map[string]int, len(nodes))
	for i, n := range nodes {
		order[n.path()] = i + 1
	}
	rank := func(c Change) int {
		if r, ok := order[c.Path]; ok && c.Action != "removed" {
			return r
		}
		return len(order) + 1
	}
	slices.SortStableFunc(changes, func(a, b Change) int { return rank(a) - rank(b) })
	e.mu.Lock()
	e.cfg, e.nodes, e.byUUID = cfg, nodes, byUUID
	e.mu.Unlock()
	e.logs.setNodes(nodes)
	if e.link != nil && len(changes) > 0 {
		kick(e.link.reregister) // the controller learns the new drivers and versions
	}
	return changes, nil
}

// placeConfigError places the problems of a config the driver of n rejected
// at their lines of the config file, as at start; other errors pass as they are.
func placeConfigError(n *node, err error) error {
	var ce *host.ConfigError
	if n == nil || n.inst == nil || !errors.As(err, &ce) {
		return err
	}
	var errs config.Errors
	for _, p := range ce.Problems {
		errs = append(errs, n.inst.ConfigError(p.Key, p.Message))
	}
	if len(errs) == 0 {
		return err
	}
	return errs
}

// difference says why a driver instance must be replaced, or "" when it
// runs exactly what the new config asks for.
func difference(on, nn *node, old, spec host.Spec) string {
	switch {
	case on.dtype.GetName() != nn.dtype.GetName():
		return fmt.Sprintf("type changed (%s -> %s)", on.dtype.GetName(), nn.dtype.GetName())
	case on.entry.SHA256 != nn.entry.SHA256:
		ov, nv := on.entry.Info.GetVersion(), nn.entry.Info.GetVersion()
		if ov != nv {
			return fmt.Sprintf("binary changed (version %s -> %s)", ov, nv)
		}
		return fmt.Sprintf("binary changed (sha256 %.12s -> %.12s)", on.entry.SHA256, nn.entry.SHA256)
	case !proto.Equal(old.Config, spec.Config):
		return "config changed"
	case !slices.EqualFunc(old.Children, spec.Children, func(a, b *pluginv1.Child) bool { return proto.Equal(a, b) }):
		return "children changed" // its driver was told of them at its start
	}
	return ""
}

// keepFailed puts back the running instance's node wherever a replace
// failed (the old process keeps serving what it served), and drops nodes
// whose start failed (from byUUID too), so the new tree reports what
// actually runs. It returns the nodes kept.
func keepFailed(nodes []*node, byUUID map[string]*node, changes []Change, old map[string]*node) []*node {
	failed := map[string]Change{}
	for _, c := range changes {
		if c.Err != nil {
			failed[c.Path] = c
		}
	}
	if len(failed) == 0 {
		return nodes
	}
	var kept []*node
	for _, n := range nodes {
		c, ok := failed[n.path()]
		switch {
		case !ok:
			kept = append(kept, n)
		case c.Action == "replaced":
			o := old[n.uuid]
			n.inst, n.entry, n.dtype = o.inst, o.entry, o.dtype
			kept = append(kept, n)
		case c.Action == "added":
			delete(byUUID, n.uuid)
		}
	}
	return kept
}
