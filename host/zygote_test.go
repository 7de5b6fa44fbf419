package host

import (
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// A zygote forks instances of the code it imported; after an upgrade of a
// class's package another zygote serves it.
func TestZygoteFollowsCode(t *testing.T) {
	py := testbin.Python(t)
	zs := NewZygotes(nil)
	defer zs.Close()
	const power = "jumpstarter_driver_power.driver.MockPower"
	a, err := zs.get(py, power, "v1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := zs.get(py, "jumpstarter_driver_shell.driver.Shell", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("a second class got a zygote of its own")
	}
	if again, _ := zs.get(py, power, "v1"); again != a {
		t.Error("the same code got another zygote")
	}
	c, err := zs.get(py, power, "v2")
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Fatal("upgraded code was given the zygote that imported the old")
	}
	zs.Close()
	for _, z := range []*zygote{a, c} {
		<-z.dead
	}
	if _, err := zs.get(py, power, "v2"); err == nil {
		t.Error("a closed Zygotes started a zygote")
	}
}
