//go:build race

package main

// raceEnabled: allocation counts differ under the race detector.
const raceEnabled = true
