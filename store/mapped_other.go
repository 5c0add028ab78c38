//go:build !unix

package store

import bolt "go.etcd.io/bbolt"

// ReleaseMappedPages does nothing on this platform.
func (db *DB) ReleaseMappedPages() error { return nil }

func releaseMapped(*bolt.Tx) error { return nil }
