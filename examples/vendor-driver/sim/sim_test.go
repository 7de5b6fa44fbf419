package sim_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"

	"example.com/acme/relay-driver/sim"
)

// TestProtocol speaks the board's protocol by hand, as a vendor's
// documentation shows it.
func TestProtocol(t *testing.T) {
	b, err := sim.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, tt := range []struct{ cmd, want string }{
		{"GET 1", "OFF"},
		{"MEAS 1", "V=0.00 I=0.00"},
		{"SET 1 ON", "OK"},
		{"GET 1", "ON"},
		{"MEAS 1", "V=5.01 I=0.42"},
		{"SET 9 ON", "ERR no channel 9"},
		{"SET 1 MAYBE", `ERR unknown command "SET 1 MAYBE"`},
		{"RESET", `ERR unknown command "RESET"`},
	} {
		fmt.Fprintf(c, "%s\n", tt.cmd)
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", tt.cmd, err)
		}
		if got = strings.TrimSuffix(got, "\n"); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.cmd, got, tt.want)
		}
	}
	if !b.Relay(1) || b.Relay(2) {
		t.Errorf("relays 1, 2 = %v, %v; want on, off", b.Relay(1), b.Relay(2))
	}
}
