package host

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestNeedleSet compares the set search with bytes.Index on random text
// over a small alphabet, where partial matches abound.
func TestNeedleSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	alphabet := []byte("0123.4 ac/eh\n")
	for _, set := range [][]string{
		{"203.0.113.44"}, {"2001:db8::5", "0.0.0"}, {"cache.php", "203.0.113.44", "ac/e"}, {"3.4", "3.44", "a"},
	} {
		var ns [][]byte
		for _, n := range set {
			ns = append(ns, []byte(n))
		}
		s := newNeedleSet(ns)
		for k := 0; k < 3000; k++ {
			b := make([]byte, r.IntN(200))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			if n := ns[r.IntN(len(ns))]; r.IntN(2) == 0 && len(b) > len(n) {
				copy(b[r.IntN(len(b)-len(n)):], n)
			}
			want := -1
			for _, n := range ns {
				if i := bytes.Index(b, n); i >= 0 && (want < 0 || i < want) {
					want = i
				}
			}
			if got := s.index(b); got != want {
				t.Fatalf("needleSet(%q).index(%q) = %d, want %d", set, b, got, want)
			}
		}
	}
	if got := newNeedleSet(nil).index([]byte("abc")); got != -1 {
		t.Errorf("empty needleSet.index = %d, want -1", got)
	}
}
