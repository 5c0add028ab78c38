//go:build race

package authz

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = true
