//go:build !windows && !plan9

package dbm

import (
	"fmt"
	"io/fs"
	"syscall"
)

// keyPermissionProblem says why lib/pq would refuse a private key file with
// these permissions, or returns "". lib/pq follows libpq: the key must not
// be readable by others, nor by the group unless root owns it (0640 for a
// root-owned key, else 0600 or less).
func keyPermissionProblem(fi fs.FileInfo) string {
	perm := fi.Mode().Perm()
	if perm&^0o600 == 0 {
		return ""
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == 0 && perm&^0o640 == 0 {
		return ""
	}
	return fmt.Sprintf("group or others may read the private key (mode %04o); lib/pq refuses it: chmod 0600 the file (0640 if root owns it)", perm)
}
