//go:build !unix

package queue

import (
	"os"
	"path/filepath"
)

// lockDir only creates the lock file where flock is unavailable; callers
// must not open one queue twice.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
}
