//go:build !unix

package store

// ReleaseMappedPages does nothing on this platform.
func (db *DB) ReleaseMappedPages() error { return nil }
