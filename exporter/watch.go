package exporter

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long the watched files must be quiet before a reload:
// an installer writes a binary in several steps, an editor saves in several.
const watchSettle = 300 * time.Millisecond

// Watch reloads the exporter whenever its config file or a plugin binary on
// the search path changes, until ctx ends. report receives each reload's
// outcome. Directories on the search path that do not exist are not watched.
func (e *Exporter) Watch(ctx context.Context, report func([]Change, error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	// Watch directories, not files: editors and installers replace files by
	// renaming, which a watch on the old file would not follow.
	cfgFile, _ := filepath.Abs(e.opts.ConfigFile)
	if err := w.Add(filepath.Dir(cfgFile)); err != nil {
		return err
	}
	for _, d := range e.catalog.Dirs() {
		_ = w.Add(d)
	}
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if relevant(ev, cfgFile, e.catalog.Dirs()) {
				settle = time.After(watchSettle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			e.logger.Warn("watching for changes", "error", err)
		case <-settle:
			settle = nil
			changes, err := e.Reload(ctx)
			report(changes, err)
		}
	}
}

// relevant reports whether ev touches the config file or a plugin binary.
func relevant(ev fsnotify.Event, cfgFile string, dirs []string) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name, _ := filepath.Abs(ev.Name)
	if name == cfgFile {
		return true
	}
	base := filepath.Base(name)
	for _, d := range dirs {
		if filepath.Dir(name) == d && len(base) > len("jumpwire-driver-") && base[:len("jumpwire-driver-")] == "jumpwire-driver-" {
			return true
		}
	}
	return false
}
