package host

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestStderrTailKeepsTheCrashLine(t *testing.T) {
	var tail stderrTail
	write := func(s string) {
		if n, err := tail.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	// Logs first, then Go's report of a panic, its first line written in
	// pieces (as go-plugin writes a line, then its newline), then a stack
	// trace far longer than the tail.
	write(`{"@level":"info","@message":"serving"}` + "\n")
	write("panic: assignment")
	write(" to entry in nil map")
	write("\n")
	write("\n")
	write("goroutine 7 [running]:\n")
	write(strings.Repeat("main.(*Relay).poll(...)\n\t/src/relay.go:42 +0x1d\n", 500))
	write("panic: a second panic is not the cause\n")
	if got, want := tail.crashWords(), "panic: assignment to entry in nil map"; got != want {
		t.Errorf("crashWords = %q, want %q", got, want)
	}
	if len(tail.buf) > stderrTailSize {
		t.Errorf("the tail holds %d bytes, more than %d", len(tail.buf), stderrTailSize)
	}

	var quiet stderrTail
	_, _ = quiet.Write([]byte("a plain line that is no crash\nfatal error"))
	if got := quiet.crashWords(); got != "" {
		t.Errorf("crashWords without a crash = %q", got)
	}
}

// TestSigchldInfoLayout checks the layout waitid's answer is read with
// against Linux's siginfo_t: si_status at offset 24 where pointers have 8
// bytes (amd64, arm64), 20 where they have 4 (arm, 386), and the whole
// within x/sys's Siginfo.
func TestSigchldInfoLayout(t *testing.T) {
	var si sigchldInfo
	want := uintptr(24)
	if unsafe.Sizeof(uintptr(0)) == 4 {
		want = 20
	}
	if got := unsafe.Offsetof(si.status); got != want {
		t.Errorf("si_status at offset %d, want %d on %s", got, want, runtime.GOARCH)
	}
	if unsafe.Offsetof(si.code) != 8 || unsafe.Sizeof(si) > unsafe.Sizeof(unix.Siginfo{}) {
		t.Errorf("si_code at %d, size %d of %d", unsafe.Offsetof(si.code), unsafe.Sizeof(si), unsafe.Sizeof(unix.Siginfo{}))
	}
}
