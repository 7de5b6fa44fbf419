package exporter_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/jumpwire-dev/jumpwire/internal/ptypair"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestSwapExclusive: a serial port can be opened by one process only, so a
// reload that changes its config stops the old process (after the drain)
// before the new one opens the port. A stream open on the old process ends
// with the "replaced" reason; a call made during the swap waits for the
// successor instead of failing.
func TestSwapExclusive(t *testing.T) {
	p := ptypair.Start(t)
	cfg := func(baud int) string {
		return header + "export:\n  console:\n    type: serial\n    config: {url: " + p.Port + ", baudrate: " + strconv.Itoa(baud) + "}\n"
	}
	rx := start(t, cfg(9600), []string{"serial"}, func(o *exporter.Options) { o.SwapDrain = 200 * time.Millisecond })
	console := uuidOf(t, rx.c, "console")
	before := rx.e.Session().Pids()[console]
	s := open(t, rx.r, console, "connect")

	if err := os.WriteFile(rx.file, []byte(cfg(19200)), 0o600); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan []exporter.Change, 1)
	go func() {
		changes, err := rx.e.Reload(t.Context())
		if err != nil {
			t.Error(err)
		}
		reloaded <- changes
	}()
	_, err := readAll(s)
	want := "driver console was replaced (a new binary or config was loaded); reconnect to use the new one"
	if st := status.Convert(errors.Unwrap(err)); err == nil || st.Code() != codes.Unavailable || st.Message() != want {
		t.Errorf("the open stream ended with %v, want UNAVAILABLE %q", err, want)
	}
	// Made during the swap, this call waits for the successor.
	if _, err := call(t, rx.c, console, "close"); err != nil {
		t.Errorf("a call during the swap: %v", err)
	}
	changes := <-reloaded
	if got := changeLines(changes); len(got) != 1 || got[0] != "console replaced (config changed)" {
		t.Errorf("changes %q", got)
	}
	if after := rx.e.Session().Pids()[console]; after == before || after == 0 {
		t.Errorf("pid %d after the swap (was %d)", after, before)
	}
	r, err := rx.c.GetReport(t.Context(), &emptypb.Empty{})
	if err == nil {
		for _, d := range r.Reports {
			if d.Uuid == console && !strings.Contains(d.GetDescription(), "19200") {
				t.Errorf("description after the swap: %q", d.GetDescription())
			}
		}
	}
}
