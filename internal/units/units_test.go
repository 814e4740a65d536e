package units

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "none", 900: "900 B", 1024: "1 KiB", 1536: "1.5 KiB", 33554432: "32 MiB", 1572864: "1.5 MiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0 instances", 1: "1 instance", 2: "2 instances", 1000: "1000 instances"} {
		if got := Count(n, "instance"); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}
