package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/jumpwire-dev/jumpwire/client"
)

// flashMethod is the byte stream of jumpwire's storage drivers that takes an image.
const flashMethod = "write_stream"

// flashReply is one JSON line the storage driver answers (drivers/storage.Reply).
type flashReply struct {
	Progress *struct {
		Bytes int64 `json:"bytes"`
	} `json:"progress"`
	Result map[string]any `json:"result"`
	Error  string         `json:"error"`
}

func newFlashCmd(g *globals) *cobra.Command {
	var noSwitch, stream bool
	cmd := &cobra.Command{
		Use:   "flash PATH IMAGE",
		Short: "Write an image file to a storage driver, with a progress bar",
		Long: `Stream IMAGE (a raw image, or gzip-compressed: the driver decompresses it) to the
storage or flasher driver at PATH, and print how many bytes reached the device and
their sha256 once they are on it (fsynced). jumpwire's storage drivers take the
image on their write_stream; any other flasher or storage mux (upstream's
contract) gets it as an upload passed to flash(image, null) or write(image). For a storage mux, jw switches the
storage to the host first and back to the DUT after, as upstream's client does;
--no-switch leaves the mux alone.

When the exporter runs on this machine (a unix socket), jw hands the open image
file over to it instead of sending its bytes, and a storage driver that can copies
it in the kernel; --stream sends the bytes anyway.

On a terminal, stderr shows a progress bar (bytes sent, rate, time left).`,
		Example: `  jw flash board.flasher disk.img.gz`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[1])
			if err != nil {
				return fmt.Errorf("flash: %w", err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return fmt.Errorf("flash: %w", err)
			}
			c, tree, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := tree.Lookup(args[0])
			if err != nil {
				return err
			}
			how, err := flashHow(d)
			if err != nil {
				return err
			}
			_, isMux := d.Methods["host"]
			switchMux := isMux && !noSwitch
			if switchMux {
				if _, err := c.Call(cmd.Context(), d.UUID, "host"); err != nil {
					return err
				}
			}
			var res map[string]any
			var ferr error
			if how == flashMethod {
				res, ferr = flash(cmd.Context(), c, d, f, st.Size(), !stream, progressOut(cmd))
			} else {
				res, ferr = flashUpload(cmd.Context(), c, d, how, f, st.Size(), progressOut(cmd))
			}
			if switchMux {
				if _, err := c.Call(cmd.Context(), d.UUID, "dut"); err != nil && ferr == nil {
					ferr = err
				}
			}
			if ferr != nil {
				return ferr
			}
			if g.output == outputJSON {
				return g.print(cmd.OutOrStdout(), res)
			}
			if res["sha256"] == nil { // a driver that answers nothing, as upstream's do
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "flashed %s to %s\n", args[1], d.Path)
				return err
			}
			n := res["bytes"]
			if n == nil {
				n = res["size"]
			}
			took := ""
			if secs, ok := res["seconds"].(float64); ok {
				took = fmt.Sprintf(" in %.1fs", secs)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %v bytes to %s%s, sha256 %v\n", jsonInt(n), d.Path, took, res["sha256"])
			return err
		},
	}
	cmd.Flags().BoolVar(&noSwitch, "no-switch", false, "do not switch a storage mux to the host and back to the DUT")
	cmd.Flags().BoolVar(&stream, "stream", false, "send the image's bytes even to an exporter on this machine, which could read the file itself")
	return cmd
}

// flashHow chooses how d takes an image: jumpwire's write_stream, or an
// upload to upstream's flash or write.
func flashHow(d *client.Driver) (string, error) {
	switch {
	case d.MethodKind(flashMethod) == client.KindStream:
		return flashMethod, nil
	case d.HasMethod("flash"):
		return "flash", nil
	case d.HasMethod("write"):
		return "write", nil
	}
	return "", fmt.Errorf("flash: %s takes no image: it has no write_stream, flash or write method", pathArg(d))
}

// flashUpload uploads img (size bytes) and calls method (flash or write) of
// d with the upload's handle, and returns the method's result as an object
// (empty when the driver answers null).
func flashUpload(ctx context.Context, c *client.Client, d *client.Driver, method string, img io.Reader, size int64, bar io.Writer) (map[string]any, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // an early return breaks the upload off
	s, handle, err := c.Upload(ctx, d.UUID)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var sent atomic.Int64
	sendErr := sendImage(s, img, &sent, cancel)
	stopBar := showProgress(bar, &sent, size)
	defer stopBar()
	args := []any{handle}
	if method == "flash" {
		args = append(args, nil)
	}
	v, err := c.Call(ctx, d.UUID, method, args...)
	stopBar()
	if err != nil {
		return nil, err
	}
	// The upload is over when the method returns: a sender still waiting
	// to write means the driver stopped reading before the image's end.
	cancel()
	<-sendErr
	if n := sent.Load(); n != size {
		return nil, fmt.Errorf("flash: %s.%s answered after taking %d of the image's %d bytes", pathArg(d), method, n, size)
	}
	res, _ := v.(map[string]any)
	if res == nil {
		res = map[string]any{}
	}
	return res, nil
}

