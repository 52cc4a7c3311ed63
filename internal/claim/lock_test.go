package claim

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestASecondLockIsRefusedWithItsHolderAndAReleasedOneIsTaken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first, err := Acquire(dir, "deid.lock", "state_dir", 0o750)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to an open file, so a second open in the same
	// process is refused as another process's would be.
	_, err = Acquire(dir, "deid.lock", "state_dir", 0o750)
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("second Acquire: %v, want a *HeldError", err)
	}
	host, _ := os.Hostname()
	if held.Holder.PID != os.Getpid() || held.Holder.Host != host || held.Holder.Since.IsZero() {
		t.Errorf("holder %+v, want pid %d on %s with its start time", held.Holder, os.Getpid(), host)
	}
	msg := err.Error()
	for _, want := range []string{"state_dir: ", "is locked by pid " + strconv.Itoa(os.Getpid()), "on host " + host, "since ",
		"stop that process or use another state_dir"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := Acquire(dir, "deid.lock", "state_dir", 0o750)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	defer again.Release()
	if _, err := os.Stat(filepath.Join(dir, "deid.lock")); err != nil {
		t.Errorf("the lock file: %v", err)
	}
}

func TestALockFileWithoutAHolderDoesNotBlock(t *testing.T) {
	// What a process killed while holding the lock leaves: the file, with
	// its pid; the kernel released the lock itself.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deid.lock"), []byte(`{"pid":999999,"host":"gone","since":"2026-01-01T00:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(dir, "deid.lock", "out", 0o755)
	if err != nil {
		t.Fatalf("a stale lock file blocks: %v", err)
	}
	l.Release()
}

func TestAHolderThatHasNotWrittenItselfIsAnotherProcess(t *testing.T) {
	err := &HeldError{Dir: "/x", Key: "out"}
	if want := "out: /x is locked by another process; stop that process or use another out"; err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}
