//go:build linux

package pipeline

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"testing"
	"unsafe"
)

// A big table is mapped on a huge-page boundary, and every mapping is
// returned to the system: the old one when the table grows, the last one on
// Release.
func TestBigDedupTablesAreMappedAndReturned(t *testing.T) {
	s := newDedupSet(300_000)
	if s.mem.mapped == nil {
		t.Fatalf("a table of %d bytes is on the heap; want it mapped (offHeapMin %d)", s.Bytes(), offHeapMin)
	}
	if at := uintptr(unsafe.Pointer(&s.buckets[0])); at%hugePage != 0 {
		t.Errorf("table at %#x: not on a %d-byte boundary", at, hugePage)
	}
	first := tableStart(s)
	if !mapped(t, first) {
		t.Fatalf("table at %#x is not in a mapping of /proc/self/maps", first)
	}
	for i := range uint64(400_000) {
		s.Add(keyOf(i))
	}
	if s.Len() != 400_000 {
		t.Fatalf("Len = %d after 400000 distinct keys", s.Len())
	}
	for i := range uint64(400_000) {
		if !s.Has(keyOf(i)) {
			t.Fatalf("key %d lost in growth", i)
		}
	}
	if mapped(t, first) {
		t.Errorf("the table grew, but its first mapping at %#x is still there", first)
	}
	second := tableStart(s)
	s.Release()
	if mapped(t, second) {
		t.Errorf("released, but the mapping at %#x is still there", second)
	}
	if s.mem.mapped != nil || s.buckets != nil {
		t.Error("Release left the table in place")
	}
}

func tableStart(s *dedupSet) uintptr { return uintptr(unsafe.Pointer(&s.buckets[0])) }

// mapped tells whether a mapping of the process holds addr.
func mapped(t *testing.T, addr uintptr) bool {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatalf("reading the process's mappings: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x", &lo, &hi); err == nil && lo <= addr && addr < hi {
			return true
		}
	}
	return false
}

// The soft memory limit covers the mapped tables: Go's own limit is the
// configured one less what they hold, and gets it back when they go.
func TestMappedTablesCountAgainstTheMemoryLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	defer func() {
		SetMemoryLimit(0)
		debug.SetMemoryLimit(orig)
	}()
	memLimit.Lock()
	base := memLimit.offHeap // tables other tests left to the collector
	memLimit.Unlock()
	limit := int64(1<<30) - base
	SetMemoryLimit(1 << 30)
	s := newDedupSet(300_000)
	if got, want := debug.SetMemoryLimit(-1), limit-int64(len(s.mem.mapped)); got != want {
		t.Errorf("with a %d-byte table mapped, Go's limit is %d; want %d", len(s.mem.mapped), got, want)
	}
	for i := range uint64(400_000) { // grows: a new mapping, the old one returned
		s.Add(keyOf(i))
	}
	if got, want := debug.SetMemoryLimit(-1), limit-int64(len(s.mem.mapped)); got != want {
		t.Errorf("after growth to %d mapped bytes, Go's limit is %d; want %d", len(s.mem.mapped), got, want)
	}
	s.Release()
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("every table returned, Go's limit is %d; want %d", got, limit)
	}
	// A table larger than the limit leaves the heap a quarter of it.
	SetMemoryLimit(8 << 20)
	big := newDedupSet(300_000)
	defer big.Release()
	if got := debug.SetMemoryLimit(-1); got != 2<<20 {
		t.Errorf("with %d bytes mapped under an 8 MiB limit, Go's limit is %d; want 2 MiB", len(big.mem.mapped), got)
	}
}
