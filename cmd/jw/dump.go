package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
)

func newDumpCmd(g *globals) *cobra.Command {
	var (
		noSwitch  bool
		force     bool
		partition string
	)
	cmd := &cobra.Command{
		Use:   "dump PATH FILE",
		Short: "Copy a storage driver's content into a file, with a progress bar",
		Long: `Copy the content of the storage or flasher driver at PATH (a disk image, an SD card)
into FILE, and print how many bytes arrived and their sha256. A flasher is asked with
dump(handle, partition) and a storage mux with read(handle), upstream's contracts, so
upstream's drivers answer too. For a storage mux, jw switches the storage to the host
first and back to the DUT after, as upstream's client does; --no-switch leaves the mux
alone (and a mux switched to the DUT refuses).

FILE is written whole or not at all: the bytes go to a temporary file beside it, which
is fsynced and renamed to FILE once the driver has completed the dump (and, when the
driver reports the sha256 of what it sent, once it matches what arrived). An existing
FILE is never replaced unless --force is given. FILE "-" writes to stdout.

On a terminal, stderr shows a progress bar (bytes received, rate).`,
		Example: `  jw dump board.storage disk.img
  jw dump board.flasher --partition root backup.img`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dst, err := openDumpTarget(args[1], force)
			if err != nil {
				return err
			}
			defer dst.abandon()
			c, tree, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := tree.Lookup(args[0])
			if err != nil {
				return err
			}
			method, err := dumpHow(d)
			if err != nil {
				return err
			}
			var part any // null: the device's only (or default) partition
			if partition != "" {
				part = partition
			}
			_, isMux := d.Methods["host"]
			switchMux := isMux && !noSwitch
			if switchMux {
				if _, err := c.Call(cmd.Context(), d.UUID, "host"); err != nil {
					return err
				}
			}
			got, res, derr := dump(cmd.Context(), c, d, method, part, dst.w, progressOut(cmd))
			if switchMux {
				if _, err := c.Call(cmd.Context(), d.UUID, "dut"); err != nil && derr == nil {
					derr = err
				}
			}
			if derr != nil {
				return derr
			}
			if want, ok := res["sha256"].(string); ok && want != got.sha256 {
				return fmt.Errorf("dump: %s reported sha256 %s for what it sent, but what arrived has sha256 %s; %s is left as it was", pathArg(d), want, got.sha256, args[1])
			}
			if err := dst.commit(); err != nil {
				return err
			}
			out := map[string]any{"bytes": got.bytes, "sha256": got.sha256, "file": args[1], "seconds": got.seconds}
			if g.output == outputJSON {
				return g.print(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			if dst.stdout {
				w = cmd.ErrOrStderr() // stdout carries the data
			}
			_, err = fmt.Fprintf(w, "read %d bytes from %s into %s in %.1fs, sha256 %s\n", got.bytes, d.Path, args[1], got.seconds, got.sha256)
			return err
		},
	}
	cmd.Flags().BoolVar(&noSwitch, "no-switch", false, "do not switch a storage mux to the host and back to the DUT")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace FILE if it exists")
	cmd.Flags().StringVar(&partition, "partition", "", "the partition a flasher dumps (default: its only or default one)")
	return cmd
}

// dumpHow chooses how d gives its content: upstream's flasher dump, or a
// storage mux's read.
func dumpHow(d *client.Driver) (string, error) {
	switch {
	case d.HasMethod("dump"):
		return "dump", nil
	case d.HasMethod("read") && d.HasMethod("write"):
		return "read", nil
	}
	return "", fmt.Errorf("dump: %s has no content to give: it has no dump or read method (a flasher or a storage mux)", pathArg(d))
}

// received is what arrived of a dump.
type received struct {
	bytes   int64
	sha256  string
	seconds float64
}

// dump opens a resource for d's content, calls method (dump or read) with
// its handle, and copies what arrives to w. It returns what arrived and the
// method's result as an object (empty when the driver answers null). A
// dump is complete only when both the call succeeded and the exporter
// ended the data with its end mark.
func dump(ctx context.Context, c *client.Client, d *client.Driver, method string, partition any, w io.Writer, bar io.Writer) (received, map[string]any, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // an early return breaks the download off
	s, handle, err := c.Upload(ctx, d.UUID)
	if err != nil {
		return received{}, nil, err
	}
	defer s.Close()
	// Nothing goes up: the resource only brings the driver's data down.
	if err := s.CloseWrite(); err != nil {
		return received{}, nil, err
	}
	var got atomic.Int64
	h := sha256.New()
	copied := make(chan error, 1)
	go func() {
		// Frames carry up to 1 MiB: a buffer as large takes each whole,
		// one write to the file per frame rather than 32 per MiB.
		_, err := io.CopyBuffer(io.MultiWriter(w, h, counter{&got}), s, make([]byte, 1<<20))
		copied <- err
	}()
	stopBar := showProgress(bar, &got, 0)
	defer stopBar()
	start := time.Now()
	args := []any{handle}
	if method == "dump" {
		args = append(args, partition)
	}
	v, err := c.Call(ctx, d.UUID, method, args...)
	if err != nil {
		return received{}, nil, err
	}
	// The call's result may overtake the last of the data: the exporter
	// ends the data with its end mark once the driver completed it.
	if err := <-copied; err != nil {
		return received{}, nil, fmt.Errorf("dump: %s.%s answered, but its data broke off after %d bytes: %w", pathArg(d), method, got.Load(), err)
	}
	stopBar()
	res, _ := v.(map[string]any)
	if res == nil {
		res = map[string]any{}
	}
	return received{bytes: got.Load(), sha256: hex.EncodeToString(h.Sum(nil)), seconds: time.Since(start).Seconds()}, res, nil
}

// counter counts the bytes written through it.
type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// dumpTarget is where a dump goes: a temporary file beside FILE, renamed
// to FILE by commit; or stdout.
type dumpTarget struct {
	w      io.Writer
	stdout bool
	path   string   // FILE
	tmp    *os.File // the temporary file
	force  bool
	done   bool
}

// openDumpTarget refuses an existing path unless force, and makes the
// temporary file the dump is written to.
func openDumpTarget(path string, force bool) (*dumpTarget, error) {
	if path == "-" {
		return &dumpTarget{w: os.Stdout, stdout: true}, nil
	}
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return nil, fmt.Errorf("dump: %s is a directory; name the file to write", path)
	case err == nil && !force:
		return nil, fmt.Errorf("dump: %s exists; give --force to replace it", path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("dump: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".jw-dump-*")
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	return &dumpTarget{w: tmp, path: path, tmp: tmp, force: force}, nil
}

// commit makes the dump FILE: fsynced, then renamed (or, without force,
// linked, which fails rather than replace a FILE that appeared meanwhile).
func (t *dumpTarget) commit() error {
	if t.stdout {
		return nil
	}
	if err := t.tmp.Sync(); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	if err := t.tmp.Close(); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	if t.force {
		if err := os.Rename(t.tmp.Name(), t.path); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		t.done = true
		return nil
	}
	if err := os.Link(t.tmp.Name(), t.path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("dump: %s appeared while dumping; give --force to replace it", t.path)
		}
		// A file system without hard links: rename, after one more look.
		if _, serr := os.Lstat(t.path); !errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("dump: %s appeared while dumping; give --force to replace it", t.path)
		}
		if err := os.Rename(t.tmp.Name(), t.path); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
	}
	_ = os.Remove(t.tmp.Name())
	t.done = true
	return nil
}

// abandon removes the temporary file of a dump that did not complete.
func (t *dumpTarget) abandon() {
	if t.stdout || t.done {
		return
	}
	_ = t.tmp.Close()
	_ = os.Remove(t.tmp.Name())
}
