//go:build linux

package pipeline

import (
	"syscall"
	"unsafe"
)

// The dedup tables of big windows live outside the Go heap, in anonymous
// mappings advised to use 2 MiB pages. Two reasons, both measured (see
// docs/performance.md): a lookup in a table of tens of megabytes misses
// the TLB on nearly every event with 4 KiB pages, and a table on the heap
// counts twice against RSS, since the collector lets the heap grow to twice
// the live data before it runs and a grown table leaves its old array to
// collect. A mapping is returned to the system the moment it is released.

// offHeapMin is the size from which a table is mapped: smaller ones, the
// common case in tests and quiet windows, stay on the heap.
const offHeapMin = 4 << 20

// hugePage is the size of a transparent huge page on amd64 and arm64.
const hugePage = 2 << 20

// tableMem owns the mapping under a table, if any. The zero value owns
// nothing.
type tableMem struct {
	mapped []byte
}

// allocBuckets returns a zeroed table of n buckets, mapped when it is big
// enough; mem then owns the mapping. It falls back to the heap when the
// system refuses the mapping.
func allocBuckets(n int, mem *tableMem) []dedupBucket {
	size := n * int(unsafe.Sizeof(dedupBucket{}))
	if size < offHeapMin {
		return make([]dedupBucket, n)
	}
	// Map a huge page more than needed, so that the table can start on a
	// huge-page boundary whatever address the system picks.
	body := (size + hugePage - 1) &^ (hugePage - 1)
	m, err := syscall.Mmap(-1, 0, body+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]dedupBucket, n)
	}
	off := int(-uintptr(unsafe.Pointer(&m[0])) & (hugePage - 1))
	// Advice only: without transparent huge pages the table still works,
	// on small pages.
	_ = syscall.Madvise(m[off:off+body], syscall.MADV_HUGEPAGE)
	mem.mapped = m
	offHeapChanged(int64(len(m)))
	return unsafe.Slice((*dedupBucket)(unsafe.Pointer(&m[off])), n)
}

// release returns the mapping, if any, to the system. The table must not be
// used after.
func (m *tableMem) release() {
	if m.mapped != nil {
		n := len(m.mapped)
		_ = syscall.Munmap(m.mapped)
		m.mapped = nil
		offHeapChanged(-int64(n))
	}
}
