package protocol

import "testing"

func TestPool(t *testing.T) {
	p := &Pool{}
	for _, n := range []int{0, 1, 255, 256, 257, 32<<10 + 20, 1 << 20, 40 << 20} {
		b := p.Get(n)
		if len(*b) != n || cap(*b) < n || (n > 1 && n <= 1<<maxTier && cap(*b) >= 2*n) {
			t.Errorf("Get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		p.Put(b)
		again := p.Get(n)
		if len(*again) != n {
			t.Errorf("reused Get(%d): len %d", n, len(*again))
		}
	}
}
