package s3test

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of
// ending the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skip = fmt.Sprintf(format, args...) }

func TestAServerThatCannotBeHadFailsWhenRequired(t *testing.T) {
	for _, tc := range []struct {
		name, require string
		wantFatal     bool
	}{
		{"required: a failure, never a skip", "1", true},
		{"not required: a skip that says how to run it", "", false},
		{"required set to 0: a skip", "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvRequire, tc.require)
			r := &recorder{TB: t}
			unavailable(r, "could not start a private S3 server: %s", "boom")
			if got := r.fatal != ""; got != tc.wantFatal {
				t.Errorf("fatal = %q, skip = %q", r.fatal, r.skip)
			}
			if msg := r.fatal + r.skip; !strings.Contains(msg, "boom") {
				t.Errorf("the message lost the cause: %q", msg)
			}
			if !tc.wantFatal && !strings.Contains(r.skip, "scripts/test.sh") {
				t.Errorf("the skip does not say how to run the suite: %q", r.skip)
			}
		})
	}
}

func TestPrivateServerStopsAndStartsOnItsData(t *testing.T) {
	srv := Private(t)
	bucket := srv.Bucket(t)
	srv.Stop(t)
	srv.Start(t)
	out, err := srv.Client().ListBuckets(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range out.Buckets {
		found = found || *b.Name == bucket
	}
	if !found {
		t.Errorf("bucket %s is gone after the restart", bucket)
	}
}