// sendImage copies img to s in the background in 1 MiB writes, counting
// what was sent, and half-closes s at the image's end. The returned channel
// answers once, when it is done; an image that cannot be read cancels the
// transfer.
func sendImage(s interface {
	io.Writer
	CloseWrite() error
}, img io.Reader, sent *atomic.Int64, cancel context.CancelFunc) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<20)
		for {
			n, err := img.Read(buf)
			if n > 0 {
				if _, werr := s.Write(buf[:n]); werr != nil {
					done <- werr
					return
				}
				sent.Add(int64(n))
			}
			if errors.Is(err, io.EOF) {
				done <- s.CloseWrite()
				return
			}
			if err != nil {
				done <- fmt.Errorf("flash: reading the image: %w", err)
				cancel()
				return
			}
		}
	}()
	return done
}

func jsonInt(v any) any {
	if f, ok := v.(float64); ok {
		return int64(f)
	}
	return v
}

// progressOut is where the progress bar goes: stderr when it is a terminal,
// else nowhere (no escape codes in logs).
func progressOut(cmd *cobra.Command) io.Writer {
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f
	}
	return nil
}

// flash streams img (size bytes) to d's write_stream and returns the
// driver's result. bar, if set, receives a progress bar.
//
// When the exporter runs on this machine, the image file is handed over
// (client.StreamFile) and the driver reads it itself; the bar then follows
// the driver's progress; handOver false always sends the bytes.
func flash(ctx context.Context, c *client.Client, d *client.Driver, img *os.File, size int64, handOver bool, bar io.Writer) (map[string]any, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // an early return abandons the stream: the device stays marked not fully written
	var s *client.Stream
	var local bool
	var err error
	if handOver {
		s, local, err = c.StreamFile(ctx, d.UUID, flashMethod, img)
	} else {
		s, err = c.Stream(ctx, d.UUID, flashMethod)
	}
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var sent atomic.Int64
	var sendErr <-chan error
	if local {
		done := make(chan error, 1)
		done <- s.CloseWrite()
		sendErr = done
	} else {
		sendErr = sendImage(s, img, &sent, cancel)
	}
	stopBar := showProgress(bar, &sent, size)
	defer stopBar()
	sc := bufio.NewScanner(s)
	for sc.Scan() {
		var r flashReply
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("flash: %s.%s answered %q, not a storage driver's reply", d.Path, flashMethod, sc.Text())
		}
		switch {
		case local && r.Progress != nil:
			sent.Store(r.Progress.Bytes)
		case r.Error != "":
			stopBar()
			return nil, fmt.Errorf("flash: %s", r.Error)
		case r.Result != nil:
			stopBar()
			return r.Result, nil
		}
	}
	select {
	case err := <-sendErr:
		if err != nil {
			return nil, err
		}
	default:
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("flash: %s ended the stream without a result", d.Path)
}

// showProgress redraws a one-line progress bar on w every 200ms until the
// returned stop is called (idempotent). With w nil it does nothing.
func showProgress(w io.Writer, done *atomic.Int64, total int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	start := time.Now()
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			fmt.Fprintf(w, "\r%s", progressLine(done.Load(), total, time.Since(start)))
			select {
			case <-quit:
				fmt.Fprintf(w, "\r%s\n", progressLine(done.Load(), total, time.Since(start)))
				return
			case <-t.C:
			}
		}
	}()
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			close(quit)
			<-finished
		}
	}
}

// progressLine renders "[#####.....]  50%  16.0/32.0 MiB  80.0 MiB/s  ETA 0s".
func progressLine(n, total int64, elapsed time.Duration) string {
	const width = 30
	const mib = 1 << 20
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(n) / s
	}
	if total <= 0 {
		return fmt.Sprintf("%.1f MiB  %.1f MiB/s", float64(n)/mib, rate/mib)
	}
	frac := min(float64(n)/float64(total), 1)
	filled := int(frac * width)
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(total-n) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s%s] %3.0f%%  %.1f/%.1f MiB  %.1f MiB/s  ETA %s  ",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), frac*100,
		float64(n)/mib, float64(total)/mib, rate/mib, eta)
}
