package queue

import "syscall"

// File system magic numbers (statfs(2)).
const (
	ext4Magic = 0xEF53 // ext2, ext3 and ext4
	xfsMagic  = 0x58465342
)

// overwritesInPlace reports whether dir is on a file system that writes
// over a file's written blocks in place, so that an fdatasync after such
// writes commits data only: ext4 and XFS. There the zeroed room
// (keepZeroedAhead) saves the size and extent commit; on copy-on-write
// file systems (btrfs, ZFS) every write allocates anyway, and on tmpfs
// fdatasync costs nothing, so the zeros would only be written twice.
func overwritesInPlace(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == ext4Magic || st.Type == xfsMagic
}
