//go:build windows || plan9

package dbm

import "io/fs"

// keyPermissionProblem returns "": lib/pq checks a private key's
// permissions only on Unix systems.
func keyPermissionProblem(fs.FileInfo) string { return "" }
