//go:build !linux

package store

// prefetch does nothing on this platform: the load's walk reads the pages
// it needs.
func prefetch(string) {}
