//go:build !unix

package claim

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// tryLock fails closed where flock(2) does not exist: a run that cannot lock
// its state directory does not run.
func tryLock(*os.File) error {
	return errors.New("this platform has no flock(2); deid locks its state directory and output with it")
}
